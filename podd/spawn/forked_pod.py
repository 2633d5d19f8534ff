"""What a newly forked process does to become a pod, and the fork server it forks first.

A pod forked from a process that holds the imported runtime (a fork server) has its own
fork server from the start: a ``fork()`` of itself, taken in ``become_pod`` before it
runs anything of its own (while it has a single thread): a millisecond and 1 - 1.5 MiB
of private memory, instead of a new interpreter (~0.2 s of CPU, 7 - 10 MiB) on its first
spawn. The pod takes it over with ``take_prestarted``
(``podd.spawn.forkclient.ForkServer``). A pod started otherwise (a cold root spawn forks
it from the CLI, before the runtime is imported; the ``exec`` fallback) starts one with
exec when it first needs it, as does a pod whose forked one is gone.

Every pod and fork server forked this way shares, copy-on-write, the pages of the
process that imported the runtime; ``gc.freeze()`` in each forked process keeps its
garbage collections off those pages (a collection writes to every object it visits).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from functools import partial

from podd.core.spec import PodSpec
from podd.proc.title import pod_title, set_title
from podd.spawn.forkserver import available
from podd.spawn.pod_forkserver import Become, serve

__all__ = ["RunPod", "become_pod", "take_prestarted"]

RunPod = Callable[[list[str], "str | PodSpec"], int]
"""What a forked process calls to become the pod: ``run_pod(argv, spec)``, its exit
status: ``podd.runtime.main.main``, passed in by whoever holds it (a start-up module,
the CLI): this package never imports the runtime it forks. ``spec`` is the spec's JSON
document, or the ``PodSpec`` itself when the process that forked this one held it."""


_prestarted: tuple[int, int] | None = None
"""(pid, descriptor of the pod's end of the socket pair) of this pod's own fork server,
forked by ``become_pod``; None once taken, or if there is none."""


def take_prestarted() -> tuple[int, int] | None:
    """This pod's own fork server, forked before its event loop started: ``(pid,
    descriptor)``, the descriptor the pod's end of the ``SOCK_SEQPACKET`` pair (the
    server has written ``ready`` on it). None if there is none or it was taken."""
    global _prestarted
    taken, _prestarted = _prestarted, None
    return taken


def only_thread() -> bool:
    """Whether this process has a single thread, so that a fork of it may run Python.
    (A thread started at fork, by an at-fork hook, would make every clone unsafe.)"""
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() <= 1


def detach_from_pod(keep: int) -> None:
    """In a helper forked from a pod process: drop everything of the pod's start-up but
    descriptor ``keep``: the readiness and stderr pipes must reach end-of-file when the
    pod closes them or dies. Standard streams on ``/dev/null``, working directory ``/``."""
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 1, os.sysconf("SC_OPEN_MAX")))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.chdir("/")


def _fork_own_server(become: Become, name: str, root: str, env: dict[str, str] | None) -> None:
    """Fork the fork server of the pod this process is about to become: an OS child of
    the pod (so that what it forks with ``CLONE_PARENT`` are the pod's children), which
    the pod takes over with ``take_prestarted``. Called in a process with a single
    thread that has the runtime imported, before the pod's event loop starts; ``env``
    is the server's environment (None: this process's). On failure there is none, and
    the pod starts one with exec when it first needs it."""
    global _prestarted
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        return
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return
    if pid == 0:
        code = 1
        try:
            ours.close()
            keep = theirs.detach()
            detach_from_pod(keep)
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            if not only_thread():
                return  # left to the pod, which starts a fork server with exec
            serve(become, keep, name, root)
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    _prestarted = (pid, ours.detach())


def _where(spec: str | PodSpec) -> tuple[str, str, str]:
    """The name, root and working directory of the pod of ``spec``."""
    if isinstance(spec, PodSpec):
        return spec.name, spec.root, spec.cwd
    fields = json.loads(spec)
    return fields["name"], fields["root"], fields["cwd"]


def become_pod(
    run_pod: RunPod,
    spec: str | PodSpec,
    ready_fd: int,
    stderr_fd: int,
    env: dict[str, str] | None = None,
    *,
    own_server: bool = False,
    argv: Sequence[str] = (),
) -> None:
    """In a newly forked process: become the pod. Never returns.

    With ``own_server`` (this process holds the runtime already imported), the pod's
    own fork server is forked first (see ``take_prestarted``). ``argv`` goes to
    ``run_pod`` after the readiness descriptor.
    """
    code = 1
    try:
        # What this process inherited stays off its garbage collections (and those of
        # its own fork server): the pages stay shared.
        gc.freeze()
        name, root, cwd = _where(spec)
        if own_server and available():
            # First thing: what this process writes before the fork would be copied
            # into its fork server for good.
            become = partial(become_pod, run_pod, own_server=True)
            _fork_own_server(become, name, root, env)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        os.chdir(cwd)
        set_title(pod_title(name, root))
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        code = run_pod(["--ready-fd", str(ready_fd), *argv], spec)
    except BaseException:
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)
