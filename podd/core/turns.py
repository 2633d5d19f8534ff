"""The rules of a pod's turns, without I/O: the queue, loops, and what a turn yields.

A **work item** is one turn as the outside sees it: ``send`` (or the task) asks for
it, it may wait (for a concurrency slot, for siblings to finish), run as a loop of
iterations and pass a gate, and it ends exactly once, with one record and one event
upward. This module decides; ``podd.runtime.turns`` runs the processes.
"""

from __future__ import annotations

import heapq
import re
from typing import Any

import attrs

from podd.drivers.base import USAGE_KEYS

__all__ = [
    "BLOCKED",
    "DEFAULT_MAX_ITERATIONS",
    "QUEUE_LIMIT",
    "SUMMARY_LIMIT",
    "Queue",
    "Work",
    "empty_usage",
    "loop_verdict",
    "new_record",
    "summarize",
]

QUEUE_LIMIT = 1000
DEFAULT_MAX_ITERATIONS = 10
BLOCKED = "BLOCKED"
"""A result holding this word ends a loop as errored, cause ``blocked``."""
SUMMARY_LIMIT = 500


@attrs.define(eq=False)
class Work:
    """One turn to the outside. ``waiters`` are the replies due when it ends (``send
    --wait``), opaque here."""

    text: str
    priority: int = 0
    until: str | None = None
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    budget: float | None = None
    new_session: bool = False
    task: bool = False
    waiters: list[Any] = attrs.field(factory=list)
    seq: int = 0

    def to_journal(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "priority": self.priority,
            "until": self.until,
            "max_iterations": self.max_iterations,
            "budget": self.budget,
            "new_session": self.new_session,
            "task": self.task,
            "seq": self.seq,
        }

    @classmethod
    def from_journal(cls, data: dict[str, Any]) -> Work:
        return cls(
            text=str(data.get("text", "")),
            priority=int(data.get("priority", 0)),
            until=data.get("until"),
            max_iterations=int(data.get("max_iterations") or DEFAULT_MAX_ITERATIONS),
            budget=data.get("budget"),
            new_session=bool(data.get("new_session", False)),
            task=bool(data.get("task", False)),
        )


class QueueFull(Exception):
    """The queue holds ``QUEUE_LIMIT`` items already."""


class Queue:
    """Queued work: the highest priority first, first in first out within one."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Work]] = []
        self._seq = 0

    def push(self, work: Work) -> int:
        """Queue ``work``; its position (1 = next). Raises ``QueueFull``."""
        if len(self._heap) >= QUEUE_LIMIT:
            raise QueueFull(f"the queue holds {QUEUE_LIMIT} turns already")
        self._seq += 1
        work.seq = self._seq
        heapq.heappush(self._heap, (-work.priority, work.seq, work))
        return 1 + sum(1 for p, s, _ in self._heap if (p, s) < (-work.priority, work.seq))

    def pop(self) -> Work | None:
        return heapq.heappop(self._heap)[2] if self._heap else None

    def items(self) -> list[Work]:
        """In the order they will run."""
        return [w for _, _, w in sorted(self._heap, key=lambda item: item[:2])]

    def clear(self) -> list[Work]:
        items = self.items()
        self._heap.clear()
        return items

    def __len__(self) -> int:
        return len(self._heap)


def loop_verdict(result: str | None, iteration: int, work: Work) -> str | None:
    """After a loop's iteration that finished: None to run another, ``finished`` when
    the result holds the loop's token, else the cause it errors with (``blocked``,
    ``max_iterations``)."""
    text = result or ""
    if work.until is not None and work.until in text:
        return "finished"
    if BLOCKED in text:
        return "blocked"
    if iteration >= work.max_iterations:
        return "max_iterations"
    return None


_SPACE = re.compile(r"\s+")


def summarize(result: str | None, limit: int = SUMMARY_LIMIT) -> str | None:
    """A result's first ``limit`` characters, whitespace collapsed (None stays None)."""
    if result is None:
        return None
    return _SPACE.sub(" ", result[: limit * 2]).strip()[:limit]


def empty_usage() -> dict[str, int | None]:
    return dict.fromkeys(USAGE_KEYS)


def add_usage(total: dict[str, int | None], usage: dict[str, int | None] | None) -> None:
    """Add ``usage`` into ``total``, key by key; an unreported key stays as it was."""
    for key in USAGE_KEYS:
        value = (usage or {}).get(key)
        if isinstance(value, int):
            total[key] = (total.get(key) or 0) + value


def new_record(turn: int, started_at: float, driver: str) -> dict[str, Any]:
    """A turn record with every field the agent may not report set to None."""
    return {
        "turn": turn,
        "outcome": None,
        "cause": None,
        "exit_code": None,
        "signal": None,
        "started_at": started_at,
        "duration_s": None,
        "result": None,
        "summary": None,
        "session_id": None,
        "cost_usd": None,
        "usage": empty_usage(),
        "num_turns": None,
        "permission_denials": None,
        "iterations": 0,
        "gate": None,
        "driver": driver,
    }
