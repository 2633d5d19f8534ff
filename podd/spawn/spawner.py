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
from podd.spawn import forkserver
from podd.spawn.forkserver import ROOT_SOCKET
from podd.store.paths import short_socket_path
from protocol import ProtocolError, converter, error_from_wire

__all__ = ["Ready", "pod_command", "spawn_detached"]

STARTUP_TIMEOUT = 30.0
STDERR_TAIL = 2000


@attrs.frozen
class Ready:
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


def _fork_from_server(spec: PodSpec, ready_fd: int, stderr_fd: int) -> int | None:
    """Ask the root's fork server to start the pod; its pid, or None if there is none."""
    path_dir = spec.root
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(5.0)
    try:
        with short_socket_path(path_dir, ROOT_SOCKET) as path:
            sock.connect(path)
        request = {"spec": spec_json(spec), "env": pod_environment()}
        socket.send_fds(sock, [orjson.dumps(request)], [ready_fd, stderr_fd])
        answer = sock.recv(64)
        return int(answer) if answer.isdigit() else None
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def begin_root_fork_server(root: str) -> int | None:
    """Start the root's fork server (in a session of its own); the read end of its
    readiness pipe (see ``start_root_fork_server``), or None if it could not start."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        subprocess.Popen(
            [sys.executable, "-m", "podd._forkserver_main", "--root", root, str(write_fd)],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=pod_environment(),
            start_new_session=True,
        ).returncode = 0  # detached: reaped by init, like a root pod
    except OSError:
        os.close(read_fd)
        return None
    finally:
        os.close(write_fd)
    return read_fd


def start_root_fork_server(root: str, timeout: float = STARTUP_TIMEOUT) -> bool:
    """Start the root's fork server and wait until it listens; False if it did not come
    up in time."""
    read_fd = begin_root_fork_server(root)
    return read_fd is not None and _read_line(read_fd, timeout) == b"ready\n"


RunPod = Callable[[list[str], str], int]
"""``podd.runtime.main.main``, which the caller passes in: this module does not import the
runtime it starts."""


def _fork_pod_here(
    spec: PodSpec, run_pod: RunPod, ready_fd: int, stderr_fd: int, close: tuple[int, ...]
) -> int:
    """Fork the pod from this (single-threaded) process, detached: a new session, and a
    second fork so that init, not this short-lived process, is its parent. Returns the
    pod's pid. The pod imports the runtime itself: one interpreter start-up, not two."""
    text, env = spec_json(spec), pod_environment()
    pid_read, pid_write = os.pipe2(os.O_CLOEXEC)
    first = os.fork()
    if first == 0:
        code = 0
        try:
            os.close(pid_read)
            os.setsid()
            second = os.fork()
            if second == 0:
                for fd in (pid_write, *close):
                    os.close(fd)
                forkserver.become_pod(run_pod, text, ready_fd, stderr_fd, env)
            os.write(pid_write, str(second).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(pid_write)
    os.waitpid(first, 0)
    with os.fdopen(pid_read, "rb") as f:
        answer = f.read()
    if not answer.isdigit():
        raise OSError("the pod process could not be forked")
    return int(answer)


def _announce(root: str, name: str) -> None:
    """Ask the root's fork server (if it already listens) to watch a pod it did not fork."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(2.0)
    try:
        with short_socket_path(root, ROOT_SOCKET) as path:
            sock.connect(path)
        sock.send(b"watch " + name.encode())
        sock.recv(16)
    except OSError:
        pass  # not listening yet: it finds the pod when it starts
    finally:
        sock.close()


def spawn_detached(
    spec: PodSpec, timeout: float = STARTUP_TIMEOUT, run_pod: RunPod | None = None
) -> Ready:
    """Start a root pod in its own session and wait for it to listen.

    The root's fork server starts it in a few milliseconds if one runs. Otherwise, with
    ``run_pod``, the pod is forked from this process and the root's fork server started
    beside it (for the next spawns, and to watch this pod); without, the fork server is
    started first and asked. The last resort is exec. Raises ``SpawnError``; on failure
    the process is gone and has removed what it made.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    err_read, err_write = os.pipe2(os.O_CLOEXEC)
    proc: subprocess.Popen[bytes] | None = None
    server_ready: int | None = None
    try:
        pid = None
        if forkserver.available():
            # Through the root's fork server if one runs: then every root pod has a
            # watcher that cleans up after it if it dies.
            pid = _fork_from_server(spec, write_fd, err_write)
            if pid is None and run_pod is not None:
                # It starts while the pod starts; both are waited for below, so that
                # when the spawn returns the fork server is there for the next one.
                server_ready = begin_root_fork_server(spec.root)
                close: tuple[int, ...] = (read_fd, err_read)
                if server_ready is not None:
                    close += (server_ready,)
                pid = _fork_pod_here(spec, run_pod, write_fd, err_write, close)
            elif pid is None and start_root_fork_server(spec.root):
                pid = _fork_from_server(spec, write_fd, err_write)
        if pid is None:
            spec_fd = spec_file(spec)
            try:
                proc = subprocess.Popen(
                    pod_command(spec_fd, write_fd),
                    pass_fds=(write_fd, spec_fd),
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
        os.close(write_fd)
        os.close(err_write)
    line = _read_line(read_fd, timeout)
    if reported_ready(line):
        os.close(err_read)
        if proc is not None:
            # The pod lives on in its own session; init reaps it, not this short-lived
            # process. Marking the Popen done keeps it from warning that it still runs.
            proc.returncode = 0
        if server_ready is not None and _read_line(server_ready, timeout) == b"ready\n":
            # It watches this pod from now on (had it scanned the root before the pod
            # was ready, it would not have seen it).
            _announce(spec.root, spec.name)
        return parse_ready(line, "", "")
    if server_ready is not None:
        os.close(server_ready)
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
