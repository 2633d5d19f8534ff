"""Start-up of a fork server: ``python -m podd._forkserver_main CONTROL_FD NAME ROOT``,
or ``--root ROOT READY_FD`` for a runtime root's.

A leaf: it imports the pod runtime once, so that every pod the server forks starts
with it loaded, and nothing imports this module back. Once the server has said it is
ready, and before its first request, it warms itself (``warm``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

from podd.runtime import main as pod_main
from podd.spawn import forkserver


def warm() -> None:
    """Build here, once, what every pod would otherwise build for itself on first use.

    cattrs generates the (un)structure function of a type the first time it meets it:
    code compiled at run time, and a walk through cattrs' own dispatch on the way.
    Done in a pod, all of it is private to that pod (about 2 MiB for the spec,
    ``pod.json`` and the registry alone); done here, before the fork, every pod
    this server forks shares it. The types are those the pods meet: the spec,
    ``pod.json``, registry records, the params of every method and the events. (Not
    every type a module defines: some, such as the journal's state, make cattrs
    register a hook of its own on the way, which empties its dispatch cache, and with
    it what was built before.) A type that fails here is left to be built when it is
    needed. Hooks of builtin types, such as ``dict`` for replies, are left out: asking
    for them here costs the pods more than it saves (measured). Then ``gc.freeze()``:
    no collection in a forked process visits what exists now.
    """
    from podd.core.registry import ChildRecord
    from podd.core.spec import PodInfo, PodSpec
    from protocol.codec import METHODS, converter
    from protocol.messages import EVENT_KINDS, LOCAL_EVENT_KINDS

    types = [PodSpec, PodInfo, ChildRecord, *METHODS.values()]
    types += [*EVENT_KINDS.values(), *LOCAL_EVENT_KINDS.values()]
    for cls in types:
        if cls is None:
            continue
        try:
            converter.get_structure_hook(cls)
            converter.get_unstructure_hook(cls)
        except Exception:  # a type cattrs cannot handle up front
            continue
    gc.freeze()


def main(argv: list[str]) -> None:
    if argv[0] == "--root":
        forkserver.serve_root(pod_main.main, argv[1], int(argv[2]), prepare=warm)
    else:
        forkserver.serve(pod_main.main, int(argv[0]), argv[1], argv[2], prepare=warm)
    # Done: end without the interpreter's teardown, which frees every module and object
    # of the runtime (about 50 ms of CPU). Whoever waits for this process to be gone (a
    # pod that stops, `podd stop` of a root's last pod) would wait for that too.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
