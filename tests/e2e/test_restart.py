"""Journal, restart, restart policy and failure containment end to end (issue 7).

A pod killed with SIGKILL comes back with ``podd restart`` from its journal: same
registry, pending notifications and parent, incarnation + 1. A child with
``--restart on-failure`` that keeps crashing is restarted with growing delays until
the intensity limit; a fault injected into a handler leaves the pod serving.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from typing import Any

import trio

from podd.core.events import apply_event
from podd.core.registry import ChildRecord, Registry
from podd.proc.facts import is_alive
from protocol import ScopeRule, ShutDown, TurnEnded
from tests.conftest import Podd, pod_processes
from tests.e2e.support import RawConnection, result_of, wait_for

RESTARTING = re.compile(r"restarting (\S+) in ([0-9.]+) s")


async def spawn(podd: Podd, *args: str) -> dict[str, Any]:
    result = await podd("spawn", *args, "--json")
    assert (0, "") == (result.code, result.stderr), result
    document: dict[str, Any] = result.json()
    return document


async def status(podd: Podd, name: str) -> dict[str, Any]:
    result: dict[str, Any] = await result_of(podd.sock(name), "status")
    return result


async def peek(podd: Podd, name: str) -> list[dict[str, Any]]:
    result = await podd("notifications", name, "--json", "--peek")
    assert 0 == result.code, result
    items: list[dict[str, Any]] = result.json()["notifications"]
    return items


async def stop(podd: Podd, name: str) -> None:
    result = await podd("stop", name)
    assert (0, "clean\n") == (result.code, result.stdout), result


async def restart(podd: Podd, name: str) -> dict[str, Any]:
    result = await podd("restart", name, "--json")
    assert 0 == result.code, result
    document: dict[str, Any] = result.json()
    return document


async def gone(pid: int) -> bool:
    return not is_alive(pid, 0.0)


def pod_log(root: str, name: str) -> str:
    with open(os.path.join(root, name, "pod.log")) as f:
        return f.read()


@contextlib.contextmanager
def fault(podd: Podd, value: str) -> Iterator[None]:
    """Set ``PODD_FAULT`` for the pods started by the CLI inside the block (root pods;
    their children inherit it from them)."""
    podd.env["PODD_FAULT"] = value
    try:
        yield
    finally:
        del podd.env["PODD_FAULT"]


RECORD_FIELDS = (
    "pod_name",
    "socket_path",
    "scope_delegated",
    "callback_address",
    "pid",
    "start_time",
    "parent_pod",
    "incarnation",
)
"""The fields of a registry record a restart brings back (PRODUCT.md: at least
``pod_name``, ``socket_path``, ``scope_delegated``, ``callback_address``, ``pid``)."""


def remembered(state: dict[str, Any]) -> dict[str, Any]:
    """What a restart must bring back, from a ``status`` document."""
    return {
        "parent": state["parent"],
        "scope": state["scope"],
        "children": [{k: r[k] for k in RECORD_FIELDS} for r in state["children"]],
        "turns": state["turns"],
        "notifications_pending": state["notifications_pending"],
    }


class TestRestartAfterKill:
    """``podd restart`` after SIGKILL brings the pod back from its journal with the same
    registry, pending notifications and parent, and the next incarnation."""

    async def test_root_pod(self, podd: Podd, root: str) -> None:
        with trio.fail_after(40):
            await spawn(podd, "r", "--agent", "true", "--reclaim-interval", "60")
            child = await spawn(podd, "c", "--parent", "r", "--agent", "true")
            # r's own turn first: a turn drains the notifications it reads.
            assert 0 == (await podd("send", "r", "hello", "--wait")).code
            assert 0 == (await podd("send", "c", "one", "--wait")).code
            await wait_for(lambda: _pending(podd, "r"))
            before = await status(podd, "r")
            notes = await peek(podd, "r")
            assert ["pod 'c' finished turn 1"] == [n["text"] for n in notes]
            # c is stopped (SIGSTOP) so that it is still there when r comes back:
            # otherwise, left without a live ancestor, it would stop itself.
            os.kill(child["pid"], signal.SIGSTOP)
            try:
                os.kill(before["pid"], signal.SIGKILL)
                await wait_for(lambda: gone(before["pid"]))
                again = await restart(podd, "r")
                after = await status(podd, "r")
                assert (2, 2) == (again["incarnation"], after["incarnation"])
                assert before["pid"] != after["pid"]
                assert remembered(before) == remembered(after)
                assert notes == await peek(podd, "r")
                assert ["c"] == [r["pod_name"] for r in after["children"]]
            finally:
                os.kill(child["pid"], signal.SIGCONT)
            await stop(podd, "r")
            assert [] == pod_processes(root)

    async def test_child_restarted_through_its_parent(self, podd: Podd, root: str) -> None:
        with trio.fail_after(40):
            await spawn(podd, "r")
            x = await spawn(podd, "x", "--parent", "r", "--agent", "true")
            await spawn(podd, "y", "--parent", "x", "--agent", "true")
            assert 0 == (await podd("send", "y", "one", "--wait")).code
            await wait_for(lambda: _pending(podd, "x"))
            before = await status(podd, "x")
            notes = await peek(podd, "x")
            assert ["pod 'y' finished turn 1"] == [n["text"] for n in notes]

            os.kill(x["pid"], signal.SIGKILL)
            await wait_for(lambda: _reclaimed(podd, "r", "x"))
            again = await restart(podd, "x")
            after = await status(podd, "x")
            assert (2, 2) == (again["incarnation"], after["incarnation"])
            assert ("r", podd.sock("r")) == (after["parent"], after["parent_socket"])
            assert remembered(before) == remembered(after)
            assert notes == await peek(podd, "x")
            record = {r["pod_name"]: r for r in (await status(podd, "r"))["children"]}["x"]
            assert (after["pid"], 2) == (record["pid"], record["incarnation"])
            # The restarted pod's events reach its parent again.
            assert 0 == (await podd("send", "x", "two", "--wait")).code

            async def x_finished_at_r() -> bool:
                return any(n["text"] == "pod 'x' finished turn 1" for n in await peek(podd, "r"))

            await wait_for(x_finished_at_r)
            await stop(podd, "r")
            assert [] == pod_processes(root)

    async def test_stop_then_restart(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            first = await spawn(podd, "x", "--agent", "true")
            assert 0 == (await podd("send", "x", "one", "--wait")).code
            before = await status(podd, "x")
            await stop(podd, "x")
            assert await gone(first["pid"])
            again = await restart(podd, "x")
            after = await status(podd, "x")
            assert (2, again["pid"]) == (after["incarnation"], after["pid"])
            assert remembered(before) == remembered(after)
            assert before["last_turn"] == after["last_turn"]
            running = await podd("restart", "x")
            assert 1 == running.code and "is running" in running.stderr, running
            await stop(podd, "x")
            missing = await podd("restart", "nobody")
            assert 3 == missing.code


async def _pending(podd: Podd, name: str) -> bool:
    return bool((await status(podd, name))["notifications_pending"])


async def _reclaimed(podd: Podd, parent: str, name: str) -> bool:
    return name not in {r["pod_name"] for r in (await status(podd, parent))["children"]}


class TestOldIncarnation:
    """Events stamped with an incarnation older than the registry's are ignored."""

    def record(self) -> ChildRecord:
        return ChildRecord(
            pod_name="c",
            socket_path="/tmp/x/c/sock",
            scope_delegated=[ScopeRule("/tmp/x")],
            callback_address="/tmp/x/p/sock",
            pid=1234,
            start_time=1.0,
            parent_pod="p",
            incarnation=2,
            last_seq=3,
        )

    def test_turn_ended_of_an_older_incarnation_is_a_duplicate(self) -> None:
        registry = Registry()
        record = self.record()
        registry.add(record)
        applied = apply_event(registry, record, TurnEnded("c", turn=9, incarnation=1, seq=50), "p")
        assert (True, None) == (applied.duplicate, applied.notification)
        assert (2, 3) == (record.incarnation, record.last_seq)

    def test_shut_down_of_an_older_incarnation_removes_nothing(self) -> None:
        registry = Registry()
        record = self.record()
        registry.add(record)
        applied = apply_event(registry, record, ShutDown("c", incarnation=1, seq=50), "p")
        assert (True, ["c"]) == (applied.duplicate, [r.pod_name for r in registry])

    def test_the_current_and_a_newer_incarnation_are_applied(self) -> None:
        registry = Registry()
        record = self.record()
        registry.add(record)
        current = apply_event(registry, record, TurnEnded("c", turn=4, incarnation=2, seq=4), "p")
        replayed = apply_event(registry, record, TurnEnded("c", turn=4, incarnation=2, seq=4), "p")
        newer = apply_event(registry, record, TurnEnded("c", turn=1, incarnation=3, seq=1), "p")
        assert (False, True, False) == (current.duplicate, replayed.duplicate, newer.duplicate)
        assert (3, 1) == (record.incarnation, record.last_seq)


class TestRestartPolicy:
    """A crashing ``--restart on-failure`` child is restarted with growing delays and
    given up on at the intensity limit, with a notification; ``--restart never`` is not
    restarted."""

    async def test_on_failure_backs_off_then_gives_up(self, podd: Podd, root: str) -> None:
        with trio.fail_after(60):
            with fault(podd, "crash@c,crash@n"):
                await spawn(podd, "r", "--reclaim-interval", "60")
            await spawn(podd, "n", "--parent", "r", "--restart", "never")
            await spawn(podd, "c", "--parent", "r", "--restart", "on-failure")

            async def gave_up() -> list[dict[str, Any]]:
                return [n for n in await peek(podd, "r") if n["event"]["kind"] == "restart_gave_up"]

            notes = await wait_for(gave_up)
            assert [
                (
                    "c",
                    "pod 'c' not restarted: gave up after 5 restarts in 60 s (restart "
                    "intensity limit)",
                )
            ] == [(n["event"]["pod_name"], n["text"]) for n in notes]
            delays = [
                (name, float(seconds)) for name, seconds in RESTARTING.findall(pod_log(root, "r"))
            ]
            assert ["c"] * 5 == [name for name, _ in delays]
            values = [d for _, d in delays]
            assert values == sorted(values) and values[0] < values[-1], values
            assert 0.1 <= values[0] <= 0.2 and values[-1] >= 1.0, values
            print("restart delays:", values)
            texts = [n["text"] for n in await peek(podd, "r")]
            # n crashed once and stayed down; c crashed six times (first start + 5).
            assert ["pod 'n' errored: pod died: exited with status 70"] == [
                t for t in texts if "'n'" in t
            ]
            assert 6 == sum(t == "pod 'c' errored: pod died: exited with status 70" for t in texts)
            assert [] == (await status(podd, "r"))["children"]
            await stop(podd, "r")


async def kill_and_wait_back(podd: Podd, name: str, child: str) -> None:
    """SIGKILL pod ``name`` and wait until its new process (restarted by its parent's
    policy) has ``child`` reporting to it again."""
    old = podd.pid(name)
    os.kill(old, signal.SIGKILL)

    async def back() -> bool:
        with contextlib.suppress(Exception):
            return podd.pid(name) != old and name == (await status(podd, child))["parent"]
        return False

    await wait_for(back)


class TestRestartAfterAdoption:
    """While a pod is dead its children are adopted above it; restarted, it asks them
    back: they report to it again, and the adopter moves them back under it."""

    async def test_children_adopted_meanwhile_report_to_the_restarted_pod(self, podd: Podd) -> None:
        with trio.fail_after(60):
            await spawn(podd, "top")
            await spawn(podd, "p", "--parent", "top", "--restart", "on-failure")
            await spawn(podd, "c", "--parent", "p", "--agent", "echo from-c")
            grandchild = await spawn(podd, "g", "--parent", "c")
            await kill_and_wait_back(podd, "p", "c")
            assert (podd.sock("p"), 2) == (
                (await status(podd, "c"))["parent_socket"],
                (await status(podd, "p"))["incarnation"],
            )
            below_p = [
                (r["pod_name"], r["parent_pod"]) for r in (await status(podd, "p"))["children"]
            ]
            assert [("c", "p"), ("g", "c")] == sorted(below_p)

            async def moved_back_at_top() -> bool:
                records = (await status(podd, "top"))["children"]
                return {"c": "p", "g": "c", "p": "top"} == {
                    r["pod_name"]: r["parent_pod"] for r in records
                }

            await wait_for(moved_back_at_top)
            # c's events reach the restarted p again.
            assert 0 == (await podd("send", "c", "x", "--wait")).code

            async def told_p() -> bool:
                return any(
                    n["text"].startswith("pod 'c' finished turn 1") for n in await peek(podd, "p")
                )

            await wait_for(told_p)
            # Stopping p stops what is its own again; top, which still watched c, lets go
            # of the records below p as it learns they are gone.
            await stop(podd, "p")
            assert await gone(grandchild["pid"])

            async def none_left_at_top() -> bool:
                return [] == (await status(podd, "top"))["children"]

            await wait_for(none_left_at_top)
            await stop(podd, "top")
            assert [] == pod_processes(podd.root)

    async def test_writes_held_below_do_not_keep_the_restart_out(
        self, podd: Podd, workdir: str
    ) -> None:
        """c and g hold write inside p's scope when p dies: top restarts p all the same
        (they are p's own delegations), they come back under it, and p's books hold
        their writes again."""
        with trio.fail_after(60):
            area = os.path.join(workdir, "p")
            os.makedirs(os.path.join(area, "c", "g"))
            await spawn(podd, "top", "--cwd", workdir)
            await spawn(
                podd, "p", "--parent", "top", "--scope", f"{area}:write", "--restart", "on-failure"
            )
            await spawn(podd, "c", "--parent", "p", "--scope", f"{area}/c:write")
            await spawn(podd, "g", "--parent", "c", "--scope", f"{area}/c/g:write")
            await kill_and_wait_back(podd, "p", "c")
            texts = [n["text"] for n in await peek(podd, "top")]
            assert not [t for t in texts if "restart refused" in t], texts
            held = {
                r["pod_name"]: [(s["target"], s["permission"]) for s in r["scope_delegated"]]
                for r in (await status(podd, "p"))["children"]
            }
            assert {"c": [(f"{area}/c", "write")], "g": [(f"{area}/c/g", "write")]} == held
            # p's own write still stops where c's begins.
            result = await podd("spawn", "x", "--parent", "p", "--scope", f"{area}/c:write")
            assert (1, True) == (result.code, "write_conflict" in result.stderr), result
            await stop(podd, "p")
            await stop(podd, "top")
            assert [] == pod_processes(podd.root)


class TestContainment:
    """A busy pod reports its dispatch lag; a fault injected into a handler becomes an
    ``errored`` event upward and the pod keeps answering."""

    async def test_busy_pod_reports_lag(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            await spawn(podd, "p", "--agent", "sleep 30")
            assert 0 == (await podd("send", "p", "go")).code

            async def ping_many() -> None:
                async with await RawConnection.open(podd.sock("p")) as conn:
                    for i in range(100):
                        await conn.send({"method": "ping", "id": i})
                    for _ in range(100):
                        assert (await conn.receive())["result"]["pong"]

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(ping_many)
            result = await podd("status", "p", "--json")
            assert 0 == result.code, result
            document = result.json()
            lag = document["lag"]
            assert "running" == document["state"]
            assert all(lag[key] > 0 for key in ("last", "max", "mean")), lag
            assert lag["jobs"] > 0 and lag["max"] >= lag["mean"], lag
            assert lag["longest_handler"]["seconds"] > 0, lag
            await stop(podd, "p")

    async def test_injected_handler_fault(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            with fault(podd, "status@x"):
                await spawn(podd, "r")
            await spawn(podd, "x", "--parent", "r")
            result = await podd("status", "x", "--json")
            assert 1 == result.code, result
            assert "injected fault in status" in result.stderr
            pong = await result_of(podd.sock("x"), "ping")
            assert (True, "x") == (pong["pong"], pong["name"])

            async def errored_at_r() -> list[dict[str, Any]]:
                return [n for n in await peek(podd, "r") if n["event"]["kind"] == "errored"]

            notes = await wait_for(errored_at_r)
            assert ["x"] == [n["event"]["pod_name"] for n in notes]
            assert "injected fault in status" in notes[0]["text"], notes
            # Still serving, and the fault is aimed at x only.
            assert 0 == (await podd("status", "r", "--json")).code
            assert 0 == (await podd("ls")).code
            await stop(podd, "r")
