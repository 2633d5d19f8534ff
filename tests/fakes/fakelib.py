"""What the fake CLIs share: the scenario, the shell tool, ids and small I/O helpers.

Stdlib only: the fakes run under whatever ``python3`` is on ``PATH``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, NoReturn

DEFAULT_COST_USD = 0.001
TOOL_TIMEOUT = 600.0
READ_ONLY_COMMANDS = frozenset(
    ["echo", "printf", "ls", "cat", "pwd", "true", "head", "tail", "wc", "grep", "date", "id"]
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()
    sys.exit(code)


def emit(obj: Any) -> None:
    """Print one JSON line and flush it, as the CLIs stream their events."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def uuid7() -> str:
    """A time-ordered UUID (version 7), the shape of Codex's thread ids."""
    millis = int(time.time() * 1000) & ((1 << 48) - 1)
    rand = random.getrandbits(74)
    value = (
        (millis << 80)
        | (0x7 << 76)
        | ((rand >> 62) << 64)
        | (0b10 << 62)
        | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


def read_stdin() -> str:
    """stdin as text, or "" when it is a terminal (nothing was piped in)."""
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.buffer.read().decode("utf-8", "replace")


def load_turn(number: int) -> dict[str, Any]:
    """Turn ``number`` (1-based) of the scenario in ``PODD_FAKE_SCRIPT``, or {}."""
    path = os.environ.get("PODD_FAKE_SCRIPT")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            scenario = json.load(file)
    except (OSError, ValueError) as exc:
        fail(f"fake: cannot read the scenario {path!r}: {exc}")
    turns = scenario.get("turns", []) if isinstance(scenario, dict) else []
    if 1 <= number <= len(turns) and isinstance(turns[number - 1], dict):
        return dict(turns[number - 1])
    return {}


def default_text(number: int, prompt: str) -> str:
    return f"fake reply to user message {number}: {prompt.strip()}"


def steps_of(turn: dict[str, Any], number: int, prompt: str) -> list[dict[str, Any]]:
    """The model's answers for this turn: the scenario's, or one that echoes the prompt."""
    steps = [dict(step) for step in turn.get("steps", []) if isinstance(step, dict)]
    return steps or [{"text": default_text(number, prompt)}]


def usage_of(turn: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, int]:
    """A turn's token usage: the sum of its steps' (as the mock API scripts them per
    step), else the turn's own, else 10 input and 5 output tokens a step."""
    keys = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    )
    per_step = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    if any(isinstance(step.get("usage"), dict) for step in steps):
        total = dict.fromkeys(keys, 0)
        for step in steps:
            scripted = step.get("usage")
            given = scripted if isinstance(scripted, dict) else {}
            for key in keys:
                total[key] += int(given.get(key, per_step[key]))
        return total
    total = {key: per_step[key] * len(steps) for key in keys}
    overall = turn.get("usage")
    if isinstance(overall, dict):
        total.update({key: int(value) for key, value in overall.items() if key in total})
    return total


def pause(turn: dict[str, Any]) -> None:
    delay = turn.get("sleep")
    if isinstance(delay, (int, float)) and delay > 0:
        time.sleep(delay)


def run_shell(command: str, cwd: str) -> tuple[int, str]:
    """Run ``command`` with ``/bin/sh -c`` in ``cwd``: its exit code and its output."""
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, f"Command timed out after {TOOL_TIMEOUT:.0f}s"
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    return done.returncode, output


def is_read_only(command: str) -> bool:
    """A command the real CLI runs without asking: a read-only program, no redirection."""
    words = command.split()
    return bool(words) and words[0] in READ_ONLY_COMMANDS and not set(command) & set(">|;&`$")


def append_jsonl(path: str, records: list[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: str) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records
