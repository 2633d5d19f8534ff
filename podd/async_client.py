"""The trio client pods use to talk to other pods (their parent, children, ancestors)."""

from __future__ import annotations

import itertools
import os
from typing import Any

import trio

from podd.errors import PodFailed, PodUnreachable
from podd.paths import short_socket_path
from protocol import FrameBuffer, FrameTooLarge, ProtocolError, decode_reply, encode_request

__all__ = ["async_call", "open_pod_stream"]

_ids = itertools.count(1)


async def open_pod_stream(sock_path: str) -> trio.SocketStream:
    """Connect to a pod socket (any path length); ``PodUnreachable`` if nobody listens.

    A full listen backlog (EAGAIN) is retried with a short pause; callers bound the
    whole with their own timeout.
    """
    pause = 0.001
    while True:
        try:
            with short_socket_path(os.path.dirname(sock_path), os.path.basename(sock_path)) as p:
                return await trio.open_unix_socket(p)
        except BlockingIOError:
            await trio.sleep(pause)
            pause = min(pause * 2, 0.05)
        except OSError as exc:
            raise PodUnreachable(f"no pod answers at {sock_path}: {exc.strerror or exc}") from exc


async def async_call(sock_path: str, method: str, params: Any = None, timeout: float = 10.0) -> Any:
    """One request, one reply. ``PodUnreachable`` on no answer within ``timeout`` seconds,
    ``PodFailed`` on an error reply."""
    request_id = next(_ids)
    frames = FrameBuffer()
    with trio.move_on_after(timeout) as scope:
        stream = await open_pod_stream(sock_path)
        async with stream:
            try:
                await stream.send_all(encode_request(method, params, request_id))
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        raise PodUnreachable(f"the pod at {sock_path} closed the connection")
                    for item in frames.feed(data):
                        if isinstance(item, FrameTooLarge):
                            raise PodFailed(item)
                        reply = decode_reply(item)
                        if reply.id != request_id:
                            continue
                        if reply.error is not None:
                            raise PodFailed(reply.error)
                        return reply.result
            except ProtocolError as exc:
                raise PodFailed(exc) from exc
            except (trio.BrokenResourceError, OSError) as exc:
                raise PodUnreachable(f"lost the pod at {sock_path}: {exc}") from exc
    assert scope.cancelled_caught
    raise PodUnreachable(f"the pod at {sock_path} did not answer {method} within {timeout} s")
