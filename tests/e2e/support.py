"""Helpers shared by the end-to-end tests: a raw wire client and bounded polling.

The raw client speaks NDJSON over a plain trio Unix stream and uses none of podd's own
client code, so that what the tests see is what any other client would see.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")

POLL = 0.02


async def wait_for(check: Callable[[], Awaitable[T]], interval: float = POLL) -> T:
    """Return the first truthy value of ``check()``, polling every ``interval`` seconds.

    For external process state that gives no event to await; the caller bounds it with
    ``trio.fail_after``.
    """
    while True:
        value = await check()
        if value:
            return value
        await trio.sleep(interval)


class RawConnection:
    """One client connection to a pod socket: lines out, JSON frames in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""

    @classmethod
    async def open(cls, sock_path: str) -> RawConnection:
        # Through an O_PATH descriptor of the directory, so any path length works.
        fd = os.open(os.path.dirname(sock_path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            stream = await trio.open_unix_socket(
                f"/proc/self/fd/{fd}/{os.path.basename(sock_path)}"
            )
        finally:
            os.close(fd)
        return cls(stream)

    async def __aenter__(self) -> RawConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def send_line(self, line: bytes) -> None:
        await self.stream.send_all(line + b"\n")

    async def send(self, frame: Any) -> None:
        await self.send_line(json.dumps(frame).encode())

    async def receive(self) -> Any:
        """The next frame, decoded; ``EOFError`` if the pod closed the connection."""
        while b"\n" not in self._buffer:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("the pod closed the connection")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    async def request(self, method: str, params: Any = None, request_id: Any = 1) -> Any:
        """Send one request and return its reply frame (``result`` or ``error``)."""
        frame: dict[str, Any] = {"method": method, "id": request_id}
        if params is not None:
            frame["params"] = params
        await self.send(frame)
        return await self.receive()


async def raw_call(sock_path: str, method: str, params: Any = None) -> Any:
    """One request on a fresh connection; returns the reply frame."""
    async with await RawConnection.open(sock_path) as conn:
        return await conn.request(method, params)


async def result_of(sock_path: str, method: str, params: Any = None) -> Any:
    """The ``result`` of one request; fails the test on an error reply."""
    reply = await raw_call(sock_path, method, params)
    assert "error" not in reply, reply
    return reply["result"]
