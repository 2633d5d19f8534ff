"""Starting pod processes and waiting until their socket accepts connections.

The new process gets the write end of a pipe (``--ready-fd``). Once it listens it
writes one JSON line there, ``{"ok": true, "pid", "socket", "start_time"}``, or
``{"ok": false, "code", "message"}`` if it could not start; then it closes the pipe.
End of file without a line means it died: the tail of its stderr says why.

Root pods are started by the CLI, without trio (``spawn_detached``), in a session of
their own. Child pods are started by their parent pod (``spawn_child``), as its own OS
children, so that the parent learns of their death at once.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Any

import attrs
import orjson

from podd.spec import PodSpec
from protocol import ProtocolError, converter, error_from_wire

__all__ = ["Ready", "pod_command", "spawn_detached"]

STARTUP_TIMEOUT = 30.0
STDERR_TAIL = 2000


@attrs.frozen
class Ready:
    pid: int
    socket: str
    start_time: float


def pod_command(spec: PodSpec, ready_fd: int) -> list[str]:
    spec_json = orjson.dumps(converter.unstructure(spec)).decode()
    return [sys.executable, "-m", "podd.process", "--ready-fd", str(ready_fd), spec_json]


def pod_environment() -> dict[str, str]:
    """The environment of a pod process: this one's, less the variables of a turn."""
    turn_vars = ("POD_NAME", "POD_SOCKET", "POD_TURN", "POD_PARENT")
    return {k: v for k, v in os.environ.items() if k not in turn_vars}


def parse_ready(line: bytes, stderr_tail: str, exit_hint: str) -> Ready:
    """Turn the readiness line into ``Ready`` or raise the error it reports."""
    if not line.strip():
        detail = stderr_tail.strip() or "(no output)"
        raise SpawnError("spawn_failed", f"the pod process {exit_hint} during start-up: {detail}")
    try:
        data: Any = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise SpawnError("spawn_failed", f"unreadable readiness line {line!r}") from exc
    if not data.get("ok"):
        raise SpawnError(str(data.get("code", "spawn_failed")), str(data.get("message", "")))
    return Ready(pid=int(data["pid"]), socket=str(data["socket"]), start_time=data["start_time"])


class SpawnError(Exception):
    """A pod did not start; ``code`` is a wire error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_wire(self) -> ProtocolError:
        return error_from_wire(self.code, self.message)


def spawn_detached(spec: PodSpec, timeout: float = STARTUP_TIMEOUT) -> Ready:
    """Start a root pod in its own session and wait for it to listen.

    Raises ``SpawnError``; on failure the process is gone and has removed what it made.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            pod_command(spec, write_fd),
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=spec.cwd,
            env=pod_environment(),
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        raise SpawnError("spawn_failed", f"cannot start the pod process: {exc}") from exc
    finally:
        os.close(write_fd)
    assert proc.stderr is not None
    line = b""
    deadline = time.monotonic() + timeout
    with os.fdopen(read_fd, "rb", buffering=0) as ready:
        while b"\n" not in line:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                proc.kill()
                proc.wait()
                raise SpawnError("spawn_failed", f"the pod did not become ready in {timeout:g} s")
            readable, _, _ = select.select([ready], [], [], remaining)
            if not readable:
                continue
            chunk = ready.read(4096)
            if not chunk:
                break
            line += chunk
    if b'"ok":true' in line.replace(b" ", b""):
        proc.stderr.close()
        # The pod lives on in its own session; init reaps it, not this short-lived
        # process. Marking the Popen done keeps it from warning that it still runs.
        proc.returncode = 0
        return parse_ready(line, "", "")
    returncode = proc.wait()
    tail = proc.stderr.read()[-STDERR_TAIL:].decode(errors="replace")
    proc.stderr.close()
    return parse_ready(line, tail, f"exited with status {returncode}")
