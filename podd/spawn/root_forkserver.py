"""The root fork server: root pods started by the CLI, forked in milliseconds.

One per runtime root, listening on ``<root>/.forkserver.sock`` (``SOCK_SEQPACKET``).
Each request carries the spec and the CLI's environment as JSON, with the readiness
and stderr pipes attached; the answer is the new pod's pid (the clients' side, and
stopping the server, are in ``podd.spawn.forkserver``). The new pod gets a session of
its own, like a pod started with ``exec``, and its own fork server
(``podd.spawn.forked_pod``).

It is born with the first root pod of a root (a cold spawn): the CLI finds nobody on
the socket, binds and listens on it itself (``claim_root_socket``), and forks the pod,
handing it the listening socket; the pod, once it has imported the runtime and before
its event loop starts, forks the server off itself (``fork_root_server``). So a cold
spawn costs one interpreter start-up and one import of the runtime, and when the CLI
returns (the pod is ready) the socket already listens: a spawn that connects before
the server runs waits in the socket's backlog.

The server reaps nothing itself (SIGCHLD is ignored, so the kernel does) but watches
every live root pod with a pidfd: the one it was forked from, those it forked, those it
found alive at its start. When one dies, it kills whatever is left of the turn that
pod was running (a root pod has no parent pod to do that), if the pod's directory was
still that pod's. It exits when told to (``quit``: ``podd stop`` and ``podd reclaim``
send it with ``stop_root_fork_server`` once no pod of the root is alive), when its
socket is replaced or removed (it then goes on watching its pods until they end), and
by itself as soon as no pod of the root is alive (checked every CHECK_EVERY seconds once
every pod it watches is gone), unless a request came within LINGER seconds. So no
process of podd outlives the last live pod of a root by more than about a second,
however that pod ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from collections.abc import Callable

from podd.proc.procfs import is_alive
from podd.proc.title import set_title
from podd.spawn.forked_pod import RunPod, become_pod, detach_from_pod, only_thread
from podd.spawn.forkserver import ROOT_SOCKET, root_has_live_pods
from podd.spawn.pod_forkserver import clone_parent, warm
from podd.store.records import live_record, read_pod_record

__all__ = ["fork_root_server", "serve_root"]

LINGER = 1.0
CHECK_EVERY = 0.25

Watched = dict[int, tuple[str, int]]
"""pidfd -> (name, pid) of the root pods the server watches."""


# --- Its birth, in the first root pod -------------------------------------------------


def fork_root_server(
    run_pod: RunPod, listener_fd: int, identity: int, name: str, root: str
) -> None:
    """In a cold-spawned root pod, before its event loop starts (a single thread, the
    runtime imported): fork the root's fork server off this process, handing it the
    socket the CLI bound and listens on (``claim_root_socket``), and close it here.
    The server watches this pod from the start. Its parent is this pod's parent (init,
    or the nearest subreaper), in a session of its own, as a server started with exec
    was. If it cannot be forked there is none, and the next cold spawn starts one."""
    pod_pid = os.getpid()
    try:
        if not only_thread():
            raise OSError("more than one thread")
        pid = clone_parent()
    except Exception:  # no helper: the pod itself must start all the same
        os.close(listener_fd)
        return
    if pid == 0:
        code = 1
        try:
            os.setsid()
            detach_from_pod(listener_fd)
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            listener = socket.socket(fileno=listener_fd)
            watched: Watched = {}
            _watch(watched, name, pod_pid, 0.0)
            serve_root(run_pod, root, listener, identity, watched, prepare=warm)
            code = 0
        except BaseException:
            code = 1
        finally:
            # No interpreter teardown (it frees every module of the runtime, ~50 ms of
            # CPU, which `podd stop` of the root's last pod would wait for).
            os._exit(code)
    os.close(listener_fd)


# --- The server -------------------------------------------------------------------


def _live_root_pods(root: str) -> list[tuple[str, int, float]]:
    """(name, pid, start time) of the live root pods (no parent) recorded under ``root``."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    found = []
    for name in names:
        record = live_record(root, name)
        if record is not None and record.parent is None:
            found.append((name, record.pid, record.start_time))
    return found


def _watch(watched: Watched, name: str, pid: int, started: float) -> None:
    """Watch pod ``name``, process ``pid``, with a pidfd (nothing if it is not alive
    or already watched)."""
    if any(p == pid for _, p in watched.values()):
        return
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    if is_alive(pid, started):
        watched[pidfd] = (name, pid)
    else:
        os.close(pidfd)


def _pod_ended(root: str, name: str, pid: int) -> None:
    """Pod ``name`` (process ``pid``) is gone: kill the turn it left running, if the
    directory was that pod's. A pod that died refused (its name taken by a live pod)
    never wrote its ``pod.json``: the turn there is the live pod's."""
    from podd.store.leftovers import kill_leftover_turn

    directory = os.path.join(root, name)
    try:
        owner = read_pod_record(os.path.join(directory, "pod.json")).pid
    except (OSError, ValueError):
        return
    if owner == pid:
        kill_leftover_turn(directory)


def serve_root(
    run_pod: RunPod,
    root: str,
    listener: socket.socket,
    identity: int,
    watched: Watched,
    prepare: Callable[[], None] | None = None,
) -> None:
    """The root fork server's main loop, on ``listener`` (bound to the socket file whose
    inode is ``identity``), watching the pods in ``watched``. ``prepare`` runs before
    the first request."""
    import select

    import orjson

    set_title(f"podd: root fork server [{root}]")
    if prepare is not None:
        prepare()
    last_request = time.monotonic()
    my_uid = os.getuid()
    # Scanning once listening: a root pod started before is either found here, or
    # was forked after the socket listened, through it.
    for name, pid, started in _live_root_pods(root):
        _watch(watched, name, pid, started)
    accepting = True
    while accepting or watched:
        waitables: list[socket.socket | int] = [listener, *watched] if accepting else [*watched]
        readable, _, _ = select.select(waitables, [], [], CHECK_EVERY)
        for fd in [fd for fd in readable if fd in watched]:
            name, pid = watched.pop(fd)
            os.close(fd)
            _pod_ended(root, name, pid)
        if not accepting:
            continue
        if listener not in readable:
            try:
                replaced = os.stat(os.path.join(root, ROOT_SOCKET)).st_ino != identity
            except OSError:
                replaced = True
            if replaced:
                # Another server took the socket (or the root is gone): accept nothing
                # more, but go on watching the pods this one knows until they end.
                listener.close()
                accepting = False
                continue
            idle = time.monotonic() - last_request > LINGER
            if idle and not watched and not root_has_live_pods(root):
                _unlink_socket(root)
                return
            continue
        conn, _ = listener.accept()
        with conn:
            last_request = time.monotonic()
            _pid, uid, _gid = struct.unpack(
                "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            )
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
            if uid == my_uid and message == b"quit":
                # The last pod of the root is gone (podd stop / reclaim says so): accept
                # nothing more; watch what it forked (if a spawn slipped in) to the end.
                _unlink_socket(root)
                conn.sendall(b"bye")
                listener.close()
                accepting = False
                continue
            if uid != my_uid or len(fds) != 2 or not message or _hung_up(conn):
                # Not ours, not a request, or its sender gave up waiting (it starts the
                # pod another way).
                for fd in fds:
                    os.close(fd)
                continue
            request = orjson.loads(message)
            spec_json: str = request["spec"]
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                listener.close()
                conn.close()
                for pidfd in watched:
                    os.close(pidfd)
                become_pod(run_pod, spec_json, fds[0], fds[1], request["env"], own_server=True)
            for fd in fds:
                os.close(fd)
            _watch(watched, orjson.loads(spec_json)["name"], pid, 0.0)
            conn.sendall(str(pid).encode())


def _hung_up(conn: socket.socket) -> bool:
    """Whether the client of ``conn`` has closed its end (it no longer waits)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _unlink_socket(root: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(root, ROOT_SOCKET))
