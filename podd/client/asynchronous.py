"""The trio client pods use to talk to other pods (their parent, children, ancestors):
the pods' face of ``podd.client.core``, which decides what a request means and how its
failures read. Params may be wire types (attrs instances) or dicts."""

from __future__ import annotations

import os
from typing import Any

import trio

from podd.client.core import Backoff, Exchange, unreachable
from podd.store.paths import short_socket_path

__all__ = ["async_call", "open_pod_stream"]


async def open_pod_stream(sock_path: str) -> trio.SocketStream:
    """Connect to a pod socket (any path length); ``PodUnreachable`` if nobody listens.

    A full listen backlog (EAGAIN) is retried (see ``Backoff``); callers bound the
    whole with their own timeout.
    """
    backoff = Backoff()
    while True:
        try:
            with short_socket_path(os.path.dirname(sock_path), os.path.basename(sock_path)) as p:
                return await trio.open_unix_socket(p)
        except BlockingIOError:
            await trio.sleep(backoff.next())
        except OSError as exc:
            raise unreachable(sock_path, exc) from exc


async def async_call(sock_path: str, method: str, params: Any = None, timeout: float = 10.0) -> Any:
    """One request, one reply. ``PodUnreachable`` on no answer within ``timeout`` seconds,
    ``PodFailed`` on an error reply."""
    exchange = Exchange(sock_path, method, params)
    with trio.move_on_after(timeout):
        stream = await open_pod_stream(sock_path)
        async with stream:
            try:
                await stream.send_all(exchange.request)
                while not exchange.feed(await stream.receive_some(65536)):
                    pass
            except (trio.BrokenResourceError, OSError) as exc:
                raise exchange.lost(exc) from exc
            return exchange.result
    raise exchange.timed_out(timeout)
