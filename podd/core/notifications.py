"""Notifications: one rendered line per event, in a bounded buffer the agent drains.

The buffer keeps the newest ``capacity`` entries. When older ones are pushed out, it
says so in itself: draining or peeking yields a ``notifications_dropped`` entry first,
naming how many were lost.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs

from protocol import (
    Adopted,
    Errored,
    NotificationsDropped,
    PodEvent,
    RestartGaveUp,
    ScopeSubDelegated,
    ShutDown,
    TurnEnded,
    UnknownEvent,
    event_from_dict,
    event_to_dict,
)
from protocol.messages import TaskSkipped
from protocol.values import Value

__all__ = ["DEFAULT_CAPACITY", "Notification", "NotificationBuffer", "render"]

DEFAULT_CAPACITY = 128


SUMMARY_SHOWN = 300
"""The most characters of a turn's summary a notification shows."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(event: PodEvent) -> str:
    """The one-line text of a notification for ``event``."""
    match event:
        case TurnEnded(pod_name=name, turn=turn, summary=summary):
            text = f"pod {name!r} finished turn {turn}" if turn else f"pod {name!r} finished a turn"
            if summary:
                text += ": " + _cut(_one_line(summary), SUMMARY_SHOWN)
            if event.denied:
                text += f" ({event.denied} tool calls denied)"
            if event.cost_usd is not None:
                text += f" (cost ${event.cost_usd:.4f})"
            return text
        case TaskSkipped(pod_name=name, reason=reason):
            return _one_line(f"pod {name!r} skipped its task: {reason}")
        case Errored(pod_name=name, message=message):
            return _one_line(f"pod {name!r} errored: {message}")
        case ShutDown(pod_name=name, reason=reason):
            return _one_line(f"pod {name!r} shut down: {reason}")
        case Adopted(pod_name=name, previous_parent=previous):
            return f"pod {name!r} adopted: its parent {previous!r} died and it now reports here"
        case RestartGaveUp(pod_name=name, message=message):
            return _one_line(f"pod {name!r} not restarted: {message}")
        case NotificationsDropped(count=count):
            return f"{count} older notifications were dropped (the buffer keeps the newest)"
        case ScopeSubDelegated(parent_pod=parent, sub_pod=sub):
            return f"pod {parent!r} delegated scope to {sub!r}"
        case UnknownEvent(kind=kind, raw=raw):
            return _one_line(f"event {kind!r} from {raw.get('pod_name', '?')!r}")
    raise AssertionError(f"unhandled event {event!r}")


@attrs.frozen(repr=False, eq=False)
class Notification(Value):
    text: str
    event: PodEvent

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "event": event_to_dict(self.event)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Notification:
        return cls(text=str(raw["text"]), event=event_from_dict(raw["event"]))

    @classmethod
    def of(cls, event: PodEvent) -> Notification:
        return cls(render(event), event)  # positional: cheaper, and it runs for every event


class NotificationBuffer:
    """Bounded, oldest first; the pod's dispatch loop is its only writer."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: collections.deque[Notification] = collections.deque(maxlen=capacity)
        self.dropped = 0

    def __len__(self) -> int:
        """Pending entries, the dropped-count entry included."""
        return len(self._items) + (1 if self.dropped else 0)

    def push(self, notification: Notification) -> None:
        if len(self._items) == self.capacity:
            self.dropped += 1
        self._items.append(notification)

    def peek(self) -> list[Notification]:
        head = [Notification.of(NotificationsDropped(self.dropped))] if self.dropped else []
        return head + list(self._items)

    def peek_raw(self) -> list[Notification]:
        """The buffered entries without the dropped-count entry."""
        return list(self._items)

    def drain(self) -> list[Notification]:
        items = self.peek()
        self._items.clear()
        self.dropped = 0
        return items

    def restore(self, items: list[Notification], dropped: int) -> None:
        """Refill from a snapshot (restart)."""
        self._items.clear()
        self._items.extend(items)
        self.dropped = dropped
