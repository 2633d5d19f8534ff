"""The ``claude`` driver: Claude Code in print mode, one session across turns.

The pod runs CMD with what it lacks added: ``-p``, ``--output-format stream-json``,
``--verbose`` (stream-json in print mode needs it) and the session: ``--session-id
<new id>`` on a first turn, ``--resume <id>`` after. A CMD that names its own session
(``--session-id``, ``--resume``/``-r``, ``--continue``/``-c``, ``--from-pr``,
``--no-session-persistence``) keeps it, and the session is then read from the output.
``CLAUDE_CONFIG_DIR`` is the pod's state dir.

The output is JSON lines: ``system``/``init`` (the session id), ``assistant`` messages
(their ``tool_use`` blocks are the tool calls), ``user`` messages (tool results) and a
last ``result`` object. ``--output-format json`` prints the result object alone, or,
with ``--verbose``, an array of every message on one line; both are read too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from podd.drivers.base import (
    ERROR_LIMIT,
    USAGE_KEYS,
    Invocation,
    LineBuffer,
    TurnInput,
    TurnResult,
    as_float,
    as_int,
    as_str,
    cap_head,
    framed_input,
    json_objects,
)
from podd.drivers.words import Word, all_words, parse_simple

__all__ = ["ClaudeDriver", "ClaudeParser", "claude_command"]

_SESSION_FLAGS = frozenset(
    ["--session-id", "--resume", "-r", "--continue", "-c", "--from-pr", "--no-session-persistence"]
)


def _flag_values(args: Sequence[Word]) -> list[tuple[str, str | None]]:
    """``(flag, the value written after it or None)`` for each flag word, in order.

    ``--flag=value`` is split; a cluster of short flags (``-pc``) gives one entry per
    letter. A word the shell expands is never a flag.
    """
    found: list[tuple[str, str | None]] = []
    for index, word in enumerate(args):
        value = word.value
        if value is None or not value.startswith("-") or value == "-":
            continue
        following = args[index + 1].value if index + 1 < len(args) else None
        if value.startswith("--"):
            name, eq, attached = value.partition("=")
            found.append((name, attached if eq else following))
        elif len(value) > 2 and value[1:].isalpha():
            found.extend((f"-{letter}", None) for letter in value[1:])
        else:
            found.append((value, following))
    return found


def _words_of(command: str) -> list[Word]:
    """CMD's arguments when it is a simple command, else every word it holds."""
    simple = parse_simple(command)
    return list(simple.args) if simple is not None else all_words(command)


def claude_command(turn: TurnInput) -> tuple[str, str | None]:
    """CMD with the flags it lacks added, and the session the turn runs in if known."""
    flags = _flag_values(_words_of(turn.command))
    names = {name for name, _ in flags}
    values = dict(flags)
    added: list[str] = []
    if not names & {"-p", "--print"}:
        added.append("-p")
    output_format = values.get("--output-format")
    if "--output-format" not in names:
        added += ["--output-format", "stream-json"]
        output_format = "stream-json"
    # An output format the shell expands is unknown here: --verbose is harmless to json.
    if output_format in ("stream-json", None) and "--verbose" not in names:
        added.append("--verbose")
    session: str | None
    if names & _SESSION_FLAGS:
        # The user runs the session: it is known up front only when named outright.
        session = values.get("--session-id") or values.get("--resume") or values.get("-r")
        if session is not None and session.startswith("-"):
            session = None
    elif turn.session is not None:
        added += ["--resume", turn.session]
        session = turn.session
    else:
        added += ["--session-id", turn.new_session_id]
        session = turn.new_session_id
    if turn.mcp_config is not None:
        added += ["--mcp-config", turn.mcp_config]
    extra = [Word.literal(flag) for flag in added]
    simple = parse_simple(turn.command)
    if simple is not None:
        return simple.render([*simple.args, *extra]), session
    if not extra:
        return turn.command, session
    return turn.command.rstrip() + " " + " ".join(word.raw for word in extra), session


class ClaudeParser:
    """Reads Claude Code's JSON lines: the session, tool calls and the final result."""

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._session: str | None = None
        self._tool_calls = 0
        self._final: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        for line in self._lines.feed(data):
            self._line(line)

    def _line(self, line: bytes) -> None:
        for message in json_objects(line):
            self._message(message)

    def _message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        session = as_str(message.get("session_id"))
        # init and result name the session for sure; other messages only fill a gap.
        if session is not None and (kind in ("system", "result") or self._session is None):
            self._session = session
        if kind == "assistant":
            content = message.get("message", {})
            blocks = content.get("content") if isinstance(content, dict) else None
            for block in blocks if isinstance(blocks, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    self._tool_calls += 1
        elif kind == "result":
            self._final = _final_fields(message)

    def finish(self, exit_code: int | None) -> TurnResult:
        for line in self._lines.finish():
            self._line(line)
        final = self._final
        if final is None:
            # Exit 0 without a result object means the output was not Claude Code's.
            error = "claude printed no result" if exit_code == 0 else None
            return TurnResult(session=self._session, error=error, tool_calls=self._tool_calls)
        return TurnResult(
            result=final["result"],
            session=final["session"] or self._session,
            cost_usd=final["cost_usd"],
            usage=final["usage"],
            num_turns=final["num_turns"],
            permission_denials=final["permission_denials"],
            error=final["error"],
            tool_calls=self._tool_calls,
        )


def _final_fields(message: dict[str, Any]) -> dict[str, Any]:
    """What the record takes from a ``result`` object, checked and capped."""
    result = as_str(message.get("result"))
    usage = message.get("usage")
    denials = message.get("permission_denials")
    error = None
    if message.get("is_error") is True:
        errors = message.get("errors")
        listed = "; ".join(str(e) for e in errors) if isinstance(errors, list) else ""
        error = result or listed or as_str(message.get("subtype")) or "claude reported an error"
        error = cap_head(error, ERROR_LIMIT)
    return {
        "result": None if result is None else cap_head(result),
        "session": as_str(message.get("session_id")),
        "cost_usd": as_float(message.get("total_cost_usd")),
        "usage": (
            {key: as_int(usage.get(key)) for key in USAGE_KEYS} if isinstance(usage, dict) else None
        ),
        "num_turns": as_int(message.get("num_turns")),
        "permission_denials": (
            [d for d in denials if isinstance(d, dict)] if isinstance(denials, list) else None
        ),
        "error": error,
    }


class ClaudeDriver:
    """Runs Claude Code in print mode, resuming one session turn after turn."""

    name = "claude"

    def check(self, command: str) -> str | None:
        flags = dict(_flag_values(_words_of(command)))
        if flags.get("--output-format") == "text":
            return (
                "the claude driver reads Claude Code's JSON output: drop "
                "'--output-format text' (podd adds '--output-format stream-json')"
            )
        if flags.get("--input-format") == "stream-json":
            return (
                "the claude driver writes the turn's input as plain text on stdin: "
                "drop '--input-format stream-json'"
            )
        return None

    def invocation(self, turn: TurnInput) -> Invocation:
        command, session = claude_command(turn)
        return Invocation(
            argv=("/bin/sh", "-c", command),
            env={"CLAUDE_CONFIG_DIR": turn.state_dir},
            stdin=framed_input(turn.notifications, turn.text),
            session=session,
        )

    def parser(self) -> ClaudeParser:
        return ClaudeParser()
