"""The pod's side of its fork server (see ``podd.spawn.pod_forkserver``)."""

from __future__ import annotations

import array
import contextlib
import os
import signal
import socket
import subprocess

import trio

from podd.spawn.forked_pod import take_prestarted

__all__ = ["ForkServer", "ForkedProcess"]


class ForkedProcess:
    """A child started by the fork server: ours to wait for and reap (like trio.Process)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)
        self._waiting = False
        self._changed = trio.Event()

    async def wait(self) -> int:
        """Wait for the exit and reap; any number of tasks may wait at once, and any of
        them may be cancelled: one waits on the pidfd, the others until it is done (or
        was cancelled, and another takes over)."""
        while self.returncode is None:
            if self._waiting:
                await self._changed.wait()
                continue
            self._waiting = True
            try:
                await trio.lowlevel.wait_readable(self._pidfd)
                # The pidfd is readable: the process has exited, so this does not block.
                pid, status = os.waitpid(self.pid, os.WNOHANG)  # noqa: ASYNC222
                if pid == self.pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
                    os.close(self._pidfd)
            finally:
                self._waiting = False
                self._changed.set()
                self._changed = trio.Event()
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """The pod's handle on its fork server: the one forked before the pod's event loop
    started (``podd.spawn.forked_pod.take_prestarted``), if there is one, else one started
    with exec on first use."""

    def __init__(self, command: list[str], env: dict[str, str], args: list[str]) -> None:
        """``command`` is run with the control descriptor's number, then ``args``."""
        self._command = command
        self._env = env
        self._args = args
        self._sock: trio.socket.SocketType | None = None
        self._process: trio.Process | ForkedProcess | None = None
        self._lock = trio.Lock()
        self._prestarted = take_prestarted()

    async def _start(self) -> trio.socket.SocketType:
        if self._process is not None:
            # The one before went away: reap it.
            self._process.kill()
            await self._process.wait()
        prestarted, self._prestarted = self._prestarted, None
        if prestarted is not None:
            pid, fd = prestarted
            sock = trio.socket.from_stdlib_socket(socket.socket(fileno=fd))
            self._process = ForkedProcess(pid)
            if await sock.recv(64) == b"ready":
                return sock
            # It gave up (or died): reap it, and start one with exec instead.
            sock.close()
            self._process.kill()
            await self._process.wait()
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
            try:
                await self._sock.sendmsg(
                    [spec_json.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
                )
                answer = await self._sock.recv(1024)
            except OSError:
                answer = b""
            if not answer:
                # It went away (killed, say): the next fork starts another one.
                self._sock.close()
                self._sock = None
                raise OSError("the fork server went away")
        if answer.startswith(b"error"):
            raise OSError(answer.decode())
        return ForkedProcess(int(answer))

    async def aclose(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._prestarted is not None:
            # Never used: it ends when its end of the pair reads end-of-file.
            pid, fd = self._prestarted
            self._prestarted = None
            os.close(fd)
            self._process = ForkedProcess(pid)
        if self._process is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self._process.wait()
            if self._process.returncode is None:
                self._process.kill()
                await self._process.wait()
