"""A fork server: starts a pod's children in milliseconds instead of ~150 ms.

Starting a pod process costs an interpreter and its imports, nearly all of it trio's.
A pod that spawns children starts, on first need, a fork server: its own OS child,
a plain (no event loop) Python process that has imported the pod runtime once and
forks a new process for each child. The fork uses ``clone(CLONE_PARENT)``, so the new
pod's OS parent is the pod that asked, not the fork server: exactly as if it had been
started with ``exec``, the parent learns of its death at once and reaps it.

The pod talks to its fork server over a ``SOCK_SEQPACKET`` socket pair: one message
per request (the PodSpec as JSON, with the readiness pipe and a stderr pipe attached
as ``SCM_RIGHTS``), one message back (the new pid). The fork server exits when the
pod's end of the pair closes, which includes the pod's death.

Where ``clone`` cannot be called this way (an unknown architecture), ``available()``
is false and children are started with ``exec`` as before.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import traceback

import trio

__all__ = ["ForkServer", "ForkedProcess", "available"]

CLONE_PARENT = 0x00008000
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())


def available() -> bool:
    return _SYS_CLONE is not None and os.environ.get("PODD_NO_FORKSERVER", "") == ""


# --- The fork-server process ------------------------------------------------------


def _clone_parent() -> int:
    """``fork()``, but the child's parent is our parent. Returns 0 in the child.

    CPython's own fork bookkeeping (locks, thread state) is run around the raw
    syscall, as ``os.fork`` does; the server has a single thread.
    """
    api = ctypes.pythonapi
    libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held across clone
    api.PyOS_BeforeFork()
    pid = libc.syscall(_SYS_CLONE, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return int(pid)


def _set_process_name(name: str) -> None:
    PR_SET_NAME = 15
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _run_child(spec_json: str, ready_fd: int, stderr_fd: int) -> None:
    """In the new process: become the pod. Never returns."""
    code = 1
    try:
        spec = json.loads(spec_json)
        os.chdir(spec["cwd"])
        # Our argv is the fork server's; at least `ps -o comm` and top name the pod.
        _set_process_name(f"podd {spec['name']}")
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        from podd.process import main

        code = main(["--ready-fd", str(ready_fd), spec_json])
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def serve(control_fd: int) -> None:
    """The fork server's main loop: one fork per request, until the pod hangs up."""
    import podd.process  # noqa: F401  (the point: import the runtime once, here)

    control = socket.socket(fileno=control_fd)
    control.sendall(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
        except OSError:
            return
        if not message:
            return
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            control.sendall(b"error: expected two descriptors")
            continue
        ready_fd, stderr_fd = fds
        try:
            pid = _clone_parent()
        except OSError as exc:
            os.close(ready_fd)
            os.close(stderr_fd)
            control.sendall(f"error: clone failed: {exc}".encode())
            continue
        if pid == 0:
            control.close()
            _run_child(message.decode(), ready_fd, stderr_fd)
        os.close(ready_fd)
        os.close(stderr_fd)
        control.sendall(str(pid).encode())


# --- The pod's side -----------------------------------------------------------------


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

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self._command = command
        self._env = env
        self._sock: trio.socket.SocketType | None = None
        self._process: trio.Process | None = None
        self._lock = trio.Lock()

    async def _start(self) -> trio.socket.SocketType:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await trio.lowlevel.open_process(
                [*self._command, str(theirs.fileno())],
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


if __name__ == "__main__":
    serve(int(sys.argv[1]))
