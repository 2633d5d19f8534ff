"""The pod's Unix-socket server: connections in, decoded requests out, replies back.

Each connection gets a reader (framing + decoding) and a writer fed by a bounded
queue. The pod never waits on a client: a reply that does not fit in a connection's
queue (a client that does not read) closes that connection. Nothing a client sends
can raise out of here: every failure ends at most its own connection.

A connection is served in turns: its reader hands the pod at most ``BATCH`` requests
at a time and waits until they have been handled before it hands over more, so a
client that floods the pod waits behind every other busy connection, not the reverse.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket as stdlib_socket
import struct
from collections.abc import Awaitable, Callable

import trio

from podd.store.paths import short_socket_path
from protocol import (
    FrameBuffer,
    FrameTooLarge,
    ProtocolError,
    Request,
    decode_request,
    encode_error,
)

__all__ = ["Connection", "bind_listener", "serve"]

log = logging.getLogger(__name__)

BACKLOG = 1024
"""Replies due on a connection past which it is not read any further (backpressure):
a client that does not read its replies stalls itself, not the pod. Checked before
each batch, so a connection's unwritten replies stay within BACKLOG + BATCH, apart
from replies that background tasks send later."""

BATCH = 64
"""Frames of one connection taken in one turn, at most: their requests go to the pod
as one job, and the connection's next turn waits until that job has run. So the loop's
queue holds at most one job per connection, and a request, once handed over, waits
behind at most one batch of each other connection (and the pod's own jobs)."""

REPLY_QUEUE = 65536
"""Replies a connection may have queued at all, far above BACKLOG + BATCH: only replies
that background tasks send later can take a connection past those. Beyond this bound
(which a well-behaved client cannot reach) the connection is closed."""

READ_SIZE = 65536

Dispatch = Callable[["Connection", list[Request]], Awaitable[None]]
"""Runs a batch of one connection's requests in order; returns once they are handled."""


class Connection:
    """One client connection. ``reply`` never blocks."""

    def __init__(self, stream: trio.SocketStream, peer_pid: int, peer_uid: int) -> None:
        self.stream = stream
        self.peer_pid = peer_pid
        self.peer_uid = peer_uid
        self._send, self._receive = trio.open_memory_channel[bytes](REPLY_QUEUE)
        self.closed = False
        self._outstanding = 0
        self._answered = trio.Event()
        self._queued = 0
        self._written = 0
        self._flushed = trio.Event()
        self._broken = False
        self.eof = False
        """The client has stopped sending (it may still read)."""
        self.on_close: list[Callable[[], None]] = []
        """Run once the connection is over (a lease held by it ends: ``podd.runtime.slots``)."""

    def expect_reply(self) -> None:
        """Count a request that will be answered (so EOF waits for its reply)."""
        self._outstanding += 1

    async def wait_answered(self) -> None:
        """Wait until every counted request has been answered."""
        while self._outstanding > 0 and not self.closed:
            self._answered = trio.Event()
            await self._answered.wait()

    def reply(self, frame: bytes, *, answers: bool = True) -> None:
        """Queue ``frame`` for the client; a full queue closes the connection.

        ``answers`` says that the frame answers a counted request.
        """
        if answers and self._outstanding > 0:
            self._outstanding -= 1
            self._answered.set()
        if self.closed:
            return
        try:
            self._send.send_nowait(frame)
            self._queued += 1
        except trio.WouldBlock:
            log.warning("closing connection from pid %s: it does not read replies", self.peer_pid)
            self.close()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.closed = True

    def close(self) -> None:
        self.closed = True
        self._send.close()

    async def wait_backlog_below(self, limit: int) -> None:
        """Wait until fewer than ``limit`` queued replies are unwritten."""
        while self._queued - self._written >= limit and not self._broken and not self.closed:
            self._flushed = trio.Event()
            await self._flushed.wait()

    async def wait_flushed(self) -> None:
        """Wait until every queued reply has been written (or the connection broke)."""
        while self._written < self._queued and not self._broken:
            self._flushed = trio.Event()
            await self._flushed.wait()

    async def write_replies(self) -> None:
        async with self._receive:
            async for frame in self._receive:
                batch = [frame]
                # EndOfChannel: the connection was closed with this batch still to send.
                with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
                    while len(batch) < 256:
                        batch.append(self._receive.receive_nowait())
                try:
                    await self.stream.send_all(b"".join(batch))
                except BaseException:
                    self._broken = True
                    self._flushed.set()
                    raise
                self._written += len(batch)
                self._flushed.set()


def peer_credentials(sock: trio.socket.SocketType) -> tuple[int, int]:
    """``(pid, uid)`` of the process that connected, as of ``connect()``."""
    raw = sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_PEERCRED, 12)
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


async def bind_listener(directory: str, backlog: int = 1024) -> trio.SocketListener:
    """Listen on ``directory/sock`` (mode 0600), whatever the length of the path.

    A socket file left by a dead server is removed; one a live server answers on is
    left alone and raises ``FileExistsError``.
    """
    # Bound with the standard library's socket, not trio's: trio binds a Unix socket in
    # a worker thread (a path lookup may block), which costs a pod's start-up the
    # thread's creation for a bind in its own directory, a local operation like the
    # mkdir and chmod around it.
    sock = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        with short_socket_path(directory) as path:
            if os.path.lexists(path):  # noqa: ASYNC240 (a local lstat, no blocking I/O)
                if await _is_live(path):
                    raise FileExistsError(errno.EEXIST, "a live pod listens here", path)
                os.unlink(path)
            old_umask = os.umask(0o177)
            try:
                sock.bind(path)
            finally:
                os.umask(old_umask)
            os.chmod(path, 0o600)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


async def _is_live(path: str) -> bool:
    probe = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    with probe:
        try:
            await probe.connect(path)
        except OSError:
            return False
    return True


async def serve(
    listener: trio.SocketListener,
    dispatch: Dispatch,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections forever, handing each connection's decoded requests to
    ``dispatch`` in order, in batches of at most ``BATCH``, one batch at a time."""
    my_uid = os.getuid()

    async def handle(stream: trio.SocketStream) -> None:
        try:
            pid, uid = peer_credentials(stream.socket)
            if uid != my_uid:
                log.warning("refused a connection from uid %s (pid %s)", uid, pid)
                return
            await _serve_connection(Connection(stream, pid, uid), dispatch)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            with contextlib.suppress(Exception):
                await trio.aclose_forcefully(stream)

    await trio.serve_listeners(handle, [listener], task_status=task_status)


async def _serve_connection(conn: Connection, dispatch: Dispatch) -> None:
    frames = FrameBuffer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_then_cancel, conn, nursery.cancel_scope)
        try:
            while not conn.closed:
                await conn.wait_backlog_below(BACKLOG)
                data = await conn.stream.receive_some(READ_SIZE)
                if not data:
                    break
                items = frames.feed(data)
                for start in range(0, len(items), BATCH):
                    await conn.wait_backlog_below(BACKLOG)
                    if conn.closed:
                        break
                    await _take_turn(conn, items[start : start + BATCH], dispatch)
            # The client stopped sending (EOF or half-close): answer what it asked.
            conn.eof = True
            await conn.wait_answered()
        finally:
            # Let queued replies go out, then stop the writer.
            conn.close()
            callbacks, conn.on_close = conn.on_close, []
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("a connection's close callback failed")


async def _take_turn(
    conn: Connection, items: list[bytes | FrameTooLarge], dispatch: Dispatch
) -> None:
    """Decode ``items`` and have their requests handled in order; return once they are.

    A line that does not decode is answered here, without the loop, but only once the
    requests before it have been handled, so that replies keep the order of the lines.
    """
    batch: list[Request] = []
    for item in items:
        decoded = _decode(item)
        if isinstance(decoded, Request):
            if decoded.id is not None:
                conn.expect_reply()
            batch.append(decoded)
            continue
        if batch:
            await dispatch(conn, batch)
            batch = []
        conn.reply(encode_error(decoded.request_id, decoded), answers=False)
        if isinstance(decoded, FrameTooLarge):
            conn.close()
            return
    if batch:
        await dispatch(conn, batch)


def _decode(item: bytes | FrameTooLarge) -> Request | ProtocolError:
    if isinstance(item, FrameTooLarge):
        return item
    try:
        return decode_request(item)
    except ProtocolError as exc:
        return exc


async def _write_then_cancel(conn: Connection, scope: trio.CancelScope) -> None:
    try:
        await conn.write_replies()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        scope.cancel()
