"""``podd top``: a live tree of the root's pods, updated as their events arrive.

The pods are followed with ``podd.cli.events.Follower``: one ``status`` per pod when it
is first seen (on the connection that then carries its events), and from then on its
event stream. A pod's own ``turn_started``, ``turn_ended`` and ``errored`` move its
STATE, TURN, ELAPSED and COST; what it applies from below counts as a pending
notification; a turn drains them. After such an event the pod is asked for its
``status`` again on the same connection (at most once a ``REFRESH`` seconds per pod),
which corrects what events cannot tell (a queue, a drain by ``podd notifications``).
No pod is asked anything on a timer.

The screen is drawn with rich's ``Live`` on the alternate screen; the keyboard is read
in cbreak mode (``q`` quits). Rows are never wrapped: LAST EVENT (then NAME) is cut to
the terminal's width, and pods that do not fit its height are counted on a last line.
The terminal is restored however the command ends (``q``, Ctrl-C, SIGTERM, SIGHUP, an
error).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from podd.cli.context import EXIT_OK, EXIT_USAGE, Context, Exit
from podd.cli.events import Follower, Update, describe
from podd.cli.render import format_age

# Type checkers take this as true; the typing module is not imported.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    from rich.console import RenderableType

__all__ = ["Model", "Row", "cmd_top"]

REFRESH = 1.0
"""Seconds between two ``status`` requests to the same pod, at least."""

FRAME = 0.1
"""Seconds between two redraws, at least (the clock column ticks once a second)."""

NOTIFYING = frozenset({"turn_ended", "errored", "shut_down"})
"""Kinds that become a notification where they are applied (as do unknown kinds)."""

KNOWN = frozenset({"turn_started", "turn_ended", "errored", "shut_down", "scope_sub_delegated"})

STATE_STYLES = {
    "running": "green",
    "waiting": "yellow",
    "stopping": "magenta",
    "unresponsive": "red",
    "gone": "dim",
    "stale": "red",
}


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


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
        at = _number(record.get("at"))
        text = describe(event)
        prefix = f"pod {row.name!r} "
        row.last_event = text[len(prefix) :] if text.startswith(prefix) else text
        if about != row.name:
            if (kind in NOTIFYING or kind not in KNOWN) and row.notifs is not None:
                row.notifs += 1
            return kind in NOTIFYING
        turn = _count(event.get("turn"))
        if kind == "turn_started":
            row.state = "running"
            row.turn = turn or row.turn
            row.turn_started = at
            row.notifs = 0 if row.notifs is not None else None
        elif kind in ("turn_ended", "errored"):
            row.state = "idle"
            row.turn = turn or row.turn
            row.turn_started = None
            cost = _number(event.get("cost_usd"))
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
        row.started_at = _number(status.get("started_at")) or row.started_at
        current = _count(status.get("current_turn"))
        row.turn = current or _count(status.get("turns")) or row.turn
        if current is None:
            row.turn_started = None
        elif row.turn_started is None:
            # Running since before it was seen: ELAPSED counts from the first sight.
            row.turn_started = now
        cost = _number(status.get("cost_usd"))
        if cost is not None:
            row.cost = cost
        row.notifs = _count(status.get("notifications_pending"))
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
        return f"{text}: {' '.join(str(result).split())}" if result else text
    message = last.get("cause") or last.get("message") or "errored"
    return f"turn {turn} errored: {' '.join(str(message).split())}"


def _cost(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


COLUMNS: tuple[tuple[str, int, Literal["left", "right"]], ...] = (
    ("TURN", 4, "right"),
    ("ELAPSED", 7, "right"),
    ("COST", 7, "right"),
    ("NOTIFS", 6, "right"),
)
"""The columns between STATE and LAST EVENT, each shown only if it leaves LAST EVENT
``LAST_EVENT_ROOM`` characters."""

STATE_WIDTH = 12
NAME_ROOM = (8, 30)
"""The NAME column's width: at least (before the other columns are given up), at most."""
LAST_EVENT_ROOM = 16


def layout(names: int, width: int) -> tuple[int, list[tuple[str, int, Literal["left", "right"]]]]:
    """The NAME column's width and the middle columns that fit in ``width``."""
    name_width = max(4, min(names, NAME_ROOM[1]))
    left = width - (STATE_WIDTH + 1) - LAST_EVENT_ROOM
    if name_width + 1 > left:
        name_width = max(min(name_width, NAME_ROOM[0]), left - 1)
    left -= name_width + 1
    middle = []
    for column in COLUMNS:
        if column[1] + 1 > left:
            break
        middle.append(column)
        left -= column[1] + 1
    return max(1, name_width), middle


def render(model: Model, root: str, width: int, height: int, now: float) -> RenderableType:
    """The screen: a title line and the table, cut to ``width`` x ``height``."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = model.tree()
    title = Text(no_wrap=True, overflow="ellipsis")
    title.append("podd top", style="bold")
    clock = time.strftime("%H:%M:%S", time.localtime(time.time()))
    title.append(f"  {len(rows)} pods  {clock}  q quits  {root}")
    title.truncate(width, overflow="ellipsis")
    names = max([4, *(len(prefix) + len(row.name) for prefix, row in rows)])
    name_width, middle = layout(names, width)
    table = Table(box=None, expand=True, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    table.add_column("NAME", width=name_width, no_wrap=True, overflow="ellipsis")
    table.add_column("STATE", width=STATE_WIDTH, no_wrap=True, overflow="ellipsis")
    for header, column_width, justify in middle:
        table.add_column(
            header, width=column_width, no_wrap=True, overflow="ellipsis", justify=justify
        )
    table.add_column("LAST EVENT", ratio=1, no_wrap=True, overflow="ellipsis")
    space = max(1, height - 2)
    shown = rows if len(rows) <= space else rows[: max(0, space - 1)]
    for prefix, row in shown:
        if row.state == "running" and row.turn_started is not None:
            elapsed = format_age(max(0.0, now - row.turn_started))
        elif row.started_at is not None:
            elapsed = format_age(max(0.0, now - row.started_at))
        else:
            elapsed = "-"
        values = {
            "TURN": str(row.turn) if row.turn is not None else "-",
            "ELAPSED": elapsed,
            "COST": _cost(row.cost),
            "NOTIFS": str(row.notifs) if row.notifs is not None else "-",
        }
        table.add_row(
            prefix + row.name,
            Text(row.state, style=STATE_STYLES.get(row.state, "")),
            *(values[header] for header, _, _ in middle),
            row.last_event,
        )
    parts: list[RenderableType] = [title, table]
    if len(shown) < len(rows):
        parts.append(Text(f"… {len(rows) - len(shown)} more pods", style="dim", no_wrap=True))
    return Group(*parts)


class _Quit(Exception):
    """A signal asked to end: the screen and the terminal are restored on the way out."""


def cmd_top(ctx: Context) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Exit(EXIT_USAGE, "podd top needs a terminal (try 'podd ls --tree' or 'podd events')")
    import termios
    import tty

    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def resized(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.write(wake_w, b"w")

    def ended(signum: int, frame: Any) -> None:
        raise _Quit

    handlers = {
        signal.SIGWINCH: signal.signal(signal.SIGWINCH, resized),
        signal.SIGTERM: signal.signal(signal.SIGTERM, ended),
        signal.SIGHUP: signal.signal(signal.SIGHUP, ended),
        # Even when started with SIGINT ignored (a background job of a script).
        signal.SIGINT: signal.signal(signal.SIGINT, ended),
    }
    follower = Follower(ctx.root, status=True)
    try:
        tty.setcbreak(stdin)
        _run(ctx.root, follower, stdin, wake_r)
    except (KeyboardInterrupt, _Quit):
        pass
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        follower.close()
        os.close(wake_r)
        os.close(wake_w)
    return EXIT_OK


def _run(root: str, follower: Follower, stdin: int, wake: int) -> None:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    model = Model()
    follower.watch(stdin, "keys")
    follower.watch(wake, "resized")
    with Live(console=console, screen=True, auto_refresh=False, redirect_stderr=False) as live:
        drawn = 0.0
        dirty = True
        while True:
            now = time.time()
            if (dirty and time.monotonic() - drawn >= FRAME) or time.monotonic() - drawn >= 1.0:
                width, height = console.size
                live.update(render(model, root, width, height, now), refresh=True)
                drawn, dirty = time.monotonic(), False
            updates = follower.poll(FRAME if dirty else max(0.05, 1.0 - (now % 1.0)))
            for update in updates:
                if update.what == "ready" and update.data == "keys":
                    keys = os.read(stdin, 1024)
                    if not keys or b"q" in keys or b"Q" in keys:
                        return
                    continue
                if update.what == "ready" and update.data == "resized":
                    while True:
                        try:
                            if not os.read(wake, 1024):
                                break
                        except BlockingIOError:
                            break
                    drawn = 0.0
                    dirty = True
                    continue
                if model.apply(update, follower.parents, time.time()):
                    row = model.rows[update.pod]
                    if time.monotonic() - row.refreshed >= REFRESH:
                        row.refreshed = time.monotonic()
                        follower.refresh(update.pod)
                dirty = True
            if model.forget_missing(follower.parents):
                dirty = True
