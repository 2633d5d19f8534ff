"""A pod forked from a fork server has its own fork server from the start: a fork of
itself taken before its event loop ran, whose children are the pod's own OS children,
and which goes with the pod."""

from __future__ import annotations

import json

import psutil
import trio

from tests.conftest import Podd, titled_processes
from tests.e2e.support import wait_for


async def spawn(podd: Podd, *args: str) -> int:
    result = await podd("spawn", *args, "--json")
    assert 0 == result.code, result
    return int(json.loads(result.stdout)["pid"])


def fork_servers_of(pid: int, name: str, root: str) -> list[psutil.Process]:
    title = f"podd: fork server of {name} [{root}]"
    return [
        p
        for p in psutil.Process(pid).children()
        if " ".join(p.cmdline()).strip() == title and p.status() != psutil.STATUS_ZOMBIE
    ]


class TestOwnForkServer:
    """A forked pod's fork server exists before the first spawn and forks its children."""

    async def test_children_come_from_the_fork_server_forked_with_the_pod(
        self, podd: Podd, root: str
    ) -> None:
        with trio.fail_after(60):
            await spawn(podd, "lead")
            kid = await spawn(podd, "kid", "--parent", "lead")
            # kid has spawned nothing yet: its fork server came with it.
            assert 1 == len(fork_servers_of(kid, "kid", root))
            grandkids = [await spawn(podd, f"g{i}", "--parent", "kid") for i in range(2)]
            assert [kid, kid] == [psutil.Process(pid).ppid() for pid in grandkids]
            assert 1 == len(fork_servers_of(kid, "kid", root))
            assert all(
                1 == len(fork_servers_of(pid, f"g{i}", root)) for i, pid in enumerate(grandkids)
            )
            assert 0 == (await podd("stop", "lead")).code

            async def nothing_left() -> bool:
                return not titled_processes(root)

            await wait_for(nothing_left)

    async def test_a_stopped_pod_takes_its_fork_server_along(self, podd: Podd, root: str) -> None:
        with trio.fail_after(60):
            await spawn(podd, "lead")
            kid = await spawn(podd, "kid", "--parent", "lead")
            (server,) = fork_servers_of(kid, "kid", root)
            assert 0 == (await podd("stop", "kid")).code

            async def gone() -> bool:
                return not server.is_running() or server.status() == psutil.STATUS_ZOMBIE

            await wait_for(gone)
            assert 0 == (await podd("stop", "lead")).code
