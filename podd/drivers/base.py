"""What every driver takes and gives: a turn's input, how to run it, what it yielded.

A driver is pure: it turns a ``TurnInput`` into an ``Invocation`` (argv, environment,
stdin) and reads the turn's stdout, fed in chunks as it arrives, into a ``TurnResult``.
It starts no process and touches no file; the pod does both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import attrs
import orjson

from podd.errors import PoddError
from protocol.values import Value

__all__ = [
    "ERROR_LIMIT",
    "LINE_LIMIT",
    "RESULT_LIMIT",
    "USAGE_KEYS",
    "Driver",
    "Invocation",
    "LineBuffer",
    "OutputParser",
    "TurnInput",
    "TurnResult",
    "UnsupportedCommand",
    "as_float",
    "as_int",
    "as_str",
    "cap_head",
    "cap_tail",
    "framed_input",
    "json_objects",
    "plain_input",
]

RESULT_LIMIT = 64 * 1024
"""The most bytes (UTF-8) a turn's ``result`` holds, the mark of a cut included."""
ERROR_LIMIT = 4096
"""The most bytes an agent's reported error keeps."""
LINE_LIMIT = 16 * 1024 * 1024
"""The longest JSON line a parser reads; a longer one is skipped as noise."""
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
CUT_MARK = "…"


class UnsupportedCommand(PoddError):
    """A driver was asked to run a CMD it refuses; ``check`` gives the same reason."""


@attrs.frozen(kw_only=True, repr=False, eq=False)
class TurnInput(Value):
    """Everything a driver needs to build one turn's invocation.

    ``session`` is the driver's handle from the previous turn (claude's session id,
    codex's thread id), None for a first turn or after ``send --new-session``;
    ``new_session_id`` is a fresh uuid4 the pod draws, so that drivers stay deterministic.
    """

    command: str
    text: str
    notifications: tuple[str, ...] = ()
    session: str | None = None
    new_session_id: str
    state_dir: str
    mcp_config: str | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class Invocation(Value):
    """How the pod runs the turn: argv, variables added to the environment, stdin.

    ``session`` is the session the turn runs in when it is known before it starts
    (claude: always; codex: on a resumed turn, while a first one learns its thread id
    from the output). ``runtime_dirs`` are directories the CLI keeps outside any scope
    and creates when they are missing (codex: ``/tmp/codex-daemon-<uid>``): the pod
    creates them before the turn (mode 0700), as the CLI would itself unconfined, so
    that a confined turn does not fail on creating them. Nothing more: they stay as
    writable to the turn as its confinement makes them.
    """

    argv: tuple[str, ...]
    env: dict[str, str] = attrs.field(factory=dict)
    stdin: bytes
    session: str | None = None
    runtime_dirs: tuple[str, ...] = ()


@attrs.frozen(kw_only=True, repr=False, eq=False)
class TurnResult(Value):
    """What a turn's output said; fields the agent does not report are None.

    ``error`` is an error the agent reported itself (claude ``is_error``, codex
    ``turn.failed``): the turn has failed even if the process exited 0.
    """

    result: str | None = None
    session: str | None = None
    cost_usd: float | None = None
    usage: dict[str, int | None] | None = None
    num_turns: int | None = None
    permission_denials: list[dict[str, Any]] | None = None
    error: str | None = None
    tool_calls: int = 0


class OutputParser(Protocol):
    """Reads one turn's stdout: ``feed`` it every chunk, then ``finish`` once."""

    def feed(self, data: bytes) -> None: ...

    def finish(self, exit_code: int | None) -> TurnResult: ...


class Driver(Protocol):
    """How one kind of agent is run and read."""

    @property
    def name(self) -> str: ...

    def check(self, command: str) -> str | None:
        """Why this driver cannot run CMD, or None when it can."""
        ...

    def invocation(self, turn: TurnInput) -> Invocation: ...

    def parser(self) -> OutputParser: ...


def cap_head(text: str, limit: int = RESULT_LIMIT) -> str:
    """``text`` as is, or its beginning and a trailing "…", within ``limit`` bytes."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    room = limit - len(CUT_MARK.encode())
    # The cut may split a character; "ignore" drops its broken end.
    return data[:room].decode("utf-8", "ignore") + CUT_MARK


def cap_tail(data: bytes, limit: int = RESULT_LIMIT, *, cut: bool = False) -> str:
    """``data`` as text, or a leading "…" and its last bytes, within ``limit`` bytes.

    ``cut`` says that bytes before ``data`` are already gone, so the mark is due anyway.
    """
    if len(data) <= limit and not cut:
        return data.decode("utf-8", "replace")
    room = limit - len(CUT_MARK.encode())
    tail = data[-room:]
    # The cut may split a character: skip the continuation bytes it left in front.
    skip = 0
    while skip < min(3, len(tail)) and tail[skip] & 0xC0 == 0x80:
        skip += 1
    return CUT_MARK + tail[skip:].decode("utf-8", "replace")


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def plain_input(notifications: Sequence[str], text: str) -> bytes:
    """A shell agent's stdin: one line per notification, no header, then the text."""
    lines = "".join(_one_line(n) + "\n" for n in notifications)
    return (lines + _with_newline(text)).encode()


def framed_input(notifications: Sequence[str], text: str) -> bytes:
    """An LLM agent's stdin: the notifications framed so a model can tell them from the task.

    ``[podd: N notifications]``, one line each, ``[podd: end of notifications]``, then
    the text; without notifications, the text alone.
    """
    if not notifications:
        return _with_newline(text).encode()
    lines = [f"[podd: {len(notifications)} notifications]"]
    lines.extend(_one_line(n) for n in notifications)
    lines.append("[podd: end of notifications]")
    return ("".join(line + "\n" for line in lines) + _with_newline(text)).encode()


class LineBuffer:
    """Splits a byte stream into lines, whatever its chunking, in bounded memory.

    A line longer than ``limit`` bytes is dropped whole (``dropped`` counts them): its
    beginning is discarded as it arrives and reading resumes after its newline.
    """

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self._limit = limit
        self._partial = bytearray()
        self._skipping = False
        self.dropped = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The lines completed by ``data``, without their newline."""
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif len(self._partial) + end - start > self._limit:
                self.dropped += 1
            else:
                self._partial += data[start:end]
                yield bytes(self._partial)
            self._partial.clear()
            start = end + 1
        if not self._skipping:
            self._partial += data[start:]
            if len(self._partial) > self._limit:
                self._partial.clear()
                self._skipping = True
                self.dropped += 1

    def finish(self) -> Iterator[bytes]:
        """The last line, when the stream did not end with a newline."""
        if self._partial and not self._skipping:
            line = bytes(self._partial)
            self._partial.clear()
            yield line


def json_objects(line: bytes) -> list[dict[str, Any]]:
    """The JSON objects on one output line: one object, the objects of an array, or none.

    Anything else (text, a broken line, a bare value) is noise and yields nothing.
    """
    line = line.strip()
    if not line or line[:1] not in (b"{", b"["):
        return []
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return []
    if isinstance(parsed, dict):
        return [parsed]
    if isinstance(parsed, list):
        return [item for item in parsed if isinstance(item, dict)]
    return []


def as_int(value: object) -> int | None:
    """``value`` when it is an integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    """``value`` as a float when it is a number (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def as_str(value: object) -> str | None:
    """``value`` when it is a string, else None."""
    return value if isinstance(value, str) else None
