"""Child pods seen from their parent: starting them (as OS children) and stopping them."""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Protocol

import trio

from podd.client.asynchronous import async_call
from podd.core.spec import PodSpec
from podd.errors import PodFailed, PodUnreachable
from podd.proc.facts import is_alive
from podd.spawn.forkclient import ForkServer
from podd.spawn.spawner import (
    STARTUP_TIMEOUT,
    STDERR_TAIL,
    Ready,
    SpawnError,
    parse_ready,
    pod_command,
    pod_environment,
    reported_ready,
    spec_file,
    spec_json,
)
from podd.store.leftovers import cleanup_pod_dir
from protocol import ShutdownParams

__all__ = ["ChildProcess", "spawn_child", "stop_child", "wait_gone"]

log = logging.getLogger(__name__)


class ChildProcess(Protocol):
    """A child pod's process, as its parent holds it (``trio.Process`` or ``ForkedProcess``)."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


async def _start_process(
    spec: PodSpec, ready_fd: int, stderr_fd: int, forkserver: ForkServer | None
) -> ChildProcess:
    if forkserver is not None:
        try:
            return await forkserver.fork(spec_json(spec), ready_fd, stderr_fd)
        except OSError as exc:
            log.warning("fork server failed (%s); starting the child with exec", exc)
    spec_fd = spec_file(spec)
    try:
        return await trio.lowlevel.open_process(
            pod_command(spec_fd, ready_fd),
            pass_fds=(ready_fd, spec_fd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr_fd,
            cwd=spec.cwd,
            env=pod_environment(),
        )
    finally:
        os.close(spec_fd)


async def spawn_child(
    spec: PodSpec,
    on_started: Callable[[int], None] = lambda pid: None,
    forkserver: ForkServer | None = None,
) -> tuple[ChildProcess, Ready]:
    """Start a child pod and wait until it listens. Raises ``SpawnError``.

    With a ``forkserver`` the child is forked from it (falling back to ``exec`` if the
    fork server fails). ``on_started`` gets the pid as soon as the process exists.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    err_read, err_write = os.pipe2(os.O_CLOEXEC)
    try:
        proc = await _start_process(spec, write_fd, err_write, forkserver)
    except OSError as exc:
        os.close(read_fd)
        os.close(err_read)
        raise SpawnError("spawn_failed", f"cannot start the pod process: {exc}") from exc
    finally:
        os.close(write_fd)
        os.close(err_write)
    on_started(proc.pid)
    stderr = trio.lowlevel.FdStream(err_read)
    line = b""
    try:
        with trio.fail_after(STARTUP_TIMEOUT):
            async with trio.lowlevel.FdStream(read_fd) as ready:
                while b"\n" not in line:
                    chunk = await ready.receive_some(4096)
                    if not chunk:
                        break
                    line += chunk
        if reported_ready(line):
            await stderr.aclose()
            return proc, parse_ready(line, "", "")
        with trio.fail_after(STARTUP_TIMEOUT):
            tail = await _read_all(stderr)
            code = await proc.wait()
        return proc, parse_ready(line, tail[-STDERR_TAIL:], f"exited with status {code}")
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            await stderr.aclose()
        cleanup_pod_dir(spec.root, spec.name, proc.pid)
        if isinstance(exc, trio.TooSlowError):
            raise SpawnError(
                "spawn_failed", f"the pod did not become ready within {STARTUP_TIMEOUT:g} s"
            ) from exc
        raise


async def _read_all(stream: trio.abc.ReceiveStream) -> str:
    chunks = []
    while data := await stream.receive_some(65536):
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


async def wait_gone(pid: int, started: float, timeout: float) -> bool:
    """Wait until ``pid`` (started at ``started``) is gone; False if ``timeout`` passed."""
    with trio.move_on_after(timeout):
        try:
            pidfd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            return True
        try:
            if not is_alive(pid, started):
                return True
            await trio.lowlevel.wait_readable(pidfd)
            return True
        finally:
            os.close(pidfd)
    return not is_alive(pid, started)


async def stop_child(
    socket: str, pid: int, started: float, params: ShutdownParams, process: ChildProcess | None
) -> str:
    """Ask a child to stop its subtree and wait until its process is gone.

    Returns the child's outcome. If it does not answer or outlives ``params.timeout``, it
    is SIGKILLed (``force_killed``), or left running with ``kill`` false (``timeout``).
    """
    deadline = trio.current_time() + params.timeout
    outcome = "clean"
    child_timeout = max(0.2, params.timeout - 0.5)
    try:
        result = await async_call(
            socket,
            "shutdown",
            ShutdownParams(timeout=child_timeout, drain=params.drain, kill=params.kill),
            timeout=params.timeout,
        )
        outcome = str(result.get("outcome", "clean")) if isinstance(result, dict) else "clean"
    except (PodUnreachable, PodFailed) as exc:
        log.warning("stopping child at %s: %s", socket, exc)
    remaining = max(0.0, deadline - trio.current_time())
    if process is not None:
        with trio.move_on_after(remaining if remaining > 0 else 0.05):
            await process.wait()
        gone = process.returncode is not None
    else:
        gone = await wait_gone(pid, started, remaining if remaining > 0 else 0.05)
    if gone:
        return outcome
    if not params.kill:
        return "timeout"
    if is_alive(pid, started):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        await process.wait()
    else:
        await wait_gone(pid, started, math.inf)
    return "force_killed"
