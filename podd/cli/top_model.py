"""What ``podd top`` shows of each pod, and how the follower's updates change it.

``Model`` keeps one ``Row`` per pod seen, changed by ``Model.apply`` with each
``podd.cli.follower.Update``. A pod's own ``turn_started``, ``turn_ended`` and
``errored`` move its state, turn, elapsed time and cost; what it applies from below
counts as a pending notification; a turn drains them. ``apply`` says when the pod
should be asked for its ``status`` again, which corrects what events cannot tell (a
queue, a drain by ``podd notifications``); asking is the caller's. ``Model.tree``
gives the rows in tree order. Nothing here draws or reads a socket.
"""

from __future__ import annotations

from podd.cli.event_lines import count, describe, number, one_line

# Type checkers take this as true; the typing module is not imported.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from podd.cli.follower import Update

__all__ = ["Model", "Row"]

NOTIFYING = frozenset({"turn_ended", "errored", "shut_down"})
"""Kinds that become a notification where they are applied (as do unknown kinds)."""

KNOWN = frozenset({"turn_started", "turn_ended", "errored", "shut_down", "scope_sub_delegated"})
"""The kinds known here: an event of any other kind counts as a notification."""


class Row:
    """What the screen shows of one pod."""

    __slots__ = (
        "cost",
        "last_event",
        "name",
        "notifs",
        "parent",
        "refreshed",
        "started_at",
        "state",
        "turn",
        "turn_started",
    )

    def __init__(self, name: str, parent: str | None) -> None:
        self.name = name
        self.parent = parent
        self.state = "?"
        self.turn: int | None = None
        self.turn_started: float | None = None
        self.started_at: float | None = None
        self.cost: float | None = None
        self.notifs: int | None = None
        self.last_event = ""
        self.refreshed = 0.0


class Model:
    """The pods' rows, changed by the follower's updates."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def row(self, name: str, parent: str | None = None) -> Row:
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = Row(name, parent)
        return row

    def apply(self, update: Update, parents: dict[str, str | None], now: float) -> bool:
        """Take one update; True if the pod should be asked for its status again."""
        if update.what == "ready":
            return False
        row = self.row(update.pod, parents.get(update.pod))
        if update.what == "added":
            if row.state in ("?", "gone"):
                row.state = "idle"
            for record in update.data:
                self._record(row, record)
            return False
        if update.what == "event":
            return self._record(row, update.data)
        if update.what == "status":
            self._status(row, update.data, now)
            return False
        if update.what == "gone":
            row.state = "gone"
            row.turn_started = None
        elif update.what == "failed":
            row.state = "?"
            row.last_event = str(update.data)
        return False

    def _record(self, row: Row, record: Any) -> bool:
        event = record.get("event") if isinstance(record, dict) else None
        if not isinstance(event, dict):
            return False
        kind = event.get("kind")
        about = event.get("pod_name", event.get("parent_pod"))
        at = number(record.get("at"))
        text = describe(event)
        prefix = f"pod {row.name!r} "
        row.last_event = text[len(prefix) :] if text.startswith(prefix) else text
        if about != row.name:
            if (kind in NOTIFYING or kind not in KNOWN) and row.notifs is not None:
                row.notifs += 1
            return kind in NOTIFYING
        turn = count(event.get("turn"))
        if kind == "turn_started":
            row.state = "running"
            row.turn = turn or row.turn
            row.turn_started = at
            row.notifs = 0 if row.notifs is not None else None
        elif kind in ("turn_ended", "errored"):
            row.state = "idle"
            row.turn = turn or row.turn
            row.turn_started = None
            cost = number(event.get("cost_usd"))
            if cost is not None:
                row.cost = (row.cost or 0.0) + cost
        elif kind == "shut_down":
            row.state = "stopping"
            row.turn_started = None
        return kind in ("turn_started", "turn_ended", "errored")

    def _status(self, row: Row, status: dict[str, Any], now: float) -> None:
        state = status.get("state")
        if isinstance(state, str):
            row.state = state
        parent = status.get("parent")
        if parent is None or isinstance(parent, str):
            row.parent = parent
        row.started_at = number(status.get("started_at")) or row.started_at
        current = count(status.get("current_turn"))
        row.turn = current or count(status.get("turns")) or row.turn
        if current is None:
            row.turn_started = None
        elif row.turn_started is None:
            # Running since before it was seen: ELAPSED counts from the first sight.
            row.turn_started = now
        cost = number(status.get("cost_usd"))
        if cost is not None:
            row.cost = cost
        row.notifs = count(status.get("notifications_pending"))
        last = status.get("last_turn")
        if not row.last_event and isinstance(last, dict):
            row.last_event = _last_turn_text(last)

    def forget_missing(self, parents: dict[str, str | None]) -> bool:
        """Drop the rows of pods whose directory is gone from the root; True if any."""
        missing = [name for name in self.rows if name not in parents]
        for name in missing:
            del self.rows[name]
        return bool(missing)

    def tree(self) -> list[tuple[str, Row]]:
        """The rows in tree order, each with the prefix that draws its place."""
        children: dict[str | None, list[str]] = {}
        for name, row in self.rows.items():
            parent = row.parent if row.parent in self.rows and row.parent != name else None
            children.setdefault(parent, []).append(name)
        ordered: list[tuple[str, Row]] = []
        placed: set[str] = set()

        def walk(name: str, lead: str, last: bool, depth: int) -> None:
            if name in placed:
                return
            placed.add(name)
            branch = ("└─ " if last else "├─ ") if depth else ""
            ordered.append((lead + branch, self.rows[name]))
            below = sorted(children.get(name, []))
            inner = lead + (("   " if last else "│  ") if depth else "")
            for i, child in enumerate(below):
                walk(child, inner, i == len(below) - 1, depth + 1)

        for name in sorted(children.get(None, [])):
            walk(name, "", True, 0)
        for name in sorted(self.rows):  # a cycle of parents: shown flat
            walk(name, "", True, 0)
        return ordered


def _last_turn_text(last: dict[str, Any]) -> str:
    turn = last.get("turn")
    finished = last.get("outcome") == "finished" or last.get("finished") is True
    if finished:
        result = last.get("summary") or last.get("result") or ""
        text = f"finished turn {turn}"
        return f"{text}: {one_line(str(result))}" if result else text
    message = last.get("cause") or last.get("message") or "errored"
    return f"turn {turn} errored: {one_line(str(message))}"
