"""Start-up of a pod's fork server started with exec: ``python -m podd._forkserver_main
CONTROL_FD NAME ROOT`` (a pod that has none forked with it starts one so on its first
spawn).

A leaf: it imports the pod runtime once, so that every pod the server forks starts
with it loaded, and nothing imports this module back. Once the server has said it is
ready, and before its first request, it warms itself (``podd.spawn.pod_forkserver.warm``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from functools import partial

from podd.runtime import main as pod_main
from podd.spawn.forked_pod import become_pod
from podd.spawn.pod_forkserver import serve, warm


def main(argv: list[str]) -> None:
    become = partial(become_pod, pod_main.main, own_server=True)
    serve(become, int(argv[0]), argv[1], argv[2], prepare=warm)
    # Done: end without the interpreter's teardown, which frees every module and object
    # of the runtime (about 50 ms of CPU). Whoever waits for this process to be gone (a
    # pod that stops) would wait for that too.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
