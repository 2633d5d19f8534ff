"""``podd stop`` end to end (issue 7): every outcome produced on purpose, with its
documented exit status; children stop before their parent; nothing of the subtree
is left afterwards.

Outcomes (PRODUCT.md section 2): ``clean``, ``drained_with_discards`` and
``force_killed`` exit 0; ``timeout`` (only with ``--no-kill``) exits 1 and leaves the
pod running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from collections.abc import Iterator
from functools import partial
from typing import Any

import trio

from podd.proc.facts import is_alive
from tests.conftest import CliResult, Podd, pod_processes
from tests.e2e.support import result_of, wait_for


def gated_agent(workdir: str, name: str = "gate") -> tuple[str, str]:
    """An agent script whose turn lasts until the test creates the returned release
    file, then echoes its input; returns ``(agent, release)``."""
    release = os.path.join(workdir, f"{name}.release")
    agent = os.path.join(workdir, f"{name}.agent")
    with open(agent, "w") as f:
        f.write(f"#!/bin/sh\nwhile [ ! -e {release} ]; do sleep 0.02; done\nexec cat\n")
    os.chmod(agent, 0o755)
    return agent, release


async def spawn(podd: Podd, *args: str) -> dict[str, Any]:
    result = await podd("spawn", *args, "--json")
    assert (0, "") == (result.code, result.stderr), result
    document: dict[str, Any] = result.json()
    return document


def leftovers(root: str) -> list[str]:
    """Directories and sockets under ``root`` (``.stopped.*`` records are files; ``.kept``,
    where stopped pods keep their output and results, is left out)."""
    found = []
    for directory, dirs, files in os.walk(root):
        if directory == root:
            dirs[:] = [d for d in dirs if d != ".kept"]
        found += [os.path.join(directory, d) for d in dirs]
        found += [
            os.path.join(directory, f)
            for f in files
            if stat.S_ISSOCK(os.lstat(os.path.join(directory, f)).st_mode)
        ]
    return found


def outcome(result: CliResult) -> tuple[int, str]:
    return result.code, result.stdout.strip()


async def status(podd: Podd, name: str) -> dict[str, Any]:
    result: dict[str, Any] = await result_of(podd.sock(name), "status")
    return result


async def in_state(podd: Podd, name: str, state: str) -> bool:
    return state == (await status(podd, name))["state"]


async def gone(pid: int) -> bool:
    return not is_alive(pid, 0.0)


def touch(path: str) -> None:
    with open(path, "w"):
        pass


@contextlib.contextmanager
def continued_at_exit(pid: int) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


class TestClean:
    """An idle tree stops ``clean`` (exit 0), children before their parent, and leaves
    no process, socket or directory."""

    async def test_children_exit_before_their_parent(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            pids = {"root": (await spawn(podd, "root"))["pid"]}
            pids["a"] = (await spawn(podd, "a", "--parent", "root", "--agent", "true"))["pid"]
            pids["b"] = (await spawn(podd, "b", "--parent", "a"))["pid"]
            pids["c"] = (await spawn(podd, "c", "--parent", "root"))["pid"]
            exited: dict[str, float] = {}
            pidfds = {name: os.pidfd_open(pid) for name, pid in pids.items()}

            async def watch(name: str) -> None:
                await trio.lowlevel.wait_readable(pidfds[name])
                exited[name] = trio.current_time()

            try:
                async with trio.open_nursery() as nursery:
                    for name in pids:
                        nursery.start_soon(watch, name)
                    result = await podd("stop", "root")
            finally:
                for fd in pidfds.values():
                    os.close(fd)
            assert (0, "clean") == outcome(result)
            assert exited["b"] < exited["a"] < exited["root"], exited
            assert exited["c"] < exited["root"], exited
            assert [] == pod_processes(root)
            assert [] == leftovers(root)
            # The parent saw its children go while it still ran: their shut_down
            # notifications are in the state it left for ``podd restart``.
            stopped = (await podd("restart", "root", "--json")).json()
            assert 2 == stopped["incarnation"]
            texts = [
                n["text"]
                for n in (await podd("notifications", "root", "--json")).json()["notifications"]
            ]
            assert ["pod 'a' shut down: stopped", "pod 'c' shut down: stopped"] == sorted(
                t for t in texts if "shut down" in t
            )
            assert (0, "clean") == outcome(await podd("stop", "root"))

    async def test_stop_cancels_a_running_turn(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            pod = await spawn(podd, "p", "--agent", "sleep 30")
            assert 0 == (await podd("send", "p", "go")).code
            result = await podd("stop", "p", "--timeout", "5")
            assert (0, "clean") == outcome(result)
            assert await gone(pod["pid"])
            assert [] == leftovers(root)


class TestDrain:
    """``--drain`` lets the in-flight turn finish; a wake-up queued behind it is
    discarded and reported as ``drained_with_discards`` (exit 0)."""

    async def test_drained_with_discards(self, podd: Podd, root: str, workdir: str) -> None:
        agent, release = gated_agent(workdir)
        with trio.fail_after(40):
            parent = await spawn(podd, "p", "--agent", agent, "--wake-on-notify")
            await spawn(podd, "c", "--parent", "p")
            assert 0 == (await podd("send", "p", "go")).code
            assert "running" == (await status(podd, "p"))["state"]
            # c stops: its shut_down becomes a notification for p, which is in a turn,
            # so a wake-up turn is queued behind it.
            assert (0, "clean") == outcome(await podd("stop", "c"))
            await wait_for(lambda: _pending(podd, "p"))
            assert 1 == (await status(podd, "p"))["current_turn"]

            async with trio.open_nursery() as nursery:
                results: list[CliResult] = []

                async def stop_p() -> None:
                    results.append(await podd("stop", "p", "--drain", "--timeout", "10"))

                nursery.start_soon(stop_p)
                await wait_for(partial(in_state, podd, "p", "stopping"))
                touch(release)
            assert (0, "drained_with_discards") == outcome(results[0])
            assert await gone(parent["pid"])
            assert [] == leftovers(root)
            # The drained turn ran to its end; the queued wake-up turn never ran.
            stopped = await podd("restart", "p", "--json")
            assert 0 == stopped.code, stopped
            after = await status(podd, "p")
            assert (1, True) == (after["turns"], (after["last_turn"]["outcome"] == "finished"))
            assert (0, "clean") == outcome(await podd("stop", "p"))

    async def test_discards_counted_when_the_turn_ends_before_the_children(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        parent_agent, parent_release = gated_agent(workdir, "p")
        child_agent, child_release = gated_agent(workdir, "c")
        with trio.fail_after(40):
            await spawn(podd, "p", "--agent", parent_agent, "--wake-on-notify")
            await spawn(podd, "c", "--parent", "p", "--agent", child_agent)
            await spawn(podd, "d", "--parent", "p", "--agent", "true")
            assert 0 == (await podd("send", "p", "go")).code
            assert 0 == (await podd("send", "c", "go")).code
            assert 0 == (await podd("send", "d", "go", "--wait")).code
            await wait_for(lambda: _pending(podd, "p"))
            async with trio.open_nursery() as nursery:
                results: list[CliResult] = []

                async def stop_p() -> None:
                    results.append(await podd("stop", "p", "--drain", "--timeout", "10"))

                nursery.start_soon(stop_p)
                await wait_for(partial(in_state, podd, "c", "stopping"))
                # p's turn ends first, while c (draining its own turn) holds up the stop.
                touch(parent_release)
                await wait_for(lambda: _turn_over(podd, "p"))
                touch(child_release)
            assert (0, "drained_with_discards") == outcome(results[0])
            assert [] == pod_processes(root)

    async def test_drain_of_a_turn_that_finishes_in_time_is_clean(
        self, podd: Podd, workdir: str
    ) -> None:
        agent, release = gated_agent(workdir)
        with trio.fail_after(30):
            await spawn(podd, "p", "--agent", agent)
            assert 0 == (await podd("send", "p", "go")).code
            async with trio.open_nursery() as nursery:
                results: list[CliResult] = []

                async def stop_p() -> None:
                    results.append(await podd("stop", "p", "--drain", "--timeout", "10"))

                nursery.start_soon(stop_p)
                await wait_for(partial(in_state, podd, "p", "stopping"))
                touch(release)
            assert (0, "clean") == outcome(results[0])


class TestForceKilled:
    """What outlives ``--timeout`` gets SIGKILL: ``force_killed``, exit 0, nothing left."""

    async def test_drain_longer_than_the_timeout(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            pod = await spawn(podd, "p", "--agent", "sleep 30")
            assert 0 == (await podd("send", "p", "go")).code
            result = await podd("stop", "p", "--drain", "--timeout", "1")
            assert (0, "force_killed") == outcome(result)
            assert await gone(pod["pid"])
            assert [] == leftovers(root)

    async def test_stopped_child_is_killed_by_its_parent(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            parent = await spawn(podd, "p")
            child = await spawn(podd, "c", "--parent", "p")
            os.kill(child["pid"], signal.SIGSTOP)
            with continued_at_exit(child["pid"]):
                result = await podd("stop", "p", "--timeout", "1")
            assert (0, "force_killed") == outcome(result)
            assert (True, True) == (await gone(parent["pid"]), await gone(child["pid"]))
            assert [] == leftovers(root)

    async def test_turn_ignoring_sigterm_past_the_timeout(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            pod = await spawn(podd, "p", "--agent", "trap '' TERM; sleep 30")
            assert 0 == (await podd("send", "p", "go")).code
            await wait_for(lambda: _turn_started(root, "p"))
            result = await podd("stop", "p", "--timeout", "1")
            assert await gone(pod["pid"])
            assert (0, "force_killed") == outcome(result)


class TestTimeout:
    """With ``--no-kill``, what outlives the timeout is left running: ``timeout``, exit 1."""

    async def test_no_kill_leaves_the_pod_running(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            pod = await spawn(podd, "p", "--agent", "sleep 30")
            assert 0 == (await podd("send", "p", "go")).code
            result = await podd("stop", "p", "--drain", "--timeout", "1", "--no-kill")
            assert (1, "timeout") == outcome(result)
            assert is_alive(pod["pid"], 0.0)
            after = await status(podd, "p")
            assert ("running", 1) == (after["state"], after["current_turn"])
            assert (0, "clean") == outcome(await podd("stop", "p"))
            assert await gone(pod["pid"])
            assert [] == leftovers(root)

    async def test_no_kill_with_a_stopped_child(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            await spawn(podd, "p")
            child = await spawn(podd, "c", "--parent", "p")
            os.kill(child["pid"], signal.SIGSTOP)
            with continued_at_exit(child["pid"]):
                result = await podd("stop", "p", "--timeout", "1", "--no-kill")
                assert (1, "timeout") == outcome(result)
                assert is_alive(child["pid"], 0.0)
                assert await in_state(podd, "p", "idle")
            assert (0, "clean") == outcome(await podd("stop", "p"))
            assert [] == pod_processes(root)
            assert [] == leftovers(root)

    async def test_no_kill_leaves_a_turn_ignoring_sigterm_running(
        self, podd: Podd, root: str
    ) -> None:
        with trio.fail_after(30):
            pod = await spawn(podd, "p", "--agent", "trap '' TERM; sleep 30")
            assert 0 == (await podd("send", "p", "go")).code
            await wait_for(lambda: _turn_started(root, "p"))
            result = await podd("stop", "p", "--timeout", "1", "--no-kill")
            still_running = is_alive(pod["pid"], 0.0)
            if still_running:
                await podd("stop", "p", "--timeout", "1")
            assert ((1, "timeout"), True) == (outcome(result), still_running)


async def _turn_over(podd: Podd, name: str) -> bool:
    return (await status(podd, name))["current_turn"] is None


async def _pending(podd: Podd, name: str) -> bool:
    return bool((await status(podd, name))["notifications_pending"])


async def _turn_started(root: str, name: str) -> bool:
    return _exists(os.path.join(root, name, "turn.pid"))


def _exists(path: str) -> bool:
    return os.path.exists(path)
