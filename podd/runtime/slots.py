"""Concurrency slots (``spawn --max-running N``): leases on turns in a subtree.

A pod that sets ``--max-running`` holds a ``SlotPool``. A turn anywhere below it, and
its own turns, take one slot before they start and give it back when they end.

A turn below asks over the pod's socket (``slot``); the pod answers once a slot is
free, first come first served, and the **connection is the lease**: the asking pod
keeps it open for the turn and closes it at the end. So a lease cannot outlive its
holder: when the holder dies, the kernel closes its end, and the pool takes the slot
back (the connection's close runs ``release``). A restarted holder asks again; a
restarted pool starts empty, as every lease it had ended with its connections.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import trio

__all__ = ["Lease", "SlotPool", "acquire_lease"]

log = logging.getLogger(__name__)


class Lease:
    """One slot, held until ``release`` (idempotent)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class SlotPool:
    """``limit`` slots; waiters are served in the order they asked."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = trio.Semaphore(limit)
        self.holders: dict[int, tuple[str, int]] = {}
        """Lease number -> (pod, turn), for ``status``."""
        self.waiting = 0
        self._next = 0

    @property
    def running(self) -> int:
        return len(self.holders)

    async def acquire(self, pod: str, turn: int) -> Lease:
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self._next += 1
        number = self._next
        self.holders[number] = (pod, turn)

        def release() -> None:
            del self.holders[number]
            self._semaphore.release()

        return Lease(release)

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "running": [{"pod": pod, "turn": turn} for pod, turn in self.holders.values()],
            "waiting": self.waiting,
        }


async def acquire_lease(socket: str, pod: str, turn: int) -> Lease | None:
    """Ask the pod at ``socket`` for a slot and wait until it grants one; the lease
    keeps the connection open. None if that pod is gone (no limit to keep)."""
    from podd.client.asynchronous import open_pod_stream
    from podd.client.core import Exchange
    from podd.errors import PoddError

    exchange = Exchange(socket, "slot", {"pod_name": pod, "turn": turn})
    try:
        stream = await open_pod_stream(socket)
    except PoddError:
        return None
    try:
        await stream.send_all(exchange.request)
        while not exchange.feed(await stream.receive_some(65536)):
            pass
    except (trio.BrokenResourceError, OSError, PoddError) as exc:
        log.warning("no slot from %s (%s): running without it", os.path.dirname(socket), exc)
        stream.socket.close()
        return None
    except BaseException:
        stream.socket.close()
        raise
    return Lease(stream.socket.close)
