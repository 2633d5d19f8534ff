"""The slot pool: at most ``limit`` leases at once, granted in the order asked."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

import trio
import trio.testing

from podd.runtime.slots import SlotPool, acquire_lease


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


async def test_a_held_slot_is_counted_at_once_even_over_the_limit() -> None:
    # A restarted pool hears of the turns that still run on slots it granted before.
    pool = SlotPool(1)
    first = await pool.acquire("a", 1)
    with trio.fail_after(5):
        again = await pool.acquire("b", 1, held=True)
    assert 2 == pool.running
    granted = trio.Event()

    async def ask() -> None:
        lease = await pool.acquire("c", 1)
        granted.set()
        lease.release()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        first.release()  # pays back the slot counted over the limit
        await trio.testing.wait_all_tasks_blocked()
        assert (False, 1, 1) == (granted.is_set(), pool.running, pool.waiting)
        again.release()
        with trio.fail_after(5):
            await granted.wait()
    assert (0, 0) == (pool.running, pool.waiting)


class FakePool:
    """A pod socket that grants every ``slot`` request and keeps what each asked;
    ``restart`` ends every connection and listens again, as a restarted pod does."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.asked: list[dict[str, object]] = []
        self.asked_event = trio.Event()
        self.closed_by_holder = trio.Event()
        self._listener: trio.socket.SocketType | None = None
        self._connections: list[trio.socket.SocketType] = []

    async def listen(self, nursery: trio.Nursery) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await listener.bind(self.path)
        listener.listen(8)
        self._listener = listener
        nursery.start_soon(self._accept, listener, nursery)

    async def _accept(self, listener: trio.socket.SocketType, nursery: trio.Nursery) -> None:
        with contextlib.suppress(OSError, trio.ClosedResourceError):
            while True:
                conn, _ = await listener.accept()
                self._connections.append(conn)
                nursery.start_soon(self._serve, conn)

    async def _serve(self, conn: trio.socket.SocketType) -> None:
        # A connection that ``restart`` closes here ends with ClosedResourceError.
        with contextlib.suppress(trio.ClosedResourceError):
            data = b""
            while b"\n" not in data:
                data += await conn.recv(65536)
            request = json.loads(data)
            reply = {"id": request["id"], "result": {"granted": True, "limit": 1}}
            await conn.send(json.dumps(reply).encode() + b"\n")
            self.asked.append(request["params"])
            self.asked_event.set()
            with contextlib.suppress(OSError):  # the holder's close: EOF, or a reset
                while await conn.recv(4096):
                    pass
            self.closed_by_holder.set()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for conn in self._connections:
            conn.close()
        self._connections.clear()

    def restart(self) -> None:
        self.close()
        self.asked_event = trio.Event()


async def test_a_lease_is_asked_for_again_as_held_when_its_pool_restarts() -> None:
    with tempfile.TemporaryDirectory(prefix="podd-s") as directory, trio.fail_after(10):
        pool = FakePool(os.path.join(directory, "sock"))
        async with trio.open_nursery() as nursery:
            await pool.listen(nursery)
            lease = await acquire_lease(pool.path, "kid", 3)
            assert lease is not None
            nursery.start_soon(lease.keep)
            await pool.asked_event.wait()
            assert [{"pod_name": "kid", "turn": 3}] == pool.asked
            pool.restart()  # the holder's first attempts may find nobody: it retries
            await pool.listen(nursery)
            await pool.asked_event.wait()
            assert {"pod_name": "kid", "turn": 3, "held": True} == pool.asked[-1]
            lease.release()  # the turn ended: the connection closes, keep returns
            await pool.closed_by_holder.wait()
            pool.close()
            nursery.cancel_scope.cancel()


async def test_no_lease_from_a_pod_that_is_gone() -> None:
    with tempfile.TemporaryDirectory(prefix="podd-s") as directory, trio.fail_after(10):
        assert None is await acquire_lease(os.path.join(directory, "sock"), "kid", 1)
