"""The blocking client of a pod's socket: the command line's face of ``podd.client.core``.

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
import errno
import os
import select
import time

from podd.client.core import Backoff, Exchange, overloaded, unreachable
from podd.errors import PoddError
from podd.store.paths import short_socket_path

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Sequence
    from typing import Any

__all__ = ["Batch", "call", "call_each", "connect"]


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
    (``PodUnreachable`` for no answer within ``timeout`` seconds). See ``Batch``.
    """
    batch = Batch(method, params, timeout)
    for path in sock_paths:
        batch.add(path)
    return batch.answers()


class Batch:
    """The same request to many pods at once, each sent as soon as it is added.

    The requests are in flight together, on non-blocking sockets in one ``poll`` loop,
    so waiting for all of them takes about the slowest pod's round trip, not the sum
    of them; and whatever the caller does between ``add`` and ``answers`` (reading
    files, say) overlaps with the pods' work. Each request has ``timeout`` seconds
    from the moment it is sent. A connection that has its answer is closed only once
    every answer is in (up to ``KEEP_OPEN`` of them): a pod woken by the close of its
    connection would take a CPU from a pod that has yet to answer. When this process
    runs out of descriptors, the answered connections are closed, and requests that
    still find none wait until one in flight is done.
    """

    KEEP_OPEN = 512
    """Answered connections held open at most; past that they are closed at once."""

    def __init__(self, method: str, params: Any = None, timeout: float = 10.0) -> None:
        self._method = method
        self._params = params
        self._timeout = timeout
        self._poller = select.poll()
        self._in_flight: dict[int, _Pending] = {}
        self._retries: list[_Pending] = []
        self._answers: list[Any] = []
        self._answered: list[_Pending] = []
        self._queued: list[_Pending] = []

    def add(self, sock_path: str) -> int:
        """Send the request to ``sock_path`` now; its index in ``answers``."""
        index = len(self._answers)
        self._answers.append(None)
        exchange = Exchange(sock_path, self._method, self._params)
        self._start(_Pending(index, exchange, time.monotonic() + self._timeout))
        return index

    def answers(self) -> list[Any]:
        """Wait for every answer (or its time to run out); all of them, in the order
        the sockets were added."""
        while self._in_flight or self._retries or self._queued:
            if self._queued and not self._in_flight:
                self._start_queued()
                continue
            now = time.monotonic()
            for pending in [p for p in self._in_flight.values() if p.deadline <= now]:
                self._answers[pending.index] = pending.exchange.timed_out()
                self._finish(pending)
            due = [p for p in self._retries if p.retry_at <= now]
            if due:
                self._retries = [p for p in self._retries if p.retry_at > now]
                for pending in due:
                    self._start(pending)
                continue
            if not self._in_flight and not self._retries:
                continue
            deadlines = [p.deadline for p in self._in_flight.values()]
            wake = min(deadlines + [p.retry_at for p in self._retries])
            for fd, events in self._poller.poll(max(0.0, wake - now) * 1000):
                pending = self._in_flight[fd]
                if self._step(pending, events):
                    self._finish(pending)
        self._close_answered()
        return list(self._answers)

    def _close_answered(self) -> None:
        for pending in self._answered:
            pending.close()
        self._answered.clear()

    def _start(self, pending: _Pending) -> None:
        path = pending.exchange.sock_path
        sock = None
        try:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            sock.setblocking(False)
            with short_socket_path(os.path.dirname(path), os.path.basename(path)) as p:
                sock.connect(p)
        except BlockingIOError as exc:  # a full listen backlog: try again soon
            if sock is not None:
                sock.close()
            pending.retry_at = time.monotonic() + pending.backoff.next()
            if pending.retry_at > pending.deadline:
                self._answers[pending.index] = overloaded(path, exc)
            else:
                self._retries.append(pending)
            return
        except OSError as exc:
            if sock is not None:
                sock.close()
            if exc.errno in (errno.EMFILE, errno.ENFILE) and self._answered:
                # Out of descriptors: give back those of the answered connections.
                self._close_answered()
                self._start(pending)
            elif exc.errno in (errno.EMFILE, errno.ENFILE) and self._in_flight:
                self._queued.append(pending)  # until one in flight is done
            else:
                self._answers[pending.index] = unreachable(path, exc)
            return
        pending.sock = sock
        self._in_flight[sock.fileno()] = pending
        self._poller.register(sock.fileno(), select.POLLOUT)
        # Sent at once: the request is there when the pod wakes up to accept.
        if self._step(pending, select.POLLOUT):
            self._finish(pending)

    def _step(self, pending: _Pending, events: int) -> bool:
        """Move ``pending`` on; True once it has its answer."""
        sock = pending.sock
        assert sock is not None
        try:
            if pending.out and events & select.POLLOUT:
                pending.out = pending.out[sock.send(pending.out) :]
                if not pending.out:
                    self._poller.modify(sock.fileno(), select.POLLIN)
                return False
            if not pending.exchange.feed(sock.recv(65536)):
                return False
            self._answers[pending.index] = pending.exchange.result
        except BlockingIOError:
            return False
        except PoddError as exc:
            self._answers[pending.index] = exc
        except OSError as exc:
            self._answers[pending.index] = pending.exchange.lost(exc)
        return True

    def _finish(self, pending: _Pending) -> None:
        assert pending.sock is not None
        fd = pending.sock.fileno()
        self._poller.unregister(fd)
        del self._in_flight[fd]
        if len(self._answered) < self.KEEP_OPEN and not self._queued:
            self._answered.append(pending)
            return
        pending.close()
        if self._queued:
            self._start_queued()

    def _start_queued(self) -> None:
        """Send the first request that waited for a descriptor; its time starts now."""
        waiting = self._queued.pop(0)
        waiting.deadline = time.monotonic() + self._timeout
        self._start(waiting)


class _Pending:
    """One request of a ``Batch`` on its way: the bytes left to send, the socket, when
    its time is up, when a connect refused for a full backlog is tried again."""

    __slots__ = ("backoff", "deadline", "exchange", "index", "out", "retry_at", "sock")

    def __init__(self, index: int, exchange: Exchange, deadline: float) -> None:
        self.index = index
        self.exchange = exchange
        self.out = exchange.request
        self.deadline = deadline
        self.retry_at = 0.0
        self.backoff = Backoff()
        self.sock: _socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
