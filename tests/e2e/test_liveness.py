"""Liveness and reclaim end to end (issue 6, PRODUCT.md section 6): a dead pod leaves
the books at once, a hung pod is told from a dead one, orphans are adopted by the
nearest live ancestor, and nothing of a tree outlives its root.

Real pods, real sockets, real signals. Where no event can be awaited (another
process's files), state is polled in short, bounded loops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from functools import partial
from typing import Any

import psutil
import trio

from podd.core.registry import ChildRecord
from podd.proc.facts import is_alive
from podd.runtime.probe import probe
from protocol import ScopeRule
from tests.conftest import Podd, pod_processes, titled_processes
from tests.e2e.support import result_of, wait_for

TREE_GONE_BOUND = 30.0
"""Seconds allowed for the processes of a SIGKILLed tree to go: a bound for a hung
test, far above what a quiet machine needs (about 0.6 s). How fast they go is a
benchmark figure (``scripts/bench``), not something a test on a busy machine asserts."""


def registry(root: str, name: str) -> dict[str, dict[str, Any]]:
    """The records of ``<root>/<name>/spawned_pods.json`` by pod name."""
    try:
        with open(os.path.join(root, name, "spawned_pods.json"), "rb") as f:
            return {p["pod_name"]: p for p in json.loads(f.read())["pods"]}
    except FileNotFoundError:
        return {}


async def spawn(podd: Podd, *args: str) -> dict[str, Any]:
    result = await podd("spawn", *args, "--json")
    assert (0, "") == (result.code, result.stderr), result
    document: dict[str, Any] = result.json()
    return document


async def notifications(podd: Podd, name: str) -> list[dict[str, Any]]:
    """The pod's pending notifications, left in place (``--peek``)."""
    result = await podd("notifications", name, "--json", "--peek")
    assert 0 == result.code, result
    items: list[dict[str, Any]] = result.json()["notifications"]
    return items


async def stop(podd: Podd, name: str, *args: str) -> None:
    result = await podd("stop", name, *args)
    assert (0, "clean\n") == (result.code, result.stdout), result


@contextlib.contextmanager
def continued_at_exit(pid: int) -> Iterator[None]:
    """SIGCONT ``pid`` when the block ends, however it ends, so it can be stopped."""
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


class TestChildDeath:
    """A SIGKILLed child is reclaimed by its parent at once: registry entry, scope,
    directory, with a notification naming the signal."""

    async def test_sigkilled_child_is_reclaimed_by_its_exit_not_a_sweep(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        shared = os.path.join(workdir, "shared")
        os.mkdir(shared)
        with trio.fail_after(40):
            # No periodic sweep runs during the test (its interval is an hour, its first
            # run at start-up finds nothing): what reclaims the child is its parent
            # seeing it exit. How fast that is, is the benchmark's reclaim_latency.
            await spawn(podd, "top", "--cwd", workdir, "--reclaim-interval", "3600")
            for index in range(4):
                name = f"c{index}"
                # The same write scope each time: spawning succeeds only if the previous
                # holder's scope was returned.
                child = await spawn(podd, name, "--parent", "top", "--scope", f"{shared}:write")
                # The parent writes its registry file just after it answers the spawn.
                await wait_for(partial(_registered, root, "top", name))
                if index == 0:
                    # While it lives, the write scope is taken.
                    rival = await podd(
                        "spawn", "rival", "--parent", "top", "--scope", f"{shared}:write"
                    )
                    assert (1, True) == (rival.code, "write_conflict" in rival.stderr), rival
                os.kill(child["pid"], signal.SIGKILL)
                await wait_for(partial(_reclaimed, root, "top", name))
                texts = [n["text"] for n in await notifications(podd, "top")]
                assert [f"pod {name!r} errored: pod died: killed by SIGKILL"] == [
                    t for t in texts if repr(name) in t
                ]
            # The last holder is gone too: write on the same path is free again.
            await spawn(podd, "last", "--parent", "top", "--scope", f"{shared}:write")
            status = await result_of(podd.sock("top"), "status")
            assert ["last"] == [r["pod_name"] for r in status["children"]]
            await stop(podd, "top")


class TestAdoption:
    """When the middle pod of root → a → b dies, root adopts b and b's events reach root."""

    async def test_grandchild_is_adopted_by_root_and_reports_there(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "root")
            await spawn(podd, "a", "--parent", "root")
            b = await spawn(podd, "b", "--parent", "a", "--agent", "true")
            await wait_for(lambda: _knows(podd, "root", "b"))
            os.kill(podd.pid("a"), signal.SIGKILL)

            async def adopted() -> dict[str, Any] | None:
                for record in (await result_of(podd.sock("root"), "status"))["children"]:
                    if record["pod_name"] == "b" and record["parent_pod"] == "root":
                        return dict(record)
                return None

            record = await wait_for(adopted)
            expected = {
                "pod_name": "b",
                "callback_address": podd.sock("root"),
                "socket_path": podd.sock("b"),
                "pid": b["pid"],
            }
            assert expected == {key: record[key] for key in expected}
            names = [
                r["pod_name"] for r in (await result_of(podd.sock("root"), "status"))["children"]
            ]
            assert ["b"] == names
            texts = [n["text"] for n in await notifications(podd, "root")]
            assert any("'b'" in t and "adopted" in t for t in texts), texts
            assert any("'a'" in t and "SIGKILL" in t for t in texts), texts

            ping = await result_of(podd.sock("b"), "ping")
            assert "root" == ping["parent"]
            send = await podd("send", "b", "x", "--wait")
            assert 0 == send.code, send

            async def turn_ended_at_root() -> list[dict[str, Any]]:
                return [
                    n
                    for n in await notifications(podd, "root")
                    if n["event"]["kind"] == "turn_ended"
                ]

            ended = await wait_for(turn_ended_at_root)
            assert [("b", 1)] == [(n["event"]["pod_name"], n["event"]["turn"]) for n in ended]
            await stop(podd, "root")
            assert [] == pod_processes(podd.root)


async def _registered(root: str, parent: str, name: str) -> bool:
    """Whether ``parent``'s registry file lists ``name``."""
    return name in registry(root, parent)


async def _reclaimed(root: str, parent: str, name: str) -> bool:
    """Whether ``parent`` no longer lists ``name`` and its directory is gone."""
    return name not in registry(root, parent) and not _exists(os.path.join(root, name))


def _exists(path: str) -> bool:
    return os.path.exists(path)


async def _knows(podd: Podd, holder: str, name: str) -> bool:
    children = (await result_of(podd.sock(holder), "status"))["children"]
    return name in {r["pod_name"] for r in children}


class TestTreeKill:
    """SIGKILL of the root of a 13-pod tree leaves no process of the tree behind."""

    async def test_no_process_of_the_tree_outlives_its_root(self, podd: Podd) -> None:
        with trio.fail_after(60):
            await spawn(podd, "t")
            middle = [f"t{i}" for i in range(3)]
            leaves = [f"{m}{j}" for m in middle for j in range(3)]

            async def spawn_under(names: list[str], parent_of: dict[str, str]) -> None:
                async with trio.open_nursery() as nursery:
                    for name in names:
                        nursery.start_soon(spawn, podd, name, "--parent", parent_of[name])

            await spawn_under(middle, dict.fromkeys(middle, "t"))
            await spawn_under(leaves, {leaf: leaf[:2] for leaf in leaves})
            members = {name: psutil.Process(podd.pid(name)) for name in ["t", *middle, *leaves]}
            assert 13 == len(members)
            assert all(p.is_running() for p in members.values())

            pidfds = {name: os.pidfd_open(p.pid) for name, p in members.items()}
            try:
                members["t"].kill()
                with trio.move_on_after(TREE_GONE_BOUND):
                    await _all_exited(list(pidfds.values()))
            finally:
                for fd in pidfds.values():
                    os.close(fd)
            assert [] == [name for name, p in members.items() if _running(p)]

            # Nor does any other process of podd: the fork servers go with their pods.
            async def none_left() -> bool:
                return not titled_processes(podd.root)

            with trio.fail_after(TREE_GONE_BOUND):
                await wait_for(none_left)
            # The orphans stopped cleanly, removing their directories; only the root's
            # is left, stale, until a reclaim.
            listing = (await podd("ls", "--json")).json()["pods"]
            assert [("t", "stale")] == [(p["name"], p["state"]) for p in listing]
            reclaim = await podd("reclaim", "--json")
            assert ["t"] == [r["pod"] for r in reclaim.json()["reclaimed"]]


async def _all_exited(pidfds: list[int]) -> None:
    """Return once every process behind ``pidfds`` has exited."""
    async with trio.open_nursery() as nursery:
        for fd in pidfds:
            nursery.start_soon(trio.lowlevel.wait_readable, fd)


def _running(process: psutil.Process) -> bool:
    """Whether the process is still there (a zombie counts as gone)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class TestUnresponsive:
    """A stopped (SIGSTOP) child is unresponsive, not dead: it is not reclaimed, and it
    is alive again after SIGCONT."""

    async def test_sigstopped_child_is_unresponsive_and_kept(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            await spawn(podd, "p", "--reclaim-interval", "60")
            child = await spawn(podd, "c", "--parent", "p")
            os.kill(child["pid"], signal.SIGSTOP)
            with continued_at_exit(child["pid"]):
                listed = await result_of(podd.sock("p"), "list_pods", {"probe_timeout": 0.5})
                assert [("c", "unresponsive")] == [
                    (p["pod_name"], p["liveness"]) for p in listed["pods"]
                ]
                reclaimed = await result_of(podd.sock("p"), "reclaim_stale")
                assert {"reclaimed": []} == reclaimed
                assert ["c"] == list(registry(root, "p"))
                cli = await podd("reclaim", "p", "--json")
                assert (0, {"reclaimed": []}) == (cli.code, cli.json())
                ls = {v["name"]: v["state"] for v in (await podd("ls", "--json")).json()["pods"]}
                assert {"p": "idle", "c": "unresponsive"} == ls
            listed = await result_of(podd.sock("p"), "list_pods")
            assert [("c", "alive")] == [(p["pod_name"], p["liveness"]) for p in listed["pods"]]
            await stop(podd, "p")


class TestReusedPid:
    """A registry entry whose pid now belongs to an unrelated process is dead."""

    async def test_probe_says_dead_for_a_reused_pid(self, root: str) -> None:
        with trio.fail_after(10):
            stranger = await trio.lowlevel.open_process(["sleep", "30"])
            try:
                started = psutil.Process(stranger.pid).create_time()
                record = ChildRecord(
                    pod_name="gone",
                    socket_path=os.path.join(root, "gone", "sock"),
                    scope_delegated=[ScopeRule(root)],
                    callback_address=os.path.join(root, "p", "sock"),
                    pid=stranger.pid,
                    start_time=started - 5.0,
                    parent_pod="p",
                )
                assert "dead" == await probe(record)
                assert (False, True) == (
                    is_alive(stranger.pid, started - 5.0),
                    is_alive(stranger.pid, started),
                )
                # The same pid with its true start time is the live (silent) process.
                record.start_time = started
                assert "unresponsive" == await probe(record, timeout=0.1)
            finally:
                stranger.kill()
                await stranger.wait()
            assert "dead" == await probe(record)


class TestStaleAndReclaim:
    """A dead pod shows as stale until ``podd reclaim`` removes it; reclaiming again
    finds nothing."""

    async def test_sigkilled_root_is_stale_then_reclaimed_once(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            gone = await spawn(podd, "gone")
            await spawn(podd, "kept")
            os.kill(gone["pid"], signal.SIGKILL)
            await wait_for(lambda: _process_gone(gone["pid"]))

            listing = await podd("ls", "--json")
            states = {p["name"]: (p["state"], p["pid"]) for p in listing.json()["pods"]}
            assert {"gone": ("stale", gone["pid"]), "kept": ("idle", podd.pid("kept"))} == states
            table = await podd("ls")
            assert any(line.split()[:2] == ["gone", "stale"] for line in table.stdout.splitlines())

            first = await podd("reclaim")
            assert (0, "reclaimed gone (by podd): process gone\n") == (first.code, first.stdout)
            assert not _exists(os.path.join(root, "gone"))
            listing = await podd("ls", "--json")
            assert ["kept"] == [p["name"] for p in listing.json()["pods"]]
            second = await podd("reclaim")
            assert (0, "nothing to reclaim\n") == (second.code, second.stdout)
            await stop(podd, "kept")

    async def test_reclaim_json_shape(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            gone = await spawn(podd, "gone")
            os.kill(gone["pid"], signal.SIGKILL)
            await wait_for(lambda: _process_gone(gone["pid"]))
            first = await podd("reclaim", "--json")
            expected = {"reclaimed": [{"pod": "gone", "by": "podd", "reason": "process gone"}]}
            assert (0, expected) == (first.code, first.json())
            second = await podd("reclaim", "--json")
            assert (0, {"reclaimed": []}) == (second.code, second.json())
            # What ``podd restart`` reads is kept; no directory, no socket.
            assert [".kept", ".stopped.gone.json"] == sorted(os.listdir(root))

    async def test_reclaim_removes_the_temp_file_of_a_writer_killed_mid_write(
        self, podd: Podd, root: str
    ) -> None:
        # What a root pod SIGKILLed while it wrote its stopped record leaves behind.
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                writer = await nursery.start(trio.run_process, ["true"])
            os.makedirs(root, mode=0o700, exist_ok=True)
            abandoned = os.path.join(root, f"..stopped.gone.json.{writer.pid}.tmp")
            being_written = os.path.join(root, f"..stopped.live.json.{os.getpid()}.tmp")
            for path in (abandoned, being_written):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            result = await podd("reclaim", "--json")
            assert (0, {"reclaimed": []}) == (result.code, result.json())
            assert (False, True) == (_exists(abandoned), _exists(being_written))

    async def test_dead_grandchild_is_reclaimed_from_the_root_registry(
        self, podd: Podd, root: str
    ) -> None:
        """The root learns of a grandchild through ``scope_sub_delegated``; when the
        grandchild dies, ``list_pods`` on the root says ``dead`` and ``podd reclaim
        root`` removes it, once."""
        with trio.fail_after(30):
            await kill_grandchild(podd)
            listed = await result_of(podd.sock("root"), "list_pods")
            liveness = {p["pod_name"]: p["liveness"] for p in listed["pods"]}
            assert {"a": "alive", "b": "dead"} == liveness
            first = await podd("reclaim", "root", "--json")
            assert 0 == first.code, first
            assert [("b", "root")] == [(r["pod"], r["by"]) for r in first.json()["reclaimed"]]
            second = await podd("reclaim", "root", "--json")
            assert (0, {"reclaimed": []}) == (second.code, second.json())
            await wait_for(partial(_reclaimed, root, "root", "b"))
            assert ["a"] == list(registry(root, "root"))
            await stop(podd, "root")

    async def test_root_reports_a_killed_grandchild_as_a_crash(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await kill_grandchild(podd)
            first = await podd("reclaim", "root", "--json")
            reasons = [r["reason"] for r in first.json()["reclaimed"]]
            kinds = [
                n["event"]["kind"]
                for n in await notifications(podd, "root")
                if n["event"].get("pod_name") == "b"
            ]
            await stop(podd, "root")
            assert (["errored"], False) == (kinds, "stopped" in reasons)


async def kill_grandchild(podd: Podd) -> None:
    """root → a → b with b SIGKILLed: a has reclaimed it, root still lists it."""
    await spawn(podd, "root", "--reclaim-interval", "60")
    await spawn(podd, "a", "--parent", "root")
    b = await spawn(podd, "b", "--parent", "a")
    await wait_for(lambda: _knows(podd, "root", "b"))
    os.kill(b["pid"], signal.SIGKILL)
    await wait_for(lambda: _process_gone(b["pid"]))
    await wait_for(partial(_reclaimed, podd.root, "a", "b"))


async def _process_gone(pid: int) -> bool:
    return not is_alive(pid, 0.0)


class TestRootPodDeath:
    """When a root pod is SIGKILLed, nothing of the turn it was running lives on:
    the root's fork server watches every root pod, the first one (forked by the CLI
    that started the fork server) included."""

    async def test_turns_of_killed_root_pods_are_killed(self, podd: Podd, root: str) -> None:
        with trio.fail_after(60):
            groups = {}
            for name in ("first", "second"):
                await spawn(podd, name, "--agent", "sleep 600")
                sent = await podd("send", name, "x")
                assert 0 == sent.code, sent
                marker = os.path.join(root, name, "turn.pid")

                async def group(marker: str = marker) -> int | None:
                    try:
                        with open(marker) as f:  # noqa: ASYNC230
                            return int(f.read().split()[0])
                    except (OSError, ValueError, IndexError):
                        return None

                groups[name] = await wait_for(group)
            for name in groups:
                os.kill(podd.pid(name), signal.SIGKILL)

            async def turns_gone() -> bool:
                return not any(_group_alive(pgid) for pgid in groups.values())

            await wait_for(turns_gone)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
