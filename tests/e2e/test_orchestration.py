"""Orchestration end to end (PRODUCT.md section 10): the queue, loops, gates,
prerequisites (``--after``), concurrency slots (``--max-running``), ``podd wait`` and
the completion record, on real pods running small ``sh`` agents.

The agents keep what they did in files of their pod's write scope (a counter, the
inputs they read, start and end marks), so that the tests assert orderings, outcomes
and counts, never durations. Turns that must stay busy wait for a release file that
the test creates.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest
import trio

from podd.errors import PoddError
from tests.conftest import CliResult, Podd, pod_processes, titled_processes
from tests.e2e.support import RawConnection, result_of, wait_for

COUNTER = (
    'n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > count.new; '
    "mv count.new count; cat >> inputs; "
)
"""The start of a loop agent: counts its runs in ``count`` and keeps its inputs. The count
is replaced atomically: a budget may kill the agent at any instant."""

DONE_ON_THIRD = COUNTER + 'if [ "$n" -ge 3 ]; then echo "DONE at $n"; else echo "not yet $n"; fi'

GATED = 'while [ ! -e "$RELEASE" ]; do sleep 0.02; done; cat >> log'
"""Busy until ``$RELEASE`` exists, then appends its input to ``log``."""

SLOT_AGENT = (
    'echo "$$" > agent.pid; '
    'for f in $PEERS; do p=$(cat "$f" 2>/dev/null) || continue; '
    '[ -n "$p" ] && [ -e "/proc/$p/stat" ] && [ "$(cut -d" " -f3 "/proc/$p/stat")" != Z ] '
    '&& echo "$f" >> overlaps; done; '
    "date +%s%N >> marks; "
    'while [ ! -e "$RELEASE" ]; do sleep 0.02; done; '
    "date +%s%N >> marks"
)
"""A turn that holds its slot until ``$RELEASE`` exists. It marks its start and end in
``marks`` (nanoseconds) and notes in ``overlaps`` any agent of ``$PEERS`` (files of
pids) still running when it began."""


# --- Helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def nothing_left(root: str) -> Any:
    """After each test: the test stopped every pod it started, and no process of the
    root (pod, fork server, agent) is left once they are gone."""
    yield
    assert [] == pod_processes(root)
    deadline = time.monotonic() + 20.0  # the root fork server leaves ~1 s after its pods
    while (titled_processes(root) or agents_of(root)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ([], []) == (titled_processes(root), agents_of(root))


def agents_of(root: str) -> list[int]:
    """Live processes started by a turn or gate of a pod under ``root``."""
    found = []
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            env = proc.environ()
            if env.get("PODD_ROOT") == root and "POD_TURN" in env:
                found.append(proc.pid)
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def exists(path: str) -> bool:
    return os.path.exists(path)


def touch(path: str) -> None:
    with open(path, "w"):
        pass


def ok(result: CliResult) -> CliResult:
    assert (0, "") == (result.code, result.stderr), result
    return result


async def spawn(podd: Podd, name: str, *args: str) -> None:
    ok(await podd("spawn", name, *args))


async def child(podd: Podd, name: str, parent: str, directory: str, *args: str) -> str:
    """Spawn ``name`` under ``parent`` with write scope on (and cwd in) ``directory``."""
    os.makedirs(directory, exist_ok=True)
    await spawn(
        podd, name, "--parent", parent, "--scope", f"{directory}:write", "--cwd", directory, *args
    )
    return directory


async def status(podd: Podd, name: str) -> Any:
    return await result_of(podd.sock(name), "status")


async def stop(podd: Podd, name: str, *args: str) -> str:
    result = await podd("stop", name, *args)
    assert 0 == result.code, result
    return result.stdout.strip()


@contextlib.asynccontextmanager
async def stopped_at_exit(podd: Podd, *names: str) -> AsyncIterator[None]:
    """Stop ``names`` however the block ends (a failing test leaves nothing running)."""
    try:
        yield
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            for name in names:
                if exists(os.path.join(podd.root, name, "pod.json")):
                    await podd("stop", name)


async def events_from(podd: Podd, parent: str, name: str) -> list[dict[str, Any]]:
    """The events ``name`` sent ``parent`` (its notifications, not drained)."""
    reply = await result_of(podd.sock(parent), "notifications", {"peek": True})
    return [n["event"] for n in reply["notifications"] if n["event"].get("pod_name") == name]


async def kinds_until_shut_down(podd: Podd, parent: str, name: str) -> list[str]:
    """Stop ``name`` and return the kinds of every event it sent ``parent``: a pod's
    events arrive in order, so once its ``shut_down`` is in, all the others are."""
    assert "clean" == await stop(podd, name)

    async def check() -> list[str]:
        kinds = [e["kind"] for e in await events_from(podd, parent, name)]
        return kinds if "shut_down" in kinds else []

    return await wait_for(check)


async def send_wait(podd: Podd, name: str, *args: str) -> tuple[int, dict[str, Any]]:
    """``send --wait --json``: the exit status and the turn record."""
    result = await podd("send", name, *args, "--wait", "--json")
    assert "" == result.stderr, result
    record: dict[str, Any] = result.json()
    return result.code, record


# --- Queue ------------------------------------------------------------------------


class TestQueue:
    """``send --queue`` queues behind a busy pod, higher priority first and first in
    first out within one, up to 1,000 turns."""

    async def test_higher_priority_runs_first_fifo_within(self, podd: Podd, workdir: str) -> None:
        long_text = "long " + "x" * 95
        queued = [
            ("low-a", 0, 1),
            ("high-a", 5, 1),
            ("low-b", 0, 3),
            ("high-b", 5, 2),
            ("negative", -1, 5),
            (long_text, 1, 3),
        ]
        release = os.path.join(workdir, "release")
        with trio.fail_after(60):
            await spawn(
                podd, "w", "--cwd", workdir, "--agent", GATED, "--env", f"RELEASE={release}"
            )
            async with stopped_at_exit(podd, "w"):
                assert "w: turn 1 started\n" == ok(await podd("send", "w", "first")).stdout
                for text, priority, position in queued:
                    sent = ok(
                        await podd(
                            "send", "w", text, "--queue", "--priority", str(priority), "--json"
                        )
                    )
                    expected = {"pod": "w", "turn": None, "queued": True, "position": position}
                    assert expected == sent.json()
                doc = await status(podd, "w")
                assert "running" == doc["state"]
                assert [
                    {"priority": 5, "text": "high-a"},
                    {"priority": 5, "text": "high-b"},
                    {"priority": 1, "text": long_text[:80]},
                    {"priority": 0, "text": "low-a"},
                    {"priority": 0, "text": "low-b"},
                    {"priority": -1, "text": "negative"},
                ] == doc["queue"]
                touch(release)
                waited = await podd("wait", "w", "--json")
                assert (0, 7) == (waited.code, waited.json()["last_turn"]["turn"]), waited
                order = ["first", "high-a", "high-b", long_text, "low-a", "low-b", "negative"]
                assert order == read(os.path.join(workdir, "log")).splitlines()
                # An idle pod runs a queued send at once.
                idle = ok(await podd("send", "w", "now", "--queue", "--json")).json()
                assert {"pod": "w", "turn": 8, "queued": False} == idle
                assert 0 == (await podd("wait", "w")).code
                assert "clean" == await stop(podd, "w")

    async def test_queue_holds_at_most_1000_turns(self, podd: Podd, workdir: str) -> None:
        release = os.path.join(workdir, "release")
        with trio.fail_after(60):
            await spawn(
                podd, "w", "--cwd", workdir, "--agent", GATED, "--env", f"RELEASE={release}"
            )
            async with stopped_at_exit(podd, "w"):
                ok(await podd("send", "w", "first"))
                async with await RawConnection.open(podd.sock("w")) as conn:
                    lines = [
                        json.dumps(
                            {"method": "send", "params": {"text": "q", "queue": True}, "id": i}
                        ).encode()
                        for i in range(1000)
                    ]
                    await conn.send_line(b"\n".join(lines))
                    replies = [await conn.receive() for _ in range(1000)]
                assert list(range(1, 1001)) == [r["result"]["position"] for r in replies]
                full = await podd("send", "w", "one too many", "--queue")
                assert (1, True) == (full.code, "queue_full" in full.stderr), full
                assert 1000 == len((await status(podd, "w"))["queue"])
                assert "clean" == await stop(podd, "w")

    async def test_queue_is_restored_by_restart(self, podd: Podd, workdir: str) -> None:
        release = os.path.join(workdir, "release")
        with trio.fail_after(60):
            await spawn(
                podd, "w", "--cwd", workdir, "--agent", GATED, "--env", f"RELEASE={release}"
            )
            async with stopped_at_exit(podd, "w"):
                ok(await podd("send", "w", "first"))
                ok(await podd("send", "w", "q-low", "--queue"))
                ok(await podd("send", "w", "q-high", "--queue", "--priority", "2"))
                assert "clean" == await stop(podd, "w")
                ok(await podd("restart", "w"))
                # The highest queued turn runs at once (the agent holds it); the rest waits.
                doc = await status(podd, "w")
                expected = [{"priority": 0, "text": "q-low"}]
                assert ("running", expected) == (doc["state"], doc["queue"])
                assert "clean" == await stop(podd, "w")

    async def test_restored_queue_runs_after_restart(self, podd: Podd, workdir: str) -> None:
        release = os.path.join(workdir, "release")
        with trio.fail_after(60):
            await spawn(
                podd, "w", "--cwd", workdir, "--agent", GATED, "--env", f"RELEASE={release}"
            )
            async with stopped_at_exit(podd, "w"):
                ok(await podd("send", "w", "first"))
                ok(await podd("send", "w", "q-low", "--queue"))
                ok(await podd("send", "w", "q-high", "--queue", "--priority", "2"))
                assert "clean" == await stop(podd, "w")
                ok(await podd("restart", "w"))
                touch(release)
                waited = await podd("wait", "w", "--timeout", "3", "--json")
                assert 0 == waited.code, waited
                # Turn 1 was cancelled by the stop before it read its input.
                assert ["q-high", "q-low"] == read(os.path.join(workdir, "log")).splitlines()
                assert 3 == waited.json()["last_turn"]["turn"]
                assert "clean" == await stop(podd, "w")

    async def test_stop_drain_finishes_the_turn_and_discards_the_queue(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        release = os.path.join(workdir, "release")
        with trio.fail_after(60):
            await spawn(
                podd, "w", "--cwd", workdir, "--agent", GATED, "--env", f"RELEASE={release}"
            )
            async with stopped_at_exit(podd, "w"):
                ok(await podd("send", "w", "first"))
                ok(await podd("send", "w", "queued-a", "--queue"))
                ok(await podd("send", "w", "queued-b", "--queue", "--priority", "1"))
                results: list[CliResult] = []

                async def stopper() -> None:
                    results.append(await podd("stop", "w", "--drain"))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(stopper)

                    async def stopping() -> bool:
                        return bool("stopping" == (await status(podd, "w"))["state"])

                    await wait_for(stopping)
                    touch(release)
                (stopped,) = results
                assert (0, "drained_with_discards") == (stopped.code, stopped.stdout.strip())
                assert ["first"] == read(os.path.join(workdir, "log")).splitlines()
                record = json.loads(read(os.path.join(root, ".stopped.w.json")))
                assert ("finished", []) == (
                    record["last_turn"]["outcome"],
                    record["state"]["queue"],
                )


# --- Loop -------------------------------------------------------------------------


class TestLoop:
    """``--until TOKEN`` repeats the input as one turn until a result holds TOKEN: one
    terminal event upward, a record with ``iterations``; ``BLOCKED``, the iteration
    limit and the budget end it as errored."""

    async def test_loop_finishes_on_its_third_iteration(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                k = await child(
                    podd, "k", "p", os.path.join(workdir, "k"), "--agent", DONE_ON_THIRD
                )
                # The same loop as the task of a new pod.
                t = await child(
                    podd,
                    "t",
                    "p",
                    os.path.join(workdir, "t"),
                    "--agent",
                    DONE_ON_THIRD,
                    "--task",
                    "the task",
                    "--until",
                    "DONE",
                )
                code, record = await send_wait(podd, "k", "work", "--until", "DONE")
                assert (0, "finished", 3) == (code, record["outcome"], record["iterations"])
                assert (1, "DONE at 3\n") == (record["turn"], record["result"])
                assert ("3\n", "work\n" * 3) == (read(f"{k}/count"), read(f"{k}/inputs"))
                assert 1 == (await status(podd, "k"))["turns"]
                waited = await podd("wait", "t", "--json")
                assert 0 == waited.code, waited
                last = waited.json()["last_turn"]
                assert (1, "finished", 3) == (last["turn"], last["outcome"], last["iterations"])
                assert ("3\n", "the task\n" * 3) == (read(f"{t}/count"), read(f"{t}/inputs"))
                for name in ("k", "t"):
                    kinds = await kinds_until_shut_down(podd, "p", name)
                    assert ["turn_ended", "shut_down"] == kinds, name
                assert "clean" == await stop(podd, "p")

    async def test_loop_endings_error_once_each(self, podd: Podd, workdir: str) -> None:
        # name: (agent, spawn arguments, send arguments, cause, iterations)
        cases: dict[str, tuple[str, list[str], list[str], str, int | None]] = {
            "blocked": (
                COUNTER + 'if [ "$n" -ge 2 ]; then echo "BLOCKED: no way"; fi',
                [],
                [],
                "blocked",
                2,
            ),
            "max-default": (COUNTER + "echo not yet", [], [], "max_iterations", 10),
            "max-explicit": (
                COUNTER + "echo not yet",
                [],
                ["--max-iterations", "4"],
                "max_iterations",
                4,
            ),
            # The budget covers all iterations: each is far shorter than the budget, and
            # the iteration limit is out of reach.
            "budget": (
                COUNTER + "sleep 0.2",
                [],
                ["--budget", "1", "--max-iterations", "1000"],
                "budget",
                None,
            ),
            "budget-default": (
                COUNTER + "sleep 0.2",
                ["--turn-timeout", "1"],
                ["--max-iterations", "1000"],
                "budget",
                None,
            ),
        }
        records: dict[str, tuple[int, dict[str, Any]]] = {}
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                for name, (agent, spawn_args, _, _, _) in cases.items():
                    directory = os.path.join(workdir, name)
                    await child(podd, name, "p", directory, "--agent", agent, *spawn_args)

                async def loop(name: str, send_args: list[str]) -> None:
                    records[name] = await send_wait(
                        podd, name, "work", "--until", "DONE", *send_args
                    )

                async with trio.open_nursery() as nursery:
                    for name, (_, _, send_args, _, _) in cases.items():
                        nursery.start_soon(loop, name, send_args)
                for name, (_, _, _, cause, iterations) in cases.items():
                    code, record = records[name]
                    assert (1, "errored", cause) == (code, record["outcome"], record["cause"]), name
                    assert cause in record["message"], record
                    ran = int(read(os.path.join(workdir, name, "count")))
                    if iterations is not None:
                        assert (iterations, iterations) == (ran, record["iterations"]), name
                    else:
                        # The budget may cut the last iteration before its agent counted.
                        assert ran <= record["iterations"] <= ran + 1, (name, ran, record)
                    assert ["errored", "shut_down"] == await kinds_until_shut_down(podd, "p", name)
                    errored = [
                        e for e in await events_from(podd, "p", name) if e["kind"] == "errored"
                    ]
                    assert [record["message"]] == [e["message"] for e in errored], name
                assert "clean" == await stop(podd, "p")


# --- Gate -------------------------------------------------------------------------


def gate_groups(root: str) -> list[int]:
    """Process groups of the ``sleep 601``/``sleep 602`` of a gate under ``root``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if proc.info["cmdline"] in (["sleep", "601"], ["sleep", "602"]) and (
                proc.info["status"] != psutil.STATUS_ZOMBIE
                and proc.environ().get("PODD_ROOT") == root
            ):
                found.append(os.getpgid(proc.pid))
    return found


def in_group(pgid: int) -> list[int]:
    found = []
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


class TestGate:
    """``--gate CMD`` runs after a turn (or loop) that would finish, in the pod's cwd,
    confined like the agent: only exit 0 lets the turn finish."""

    async def test_gate_decides_whether_the_turn_finishes(self, podd: Podd, workdir: str) -> None:
        passing = 'test "$(cat count)" -eq 3 && pwd > gate.cwd && echo gate-ran'
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                k = await child(
                    podd,
                    "k",
                    "p",
                    os.path.join(workdir, "k"),
                    "--agent",
                    DONE_ON_THIRD,
                    "--gate",
                    passing,
                )
                failing = "echo gate-says-no; exit 4"
                await child(
                    podd,
                    "f",
                    "p",
                    os.path.join(workdir, "f"),
                    "--agent",
                    "echo work",
                    "--gate",
                    failing,
                )
                # After a loop: the gate runs once, after the iteration that would finish.
                code, record = await send_wait(podd, "k", "work", "--until", "DONE")
                assert (0, "finished", "passed", 3) == (
                    code,
                    record["outcome"],
                    record["gate"],
                    record["iterations"],
                )
                assert f"{k}\n" == read(f"{k}/gate.cwd")
                assert "gate-ran" in ok(await podd("output", "k")).stdout
                code, record = await send_wait(podd, "f", "work")
                assert (1, "errored", "gate failed: exit 4", "failed") == (
                    code,
                    record["outcome"],
                    record["cause"],
                    record["gate"],
                )
                out = ok(await podd("output", "f")).stdout
                assert out.index("work") < out.index("gate-says-no"), out
                assert ["turn_ended", "shut_down"] == await kinds_until_shut_down(podd, "p", "k")
                assert ["errored", "shut_down"] == await kinds_until_shut_down(podd, "p", "f")
                (errored,) = [
                    e for e in await events_from(podd, "p", "f") if e["kind"] == "errored"
                ]
                assert "gate failed: exit 4" in errored["message"]
                assert "clean" == await stop(podd, "p")

    async def test_gate_is_confined_like_the_agent(
        self, podd: Podd, workdir: str, tmp_path: Any
    ) -> None:
        outside = os.path.join(str(tmp_path), "gate-wrote")
        with trio.fail_after(60):
            await spawn(
                podd, "g", "--cwd", workdir, "--agent", "true", "--gate", f"echo x > {outside}"
            )
            async with stopped_at_exit(podd, "g"):
                if "advisory" == (await status(podd, "g"))["enforcement"]:
                    pytest.skip("writes are not confined on this host")
                code, record = await send_wait(podd, "g", "x")
                assert (1, "errored", "failed") == (code, record["outcome"], record["gate"])
                assert record["cause"].startswith("gate failed: exit "), record
                assert not exists(outside)
                assert "clean" == await stop(podd, "g")

    async def test_gate_that_times_out_is_killed(self, podd: Podd, root: str, workdir: str) -> None:
        gate = "sleep 601 & sleep 602"
        with trio.fail_after(60):
            await spawn(
                podd,
                "g",
                "--cwd",
                workdir,
                "--agent",
                "true",
                "--gate",
                gate,
                "--gate-timeout",
                "2",
            )
            async with stopped_at_exit(podd, "g"):
                sent: list[tuple[int, dict[str, Any]]] = []
                async with trio.open_nursery() as nursery:

                    async def send() -> None:
                        sent.append(await send_wait(podd, "g", "x"))

                    nursery.start_soon(send)

                    async def both() -> list[int]:
                        groups = gate_groups(root)
                        return groups if len(groups) == 2 else []

                    groups = set(await wait_for(both))
                ((code, record),) = sent
                assert (1, "errored", "gate timed out", "timed_out") == (
                    code,
                    record["outcome"],
                    record["cause"],
                    record["gate"],
                )
                assert ([], []) == ([p for g in groups for p in in_group(g)], gate_groups(root))
                assert "clean" == await stop(podd, "g")

    async def test_no_gate_after_an_errored_turn(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(60):
            await spawn(
                podd, "g", "--cwd", workdir, "--agent", "exit 1", "--gate", "touch gate.ran"
            )
            async with stopped_at_exit(podd, "g"):
                code, record = await send_wait(podd, "g", "x")
                assert (1, "errored", None) == (code, record["outcome"], record["gate"])
                assert not exists(os.path.join(workdir, "gate.ran"))
                assert "clean" == await stop(podd, "g")


# --- Dependencies -----------------------------------------------------------------


class TestAfter:
    """``spawn NAME --parent P --after A,B --task T``: T runs once A and B have each
    finished a turn; if one errors or ends first, T is skipped and P is told."""

    async def test_task_runs_once_every_prerequisite_finished(
        self, podd: Podd, workdir: str
    ) -> None:
        agent = GATED + "; touch done"
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                for name in ("a", "b"):
                    release = os.path.join(workdir, f"release.{name}")
                    await child(
                        podd,
                        name,
                        "p",
                        os.path.join(workdir, name),
                        "--agent",
                        agent,
                        "--env",
                        f"RELEASE={release}",
                        "--task",
                        f"task of {name}",
                    )
                saw = (
                    'for x in a b; do [ -e "../$x/done" ] && echo "$x done" || echo "$x not done"; '
                    "done > saw"
                )
                c = await child(
                    podd,
                    "c",
                    "p",
                    os.path.join(workdir, "c"),
                    "--agent",
                    saw,
                    "--task",
                    "go",
                    "--after",
                    "a,b",
                )
                doc = await status(podd, "c")
                assert ("waiting", 0) == (doc["state"], doc["turns"])
                assert "a" in doc["waiting_on"] and "b" in doc["waiting_on"], doc
                listed = {
                    p["name"]: p["state"] for p in ok(await podd("ls", "--json")).json()["pods"]
                }
                assert "waiting" == listed["c"]
                assert "waiting" in ok(await podd("ls")).stdout

                touch(os.path.join(workdir, "release.a"))
                assert 0 == (await podd("wait", "a")).code
                # One of two is not enough: c still waits (on b).
                assert 0 == (await podd("send", "a", "again", "--wait")).code
                doc = await status(podd, "c")
                assert ("waiting", 0, False) == (
                    doc["state"],
                    doc["turns"],
                    exists(f"{c}/saw"),
                )
                assert "b" in doc["waiting_on"], doc

                async with await RawConnection.open(podd.sock("c")) as conn:
                    # Handled in order: once ping is answered, the wait is registered.
                    await conn.send({"method": "wait", "id": "wait"})
                    assert "ping" == (await conn.request("ping", request_id="ping"))["id"]
                    touch(os.path.join(workdir, "release.b"))
                    reply = await conn.receive()
                assert ("wait", 1, "finished") == (
                    reply["id"],
                    reply["result"]["last_turn"]["turn"],
                    reply["result"]["last_turn"]["outcome"],
                )
                assert "a done\nb done\n" == read(f"{c}/saw")
                assert "idle" == (await status(podd, "c"))["state"]
                # Prerequisites that have finished a turn already hold nothing back.
                await child(
                    podd,
                    "d",
                    "p",
                    os.path.join(workdir, "d"),
                    "--agent",
                    "true",
                    "--task",
                    "go",
                    "--after",
                    "a,b",
                )
                waited = await podd("wait", "d", "--json")
                assert (0, 1) == (waited.code, waited.json()["last_turn"]["turn"]), waited
                assert "clean" == await stop(podd, "p")

    async def test_deps_leaves_a_task_waiting_for_a_slot_alone(
        self, podd: Podd, workdir: str
    ) -> None:
        release = os.path.join(workdir, "release.a")
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir, "--max-running", "1")
            async with stopped_at_exit(podd, "p"):
                a_args = ("--agent", GATED, "--env", f"RELEASE={release}", "--task", "x")
                await child(podd, "a", "p", os.path.join(workdir, "a"), *a_args)
                b = await child(
                    podd,
                    "b",
                    "p",
                    os.path.join(workdir, "b"),
                    "--agent",
                    "echo run >> runs",
                    "--task",
                    "y",
                )

                async def both_asked() -> bool:
                    return bool(1 == (await status(podd, "p"))["slots"]["waiting"])

                await wait_for(both_asked)
                # Its task is waiting, but for a slot: prerequisites have no say, and
                # only its parent may speak of them at all.
                async with await RawConnection.open(podd.sock("b")) as conn:
                    reply = await conn.request("deps", {"failed": None})
                assert "forbidden" == reply["error"]["code"], reply
                doc = await status(podd, "b")
                assert ("waiting", 1) == (doc["state"], doc["turns"])
                touch(release)
                assert 0 == (await podd("wait", "b")).code
                assert "run\n" == read(f"{b}/runs")
                assert "clean" == await stop(podd, "p")

    async def test_ls_says_what_a_pod_waits_on(self, podd: Podd, workdir: str) -> None:
        release = os.path.join(workdir, "release.a")
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                await child(
                    podd,
                    "a",
                    "p",
                    os.path.join(workdir, "a"),
                    "--agent",
                    GATED,
                    "--env",
                    f"RELEASE={release}",
                    "--task",
                    "x",
                )
                await child(
                    podd,
                    "c",
                    "p",
                    os.path.join(workdir, "c"),
                    "--agent",
                    "true",
                    "--task",
                    "go",
                    "--after",
                    "a",
                )
                (entry,) = [
                    p for p in ok(await podd("ls", "--json")).json()["pods"] if p["name"] == "c"
                ]
                assert "waiting" == entry["state"]
                assert "a" in (entry.get("waiting_on") or ""), entry
                assert "clean" == await stop(podd, "p")

    async def test_task_skipped_when_a_prerequisite_errors_or_ends_first(
        self, podd: Podd, workdir: str
    ) -> None:
        release = os.path.join(workdir, "release.a")
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                # a's task errors; e ends (stopped while idle) before it finished a turn.
                a_args = (
                    "--agent",
                    GATED + "; exit 1",
                    "--env",
                    f"RELEASE={release}",
                    "--task",
                    "x",
                )
                await child(podd, "a", "p", os.path.join(workdir, "a"), *a_args)
                await child(podd, "e", "p", os.path.join(workdir, "e"), "--agent", "true")
                dependents = {}
                for name, after in (("b", "a"), ("d", "e")):
                    dependents[name] = await child(
                        podd,
                        name,
                        "p",
                        os.path.join(workdir, name),
                        "--agent",
                        "touch ran",
                        "--task",
                        "go",
                        "--after",
                        after,
                    )
                    assert "waiting" == (await status(podd, name))["state"]
                touch(release)
                assert 1 == (await podd("wait", "a")).code
                assert "clean" == await stop(podd, "e")

                async def skipped() -> list[str]:
                    reply = await result_of(podd.sock("p"), "notifications", {"peek": True})
                    texts = [n["text"] for n in reply["notifications"] if "skipped" in n["text"]]
                    return sorted(texts) if len(texts) == 2 else []

                on_error, on_end = await wait_for(skipped)
                assert "pod 'b' skipped its task: 'a' errored" == on_error
                assert on_end.startswith("pod 'd' skipped its task: 'e' "), on_end
                assert "errored" not in on_end
                for name, directory in dependents.items():
                    waited = await podd("wait", name, "--json")
                    assert 0 == waited.code, waited
                    doc = await status(podd, name)
                    assert ("idle", 0, None) == (doc["state"], doc["turns"], doc["waiting_on"])
                    assert not exists(f"{directory}/ran")
                assert "clean" == await stop(podd, "p")

    async def test_task_skipped_when_the_parent_dies_while_it_waits(
        self, podd: Podd, workdir: str
    ) -> None:
        # Only p watched a's turns for b: once p is gone, nobody would release b's task.
        release = os.path.join(workdir, "release.a")
        with trio.fail_after(60):
            await spawn(podd, "top", "--cwd", workdir)
            async with stopped_at_exit(podd, "top"):
                mid = os.path.join(workdir, "p")
                await child(podd, "p", "top", mid)
                a_args = ("--agent", GATED, "--env", f"RELEASE={release}", "--task", "x")
                await child(podd, "a", "p", os.path.join(mid, "a"), *a_args)
                b_dir = os.path.join(mid, "b")
                b_args = ("--agent", "touch ran", "--task", "go", "--after", "a")
                await child(podd, "b", "p", b_dir, *b_args)
                assert "waiting" == (await status(podd, "b"))["state"]
                os.kill(podd.pid("p"), signal.SIGKILL)

                async def told() -> list[str]:
                    reply = await result_of(podd.sock("top"), "notifications", {"peek": True})
                    texts = [n["text"] for n in reply["notifications"]]
                    return texts if any("skipped" in t for t in texts) else []

                texts = await wait_for(told)
                expected = (
                    "pod 'b' skipped its task: its parent 'p' died before its prerequisites"
                    " finished"
                )
                assert expected in texts, texts
                waited = await podd("wait", "b", "--json")
                assert 0 == waited.code, waited
                doc = await status(podd, "b")
                assert ("idle", 0, None, "top") == (
                    doc["state"],
                    doc["turns"],
                    doc["waiting_on"],
                    doc["parent"],
                )
                # a, adopted too, goes on; its finishing now releases nothing.
                touch(release)
                assert 0 == (await podd("wait", "a")).code
                assert not exists(os.path.join(b_dir, "ran"))
                assert "clean" == await stop(podd, "top")

    async def test_after_naming_no_child_is_exit_3(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                await child(podd, "a", "p", os.path.join(workdir, "a"))
                for after in ("nobody", "a,nobody"):
                    refused = await podd(
                        "spawn",
                        "b",
                        "--parent",
                        "p",
                        "--agent",
                        "true",
                        "--task",
                        "x",
                        "--after",
                        after,
                    )
                    assert 3 == refused.code, (after, refused)
                    assert not exists(os.path.join(root, "b"))
                children = [r["pod_name"] for r in (await status(podd, "p"))["children"]]
                assert ["a"] == children
                assert "clean" == await stop(podd, "p")

    async def test_after_naming_a_grandchild_is_exit_3(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                await child(podd, "a", "p", os.path.join(workdir, "a"))
                await child(podd, "g", "a", os.path.join(workdir, "a", "g"))
                refused = await podd(
                    "spawn", "b", "--parent", "p", "--agent", "true", "--task", "x", "--after", "g"
                )
                assert 3 == refused.code, refused
                assert not exists(os.path.join(root, "b"))
                assert "clean" == await stop(podd, "p")


# --- Concurrency ------------------------------------------------------------------


def marks(directory: str) -> list[int]:
    return [int(line) for line in read(os.path.join(directory, "marks")).split()]


class TestMaxRunning:
    """``--max-running 1`` on a pod: its subtree runs one agent turn at a time, the
    others wait (state ``waiting``) and get the slot first come first served; a slot
    whose holder dies comes back."""

    async def _tree(self, podd: Podd, workdir: str) -> dict[str, str]:
        """p (``--max-running 1``) with children c1 and c2 and grandchild g1 (under c1),
        each running SLOT_AGENT; their directories."""
        await spawn(podd, "p", "--cwd", workdir, "--max-running", "1")
        dirs = {
            "c1": os.path.join(workdir, "c1"),
            "c2": os.path.join(workdir, "c2"),
            "g1": os.path.join(workdir, "c1", "g1"),
        }
        for name, parent in (("c1", "p"), ("c2", "p"), ("g1", "c1")):
            peers = " ".join(os.path.join(d, "agent.pid") for n, d in dirs.items() if n != name)
            await child(
                podd,
                name,
                parent,
                dirs[name],
                "--agent",
                SLOT_AGENT,
                "--env",
                f"RELEASE={os.path.join(workdir, 'release.' + name)}",
                "--env",
                f"PEERS={peers}",
            )
        return dirs

    async def _queue_up(self, podd: Podd, dirs: dict[str, str]) -> None:
        """c1 runs, then c2 and g1 ask for the slot, in that order."""

        async def started(name: str) -> bool:
            return len(marks(dirs[name])) == 1

        async def waiting(name: str, behind: int) -> bool:
            doc, pool = await status(podd, name), (await status(podd, "p"))["slots"]
            return bool("waiting" == doc["state"] and behind == pool["waiting"])

        ok(await podd("send", "c1", "x"))
        await wait_for(lambda: started("c1"))
        ok(await podd("send", "c2", "x"))
        await wait_for(lambda: waiting("c2", 1))
        ok(await podd("send", "g1", "x"))
        await wait_for(lambda: waiting("g1", 2))
        pool = (await status(podd, "p"))["slots"]
        assert {"limit": 1, "running": [{"pod": "c1", "turn": 1}], "waiting": 2} == pool
        assert "a slot (--max-running)" == (await status(podd, "g1"))["waiting_on"]
        listed = {p["name"]: p["state"] for p in ok(await podd("ls", "--json")).json()["pods"]}
        assert ("running", "waiting", "waiting") == (listed["c1"], listed["c2"], listed["g1"])

    async def test_turns_in_the_subtree_never_overlap(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(60):
            dirs = await self._tree(podd, workdir)
            async with stopped_at_exit(podd, "p"):
                await self._queue_up(podd, dirs)

                async def started(name: str) -> bool:
                    return len(marks(dirs[name])) == 1

                # First come first served: c2 asked before g1.
                touch(os.path.join(workdir, "release.c1"))
                await wait_for(lambda: started("c2"))
                assert (2, []) == (len(marks(dirs["c1"])), marks(dirs["g1"]))
                touch(os.path.join(workdir, "release.c2"))
                await wait_for(lambda: started("g1"))
                assert 2 == len(marks(dirs["c2"]))
                touch(os.path.join(workdir, "release.g1"))
                for name in dirs:
                    assert 0 == (await podd("wait", name)).code
                spans = sorted((marks(d), n) for n, d in dirs.items())
                assert ["c1", "c2", "g1"] == [n for _, n in spans]
                for (first, _), (second, _) in itertools.pairwise(spans):
                    assert first[1] < second[0], spans
                assert ["", "", ""] == [read(os.path.join(d, "overlaps")) for d in dirs.values()]
                assert "clean" == await stop(podd, "p")

    async def test_slot_of_a_killed_holder_comes_back(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(60):
            dirs = await self._tree(podd, workdir)
            async with stopped_at_exit(podd, "p"):
                await self._queue_up(podd, dirs)
                agent = int(read(os.path.join(dirs["c1"], "agent.pid")))
                os.kill(podd.pid("c1"), signal.SIGKILL)

                async def started(name: str) -> bool:
                    return len(marks(dirs[name])) == 1

                await wait_for(lambda: started("c2"))
                assert [] == marks(dirs["g1"])
                pool = (await status(podd, "p"))["slots"]
                assert {"limit": 1, "running": [{"pod": "c2", "turn": 1}], "waiting": 1} == pool
                touch(os.path.join(workdir, "release.c2"))
                await wait_for(lambda: started("g1"))
                touch(os.path.join(workdir, "release.g1"))
                for name in ("c2", "g1"):
                    assert 0 == (await podd("wait", name)).code
                # c1's turn was cut short: it began and never ended, and its agent was
                # gone before the next turn began.
                assert 1 == len(marks(dirs["c1"]))
                assert [] == [p for p in [agent] if alive(p)], "c1's agent outlived c1"
                c2, g1 = marks(dirs["c2"]), marks(dirs["g1"])
                assert c2[1] < g1[0], (c2, g1)
                assert ["", ""] == [read(os.path.join(dirs[n], "overlaps")) for n in ("c2", "g1")]
                pods = {
                    p["name"]: p["state"] for p in ok(await podd("ls", "--json")).json()["pods"]
                }
                assert {"p": "idle", "c2": "idle", "g1": "idle"} == pods
                assert "clean" == await stop(podd, "p")


# --- podd wait --------------------------------------------------------------------


class TestPoolRestart:
    """A pool whose pod dies and is restarted (``--restart on-failure``) learns of the
    turns still running on its old slots: each holder asks again, as held."""

    async def test_a_restarted_pool_counts_the_turn_that_still_runs(
        self, podd: Podd, workdir: str
    ) -> None:
        # The children only read (the default): a child holding write on part of the
        # pool's scope would keep the pool from coming back (write_conflict).
        agent = 'while [ ! -e "$RELEASE" ]; do sleep 0.02; done'
        with trio.fail_after(60):
            await spawn(podd, "top", "--cwd", workdir)
            async with stopped_at_exit(podd, "top"):
                pool_dir = os.path.join(workdir, "p")
                pool_args = ("--max-running", "1", "--restart", "on-failure")
                await child(podd, "p", "top", pool_dir, *pool_args)
                for name in ("c1", "c2"):
                    release = os.path.join(workdir, f"release.{name}")
                    await spawn(
                        podd, name, "--parent", "p", "--agent", agent, "--env", f"RELEASE={release}"
                    )
                old_pid = podd.pid("p")
                ok(await podd("send", "c1", "x"))

                async def in_state(name: str, state: str) -> bool:
                    return bool(state == (await status(podd, name))["state"])

                await wait_for(lambda: in_state("c1", "running"))
                os.kill(old_pid, signal.SIGKILL)

                async def pool_back() -> Any:
                    # The restarted pool, once c1 holds its slot again (until then it
                    # has no pod.json, or the old one, or no holder yet).
                    with contextlib.suppress(OSError, ValueError, PoddError):
                        if podd.pid("p") != old_pid:
                            pool = (await status(podd, "p"))["slots"]
                            return pool if pool["running"] else None
                    return None

                # c1's turn runs on: the restarted pool counts it, and c2 waits for it.
                pool = await wait_for(pool_back)
                assert {"limit": 1, "running": [{"pod": "c1", "turn": 1}], "waiting": 0} == pool
                ok(await podd("send", "c2", "x"))
                await wait_for(lambda: in_state("c2", "waiting"))
                assert "running" == (await status(podd, "c1"))["state"]
                touch(os.path.join(workdir, "release.c1"))
                await wait_for(lambda: in_state("c2", "running"))
                assert "idle" == (await status(podd, "c1"))["state"]
                touch(os.path.join(workdir, "release.c2"))
                for name in ("c1", "c2"):
                    assert 0 == (await podd("wait", name)).code
                assert "clean" == await stop(podd, "top")


class TestWait:
    """``podd wait NAME`` blocks until NAME has nothing running, queued or waiting, and
    prints its last turn record: exit 0 finished, 1 errored or timed out, 3 no such pod."""

    async def test_exit_statuses_and_json(self, podd: Podd, workdir: str) -> None:
        release = os.path.join(workdir, "release")
        with trio.fail_after(60):
            await spawn(podd, "f", "--cwd", workdir, "--agent", "echo fine")
            await spawn(podd, "e", "--cwd", workdir, "--agent", "echo bad; exit 1")
            await spawn(
                podd, "b", "--cwd", workdir, "--agent", GATED, "--env", f"RELEASE={release}"
            )
            async with stopped_at_exit(podd, "f", "e", "b"):
                for name in ("f", "e", "b"):
                    ok(await podd("send", name, "x"))
                finished = await podd("wait", "f", "--json")
                doc = finished.json()
                assert (0, "f", 1, "finished", "fine\n") == (
                    finished.code,
                    doc["pod"],
                    doc["last_turn"]["turn"],
                    doc["last_turn"]["outcome"],
                    doc["last_turn"]["result"],
                )
                assert 0 == (await podd("wait", "f")).code
                errored = await podd("wait", "e", "--json")
                assert (1, "errored") == (errored.code, errored.json()["last_turn"]["outcome"])
                assert 1 == (await podd("wait", "e")).code
                busy = await podd("wait", "b", "--timeout", "0.5")
                assert (1, "running") == (busy.code, (await status(podd, "b"))["state"]), busy
                assert 3 == (await podd("wait", "nobody")).code
                assert 3 == (await podd("wait", "nobody", "--json")).code
                touch(release)
                assert 0 == (await podd("wait", "b", "--timeout", "30")).code
                for name in ("f", "e", "b"):
                    assert "clean" == await stop(podd, name)

    async def test_wait_covers_the_queue(self, podd: Podd, workdir: str) -> None:
        release = os.path.join(workdir, "release")
        with trio.fail_after(60):
            await spawn(
                podd, "w", "--cwd", workdir, "--agent", GATED, "--env", f"RELEASE={release}"
            )
            async with stopped_at_exit(podd, "w"):
                ok(await podd("send", "w", "first"))
                ok(await podd("send", "w", "second", "--queue"))
                async with await RawConnection.open(podd.sock("w")) as conn:
                    await conn.send({"method": "wait", "id": "wait"})
                    assert "ping" == (await conn.request("ping", request_id="ping"))["id"]
                    touch(release)
                    reply = await conn.receive()
                assert ("wait", 2) == (reply["id"], reply["result"]["last_turn"]["turn"])
                assert ["first", "second"] == read(os.path.join(workdir, "log")).splitlines()
                assert "clean" == await stop(podd, "w")


# --- Completion record ------------------------------------------------------------


def completion(root: str, name: str) -> dict[str, Any]:
    """The completion record, read as an outside script would."""
    with open(os.path.join(root, f".stopped.{name}.json")) as f:
        document: dict[str, Any] = json.load(f)
    return document


class TestCompletionRecord:
    """A pod that ends leaves ``<root>/.stopped.<name>.json`` with how and why it
    ended, when, its turns, its cost and its last turn record."""

    async def test_record_after_stop(self, podd: Podd, root: str, workdir: str) -> None:
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                await child(podd, "k", "p", os.path.join(workdir, "k"), "--agent", "echo out")
                await spawn(podd, "r", "--cwd", workdir, "--agent", "echo one; exit 2")
                async with stopped_at_exit(podd, "r"):
                    for _ in range(2):
                        assert 0 == (await podd("send", "k", "x", "--wait")).code
                    assert 1 == (await podd("send", "r", "x", "--wait")).code
                    before = time.time()
                    assert "clean" == await stop(podd, "p")
                    assert "clean" == await stop(podd, "r")
                    after = time.time()
            last_k = ok(await podd("result", "k", "--json")).json()
            last_r = (await podd("result", "r", "--json")).json()
            records = {name: completion(root, name) for name in ("p", "k", "r")}
            assert {
                "p": ("stopped", 0, None, None),
                "k": ("stopped", 2, None, last_k),
                "r": ("stopped", 1, None, last_r),
            } == {
                name: (d["how"], d["turns"], d["cost_usd"], d["last_turn"])
                for name, d in records.items()
            }
            assert (2, "finished", 1, "errored") == (
                last_k["turn"],
                last_k["outcome"],
                last_r["turn"],
                last_r["outcome"],
            )
            for name, document in records.items():
                assert isinstance(document["reason"], str) and document["reason"], name
                assert before <= document["at"] <= after, (name, before, document["at"], after)

    async def test_record_after_sigkill_and_reclaim(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        with trio.fail_after(60):
            await spawn(podd, "p", "--cwd", workdir)
            async with stopped_at_exit(podd, "p"):
                await child(podd, "k", "p", os.path.join(workdir, "k"), "--agent", "echo k")
                await spawn(podd, "r", "--cwd", workdir, "--agent", "echo r")
                async with stopped_at_exit(podd, "r"):
                    assert 0 == (await podd("send", "k", "x", "--wait")).code
                    for _ in range(3):
                        assert 0 == (await podd("send", "r", "x", "--wait")).code
                    before = time.time()
                    # A child is reclaimed by its parent at once; a root pod by
                    # `podd reclaim`.
                    os.kill(podd.pid("k"), signal.SIGKILL)
                    os.kill(podd.pid("r"), signal.SIGKILL)

                    async def reclaimed() -> bool:
                        return exists(os.path.join(root, ".stopped.k.json"))

                    await wait_for(reclaimed)
                    swept = ok(await podd("reclaim", "--json")).json()["reclaimed"]
                    assert ["r"] == [item["pod"] for item in swept]
                    after = time.time()
                    records = {name: completion(root, name) for name in ("k", "r")}
                    assert {"k": ("died", 1, None, 1), "r": ("died", 3, None, 3)} == {
                        name: (d["how"], d["turns"], d["cost_usd"], d["last_turn"]["turn"])
                        for name, d in records.items()
                    }
                    for name, document in records.items():
                        assert "finished" == document["last_turn"]["outcome"], name
                        assert isinstance(document["reason"], str) and document["reason"], name
                        assert before <= document["at"] <= after, name
                    assert "clean" == await stop(podd, "p")
