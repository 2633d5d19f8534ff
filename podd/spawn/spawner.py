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

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs
import orjson

from podd.core.spec import PodSpec
from podd.spawn.detached import fork_detached
from podd.spawn.forked_pod import RunPod, become_pod
from podd.spawn.forkserver import (
    ask_root_server,
    available,
    claim_root_socket,
    root_server_may_run,
)
from podd.spawn.prestart import PrestartedPod
from protocol import ProtocolError, converter, error_from_wire
from protocol.values import Value

__all__ = ["Ready", "RunPod", "pod_command", "spawn_detached"]

STARTUP_TIMEOUT = 30.0
STDERR_TAIL = 2000


@attrs.frozen(repr=False, eq=False)
class Ready(Value):
    pid: int
    socket: str
    start_time: float


def spec_json(spec: PodSpec) -> str:
    return orjson.dumps(converter.unstructure(spec)).decode()


def spec_file(spec: PodSpec) -> int:
    """A descriptor of an anonymous file holding the spec, rewound: the new process
    reads its spec from it. The spec (agent command, task) never goes on a command
    line, which any local user can read in ``/proc/PID/cmdline``."""
    fd = os.memfd_create("podd-spec", os.MFD_CLOEXEC)
    data = spec_json(spec).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def pod_command(spec_fd: int, ready_fd: int) -> list[str]:
    """The command line of a pod started with exec: descriptor numbers only."""
    return [
        sys.executable,
        "-m",
        "podd._pod_main",
        "--ready-fd",
        str(ready_fd),
        "--spec-fd",
        str(spec_fd),
    ]


def pod_environment() -> dict[str, str]:
    """The environment of a pod process: this one's, less the variables of a turn."""
    turn_vars = ("POD_NAME", "POD_SOCKET", "POD_TURN", "POD_PARENT")
    return {k: v for k, v in os.environ.items() if k not in turn_vars}


def reported_ready(line: bytes) -> bool:
    """Whether the readiness line says the pod is ready (anything else is a failure)."""
    try:
        return bool(orjson.loads(line).get("ok")) if line.strip() else False
    except (orjson.JSONDecodeError, AttributeError):
        return False


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


def _fork_pod_here(
    spec: PodSpec,
    env: dict[str, str],
    run_pod: RunPod,
    fds: tuple[int, int],
    close: tuple[int, ...],
    argv: tuple[str, ...],
) -> int:
    """Fork the pod of ``spec`` from this (single-threaded) process, detached
    (``fork_detached``). ``fds`` are its readiness and stderr pipes; ``close`` what it
    must not keep. Returns the pod's pid. The pod imports the runtime itself: one
    interpreter start-up, not two; it takes the spec as it is here, not encoded and
    decoded again."""
    return fork_detached(lambda: become_pod(run_pod, spec, *fds, env, argv=argv), close)


def _ask_or_claim_root_server(
    root: str, request: Callable[[], bytes], fds: tuple[int, int]
) -> tuple[int | None, tuple[socket.socket, int] | None]:
    """Through the root's fork server if one runs (then every root pod has a watcher
    that cleans up after it if it dies): ``(pid, None)``. Else ``(None, (socket,
    inode))``: the root's fork-server socket, bound and listening here for the server
    that the new pod forks off itself (``podd.spawn.root_forkserver``); None for it if
    it cannot be bound (the pod starts all the same, without a server). ``request``
    makes what the server is sent, only if one may be there to read it."""
    pid = ask_root_server(root, request(), *fds) if root_server_may_run(root) else None
    if pid is not None:
        return pid, None
    try:
        claimed = claim_root_socket(root)
        if claimed is None:
            # A server came up meanwhile: ask it; if it does not answer, take its place.
            pid = ask_root_server(root, request(), *fds)
            if pid is not None:
                return pid, None
            claimed = claim_root_socket(root, replace=True)
    except OSError:
        return None, None
    return None, claimed


def spawn_detached(
    spec: PodSpec,
    timeout: float = STARTUP_TIMEOUT,
    run_pod: RunPod | None = None,
    prestarted: PrestartedPod | None = None,
) -> Ready:
    """Start a root pod in its own session and wait for it to listen.

    The root's fork server starts it in a few milliseconds if one runs. Otherwise the
    pod is ``prestarted`` (a process forked earlier that has imported the runtime
    meanwhile, ``podd.spawn.prestart``), or forked from this process with ``run_pod``,
    or else started with exec; the root's fork-server socket is bound here and handed to
    the pod, which forks the server off itself once it has imported the runtime: the
    socket listens before the pod is ready, and no second interpreter imports the
    runtime. ``prestarted`` is killed if it is not used. Raises ``SpawnError``; on
    failure the process is gone and has removed what it made.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    err_read, err_write = os.pipe2(os.O_CLOEXEC)
    proc: subprocess.Popen[bytes] | None = None
    listener: socket.socket | None = None
    try:
        pid = None
        argv: tuple[str, ...] = ()
        if available():
            env = pod_environment()

            def request() -> bytes:
                return orjson.dumps({"spec": spec_json(spec), "env": env})

            pid, claimed = _ask_or_claim_root_server(spec.root, request, (write_fd, err_write))
            if claimed is not None:
                listener, identity = claimed
                argv = ("--root-server-fd", str(listener.fileno()), "--root-server-ino")
                argv += (str(identity),)
            fds = (write_fd, err_write)
            if pid is None and prestarted is not None:
                server = None if claimed is None else (claimed[0].fileno(), claimed[1])
                pid = prestarted.hand_over(spec, env, fds, server)
            if pid is None and run_pod is not None:
                pid = _fork_pod_here(spec, env, run_pod, fds, (read_fd, err_read), argv)
        if pid is None:
            spec_fd = spec_file(spec)
            keep = [write_fd, spec_fd] + ([listener.fileno()] if listener is not None else [])
            try:
                proc = subprocess.Popen(
                    [*pod_command(spec_fd, write_fd), *argv],
                    pass_fds=keep,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err_write,
                    cwd=spec.cwd,
                    env=pod_environment(),
                    start_new_session=True,
                )
            finally:
                os.close(spec_fd)
    except OSError as exc:
        os.close(read_fd)
        os.close(err_read)
        raise SpawnError("spawn_failed", f"cannot start the pod process: {exc}") from exc
    finally:
        if prestarted is not None:
            prestarted.cancel()  # not used (a no-op if it was)
        os.close(write_fd)
        os.close(err_write)
        if listener is not None:
            listener.close()  # the pod holds it now
    line = _read_line(read_fd, timeout)
    if reported_ready(line):
        os.close(err_read)
        if proc is not None:
            # The pod lives on in its own session; init reaps it, not this short-lived
            # process. Marking the Popen done keeps it from warning that it still runs.
            proc.returncode = 0
        return parse_ready(line, "", "")
    if not line:
        # Timed out, or died without a word: make sure it is gone before reading what
        # it wrote (its stderr closes with it).
        if proc is not None and proc.poll() is None:
            proc.kill()
        elif pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with os.fdopen(err_read, "rb") as err:
        tail = err.read()[-STDERR_TAIL:].decode(errors="replace")
    hint = f"exited with status {proc.wait()}" if proc is not None else "exited"
    return parse_ready(line, tail, hint)


def _read_line(fd: int, timeout: float) -> bytes:
    """The readiness line (or what came before EOF, or b"" on time-out); closes ``fd``."""
    line = b""
    deadline = time.monotonic() + timeout
    with os.fdopen(fd, "rb", buffering=0) as ready:
        while b"\n" not in line:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b""
            readable, _, _ = select.select([ready], [], [], remaining)
            if not readable:
                continue
            chunk = ready.read(4096)
            if not chunk:
                break
            line += chunk
    return line
