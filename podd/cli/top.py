"""``podd top``: a live tree of the root's pods, updated as their events arrive.

The pods are followed with ``podd.cli.follower.Follower``: one ``status`` per pod when it
is first seen (on the connection that then carries its events), and from then on its
event stream. What an update does to a pod's row is ``podd.cli.top_model``'s. After a
pod's own turn event, or one that notifies it, the pod is asked for its ``status``
again on the same connection (at most once a ``REFRESH`` seconds per pod), which
corrects what events cannot tell (a queue, a drain by ``podd notifications``). No pod
is asked anything on a timer.

The screen is drawn with rich's ``Live`` on the alternate screen (``render`` makes it,
``layout`` picks the columns that fit); the keyboard is read in cbreak mode (``q``
quits). Rows are never wrapped: LAST EVENT (then NAME) is cut to the terminal's width,
and pods that do not fit its height are counted on a last line. The terminal is
restored however the command ends (``q``, Ctrl-C, SIGTERM, SIGHUP, an error).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from podd.cli.context import EXIT_OK, EXIT_USAGE, Context, Exit
from podd.cli.follower import Follower
from podd.cli.render import format_age
from podd.cli.top_model import Model

# Type checkers take this as true; the typing module is not imported.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    from rich.console import RenderableType

__all__ = ["cmd_top", "layout", "render"]

REFRESH = 1.0
"""Seconds between two ``status`` requests to the same pod, at least."""

FRAME = 0.1
"""Seconds between two redraws, at least (the clock column ticks once a second)."""

STATE_STYLES = {
    "running": "green",
    "waiting": "yellow",
    "stopping": "magenta",
    "unresponsive": "red",
    "gone": "dim",
    "stale": "red",
}


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
