"""The pod's handle on its fork server takes over the one forked with the pod, and falls
back to starting one with exec when that one is not there to serve; a forked process
is waited for and reaped however its waiters come and go."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from podd.spawn import forked_pod
from podd.spawn.forkclient import ForkedProcess, ForkServer
from podd.spawn.spawner import pod_environment

StandIn = tuple[socket.socket, subprocess.Popen[bytes]]


def exec_command() -> list[str]:
    return [sys.executable, "-m", "podd._forkserver_main"]


def reaped(pid: int) -> bool:
    """Whether ``pid``, a child of this process, has been reaped already."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture
def prestarted() -> Iterator[StandIn]:
    """Stand-in for a fork server forked with the pod: a child process and the pod's
    end of a socket pair, handed over as ``become_pod`` does."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child = subprocess.Popen(["sleep", "60"])
    forked_pod._prestarted = (child.pid, ours.detach())
    try:
        yield theirs, child
    finally:
        forked_pod._prestarted = None
        theirs.close()
        if not reaped(child.pid):
            child.kill()
            child.wait()
        child.returncode = -9  # reaped by the handle: Popen must not wait for it


async def ends_at_hangup(stand_in: StandIn) -> None:
    """Like a fork server, the stand-in ends when its end of the pair reads end-of-file."""
    theirs, child = stand_in
    while await trio.to_thread.run_sync(theirs.recv, 64):
        pass
    child.kill()


class TestPrestarted:
    """The fork server forked with the pod is the one used, if it says it is ready."""

    async def test_it_is_taken_over_once(self, prestarted: StandIn) -> None:
        theirs, child = prestarted
        server = ForkServer(exec_command(), pod_environment(), ["p", "/nowhere"])
        assert forked_pod.take_prestarted() is None  # the handle has it now
        theirs.send(b"ready")
        with trio.fail_after(30):
            sock = await server._start()
            await sock.send(b"hello")
            assert b"hello" == theirs.recv(64)
            server._sock = sock
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ends_at_hangup, prestarted)
                await server.aclose()
        assert reaped(child.pid)

    async def test_one_that_gave_up_is_reaped_and_one_started_with_exec(
        self, prestarted: StandIn
    ) -> None:
        theirs, child = prestarted
        server = ForkServer(exec_command(), pod_environment(), ["p", "/nowhere"])
        theirs.close()  # it ended without a word
        with trio.fail_after(60):
            server._sock = await server._start()
            assert reaped(child.pid)
            await server.aclose()

    async def test_an_unused_one_ends_with_the_handle(self, prestarted: StandIn) -> None:
        _, child = prestarted
        server = ForkServer(exec_command(), pod_environment(), ["p", "/nowhere"])
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ends_at_hangup, prestarted)
                await server.aclose()
        assert reaped(child.pid)


class TestForkedProcess:
    """Any number of tasks wait for a forked process; a cancelled one leaves the rest."""

    async def test_a_cancelled_waiter_leaves_the_others_waiting(self, prestarted: StandIn) -> None:
        _, child = prestarted
        forked_pod.take_prestarted()
        process = ForkedProcess(child.pid)
        codes: list[int] = []
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                with trio.move_on_after(0.05):
                    await process.wait()  # the one on the pidfd, cancelled

                async def waiter() -> None:
                    codes.append(await process.wait())

                for _ in range(2):
                    nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                process.kill()
        assert [-9, -9] == codes
        assert reaped(child.pid)
