"""Delivery of this pod's events to its parent: never blocks the pod, loses nothing.

``post`` stamps an event with the pod's incarnation and the next sequence number and
queues it; it never waits. A background task keeps one connection to the parent,
writes queued events in batches as notifications, and follows each batch with a
``flush_events`` request whose reply names the newest sequence number the parent has
applied: a cumulative ack. Unacked events are sent again after a reconnect, and the
parent drops what it has already applied, so a busy, stopped (SIGSTOP) or briefly
unreachable parent gets every event exactly once. Reconnects back off with tenacity.

The queue is bounded (``capacity``); past it the oldest events are dropped with a
warning. ``retarget`` points the outbox at a new parent after an adoption.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
from collections.abc import Callable
from typing import Any, cast

import attrs
import trio

from podd.client.asynchronous import open_pod_stream
from podd.errors import PodUnreachable
from protocol import (
    FlushEventsParams,
    FrameBuffer,
    FrameTooLarge,
    PodEvent,
    ProtocolError,
    decode_reply,
    encode_request,
)

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 65536
MAX_BATCH = 2048
"""Events written before each flush_events (so acks keep flowing under load)."""


class _Retarget(Exception):
    """The parent changed: drop this connection and open one to the new parent."""


class Outbox:
    def __init__(
        self, pod_name: str, incarnation: int, target: str | None, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self.pod_name = pod_name
        self.incarnation = incarnation
        self.target = target
        self.capacity = capacity
        self._seq = itertools.count(1)
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque()
        self._sent_upto = 0
        self._acked = 0
        self._last_seq = 0
        self._changed = trio.Event()
        self._acked_event = trio.Event()
        self._generation = 0
        self.dropped = 0
        self.delivered = 0
        self.on_post: Callable[[PodEvent], None] | None = None
        """Called with each event posted (stamped, when there is a parent to send it to),
        before it is queued; it must not block or raise."""

    @property
    def pending(self) -> int:
        """Events posted and not yet acknowledged by the parent."""
        return len(self._queue)

    def post(self, event: PodEvent) -> None:
        """Queue ``event`` for the parent; never blocks, never raises."""
        if self.target is None:
            if self.on_post is not None:
                self.on_post(event)
            log.debug("no parent: dropping %s", event)
            return
        seq = next(self._seq)
        stamped = attrs.evolve(cast(Any, event), incarnation=self.incarnation, seq=seq)
        if self.on_post is not None:
            self.on_post(stamped)
        self._queue.append((seq, encode_request("pod_event", stamped)))
        self._last_seq = seq
        if len(self._queue) > self.capacity:
            lost_seq, _ = self._queue.popleft()
            self.dropped += 1
            self._sent_upto = max(self._sent_upto, lost_seq)
            # One warning per power of two, not one per event: a flood must not become
            # a flood of log lines too.
            if self.dropped & (self.dropped - 1) == 0:
                log.warning(
                    "outbox full (%d events): %d dropped so far, the newest was seq %d",
                    self.capacity,
                    self.dropped,
                    lost_seq,
                )
        self._changed.set()

    def retarget(self, target: str | None) -> None:
        """Send from now on (unacked events included) to ``target``."""
        self.target = target
        self._generation += 1
        self._changed.set()

    async def flush(self, timeout: float) -> bool:
        """Wait until every posted event is acknowledged; False if ``timeout`` passed."""
        with trio.move_on_after(timeout):
            while self._queue and self.target is not None:
                self._acked_event = trio.Event()
                await self._acked_event.wait()
            return True
        return False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver forever (until cancelled)."""
        task_status.started()
        while True:
            while not self._queue or self.target is None:
                self._changed = trio.Event()
                await self._changed.wait()
            generation = self._generation
            try:
                await self._deliver(generation)
            except* _Retarget:
                pass
            except* (PodUnreachable, OSError, trio.BrokenResourceError, ProtocolError) as group:
                log.warning("events to %s: %s; reconnecting", self.target, group.exceptions[0])
                await trio.sleep(0.01)
            except* Exception as group:
                # Never let delivery die with the pod's events in it: log and go on.
                log.error("event delivery failed", exc_info=group)
                await trio.sleep(0.1)

    async def _deliver(self, generation: int) -> None:
        target = self.target
        assert target is not None
        stream = await self._connect(target, generation)
        # Whatever was sent on an earlier connection and not acked goes again.
        self._sent_upto = self._acked
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(self._read_acks, stream)
            flush_ids = itertools.count(1)
            while True:
                if generation != self._generation:
                    raise _Retarget
                batch = self._unsent(MAX_BATCH)
                if not batch:
                    # No await between the check above and this: a post() cannot slip
                    # in between and have its wake-up lost.
                    self._changed = trio.Event()
                    await self._changed.wait()
                    continue
                self._sent_upto = max(self._sent_upto, self._queue[0][0] - 1) + len(batch)
                flush = encode_request(
                    "flush_events", FlushEventsParams(self.pod_name), next(flush_ids)
                )
                await stream.send_all(b"".join(batch) + flush)

    def _unsent(self, limit: int) -> list[bytes]:
        """Up to ``limit`` queued frames past ``_sent_upto`` (seqs are contiguous)."""
        if not self._queue:
            return []
        start = max(0, self._sent_upto - self._queue[0][0] + 1)
        return [frame for _, frame in itertools.islice(self._queue, start, start + limit)]

    async def _connect(self, target: str, generation: int) -> trio.SocketStream:
        import tenacity  # only pods that report upward need it: keep it off start-up

        def still_current(_: Any) -> bool:
            return generation != self._generation

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type((PodUnreachable, OSError)),
            wait=tenacity.wait_exponential_jitter(multiplier=0.02, max=1.0, jitter=0.05),
            stop=still_current,
            sleep=trio.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if generation != self._generation:
                    raise _Retarget
                return await open_pod_stream(target)
        raise _Retarget

    async def _read_acks(self, stream: trio.SocketStream) -> None:
        frames = FrameBuffer()
        while True:
            data = await stream.receive_some(65536)
            if not data:
                raise PodUnreachable(f"{self.target} closed the connection")
            for item in frames.feed(data):
                if isinstance(item, FrameTooLarge):
                    continue
                reply = decode_reply(item)
                if reply.error is not None:
                    if reply.id is not None and reply.error.code == "forbidden":
                        # The parent does not know us (any more): nothing can be delivered.
                        log.warning("parent refuses our events (%s); dropping them", reply.error)
                        self._ack(math.inf)
                    elif reply.id is None:
                        log.warning("parent rejected an event: %s", reply.error)
                    continue
                result = reply.result if isinstance(reply.result, dict) else {}
                if result.get("incarnation") == self.incarnation:
                    self._ack(result.get("seq", 0))

    def _ack(self, seq: float) -> None:
        while self._queue and self._queue[0][0] <= seq:
            self._queue.popleft()
            self.delivered += 1
        self._acked = int(min(seq, self._last_seq))
        self._acked_event.set()
