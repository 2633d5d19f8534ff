"""One agent turn: ``/bin/sh -c CMD``, confined, in its own process group, input on stdin.

stdout and stderr go, apart, to the sinks the caller gives. A turn ends exactly once, as
finished (exit 0) or errored (non-zero exit, a signal, the turn timeout, or a stop).
When it ends, whatever is left of its process group is killed, so no process of a
turn outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping

import attrs
import trio

from podd.proc.facts import kill_group, signal_name
from podd.sandbox import Confinement
from protocol.values import Value

__all__ = ["OutputLog", "TurnHandle", "TurnOutcome", "run_turn"]

OUTPUT_GRACE = 0.5
"""Seconds a turn's output pipe may stay open after its process group is gone."""

OUTPUT_CAP = 8 * 1024 * 1024
"""An output file past this many bytes is rotated to ``output.log.1`` (one old file kept)."""


class OutputLog:
    """The pod's output file: appended to, rotated past ``cap`` bytes."""

    def __init__(self, path: str, cap: int = OUTPUT_CAP) -> None:
        self.path = path
        self.cap = cap
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes | bytearray) -> None:
        if self._size + len(data) > self.cap and self._size > 0:
            os.close(self._fd)
            os.replace(self.path, self.path + ".1")
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
            self._size = 0
        os.write(self._fd, data)
        self._size += len(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


@attrs.frozen(repr=False, eq=False)
class TurnOutcome(Value):
    turn: int
    finished: bool
    message: str
    exit_code: int | None = None
    signal: str | None = None
    duration: float = 0.0
    timed_out: bool = False
    cancelled: bool = False


class TurnHandle:
    """Lets the pod stop a turn in flight: SIGTERM to its process group, then, if it is
    still there after ``grace`` seconds, SIGKILL (``kill``) or leave it running."""

    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.pgid = 0
        self.cancel_reason: str | None = None
        self.grace = 2.0
        self.kill = True
        self.force_killed = False
        self.left_running = trio.Event()
        """Set when a cancelled turn outlived its grace and ``kill`` was false."""
        self._scope = trio.CancelScope()

    def cancel(self, reason: str, *, grace: float = 2.0, kill: bool = True) -> None:
        if self.cancel_reason is None:
            self.cancel_reason, self.grace, self.kill = reason, grace, kill
        elif self.left_running.is_set() and kill:
            # An earlier stop (--no-kill) left it running; this one may kill.
            self.force_killed = True
            kill_group(self.pgid, signal.SIGKILL)
        self._scope.cancel()


async def run_turn(
    handle: TurnHandle,
    *,
    confinement: Confinement,
    cwd: str,
    env: Mapping[str, str],
    stdin_data: bytes,
    timeout: float,
    stdout: Callable[[bytes], None],
    stderr: Callable[[bytes], None],
    on_start: Callable[[int], None] = lambda pid: None,
    what: str = "",
) -> TurnOutcome:
    """Run one turn to its end and say how it ended. Never raises for the agent's sake.

    The process is started as ``confinement`` says, in a new process group of its own
    (set before exec, so that the group can be killed from the first moment). The
    caller closes ``confinement`` after the turn. ``on_start`` is called once the
    agent's command runs, that is once the process is confined; a stop requested
    before then reaches the command, not the wrapper. If confining fails, the turn
    errors with the wrapper's message (it is in the output too) and exit status 126.
    A handle may run several processes in a row (a loop's iterations, a gate): one
    cancelled already starts none. ``what`` names the process in messages (default
    ``turn N``).
    """
    what = what or f"turn {handle.turn}"
    started = trio.current_time()
    handle._scope = trio.CancelScope()
    if handle.cancel_reason is not None:
        confinement.spawned()
        return TurnOutcome(
            handle.turn, False, f"{what} cancelled: {handle.cancel_reason}", cancelled=True
        )
    try:
        proc = await trio.lowlevel.open_process(
            confinement.argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=confinement.pass_fds,
            process_group=0,
        )
    except OSError as exc:
        return TurnOutcome(handle.turn, False, f"{what}: could not start: {exc}")
    finally:
        confinement.spawned()
    handle.pgid = proc.pid
    timed_out = False
    out_done, err_done = trio.Event(), trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_feed_stdin, proc, stdin_data)
            assert proc.stdout is not None and proc.stderr is not None
            nursery.start_soon(_pump, proc.stdout, stdout, out_done)
            nursery.start_soon(_pump, proc.stderr, stderr, err_done)
            with trio.move_on_after(timeout) as timeout_scope:
                if confinement.status_fd is not None:
                    await trio.lowlevel.wait_readable(confinement.status_fd)
                on_start(proc.pid)
                with handle._scope:
                    await proc.wait()
            timed_out = timeout_scope.cancelled_caught
            if proc.returncode is None and handle.cancel_reason is not None and not timed_out:
                kill_group(proc.pid, signal.SIGTERM)
                with trio.move_on_after(handle.grace):
                    await proc.wait()
                if proc.returncode is None:
                    if handle.kill:
                        handle.force_killed = True
                    else:
                        handle.left_running.set()
                        await proc.wait()
            # The turn is over: nothing of its process group may outlive it.
            kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            # A process that left the group (setsid) may still hold the output pipe
            # open: what it writes within a short grace is kept, then the turn ends
            # regardless.
            with trio.move_on_after(OUTPUT_GRACE):
                await out_done.wait()
                await err_done.wait()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    duration = trio.current_time() - started
    code = proc.returncode
    assert code is not None
    if timed_out:
        return TurnOutcome(
            handle.turn,
            False,
            f"{what} timed out after {timeout:g} s (its process group was killed)",
            None,
            "SIGKILL",
            duration,
            timed_out=True,
        )
    if handle.cancel_reason is not None and code != 0:
        return TurnOutcome(
            handle.turn,
            False,
            f"{what} cancelled: {handle.cancel_reason}",
            code if code >= 0 else None,
            signal_name(-code) if code < 0 else None,
            duration,
            cancelled=True,
        )
    if code == 0:
        return TurnOutcome(handle.turn, True, f"{what} finished", 0, None, duration)
    failure = confinement.failure()
    if failure is not None:
        return TurnOutcome(handle.turn, False, f"{what} not run: {failure}", code, None, duration)
    if code < 0:
        name = signal_name(-code)
        return TurnOutcome(handle.turn, False, f"{what} killed by {name}", None, name, duration)
    return TurnOutcome(
        handle.turn, False, f"{what} exited with status {code}", code, None, duration
    )


async def _feed_stdin(proc: trio.Process, data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        async with proc.stdin:
            if data:
                await proc.stdin.send_all(data)


async def _pump(
    stream: trio.abc.ReceiveStream, sink: Callable[[bytes], None], done: trio.Event
) -> None:
    try:
        async with stream:
            while True:
                try:
                    data = await stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if not data:
                    return
                sink(bytes(data))
    finally:
        done.set()
