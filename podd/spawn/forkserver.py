"""A fork server: starts a pod's children in milliseconds instead of ~150 ms.

Starting a pod process costs an interpreter and its imports, nearly all of it trio's.
A pod that spawns children starts, on first need, a fork server: its own OS child,
a plain (no event loop) Python process that has imported the pod runtime once and
forks a new process for each child. The fork uses ``clone(CLONE_PARENT)``, so the new
pod's OS parent is the pod that asked, not the fork server: exactly as if it had been
started with ``exec``, the parent learns of its death at once and reaps it.

The pod talks to its fork server over a ``SOCK_SEQPACKET`` socket pair: one message
per request (the PodSpec as JSON, with the readiness pipe and a stderr pipe attached
as ``SCM_RIGHTS``), one message back (the new pid). The fork server exits when the
pod's end of the pair closes, which includes the pod's death.

A pod that is itself forked from a fork server already holds the imported runtime: its
own fork server is a ``fork()`` of it, taken in ``become_pod`` before the pod starts
its event loop (while it has a single thread): a millisecond and 1 - 1.5 MiB of
private memory, instead of a new interpreter (~0.2 s of CPU, 7 - 10 MiB) on its first
spawn. The pod takes it over with ``take_prestarted`` (``podd.spawn.forkclient.ForkServer``).
A pod started otherwise (a cold root spawn forks it from the CLI; the ``exec``
fallback) starts one with exec when it first needs it, as does a pod whose forked one
is gone. Every pod and fork server forked this way shares, copy-on-write, the pages of
the interpreter that imported the runtime; ``gc.freeze()`` in each forked process
keeps its garbage collections off those pages (a collection writes to every object it
visits).

Where ``clone`` cannot be called this way (an unknown architecture), ``available()``
is false and children are started with ``exec`` as before (so does
``PODD_NO_FORKSERVER=1``). This module is the server side and imports no event loop;
the pod's side is ``podd.spawn.forkclient``; the processes start in ``podd._forkserver_main``,
which nothing imports.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable

from podd.proc.procfs import is_alive
from podd.proc.title import pod_title, set_title
from podd.store.paths import short_socket_path
from podd.store.records import read_pod_record

__all__ = [
    "ROOT_SOCKET",
    "available",
    "become_pod",
    "root_has_live_pods",
    "serve",
    "serve_root",
    "stop_root_fork_server",
    "take_prestarted",
]

CLONE_PARENT = 0x00008000
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)


def available() -> bool:
    return _SYS_CLONE is not None and os.environ.get("PODD_NO_FORKSERVER", "") == ""


# --- The fork-server process ------------------------------------------------------


def _clone_parent() -> int:
    """``fork()``, but the child's parent is our parent. Returns 0 in the child.

    CPython's own fork bookkeeping (locks, thread state) is run around the raw
    syscall, as ``os.fork`` does; the server has a single thread.
    """
    import ctypes

    api = ctypes.pythonapi
    libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held across clone
    api.PyOS_BeforeFork()
    pid = libc.syscall(_SYS_CLONE, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return int(pid)


RunPod = Callable[[list[str], str], int]
"""What a forked process calls to become the pod: ``run_pod(argv, spec_json)``, its exit
status. The start-up module (``podd._forkserver_main``) passes ``podd.runtime.main.main``:
this module never imports the runtime it forks."""


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


def _fork_own_server(run_pod: RunPod, name: str, root: str, env: dict[str, str] | None) -> None:
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
            # Nothing of the pod's start-up may stay open here: the readiness pipe and
            # the stderr pipe must reach end-of-file when the pod closes them or dies.
            os.closerange(3, keep)
            os.closerange(keep + 1, max(keep + 1, os.sysconf("SC_OPEN_MAX")))
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
            os.chdir("/")
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            threading = sys.modules.get("threading")
            if threading is not None and threading.active_count() > 1:
                # A thread started at fork (by an at-fork hook) would make every clone
                # unsafe: leave it to the pod to start a fork server with exec.
                return
            serve(run_pod, keep, name, root)
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    _prestarted = (pid, ours.detach())


def become_pod(
    run_pod: RunPod,
    spec_json: str,
    ready_fd: int,
    stderr_fd: int,
    env: dict[str, str] | None = None,
    *,
    own_server: bool = False,
) -> None:
    """In a newly forked process: become the pod. Never returns.

    With ``own_server`` (this process holds the runtime already imported), the pod's
    own fork server is forked first (see ``take_prestarted``).
    """
    code = 1
    try:
        # What this process inherited stays off its garbage collections (and those of
        # its own fork server): the pages stay shared.
        gc.freeze()
        spec = json.loads(spec_json)
        if own_server and available():
            # First thing: what this process writes before the fork would be copied
            # into its fork server for good.
            _fork_own_server(run_pod, spec["name"], spec["root"], env)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        os.chdir(spec["cwd"])
        set_title(pod_title(spec["name"], spec["root"]))
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        code = run_pod(["--ready-fd", str(ready_fd)], spec_json)
    except BaseException:
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def serve(
    run_pod: RunPod,
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
            pid = _clone_parent()
        except OSError as exc:
            os.close(ready_fd)
            os.close(stderr_fd)
            control.sendall(f"error: clone failed: {exc}".encode())
            continue
        if pid == 0:
            control.close()
            become_pod(run_pod, message.decode(), ready_fd, stderr_fd, own_server=True)
        os.close(ready_fd)
        os.close(stderr_fd)
        control.sendall(str(pid).encode())


# --- The root fork server: root pods started by the CLI ----------------------------
#
# The same idea for root pods: one fork server per runtime root, started detached by
# the first `podd spawn` of a root pod, listening on <root>/.forkserver.sock. Each
# request carries the spec and the CLI's environment; the new pod gets a session of
# its own, like a pod started with exec. The server reaps nothing itself (SIGCHLD is
# ignored, so the kernel does) but watches each pod it forked: when one dies, it kills
# whatever is left of the turn that pod was running (a root pod has no parent pod to
# do that). It exits when told to ("quit": `podd stop` and `podd reclaim` send it with
# stop_root_fork_server once no pod of the root is alive), when its socket is removed,
# and by itself as soon as no pod of the root is alive (checked every CHECK_EVERY
# seconds once every pod it forked is gone), unless a request came within LINGER
# seconds: the CLI that started it has not asked yet, or one that asked is waiting for
# its pod. So no process of podd outlives the last live pod of a root by more than
# about a second, however that pod ended.

ROOT_SOCKET = ".forkserver.sock"
LINGER = 1.0
CHECK_EVERY = 0.25


def root_has_live_pods(root: str) -> bool:
    """Whether the process of any pod recorded under ``root`` is alive.

    Read with ``podd.store.records`` and ``podd.proc.procfs``: the CLI asks this after every
    ``podd stop`` and ``podd reclaim``.
    """
    try:
        names = os.listdir(root)
    except OSError:
        return False
    for name in names:
        try:
            info = read_pod_record(os.path.join(root, name, "pod.json"))
        except (OSError, ValueError):
            continue
        if is_alive(info.pid, info.start_time):
            return True
    return False


def stop_root_fork_server(root: str) -> None:
    """Stop the root's fork server if no pod of the root is alive any more, and wait
    until its process is gone: nothing of podd is left running under an empty root."""
    if not available() or root_has_live_pods(root):
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(2.0)
    try:
        with short_socket_path(root, ROOT_SOCKET) as path:
            sock.connect(path)
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        server_pid = struct.unpack("3i", creds)[0]
        sock.send(b"quit")
        sock.recv(16)
    except OSError:
        return
    finally:
        sock.close()
    deadline = time.monotonic() + 2.0
    while is_alive(server_pid, 0.0) and time.monotonic() < deadline:
        time.sleep(0.002)


def _live_root_pods(root: str) -> list[str]:
    """Names of the live root pods (no parent) recorded under ``root``."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    found = []
    for name in names:
        try:
            record = read_pod_record(os.path.join(root, name, "pod.json"))
        except (OSError, ValueError):
            continue
        if record.parent is None and is_alive(record.pid, record.start_time):
            found.append(name)
    return found


def _watch(watched: dict[int, str], root: str, name: str) -> None:
    """Watch the live pod ``name`` with a pidfd (nothing if it is not alive)."""
    try:
        record = read_pod_record(os.path.join(root, name, "pod.json"))
        pidfd = os.pidfd_open(record.pid)
    except (OSError, ValueError):
        return
    if is_alive(record.pid, record.start_time):
        watched[pidfd] = name
    else:
        os.close(pidfd)


def serve_root(
    run_pod: RunPod, root: str, ready_fd: int, prepare: Callable[[], None] | None = None
) -> None:
    """The root fork server's main loop. ``prepare`` runs once it listens and has said
    so, before the first request."""
    import select

    import orjson

    set_title(f"podd: root fork server [{root}]")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with short_socket_path(root, ROOT_SOCKET) as path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        old_umask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
    listener.listen(64)
    identity = os.stat(os.path.join(root, ROOT_SOCKET)).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # nobody may be waiting for this
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    if prepare is not None:
        prepare()
    last_request = time.monotonic()
    my_uid = os.getuid()
    # The root pods it watches, by pidfd: when one dies, nothing of its turn may live
    # on. Those it forked, and those already running when it started (a cold spawn
    # forks its pod from the CLI and starts this server beside it; scanning only after
    # listening means such a pod is either found here or announced with "watch").
    watched: dict[int, str] = {}
    for name in _live_root_pods(root):
        _watch(watched, root, name)
    accepting = True
    while accepting or watched:
        waitables: list[socket.socket | int] = [listener, *watched] if accepting else [*watched]
        readable, _, _ = select.select(waitables, [], [], CHECK_EVERY)
        for fd in [fd for fd in readable if fd in watched]:
            from podd.store.leftovers import kill_leftover_turn

            kill_leftover_turn(os.path.join(root, watched.pop(fd)))
            os.close(fd)
        if not accepting:
            continue
        if listener not in readable:
            try:
                replaced = os.stat(os.path.join(root, ROOT_SOCKET)).st_ino != identity
            except OSError:
                replaced = True
            if replaced:
                # Another server took the socket (or the root is gone): accept nothing
                # more, but go on watching the pods this one forked until they end.
                listener.close()
                accepting = False
                continue
            idle = time.monotonic() - last_request > LINGER
            if idle and not watched and not root_has_live_pods(root):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, ROOT_SOCKET))
                return
            continue
        conn, _ = listener.accept()
        with conn:
            last_request = time.monotonic()
            _pid, uid, _gid = struct.unpack(
                "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            )
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
            if uid == my_uid and message.startswith(b"watch "):
                # A pod the CLI forked itself (a cold spawn): watch it like one of ours.
                name = message[len(b"watch ") :].decode(errors="replace")
                if name not in watched.values():
                    _watch(watched, root, name)
                conn.sendall(b"ok")
                continue
            if uid == my_uid and message == b"quit":
                # The last pod of the root is gone (podd stop / reclaim says so): accept
                # nothing more; watch what it forked (if a spawn slipped in) to the end.
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, ROOT_SOCKET))
                conn.sendall(b"bye")
                listener.close()
                accepting = False
                continue
            if uid != my_uid or len(fds) != 2 or not message:
                for fd in fds:
                    os.close(fd)
                continue
            request = orjson.loads(message)
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                listener.close()
                conn.close()
                for pidfd in watched:
                    os.close(pidfd)
                become_pod(
                    run_pod, request["spec"], fds[0], fds[1], request["env"], own_server=True
                )
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                watched[os.pidfd_open(pid)] = orjson.loads(request["spec"])["name"]
            conn.sendall(str(pid).encode())
