"""The slot pool: at most ``limit`` leases at once, granted in the order asked."""

from __future__ import annotations

import trio
import trio.testing

from podd.runtime.slots import SlotPool


async def test_leases_are_granted_first_come_first_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pool = SlotPool(1)
    order: list[str] = []
    held = await pool.acquire("first", 1)

    async def ask(pod: str, release_after: float) -> None:
        lease = await pool.acquire(pod, 1)
        order.append(pod)
        await trio.sleep(release_after)
        lease.release()

    async with trio.open_nursery() as nursery:
        for index, pod in enumerate(["a", "b", "c"]):
            nursery.start_soon(ask, pod, 1.0)
            await trio.testing.wait_all_tasks_blocked()
            assert index + 1 == pool.waiting
        assert ({"first": 1}, 1) == (dict(pool.holders.values()), pool.running)
        held.release()
    assert (["a", "b", "c"], 0, 0) == (order, pool.running, pool.waiting)


async def test_release_is_idempotent() -> None:
    pool = SlotPool(2)
    lease = await pool.acquire("a", 3)
    lease.release()
    lease.release()
    first, second = await pool.acquire("b", 1), await pool.acquire("c", 1)
    assert {
        "limit": 2,
        "running": [{"pod": "b", "turn": 1}, {"pod": "c", "turn": 1}],
        "waiting": 0,
    } == (pool.to_dict())
    first.release()
    second.release()
