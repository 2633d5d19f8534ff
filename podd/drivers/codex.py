"""The ``codex`` driver: ``codex exec`` on a first turn, ``codex exec ... resume`` after.

CMD must be a simple command, ``[VAR=value ...] codex [options]``: podd builds

    codex exec <options> --json -                      (first turn)
    codex exec <options> resume <thread_id> --json -   (later turns)

from it. The options stay in front of ``resume``: ``codex exec resume`` itself refuses
several of them (``-s``, ``-C``, ``--add-dir``, ``--color`` ...), while in front of it
every ``exec`` option is accepted and applies to the resumed turn. A CMD that already
says ``codex [top-level options] exec [options]`` keeps that shape. ``-`` makes Codex
read the prompt from stdin; ``CODEX_HOME`` is the pod's state dir (it must exist).

The output is JSON lines: ``thread.started`` (the thread id), ``turn.started``,
``item.started``/``item.completed`` (``agent_message``, ``command_execution``,
``file_change``, ``mcp_tool_call`` ...), then ``turn.completed`` with the usage, or
``error`` and ``turn.failed``. Codex reports no cost.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

import attrs
import orjson

from podd.drivers.base import (
    ERROR_LIMIT,
    Invocation,
    LineBuffer,
    TurnInput,
    TurnResult,
    UnsupportedCommand,
    as_int,
    as_str,
    cap_head,
    framed_input,
    json_objects,
)
from podd.drivers.words import SimpleCommand, Word, parse_simple

__all__ = ["CodexCommand", "CodexDriver", "CodexParser", "error_reason", "parse_codex"]

# Options of `codex` and `codex exec` (0.171) that take a value in the next word.
# fmt: off
_VALUE_OPTIONS = frozenset([
    "-c", "--config", "--enable", "--disable", "--remote", "--remote-auth-token-env",
    "-i", "--image", "-m", "--model", "--local-provider", "-p", "--profile",
    "-s", "--sandbox", "-C", "--cd", "--add-dir", "--thread-source",
    "--cyber-access-program", "--output-schema", "--color", "-o", "--output-last-message",
    "-a", "--ask-for-approval",
])
# fmt: on
_TOOL_ITEMS = frozenset(["command_execution", "mcp_tool_call", "file_change"])
_USAGE_NAMES = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cached_input_tokens": "cache_read_input_tokens",
    "cache_write_input_tokens": "cache_creation_input_tokens",
}
_SHAPE = "[VAR=value ...] codex [options]"


@attrs.frozen
class CodexCommand:
    """A codex CMD taken apart: the command, options before ``exec``, ``exec``'s options."""

    simple: SimpleCommand
    top_options: tuple[Word, ...]
    options: tuple[Word, ...]

    def render(self, thread_id: str | None) -> str:
        """The turn's command: a first turn without ``thread_id``, a resumed one with it."""
        args = [*self.top_options, Word.literal("exec"), *self.options]
        if thread_id is not None:
            args += [Word.literal("resume"), Word.literal(thread_id)]
        args += [Word.literal("--json"), Word.literal("-")]
        return self.simple.render(args)


def parse_codex(command: str) -> CodexCommand | str:
    """CMD taken apart, or why the codex driver cannot run it."""
    simple = parse_simple(command)
    if simple is None:
        return (
            f"the codex driver needs CMD to be a simple command, {_SHAPE}, so that it can "
            "put 'exec' and the thread to resume into it"
        )
    if posixpath.basename(simple.name.text) != "codex":
        return f"the codex driver runs codex: CMD's command is {simple.name.text!r} ({_SHAPE})"
    kept: list[Word] = []
    exec_at: int | None = None
    args = simple.args
    index = 0
    while index < len(args):
        word = args[index]
        value = word.value
        index += 1
        if value is None or (value.startswith("-") and value not in ("-", "--")):
            if value == "--json":
                continue  # podd adds it in its place; codex refuses it twice
            kept.append(word)
            if value in _VALUE_OPTIONS and index < len(args):
                kept.append(args[index])
                index += 1
        elif value == "-":
            continue  # podd adds it: the prompt comes on stdin
        elif value in ("exec", "e") and exec_at is None:
            exec_at = len(kept)
        else:
            return (
                f"the codex driver supplies 'exec', the thread to resume and the prompt "
                f"(on stdin): CMD must hold only options ({_SHAPE}), not {value!r}"
            )
    if exec_at is None:
        return CodexCommand(simple, (), tuple(kept))
    return CodexCommand(simple, tuple(kept[:exec_at]), tuple(kept[exec_at:]))


def error_reason(message: str) -> str:
    """An error message as people read it: the API's own message when it is an error body.

    For an API error it does not retry, Codex passes on the response body as it came,
    ``{"error": {"message": ..., "type": ...}}``.
    """
    if message.startswith("{"):
        try:
            body = orjson.loads(message)
        except orjson.JSONDecodeError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        inner = as_str(error.get("message")) if isinstance(error, dict) else None
        if inner:
            message = inner
    return cap_head(message, ERROR_LIMIT)


class CodexParser:
    """Reads ``codex exec --json`` lines: the thread, tool calls, the last message, usage."""

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._thread: str | None = None
        self._message: str | None = None
        self._tool_calls = 0
        self._usage: dict[str, int | None] | None = None
        self._completed = False
        self._failed: str | None = None
        self._last_error: str | None = None

    def feed(self, data: bytes) -> None:
        for line in self._lines.feed(data):
            self._line(line)

    def _line(self, line: bytes) -> None:
        for event in json_objects(line):
            self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "thread.started":
            self._thread = as_str(event.get("thread_id")) or self._thread
        elif kind == "item.completed":
            item = event.get("item")
            if not isinstance(item, dict):
                return
            if item.get("type") == "agent_message":
                text = as_str(item.get("text"))
                if text is not None:
                    self._message = cap_head(text)
            elif item.get("type") in _TOOL_ITEMS:
                self._tool_calls += 1
        elif kind == "turn.completed":
            self._completed = True
            usage = event.get("usage")
            if isinstance(usage, dict):
                self._usage = dict.fromkeys(_USAGE_NAMES.values())
                for theirs, ours in _USAGE_NAMES.items():
                    self._usage[ours] = as_int(usage.get(theirs))
        elif kind == "turn.failed":
            error = event.get("error")
            message = as_str(error.get("message")) if isinstance(error, dict) else None
            self._failed = error_reason(message or "codex reported a failed turn")
        elif kind == "error":
            message = as_str(event.get("message"))
            if message is not None:
                self._last_error = error_reason(message)

    def finish(self, exit_code: int | None) -> TurnResult:
        for line in self._lines.finish():
            self._line(line)
        error = self._failed
        if error is None and not self._completed:
            # An `error` event alone may be a retry notice; it counts when no turn ended.
            error = self._last_error
            if error is None and exit_code == 0:
                error = "codex printed no turn.completed"
        return TurnResult(
            result=self._message,
            session=self._thread,
            usage=self._usage,
            error=error,
            tool_calls=self._tool_calls,
        )


def daemon_dir() -> str:
    """Where Codex keeps the socket of its shared app-server daemon, one directory per
    user, in ``/tmp`` whatever ``TMPDIR`` says. Codex creates it when it builds its own
    sandbox (bubblewrap), to hide it from the sandboxed command: in a turn where
    ``/tmp`` is read-only (``--nested-sandbox``) that creation fails, and with it every
    command of the agent ("error building bubblewrap command: Read-only file system")."""
    return f"/tmp/codex-daemon-{os.getuid()}"


class CodexDriver:
    """Runs ``codex exec`` and resumes its thread turn after turn."""

    name = "codex"

    def check(self, command: str) -> str | None:
        parsed = parse_codex(command)
        return parsed if isinstance(parsed, str) else None

    def invocation(self, turn: TurnInput) -> Invocation:
        parsed = parse_codex(turn.command)
        if isinstance(parsed, str):
            raise UnsupportedCommand(parsed)
        return Invocation(
            argv=("/bin/sh", "-c", parsed.render(turn.session)),
            env={"CODEX_HOME": turn.state_dir},
            stdin=framed_input(turn.notifications, turn.text),
            session=turn.session,
            runtime_dirs=(daemon_dir(),),
        )

    def parser(self) -> CodexParser:
        return CodexParser()
