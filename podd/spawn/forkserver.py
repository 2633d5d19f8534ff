"""Fork servers: pods started in milliseconds instead of ~150 ms; and the root fork
server as the CLI sees it.

Starting a pod process costs an interpreter and its imports, nearly all of it trio's.
A fork server is a plain (no event loop) Python process that has imported the pod
runtime once and forks a new process for each pod it is asked for. There are two kinds:

- a pod's own fork server, an OS child of the pod, which forks the pod's children
  with ``clone(CLONE_PARENT)`` so that they are the pod's own OS children:
  ``podd.spawn.pod_forkserver`` (its loop and its wire with the pod); the pod's side
  is ``podd.spawn.forkclient``;
- the root fork server, one per runtime root, listening on
  ``<root>/.forkserver.sock``, which forks root pods for the CLI and watches them:
  ``podd.spawn.root_forkserver``; its clients' side is here (asking it for a pod,
  claiming its socket for a new one, stopping it).

What a forked process does to become a pod (and to have its own fork server from the
start) is ``podd.spawn.forked_pod``. A fork server started with exec begins in
``podd._forkserver_main``, which nothing imports. None of these modules imports an
event loop or the runtime it forks: the runtime's ``main`` is passed in.

Where ``clone`` cannot be called this way (an unknown architecture), ``available()``
is false and pods are started with ``exec`` (so they are with
``PODD_NO_FORKSERVER=1``). This module is light: every CLI command may import it.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time

from podd.proc.procfs import is_alive
from podd.store.paths import short_socket_path

__all__ = [
    "ROOT_SOCKET",
    "SYS_CLONE",
    "ask_root_server",
    "available",
    "claim_root_socket",
    "root_has_live_pods",
    "root_server_may_run",
    "stop_root_fork_server",
]

SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
"""The number of the ``clone`` system call here (None: unknown, no fork servers)."""

ROOT_SOCKET = ".forkserver.sock"


def available() -> bool:
    """Whether pods may be forked from fork servers (else they are started with exec)."""
    return SYS_CLONE is not None and os.environ.get("PODD_NO_FORKSERVER", "") == ""


# --- The root fork server, as its clients see it -------------------------------------


def root_has_live_pods(root: str) -> bool:
    """Whether the process of any pod recorded under ``root`` is alive.

    Read with ``podd.store.records`` and ``podd.proc.procfs``: the CLI asks this after every
    ``podd stop`` and ``podd reclaim``.
    """
    from podd.store.records import live_record  # json: not for every caller of this module

    try:
        names = os.listdir(root)
    except OSError:
        return False
    return any(live_record(root, name) is not None for name in names)


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
        server_pid = _peer_pid(sock)
        sock.send(b"quit")
        sock.recv(16)
    except OSError:
        return
    finally:
        sock.close()
    deadline = time.monotonic() + 2.0
    while is_alive(server_pid, 0.0) and time.monotonic() < deadline:
        time.sleep(0.002)


def root_server_may_run(root: str) -> bool:
    """Whether the root's fork-server socket is there (else no server can answer)."""
    return os.path.exists(os.path.join(root, ROOT_SOCKET))


def ask_root_server(
    root: str, request: bytes, ready_fd: int, stderr_fd: int, timeout: float = 5.0
) -> int | None:
    """Have the root's fork server start a pod: ``request`` is the JSON document
    ``{"spec": SPEC_JSON, "env": {...}}``. The new pod's pid, or None if no server
    answered (none listens, or it gave no pid)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(timeout)
    try:
        with short_socket_path(root, ROOT_SOCKET) as path:
            sock.connect(path)
        socket.send_fds(sock, [request], [ready_fd, stderr_fd])
        answer = sock.recv(64)
        return int(answer) if answer.isdigit() else None
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def claim_root_socket(root: str, *, replace: bool = False) -> tuple[socket.socket, int] | None:
    """Bind and listen on the root's fork-server socket, for the server a cold spawn is
    about to start: ``(listening socket, inode of the socket file)``. None if a live
    server listens there (ask it), unless ``replace``: then the socket file is taken
    over (that server stops accepting and goes on watching its pods). Raises
    ``OSError`` if it cannot be bound."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        with short_socket_path(root, ROOT_SOCKET) as path:
            old_umask = os.umask(0o177)
            try:
                try:
                    sock.bind(path)
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    if not replace and _answers(path):
                        sock.close()
                        return None
                    os.unlink(path)  # left by a dead server (or replaced)
                    sock.bind(path)
            finally:
                os.umask(old_umask)
            identity = os.stat(path).st_ino
        sock.listen(64)
    except BaseException:
        sock.close()
        raise
    return sock, identity


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _peer_pid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid: int = struct.unpack("3i", creds)[0]
    return pid
