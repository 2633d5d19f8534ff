"""A pod's fork server: its loop, its wire with the pod, and the clone it forks with.

A plain (no event loop) process with the pod runtime imported, an OS child of the pod
it serves. The pod talks to it over a ``SOCK_SEQPACKET`` socket pair: one message per
request (the PodSpec as JSON, with the readiness pipe and a stderr pipe attached as
``SCM_RIGHTS``), one message back (the new pid, or ``error: ...``). Before the first
request it says ``ready``. It exits when the pod's end of the pair closes, which
includes the pod's death.

Each child is forked with ``clone(CLONE_PARENT)``: its OS parent is the pod that asked,
not the fork server, exactly as if the pod had started it with ``exec``, so the pod
learns of its death at once and reaps it (where it cannot be called this way,
``podd.spawn.forkserver.available()`` is false and pods start their children with
``exec``).

What the forked child does next is the caller's ``become`` (``podd.spawn.forked_pod``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
from collections.abc import Callable

from podd.proc.title import set_title
from podd.spawn.forkserver import SYS_CLONE

__all__ = ["Become", "clone_parent", "serve", "warm"]

CLONE_PARENT = 0x00008000

Become = Callable[[str, int, int], None]
"""What a newly forked process calls to become the pod: ``become(spec_json, ready_fd,
stderr_fd)``; it never returns (``podd.spawn.forked_pod.become_pod``)."""


def clone_parent() -> int:
    """``fork()``, but the child's parent is our parent. Returns 0 in the child.

    CPython's own fork bookkeeping (locks, thread state) is run around the raw
    syscall, as ``os.fork`` does; the caller has a single thread.
    """
    import ctypes

    api = ctypes.pythonapi
    libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held across clone
    api.PyOS_BeforeFork()
    pid = libc.syscall(SYS_CLONE, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return int(pid)


def serve(
    become: Become,
    control_fd: int,
    pod: str = "?",
    root: str = "?",
    prepare: Callable[[], None] | None = None,
) -> None:
    """The fork server's main loop: one fork per request, until the pod hangs up.
    ``prepare`` runs once it has said it is ready, before the first request."""
    set_title(f"podd: fork server of {pod} [{root}]")

    control = socket.socket(fileno=control_fd)
    control.sendall(b"ready")
    if prepare is not None:
        prepare()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
        except OSError:
            return
        if not message:
            return
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            control.sendall(b"error: expected two descriptors")
            continue
        ready_fd, stderr_fd = fds
        try:
            pid = clone_parent()
        except OSError as exc:
            os.close(ready_fd)
            os.close(stderr_fd)
            control.sendall(f"error: clone failed: {exc}".encode())
            continue
        if pid == 0:
            control.close()
            become(message.decode(), ready_fd, stderr_fd)
        os.close(ready_fd)
        os.close(stderr_fd)
        control.sendall(str(pid).encode())


_FIRST_USE = (
    "psutil",
    "tenacity",
    "landlock.plumbing",
    "podd.drivers.shell",
    "podd.drivers.claude",
    "podd.drivers.codex",
    "podd.drivers.render",
)
"""Modules a pod imports when it first needs them (see ``warm``)."""


def warm() -> None:
    """Build here, once, what every pod would otherwise build for itself on first use.

    cattrs generates the (un)structure function of a type the first time it meets it:
    code compiled at run time, and a walk through cattrs' own dispatch on the way.
    Done in a pod, all of it is private to that pod (about 2 MiB for the spec,
    ``pod.json`` and the registry alone); done in a fork server, before the fork, every
    pod it forks shares it. The types are those the pods meet: the spec, ``pod.json``,
    registry records, the params of every method and the events. (Not every type a
    module defines: some, such as the journal's state, make cattrs register a hook of
    its own on the way, which empties its dispatch cache, and with it what was built
    before.) A type that fails here is left to be built when it is needed. Hooks of
    builtin types, such as ``dict`` for replies, are left out: asking for them here
    costs the pods more than it saves (measured).

    The modules a pod imports on first use, not as it starts (psutil, tenacity,
    landlock, the agent drivers), are imported here too, for the same reason: a pod
    started cold skips their import, a forked one shares them. Then ``gc.freeze()``:
    no collection in a forked process visits what exists now.
    """
    import importlib

    for module in _FIRST_USE:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
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
