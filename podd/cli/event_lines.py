"""Event records as the lines ``podd events`` prints (and ``podd top`` shows).

``describe`` tells one event (its wire dict) in a line, as a notification reads;
``format_line`` puts the time and the pod before it. Anything may come from a pod, so
nothing here trusts a value's type: a missing or odd field reads as ``?`` or is left
out. ``one_line``, ``number`` and ``count`` are how a field is read as a text, a
number or a count (``podd top`` reads its rows' fields with them too).

Plain ``json`` and ``time`` only, like every other command.
"""

from __future__ import annotations

import json
import time

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["clock", "count", "describe", "format_line", "number", "one_line"]

SUMMARY_CUT = 300
"""Characters of a turn's summary shown, at most."""


def one_line(text: str) -> str:
    """``text`` with every run of white space (newlines included) made one space."""
    return " ".join(text.split())


def number(value: Any) -> float | None:
    """``value`` as a float if it is a number (a bool is not), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def count(value: Any) -> int | None:
    """``value`` if it is an int (a bool is not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cut(text: str, limit: int = SUMMARY_CUT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rules(scope: Any) -> str:
    if not isinstance(scope, list):
        return ""
    parts = []
    for rule in scope:
        if isinstance(rule, dict):
            flat = "" if rule.get("recursive", True) else " (not recursive)"
            parts.append(f"{rule.get('permission', 'read')} {rule.get('target', '?')}{flat}")
    return ", ".join(parts)


def describe(event: Any) -> str:
    """One readable line for an event's wire dict (as a notification reads)."""
    if not isinstance(event, dict):
        return one_line(repr(event))
    kind = event.get("kind")
    name = event.get("pod_name", "?")
    turn = event.get("turn")
    if kind == "turn_started":
        return f"pod {name!r} started turn {turn}" if turn else f"pod {name!r} started a turn"
    if kind == "turn_ended":
        text = f"pod {name!r} finished turn {turn}" if turn else f"pod {name!r} finished a turn"
        summary = event.get("summary")
        if isinstance(summary, str) and summary.strip():
            text += ": " + _cut(one_line(summary))
        cost = number(event.get("cost_usd"))
        if cost is not None:
            text += f" (${cost:.4f})"
        denied = count(event.get("denied"))
        if denied is not None and denied > 0:
            text += f" ({denied} tool calls denied)"
        return text
    if kind == "errored":
        return _cut(one_line(f"pod {name!r} errored: {event.get('message', '')}"), 400)
    if kind == "shut_down":
        return one_line(f"pod {name!r} shut down: {event.get('reason', 'stopped')}")
    if kind == "scope_sub_delegated":
        rules = _rules(event.get("scope"))
        text = f"pod {event.get('parent_pod', '?')!r} delegated scope to {event.get('sub_pod')!r}"
        return f"{text}: {rules}" if rules else text
    if kind == "adopted":
        previous = event.get("previous_parent", "?")
        return f"pod {name!r} adopted: its parent {previous!r} died and it now reports here"
    if kind == "restart_gave_up":
        return one_line(f"pod {name!r} not restarted: {event.get('message', '')}")
    if kind == "task_skipped":
        return one_line(f"pod {name!r} skipped its task: {event.get('reason', '')}")
    rest = {k: v for k, v in event.items() if k not in ("kind", "incarnation", "seq")}
    return _cut(one_line(f"event {kind!r}: {json.dumps(rest, ensure_ascii=False)}"), 400)


def clock(at: Any) -> str:
    """``HH:MM:SS.mmm`` (local time) of a wall-clock time."""
    if not isinstance(at, int | float):
        return "--:--:--.---"
    whole = time.localtime(at)
    return time.strftime("%H:%M:%S", whole) + f".{int(at * 1000) % 1000:03d}"


def format_line(record: dict[str, Any], pod_width: int = 8) -> str:
    """A record as one human line: time, pod, kind, what happened."""
    event = record.get("event")
    kind = event.get("kind", "?") if isinstance(event, dict) else "?"
    pod = str(record.get("pod", "?"))
    return f"{clock(record.get('at'))} {pod:<{pod_width}}  {kind:<12}  {describe(event)}"
