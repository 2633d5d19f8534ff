"""A pod's event feed: the events it applied or emitted lately, and who follows them.

Every event a pod applies from below (``pod_event``), every event it emits itself (what
its outbox sends upward: ``turn_ended``, ``errored``, ``shut_down``,
``scope_sub_delegated``, also on a root pod, which has no one to send them to) and
every event it publishes for itself (``turn_started``) is recorded here as
``{"seq", "at", "pod", "event"}``: a sequence number of this feed (1, 2, ... for the
pod's process), the wall-clock time it was recorded, the pod that recorded it (this
one) and the event as its wire dict. The newest ``RECENT`` records are kept.

The ``events`` method answers with them and, with ``follow``, keeps the connection as a
subscription: every record from then on is sent as an ``event`` frame without id (see
``docs/protocol.md``, Event feed).

The feed never slows the pod. Recording is a few attribute writes, plus, only while
someone follows, one encoding that every subscriber shares. Each subscriber has a
bounded queue (``QUEUE`` frames not yet handed to its connection) and a task that
hands them over, one batch at a time, once the previous batch has been written. A
subscriber that lets its queue fill is dropped at once: its queue is discarded, a last
``events_end`` frame tells it so, and its connection is closed when that frame is
written, or after ``GRACE`` seconds. Nothing here waits for a subscriber in the loop.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import trio

from podd.core.effects import Effect, Journal, Notify, PersistRegistry
from podd.runtime.server import Connection
from protocol.codec import Request, event_to_dict
from protocol.framing import MAX_FRAME
from protocol.messages import EventsParams, PodEvent

__all__ = ["GRACE", "QUEUE", "RECENT", "EventFeed", "Subscriber", "applied"]

log = logging.getLogger(__name__)

RECENT = 256
"""Records a feed keeps for the ``events`` reply."""

QUEUE = 4096
"""Frames a subscriber may have waiting for its connection; one more drops it."""

GRACE = 10.0
"""Seconds a dropped subscriber has to read its last frame before it is disconnected."""

REPLY_BUDGET = MAX_FRAME // 2
"""Bytes of records an ``events`` reply holds at most (the newest first), so that the
reply stays one frame whatever the events carry."""

Start = Callable[..., None]
"""Starts a background task: ``start(async_fn, *args)`` (``PodCore.background``)."""


def applied(effects: Iterable[Effect]) -> bool:
    """Whether the effects of a ``pod_event`` show it was accepted and applied.

    An applied event becomes a notification (``Notify``, or the ``Journal`` record of
    one once ``podd.core.machine`` has buffered it) or changes the registry; a refused event
    raises before any effect, and a duplicate, an event of a removed pod or a repeated
    sub-delegation does neither.
    """
    for effect in effects:  # on every event from below: a plain loop, by exact type
        kind = type(effect)
        if kind is Notify or kind is PersistRegistry:
            return True
        if kind is Journal and isinstance(effect, Journal) and effect.record.get("op") == "notify":
            return True
    return False


class _Record:
    __slots__ = ("_frame", "_wire", "at", "event", "pod", "seq")

    def __init__(self, seq: int, at: float, pod: str, event: PodEvent | dict[str, Any]) -> None:
        self.seq = seq
        self.at = at
        self.pod = pod
        self.event = event
        self._wire: dict[str, Any] | None = None
        self._frame: bytes | None = None

    def wire(self) -> dict[str, Any]:
        if self._wire is None:
            event = self.event if isinstance(self.event, dict) else event_to_dict(self.event)
            self._wire = {"seq": self.seq, "at": self.at, "pod": self.pod, "event": event}
        return self._wire

    def encoded(self) -> bytes:
        """The record as JSON (no newline), at most ``REPLY_BUDGET`` bytes: an event too
        big for that is replaced by its kind and names, marked ``truncated``."""
        if self._frame is None:
            body = orjson.dumps(self.wire())
            if len(body) > REPLY_BUDGET:
                event = self.wire()["event"]
                brief = {k: event[k] for k in ("kind", "pod_name", "parent_pod") if k in event}
                self._wire = {**self.wire(), "event": {**brief, "truncated": True}}
                body = orjson.dumps(self._wire)
            self._frame = body
        return self._frame

    def frame(self) -> bytes:
        return b'{"method":"event","params":' + self.encoded() + b"}\n"


class Subscriber:
    """One connection following the feed."""

    __slots__ = ("conn", "ending", "frames", "last_seq", "missed", "waiting", "wake")

    def __init__(self, conn: Connection, last_seq: int) -> None:
        self.conn = conn
        self.frames: list[bytes] = []
        self.last_seq = last_seq
        """The seq of the newest frame queued for it."""
        self.ending: str | None = None
        """Why the subscription ends: ``lagging`` or ``shut_down``."""
        self.missed = 0
        self.wake = trio.Event()
        self.waiting: trio.CancelScope | None = None

    @property
    def handed_over(self) -> int:
        """The seq of the newest frame handed to the connection."""
        return self.last_seq - len(self.frames)


class EventFeed:
    """The feed of pod ``pod_name``; ``start`` runs each subscriber's sender task."""

    def __init__(
        self,
        pod_name: str,
        start: Start,
        *,
        recent: int = RECENT,
        queue: int = QUEUE,
        grace: float = GRACE,
    ) -> None:
        self.pod_name = pod_name
        self._start = start
        self._recent: collections.deque[_Record] = collections.deque(maxlen=recent)
        self.queue = queue
        self.grace = grace
        self._seq = 0
        self._subscribers: set[Subscriber] = set()
        self.dropped = 0
        """Subscribers dropped so far for falling behind."""

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def last_seq(self) -> int:
        return self._seq

    def record(self, pod: str, event: PodEvent | dict[str, Any]) -> None:
        """Record ``event`` as applied or emitted by ``pod`` now; never blocks or raises."""
        self._seq += 1
        item = _Record(
            self._seq, time.time(), pod, dict(event) if isinstance(event, dict) else event
        )
        self._recent.append(item)
        if not self._subscribers:
            return
        try:
            frame = item.frame()
        except Exception:
            log.exception("cannot encode event %r for the feed", event)
            return
        ends = _is_own_shut_down(self.pod_name, pod, item)
        for sub in list(self._subscribers):
            if sub.conn.closed:
                self._subscribers.discard(sub)
                sub.wake.set()
                continue
            sub.frames.append(frame)
            sub.last_seq = item.seq
            if len(sub.frames) > self.queue:
                self._drop(sub)
            elif ends:
                # This pod is ending: what it recorded so far goes out, then a last frame.
                sub.ending = "shut_down"
                self._subscribers.discard(sub)
            sub.wake.set()

    def recent(self) -> list[dict[str, Any]]:
        """The records kept, oldest first, as far as they fit in one reply."""
        picked: list[dict[str, Any]] = []
        budget = REPLY_BUDGET
        for item in reversed(self._recent):
            try:
                budget -= len(item.encoded()) + 1
            except Exception:
                log.exception("cannot encode event %r for the feed", item.event)
                continue
            if budget < 0:
                break
            picked.append(item.wire())
        picked.reverse()
        return picked

    def on_events(self, conn: Connection, request: Request) -> Any:
        """The ``events`` handler: the recent records; with ``follow``, subscribe."""
        params: EventsParams = request.params
        result = {
            "pod": self.pod_name,
            "last_seq": self._seq,
            "events": self.recent(),
            "following": params.follow,
            "subscribers": len(self._subscribers),
        }
        if params.follow:
            self.subscribe(conn)
        return result

    def subscribe(self, conn: Connection) -> Subscriber:
        """Send every record from now on to ``conn``, until it falls behind or closes."""
        sub = Subscriber(conn, self._seq)
        self._subscribers.add(sub)
        self._start(self._serve, sub)
        return sub

    def _drop(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        self.dropped += 1
        sub.missed = len(sub.frames)
        sub.frames.clear()
        sub.last_seq -= sub.missed
        sub.ending = "lagging"
        if sub.waiting is not None:
            sub.waiting.cancel()
        log.warning(
            "dropped an event subscriber (pid %s): %d events waited for it",
            sub.conn.peer_pid,
            sub.missed,
        )

    async def _serve(self, sub: Subscriber) -> None:
        """Hand ``sub``'s frames to its connection, a batch once the last one is written;
        at the end, its last frame, then close the connection. A failure here ends this
        subscription only: it is logged, not reported upward as the pod's."""
        try:
            await self._send_frames(sub)
        except Exception:
            log.exception("event subscriber (pid %s) failed", sub.conn.peer_pid)
            self._subscribers.discard(sub)
            sub.conn.close()

    async def _send_frames(self, sub: Subscriber) -> None:
        conn = sub.conn
        try:
            while not conn.closed:
                if sub.frames:
                    batch, sub.frames = sub.frames, []
                    conn.reply(b"".join(batch), answers=False)
                    with trio.CancelScope() as sub.waiting:
                        await conn.wait_backlog_below(1)
                    sub.waiting = None
                elif sub.ending is not None:
                    break
                else:
                    sub.wake = trio.Event()
                    await sub.wake.wait()
        finally:
            self._subscribers.discard(sub)
        if sub.ending is None or conn.closed:
            return
        conn.reply(self._end_frame(sub), answers=False)
        conn.close()
        with trio.move_on_after(self.grace):
            await conn.wait_flushed()
        await trio.aclose_forcefully(conn.stream)

    def _end_frame(self, sub: Subscriber) -> bytes:
        if sub.ending == "lagging":
            message = (
                f"this subscriber fell behind ({sub.missed} events waited for it, "
                f"at most {self.queue}): it is disconnected; subscribe again to go on"
            )
        else:
            message = f"pod {self.pod_name!r} shut down"
        params = {
            "pod": self.pod_name,
            "reason": sub.ending,
            "message": message,
            "last_seq": sub.handed_over,
            "missed": sub.missed,
        }
        return orjson.dumps({"method": "events_end", "params": params}) + b"\n"


def _is_own_shut_down(self_name: str, pod: str, item: _Record) -> bool:
    if pod != self_name:
        return False
    event = item.wire()["event"]
    return bool(event.get("kind") == "shut_down" and event.get("pod_name") == self_name)
