"""Drivers: how a pod runs one turn of its agent and reads what the turn yielded.

    shell    CMD as it is; stdin is the notifications (one line each) and the text;
             the result is stdout
    claude   Claude Code in print mode with JSON-lines output, one session across turns
    codex    ``codex exec --json``, resuming its thread turn after turn

A driver is pure: ``invocation(TurnInput)`` says what to execute (argv, environment,
stdin) and ``parser()`` reads the turn's stdout into a ``TurnResult``. It starts no
process and touches no file. ``render_turn`` makes a turn's raw output readable.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from podd.drivers.base import (
    RESULT_LIMIT,
    USAGE_KEYS,
    Driver,
    Invocation,
    OutputParser,
    TurnInput,
    TurnResult,
    UnsupportedCommand,
)

if TYPE_CHECKING:
    from podd.drivers.claude import ClaudeDriver
    from podd.drivers.codex import CodexDriver
    from podd.drivers.render import render_turn
    from podd.drivers.shell import ShellDriver

__all__ = [
    "DRIVER_NAMES",
    "RESULT_LIMIT",
    "USAGE_KEYS",
    "ClaudeDriver",
    "CodexDriver",
    "Driver",
    "Invocation",
    "OutputParser",
    "ShellDriver",
    "TurnInput",
    "TurnResult",
    "UnsupportedCommand",
    "detect",
    "driver_for",
    "render_turn",
]

DRIVER_NAMES = ("shell", "claude", "codex")

# Each driver's module is imported when it is first asked for: a pod runs one driver,
# and a pod without an agent none.
_MODULE_OF = {
    "ClaudeDriver": "podd.drivers.claude",
    "CodexDriver": "podd.drivers.codex",
    "ShellDriver": "podd.drivers.shell",
    "render_turn": "podd.drivers.render",
}
_CLASS_OF = {"shell": "ShellDriver", "claude": "ClaudeDriver", "codex": "CodexDriver"}
_drivers: dict[str, Driver] = {}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def detect(command: str) -> str:
    """``claude`` or ``codex`` when CMD's first command word names one, else ``shell``.

    The word is taken after any ``VAR=value`` assignments; its basename counts, so
    ``IS_SANDBOX=1 /opt/bin/claude -p`` is ``claude``.
    """
    from podd.drivers.words import command_name

    name = command_name(command)
    base = posixpath.basename(name) if name else ""
    return base if base in ("claude", "codex") else "shell"


def driver_for(name: str) -> Driver:
    """The driver called ``name`` (one of ``DRIVER_NAMES``); KeyError for any other."""
    driver = _drivers.get(name)
    if driver is None:
        driver = _drivers[name] = __getattr__(_CLASS_OF[name])()
    return driver
