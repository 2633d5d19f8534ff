"""Concurrency slots (``spawn --max-running N``): leases on turns in a subtree.

A pod that sets ``--max-running`` holds a ``SlotPool``. A turn anywhere below it, and
its own turns, take one slot before they start and give it back when they end.

A turn below asks over the pod's socket (``slot``); the pod answers once a slot is
free, first come first served, and the **connection is the lease**: the asking pod
keeps it open for the turn and closes it at the end. So a lease cannot outlive its
holder: when the holder dies, the kernel closes its end, and the pool takes the slot
back (the connection's close runs ``release``). A restarted holder asks again. When
the pool's pod dies, every lease it granted ends with its connections; each holder
whose turn still runs asks again, as ``held``, until that pod (restarted) answers: a
held slot is counted at once, over the limit if need be, so that no new turn starts
below the restarted pool while the turns it lost count of still run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import trio

from podd.client.asynchronous import open_pod_stream
from podd.client.core import Exchange
from podd.errors import PoddError, PodUnreachable

__all__ = ["Lease", "RemoteLease", "SlotPool", "acquire_lease"]

log = logging.getLogger(__name__)


class Lease:
    """One slot, held until ``release`` (idempotent)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    @property
    def released(self) -> bool:
        return self._release is None

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
        self._over = 0
        """Held slots counted past the limit: the first releases pay them back."""

    @property
    def running(self) -> int:
        return len(self.holders)

    async def acquire(self, pod: str, turn: int, *, held: bool = False) -> Lease:
        """A slot, once one is free; with ``held`` (a turn that runs already), at once."""
        if held:
            try:
                self._semaphore.acquire_nowait()
            except trio.WouldBlock:
                self._over += 1
            await trio.lowlevel.checkpoint()
        else:
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
            if self._over:
                self._over -= 1
            else:
                self._semaphore.release()

        return Lease(release)

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "running": [{"pod": pod, "turn": turn} for pod, turn in self.holders.values()],
            "waiting": self.waiting,
        }


class RemoteLease(Lease):
    """A slot of another pod's pool, held by an open connection to that pod.

    ``keep``, run as a task while the turn runs, watches the connection. If the pool's
    pod ends it (it died; it may be restarted), the slot is asked for again, as held,
    until that pod answers or the turn ends. ``release`` closes the connection and ends
    ``keep``.
    """

    def __init__(self, socket: str, pod: str, turn: int, stream: trio.SocketStream) -> None:
        super().__init__(self._close)
        self.socket = socket
        self._params = {"pod_name": pod, "turn": turn, "held": True}
        self._stream: trio.SocketStream | None = stream
        self._watch = trio.CancelScope()

    def _close(self) -> None:
        self._watch.cancel()
        if self._stream is not None:
            self._stream.socket.close()
            self._stream = None

    async def keep(self) -> None:
        try:
            await self._keep()
        finally:
            if self.released:
                self._close()  # a connection opened as the release came goes too

    async def _keep(self) -> None:
        import tenacity  # only turns below a pool need it: keep it off start-up

        with self._watch:
            while self._stream is not None:
                await _until_closed(self._stream)
                if self._stream is None:
                    return  # released meanwhile
                log.warning("the slot of %s ended with its connection: asking again", self.socket)
                self._stream.socket.close()
                self._stream = None
                retrying = tenacity.AsyncRetrying(
                    retry=tenacity.retry_if_exception_type((PoddError, OSError)),
                    wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05),
                    sleep=trio.sleep,
                )
                async for attempt in retrying:
                    with attempt:
                        self._stream = await _granted(self.socket, self._params)
                log.info("the slot of %s is held again", self.socket)


async def _until_closed(stream: trio.SocketStream) -> None:
    """Return once the other side closes ``stream`` (a pool sends nothing after its grant)."""
    try:
        while await stream.receive_some(4096):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # broken by the other side, or closed by a release on this one


async def _granted(socket: str, params: dict[str, Any]) -> trio.SocketStream:
    """Ask the pod at ``socket`` for a slot; the open stream once it is granted. Raises
    ``PoddError`` (or ``OSError``) if that pod cannot be reached or answers an error."""
    stream = await open_pod_stream(socket)
    try:
        exchange = Exchange(socket, "slot", params)
        await stream.send_all(exchange.request)
        while not exchange.feed(await stream.receive_some(65536)):
            pass
    except trio.BrokenResourceError as exc:
        stream.socket.close()
        raise PodUnreachable(f"the pod at {socket} closed the connection") from exc
    except BaseException:
        stream.socket.close()
        raise
    return stream


async def acquire_lease(socket: str, pod: str, turn: int) -> RemoteLease | None:
    """Ask the pod at ``socket`` for a slot and wait until it grants one; the lease
    keeps the connection open (run its ``keep`` beside the turn). None if that pod is
    gone (no limit to keep)."""
    try:
        stream = await _granted(socket, {"pod_name": pod, "turn": turn})
    except (OSError, PoddError) as exc:
        log.warning("no slot from %s (%s): running without it", os.path.dirname(socket), exc)
        return None
    return RemoteLease(socket, pod, turn, stream)
