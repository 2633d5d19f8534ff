"""The pod's side of its fork server (see ``podd.forkserver``)."""

from __future__ import annotations

import array
import contextlib
import os
import signal
import socket
import subprocess

import trio

__all__ = ["ForkServer", "ForkedProcess"]


class ForkedProcess:
    """A child started by the fork server: ours to wait for and reap (like trio.Process)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)
        self._waiting = False
        self._exited = trio.Event()

    async def wait(self) -> int:
        """Wait for the exit and reap; any number of tasks may wait at once."""
        if self._waiting:
            await self._exited.wait()
        self._waiting = True
        while self.returncode is None:
            await trio.lowlevel.wait_readable(self._pidfd)
            # The pidfd is readable: the process has exited, so this does not block.
            pid, status = os.waitpid(self.pid, os.WNOHANG)  # noqa: ASYNC222
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                os.close(self._pidfd)
                self._exited.set()
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """The pod's handle on its fork server, started on first use."""

    def __init__(self, command: list[str], env: dict[str, str], args: list[str]) -> None:
        """``command`` is run with the control descriptor's number, then ``args``."""
        self._command = command
        self._env = env
        self._args = args
        self._sock: trio.socket.SocketType | None = None
        self._process: trio.Process | None = None
        self._lock = trio.Lock()

    async def _start(self) -> trio.socket.SocketType:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await trio.lowlevel.open_process(
                [*self._command, str(theirs.fileno()), *self._args],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=self._env,
            )
        finally:
            theirs.close()
        sock = trio.socket.from_stdlib_socket(ours)
        if await sock.recv(64) != b"ready":
            sock.close()
            raise OSError("the fork server did not start")
        return sock

    async def fork(self, spec_json: str, ready_fd: int, stderr_fd: int) -> ForkedProcess:
        """Start a pod with ``spec_json``; it reports on ``ready_fd`` as usual."""
        async with self._lock:
            if self._sock is None:
                self._sock = await self._start()
            fds = array.array("i", [ready_fd, stderr_fd])
            await self._sock.sendmsg(
                [spec_json.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
            )
            answer = await self._sock.recv(1024)
        if not answer:
            self._sock = None
            raise OSError("the fork server went away")
        if answer.startswith(b"error"):
            raise OSError(answer.decode())
        return ForkedProcess(int(answer))

    async def aclose(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self._process.wait()
            if self._process.returncode is None:
                self._process.kill()
                await self._process.wait()
