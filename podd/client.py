"""The blocking client of a pod's socket: the command line's face of ``podd.client_core``.

The CLI is a short-lived process; it talks to pods over plain sockets and plain JSON
frames, so that a command pays neither trio's nor cattrs' import time. Params are
dicts. What a request means and how its failures read is decided in the core: nothing
listening is ``PodUnreachable``, an error reply ``PodFailed``.

Sockets are ``_socket.socket``, the C type that ``socket.socket`` extends, with the same
methods and exceptions: importing the ``socket`` module (its enums, ``selectors``)
would cost a command about 2 ms, a tenth of all it does.
"""

from __future__ import annotations

import _socket
import os
import select
import time

from podd.client_core import Backoff, Exchange, overloaded, unreachable
from podd.errors import PoddError
from podd.paths import short_socket_path

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Sequence
    from typing import Any

__all__ = ["call", "call_each", "connect"]


def connect(sock_path: str, timeout: float | None = 5.0) -> socket.socket:
    """Connect to a pod socket (any path length); ``PodUnreachable`` if nobody listens.

    A full listen backlog is retried (see ``Backoff``) until ``timeout``.
    """
    import socket

    sock = socket.socket(fileno=_connect(sock_path, timeout).detach())
    sock.settimeout(timeout)
    return sock


def _connect(sock_path: str, timeout: float | None) -> _socket.socket:
    deadline = None if timeout is None else time.monotonic() + timeout
    backoff = Backoff()
    while True:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            with short_socket_path(os.path.dirname(sock_path), os.path.basename(sock_path)) as p:
                sock.connect(p)
            return sock
        except BlockingIOError as exc:
            sock.close()
            pause = backoff.next()
            if deadline is not None and time.monotonic() + pause > deadline:
                raise overloaded(sock_path, exc) from exc
            time.sleep(pause)
        except OSError as exc:  # TimeoutError included
            sock.close()
            raise unreachable(sock_path, exc) from exc


def call(sock_path: str, method: str, params: Any = None, timeout: float | None = 10.0) -> Any:
    """Send one request and return its result.

    Raises ``PodUnreachable`` when the socket does not answer (within ``timeout``
    seconds, ``None`` for no limit) and ``PodFailed`` for an error reply.
    """
    exchange = Exchange(sock_path, method, params)
    sock = _connect(sock_path, timeout if timeout is not None else 5.0)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        sock.settimeout(timeout)
        sock.sendall(exchange.request)
        while True:
            if deadline is not None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
            if exchange.feed(sock.recv(65536)):
                return exchange.result
    except TimeoutError as exc:
        raise exchange.timed_out() from exc
    except OSError as exc:
        raise exchange.lost(exc) from exc
    finally:
        sock.close()


def call_each(
    sock_paths: Sequence[str], method: str, params: Any = None, timeout: float = 10.0
) -> list[Any]:
    """The same request to every socket at once; the answers in the same order.

    Each answer is the result, or the ``PoddError`` that request failed with
    (``PodUnreachable`` for no answer within ``timeout`` seconds). All the requests
    are in flight together, on non-blocking sockets in one ``poll`` loop, so the whole
    takes about the slowest pod's round trip, not the sum of them.
    """
    answers: list[Any] = [None] * len(sock_paths)
    deadline = time.monotonic() + timeout
    poller = select.poll()
    in_flight: dict[int, _Pending] = {}
    retries: list[tuple[float, _Pending]] = []

    def start(pending: _Pending) -> None:
        path = pending.exchange.sock_path
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            with short_socket_path(os.path.dirname(path), os.path.basename(path)) as p:
                sock.connect(p)
        except BlockingIOError as exc:  # a full listen backlog: try again soon
            sock.close()
            retry_at = time.monotonic() + pending.backoff.next()
            if retry_at > deadline:
                answers[pending.index] = overloaded(path, exc)
            else:
                retries.append((retry_at, pending))
            return
        except OSError as exc:
            sock.close()
            answers[pending.index] = unreachable(path, exc)
            return
        pending.sock = sock
        in_flight[sock.fileno()] = pending
        poller.register(sock.fileno(), select.POLLOUT)
        # Sent at once: the request is there when the pod wakes up to accept.
        if step(pending, sock, select.POLLOUT):
            finish(sock.fileno())

    def step(pending: _Pending, sock: _socket.socket, events: int) -> bool:
        """Move ``pending`` on; True once it has its answer."""
        try:
            if pending.out and events & select.POLLOUT:
                pending.out = pending.out[sock.send(pending.out) :]
                if not pending.out:
                    poller.modify(sock.fileno(), select.POLLIN)
                return False
            if not pending.exchange.feed(sock.recv(65536)):
                return False
            answers[pending.index] = pending.exchange.result
        except BlockingIOError:
            return False
        except PoddError as exc:
            answers[pending.index] = exc
        except OSError as exc:
            answers[pending.index] = pending.exchange.lost(exc)
        return True

    def finish(fd: int) -> None:
        poller.unregister(fd)
        in_flight.pop(fd).close()

    for index, path in enumerate(sock_paths):
        start(_Pending(index, Exchange(path, method, params)))
    while in_flight or retries:
        now = time.monotonic()
        if now >= deadline:
            break
        wake = min([deadline, *(at for at, _ in retries)])
        for fd, events in poller.poll(max(0.0, wake - now) * 1000):
            pending = in_flight[fd]
            assert pending.sock is not None
            if step(pending, pending.sock, events):
                finish(fd)
        now = time.monotonic()
        due = [pending for at, pending in retries if at <= now]
        retries[:] = [(at, pending) for at, pending in retries if at > now]
        for pending in due:
            start(pending)
    for pending in in_flight.values():
        pending.close()
        answers[pending.index] = pending.exchange.timed_out()
    for _, pending in retries:
        answers[pending.index] = overloaded(pending.exchange.sock_path, TimeoutError("timed out"))
    return answers


class _Pending:
    """One request of ``call_each`` on its way: the bytes left to send, the socket."""

    __slots__ = ("backoff", "exchange", "index", "out", "sock")

    def __init__(self, index: int, exchange: Exchange) -> None:
        self.index = index
        self.exchange = exchange
        self.out = exchange.request
        self.backoff = Backoff()
        self.sock: _socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
