"""Running the ``podd`` CLI for a tool, and reading what it says when it fails.

``CliRunner.run`` starts ``python -m podd --root ROOT COMMAND ARGS...`` with the
environment of the pod the server acts as, and returns its exit status and output.
``failure_of`` turns a failed run into ``(code, message)``; it is a pure function.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

__all__ = [
    "CliRunner",
    "Completed",
    "Failure",
    "command_env",
    "failure_of",
    "json_document",
]

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 1, 2, 3

_CODE_RE = re.compile(r"\s*\[([a-z][a-z0-9_]*)\]\s*$")

_TURN_VARS = ("POD_NAME", "POD_SOCKET", "POD_TURN", "POD_PARENT")
"""What the environment of a turn says about the pod it runs in."""


@attrs.frozen
class Completed:
    """How one CLI run ended: its exit status (None: it outlived its bound and was
    ended), stdout and stderr."""

    command: str
    status: int | None
    stdout: str
    stderr: str
    bound: float


@attrs.frozen
class Failure:
    """A failed run, told to a model: a podd error code and the CLI's message."""

    code: str
    message: str

    def text(self) -> str:
        return f"{self.code}: {self.message}"


def command_env(environ: Mapping[str, str], root: str, as_pod: str | None) -> dict[str, str]:
    """The environment a command runs in, acting as ``as_pod`` (None: for root pods).

    The server may itself run inside a pod's turn: if it acts as that pod, the turn's
    variables are kept; otherwise they are replaced, so no command takes another pod's
    turn for its own.
    """
    env = dict(environ)
    env["PODD_ROOT"] = root
    if as_pod is not None and environ.get("POD_NAME") == as_pod:
        return env
    for var in _TURN_VARS:
        env.pop(var, None)
    if as_pod is not None:
        env["POD_NAME"] = as_pod
        env["POD_SOCKET"] = os.path.join(root, as_pod, "sock")
    return env


def json_document(text: str) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None if it is not one."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _last_line(text: str, prefix: str = "") -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(prefix):
            return line
    return None


def failure_of(run: Completed) -> Failure:
    """What went wrong in a run that did not succeed.

    The CLI explains a failure on stderr as ``podd: MESSAGE [CODE]`` (the code is there
    when a pod refused); argparse as ``usage: ...`` then ``podd CMD: error: MESSAGE``.
    Without a code in brackets, the exit status gives it.
    """
    if run.status is None:
        return Failure(
            "timeout",
            f"podd {run.command} did not end within {run.bound:g} s and was stopped",
        )
    line = _last_line(run.stderr, "podd: ") or _last_line(run.stderr, "podd ")
    if line is not None and line.startswith("podd: "):
        message = line.removeprefix("podd: ")
    elif line is not None and ": error: " in line:
        message = line.split(": error: ", 1)[1]
    else:
        # No line of podd's own: a crash's last traceback line, or what the command
        # printed on stdout (a turn that errored, in the CLI's human output).
        message = (
            _last_line(run.stderr)
            or _last_line(run.stdout)
            or f"podd {run.command} exited with status {run.status}"
        )
    found = _CODE_RE.search(message)
    if found is not None:
        return Failure(found.group(1), message[: found.start()])
    if run.status == EXIT_USAGE:
        code = "invalid_params"
    elif run.status == EXIT_NOT_RUNNING:
        code = "not_found"
    else:
        code = "failed"
    return Failure(code, message)


class CliRunner:
    """Runs ``podd`` commands under one root, acting as one pod (or for root pods)."""

    def __init__(
        self,
        root: str,
        as_pod: str | None,
        *,
        python: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.as_pod = as_pod
        self.python = python
        self.env = command_env(os.environ if environ is None else environ, root, as_pod)

    def argv(self, command: str, args: Sequence[str]) -> list[str]:
        return [self.python, "-m", "podd", "--root", self.root, command, *args]

    async def run(self, command: str, args: Sequence[str], *, bound: float) -> Completed:
        """Run ``podd COMMAND ARGS...``; past ``bound`` seconds it is ended (SIGTERM,
        then SIGKILL) and the run has no status. Its stdin is empty."""
        status: int | None = None
        stdout = stderr = b""
        with trio.move_on_after(bound):
            proc = await trio.run_process(
                self.argv(command, args),
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=self.env,
            )
            status, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        return Completed(
            command=command,
            status=status,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
            bound=bound,
        )
