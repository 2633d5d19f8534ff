"""``podd events [NAME] [--follow] [--json]``: the events applied under the root.

Without ``--follow`` it prints every pod's recent records (each pod keeps its last
256), merged by time, and ends. With ``--follow`` it prints them, then every record
as it comes, from pods started later too, until interrupted (SIGINT and SIGTERM end
it with status 0) or until pod NAME is gone. With NAME, only NAME and the pods below
it are shown; exit status 3 if NAME is not running. The pods are followed with
``podd.cli.follower.Follower``; a line is drawn by ``podd.cli.event_lines``. A pod
that cannot be followed, or that dropped this command and lost events, is said on
stderr.

Plain sockets and the ``json`` module only, like every other command (no trio,
no cattrs).
"""

from __future__ import annotations

import json
import os
import sys
import time

from podd.cli.context import EXIT_NOT_RUNNING, EXIT_OK, Context, Exit
from podd.cli.event_lines import format_line
from podd.cli.follower import CONNECT_TIMEOUT, RESCAN, Follower
from podd.core.names import check_name
from podd.errors import PoddError

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from podd.cli.follower import Update

__all__ = ["cmd_events"]

FIRST_REPLIES = 2.0
"""Seconds to wait for the first pods' recent events before the first lines."""


def _check_target(ctx: Context, name: str) -> None:
    """Exit 3 unless pod ``name`` exists under the root and answers."""
    from podd.client.sync import call

    if not os.path.isdir(ctx.pod_dir(name)):
        raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {ctx.root}")
    try:
        call(ctx.socket(name), "ping", timeout=CONNECT_TIMEOUT)
    except PoddError as exc:
        raise Exit(EXIT_NOT_RUNNING, f"pod {name!r} is not running ({exc})") from exc


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.width = 8

    def print(self, records: list[dict[str, Any]]) -> None:
        out = sys.stdout
        for record in records:
            if self.as_json:
                document = {
                    "at": record.get("at"),
                    "pod": record.get("pod"),
                    "event": record.get("event"),
                }
                out.write(json.dumps(document, ensure_ascii=False) + "\n")
            else:
                self.width = max(self.width, len(str(record.get("pod", ""))))
                out.write(format_line(record, self.width) + "\n")
        out.flush()


def _by_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def at(record: dict[str, Any]) -> float:
        value = record.get("at")
        return float(value) if isinstance(value, int | float) else 0.0

    return sorted(records, key=at)


def cmd_events(ctx: Context) -> int:
    name = ctx.args.name
    if name is not None:
        check_name(name)
        _check_target(ctx, name)
    _end_on_signals()
    follower = Follower(ctx.root, name)
    printer = _Printer(ctx.json)
    try:
        if ctx.args.follow:
            _follow(follower, printer, name)
        else:
            _recent(follower, printer)
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
    return EXIT_OK


def _end_on_signals() -> None:
    """SIGINT and SIGTERM end ``podd events`` cleanly (exit 0), even when it was started
    with SIGINT ignored, as a background job of a script is."""
    import signal

    def end(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, end)
    signal.signal(signal.SIGTERM, end)


def _recent(follower: Follower, printer: _Printer) -> None:
    """Every followed pod's recent records, merged by time."""
    records: list[dict[str, Any]] = []
    follower.scan()
    follower.rescan = False  # one listing: the pods there now
    waiting = set(follower.streams)
    deadline = time.monotonic() + CONNECT_TIMEOUT + FIRST_REPLIES
    while waiting and time.monotonic() < deadline:
        for update in follower.poll(0.1):
            records.extend(_records(update, waiting, live=False))
    printer.print(_by_time([r for r in records if r.get("event") is not None]))


def _follow(follower: Follower, printer: _Printer, name: str | None) -> None:
    """Print the recent records, then every record as it comes, until interrupted or
    until pod ``name`` is gone."""
    follower.scan()
    if name is not None and name not in follower.streams:
        raise Exit(EXIT_NOT_RUNNING, f"pod {name!r} is not running")
    first = set(follower.streams)
    held: list[dict[str, Any]] = []
    deadline = time.monotonic() + CONNECT_TIMEOUT + FIRST_REPLIES
    while True:
        updates = follower.poll(0.1 if first else RESCAN)
        batch: list[dict[str, Any]] = []
        for update in updates:
            batch.extend(_records(update, first, live=True))
        if first and time.monotonic() < deadline:
            # The pods there at the start: their recent records are merged by time.
            held.extend(batch)
            continue
        if held:
            batch, held, first = held + batch, [], set()
        printer.print(_by_time(batch))
        if name is not None and any(u.what == "gone" and u.pod == name for u in updates):
            return


def _records(update: Update, waiting: set[str], *, live: bool) -> list[dict[str, Any]]:
    """The records ``update`` brings: a pod's recent ones, and with ``live`` each one as
    it comes. A pod that cannot be followed is said on stderr (with ``live``, one that
    dropped this follower too); a pod leaves ``waiting`` once its recent records are in
    or it has none to give."""
    if update.what in ("added", "gone", "failed"):
        waiting.discard(update.pod)
    if update.what == "added":
        return list(update.data)
    if update.what == "failed":
        print(f"podd: cannot follow pod {update.pod!r}: {update.data}", file=sys.stderr)
    elif live and update.what == "event":
        return [update.data]
    elif live and update.what == "lagged":
        missed = update.data.get("missed", 0)
        print(
            f"podd: pod {update.pod!r} dropped this follower, {missed} events were"
            " lost; following it again",
            file=sys.stderr,
        )
    return []
