"""Load (issue 9): ten children each finish 1,000 turns as fast as they can while their
parent is kept busy by a client hammering it; the parent receives exactly 10,000
``turn_ended`` events, each once.

The parent's notification buffer keeps only the newest 128, so the events are counted
three other ways: the parent's event trace (``PODD_TRACE_EVENTS``: one ``apply`` line
per applied event), the per-child sequence number the parent acknowledged (``status``
→ ``children[].last_seq``), and the buffer's own count (kept plus dropped).
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile

import orjson
import pytest
import trio

from tests.conftest import Podd
from tests.e2e.support import result_of, wait_for
from tests.stress.support import figures, tree_processes

pytestmark = pytest.mark.stress

CHILDREN = 10
TURNS = 1000


def applied_events(trace: str) -> list[list[str]]:
    """The ``apply <sender> <turn> <time>`` lines of a pod's event trace, split."""
    with open(trace) as f:
        return [line.split() for line in f if line.startswith("apply ")]


class TestTenThousandTurns:
    """Every turn of every child reaches the busy parent exactly once."""

    async def test_the_parent_receives_every_turn_ended(self, podd: Podd, root: str) -> None:
        trace_dir = tempfile.mkdtemp(prefix="podd-trace", dir="/tmp")
        podd.env["PODD_TRACE_EVENTS"] = trace_dir
        names = [f"c{i}" for i in range(CHILDREN)]
        finished: collections.Counter[str] = collections.Counter()
        hammered = {"requests": 0, "max_latency": 0.0}
        with trio.fail_after(60):
            assert 0 == (await podd("spawn", "p")).code
            async with trio.open_nursery() as nursery:
                for name in names:
                    nursery.start_soon(self.spawn_child, podd, name)

        async def drive(name: str) -> None:
            """1,000 turns, one after the other, on one connection to the child."""
            stream = await trio.open_unix_socket(podd.sock(name))
            buffer = b""
            async with stream:
                for turn in range(1, TURNS + 1):
                    frame = {"method": "send", "params": {"text": "go", "wait": True}, "id": turn}
                    await stream.send_all(orjson.dumps(frame) + b"\n")
                    while b"\n" not in buffer:
                        chunk = await stream.receive_some(1 << 16)
                        assert chunk, f"{name} closed the connection"
                        buffer += chunk
                    line, buffer = buffer.split(b"\n", 1)
                    reply = orjson.loads(line)
                    assert (turn, True) == (
                        reply["id"],
                        (reply["result"]["outcome"] == "finished"),
                    ), reply
                    finished[name] += 1

        async def hammer(method: str, done: trio.Event) -> None:
            """Keep the parent busy: one request after another until the turns are done."""
            stream = await trio.open_unix_socket(podd.sock("p"))
            buffer = b""
            async with stream:
                while not done.is_set():
                    start = trio.current_time()
                    await stream.send_all(b'{"method": "%s", "id": 1}\n' % method.encode())
                    while b"\n" not in buffer:
                        buffer += await stream.receive_some(1 << 16)
                    _, buffer = buffer.split(b"\n", 1)
                    hammered["requests"] += 1
                    latency = trio.current_time() - start
                    hammered["max_latency"] = max(hammered["max_latency"], latency)

        with trio.fail_after(900):
            started = trio.current_time()
            done = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hammer, "status", done)
                nursery.start_soon(hammer, "ping", done)
                async with trio.open_nursery() as drivers:
                    for name in names:
                        drivers.start_soon(drive, name)
                elapsed = trio.current_time() - started
                done.set()

            async def all_acknowledged() -> bool:
                """Every child's outbox is empty: the parent acked all its events."""
                statuses = [await result_of(podd.sock(name), "status") for name in names]
                return all(s["outbox"]["pending"] == 0 for s in statuses)

            await wait_for(all_acknowledged)
            parent = await result_of(podd.sock("p"), "status")
            stop = await podd("stop", "p")
            assert (0, "clean\n") == (stop.code, stop.stdout), stop

            async def nothing_left() -> bool:
                return not tree_processes(root)

            await wait_for(nothing_left)
        assert {name: TURNS for name in names} == dict(finished)

        # 1. The acknowledged sequence numbers: one event per turn, none other.
        acked = {r["pod_name"]: (r["incarnation"], r["last_seq"]) for r in parent["children"]}
        assert {name: (1, TURNS) for name in names} == acked
        # 2. The notification buffer: what it keeps plus what it dropped.
        dropped = parent["notifications_dropped"]
        kept = parent["notifications_pending"] - (1 if dropped else 0)
        assert CHILDREN * TURNS == kept + dropped
        # 3. The parent's trace: each turn of each child applied exactly once.
        applied = applied_events(os.path.join(trace_dir, "p.trace"))
        turns = collections.Counter((sender, int(turn)) for _, sender, turn, _ in applied)
        turn_ended = {key: n for key, n in turns.items() if key[1] > 0}
        expected = {(name, turn): 1 for name in names for turn in range(1, TURNS + 1)}
        assert expected == turn_ended
        shutil.rmtree(trace_dir, ignore_errors=True)
        figures(
            "load",
            turns=CHILDREN * TURNS,
            seconds=elapsed,
            turns_per_second=CHILDREN * TURNS / elapsed,
            trace_apply_lines=len(applied),
            parent_requests_served=hammered["requests"],
            parent_max_latency=hammered["max_latency"],
            parent_loop_lag_max=parent["lag"]["max"],
            parent_longest_handler=parent["lag"]["longest_handler"]["seconds"],
        )

    async def spawn_child(self, podd: Podd, name: str) -> None:
        result = await podd("spawn", name, "--parent", "p", "--agent", "true")
        assert 0 == result.code, result
