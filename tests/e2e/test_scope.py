"""Scope end to end (issue 5): delegation only narrows, writes are exclusive, and the
kernel (Landlock) holds agents to their write scope."""

from __future__ import annotations

import os

import pytest
import trio

from podd import sandbox
from tests.conftest import Podd, pod_processes

landlock_only = pytest.mark.skipif(
    sandbox.enforcement_mode() != "landlock", reason="Landlock is not available here"
)


def exists(path: str) -> bool:
    """A local stat (synchronous on purpose: it does not block on anything)."""
    return os.path.exists(path)


async def spawn(podd: Podd, *args: str) -> dict[str, object]:
    result = await podd("spawn", *args, "--json")
    assert 0 == result.code, result
    return dict(result.json())


async def send_wait(podd: Podd, name: str, text: str = "go") -> int:
    return (await podd("send", name, text, "--wait")).code


async def output(podd: Podd, name: str) -> str:
    return (await podd("output", name)).stdout


class TestDelegation:
    """A child's scope must be covered by its parent's, and a write is held by one child."""

    async def test_scope_outside_the_parent_is_refused_and_leaves_nothing(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        with trio.fail_after(30):
            mine = os.path.join(workdir, "mine")
            other = os.path.join(workdir, "other")
            os.mkdir(mine)
            os.mkdir(other)
            await spawn(podd, "p", "--scope", f"{mine}:write")
            before = sorted(os.listdir(root))
            result = await podd("spawn", "c", "--parent", "p", "--scope", f"{other}:read")
            assert (1, True) == (result.code, "[scope_not_subset]" in result.stderr), result
            assert f"read:{other}" in result.stderr
            assert before == sorted(os.listdir(root))
            assert ["p"] == [name for name, _, _ in pod_processes(root)]
            status = (await podd("status", "p", "--json")).json()
            assert [] == status["children"]
            assert 0 == (await podd("stop", "p")).code

    async def test_write_above_read_is_refused(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(30):
            await spawn(podd, "p", "--scope", f"{workdir}:read")
            result = await podd("spawn", "c", "--parent", "p", "--scope", f"{workdir}:write")
            assert (1, True) == (result.code, "[scope_not_subset]" in result.stderr), result
            assert 0 == (await podd("stop", "p")).code

    async def test_overlapping_writes_conflict_until_the_holder_stops(
        self, podd: Podd, workdir: str
    ) -> None:
        with trio.fail_after(30):
            part = os.path.join(workdir, "part")
            os.mkdir(part)
            await spawn(podd, "p", "--scope", f"{workdir}:write")
            await spawn(podd, "w1", "--parent", "p", "--scope", f"{part}:write")
            inner = os.path.join(part, "inner")
            os.mkdir(inner)
            second = await podd("spawn", "w2", "--parent", "p", "--scope", f"{inner}:write")
            assert (1, True, True) == (
                second.code,
                "[write_conflict]" in second.stderr,
                "'w1'" in second.stderr,
            ), second
            assert 0 == (await podd("stop", "w1")).code
            await spawn(podd, "w2", "--parent", "p", "--scope", f"{inner}:write")
            assert 0 == (await podd("stop", "p")).code

    async def test_status_shows_scope_delegations_and_enforcement(
        self, podd: Podd, workdir: str
    ) -> None:
        with trio.fail_after(30):
            part = os.path.join(workdir, "part")
            os.mkdir(part)
            await spawn(podd, "p", "--scope", f"{workdir}:write")
            await spawn(podd, "c", "--parent", "p", "--scope", f"{part}:write")
            status = (await podd("status", "p", "--json")).json()
            own = [{"target": workdir, "permission": "write", "recursive": True}]
            delegated = {c["pod_name"]: c["scope_delegated"] for c in status["children"]}
            assert own == status["scope"]
            assert {"c": [{"target": part, "permission": "write", "recursive": True}]} == delegated
            assert sandbox.enforcement_mode() == status["enforcement"]
            assert 0 == (await podd("stop", "p")).code


@landlock_only
class TestEnforcement:
    """An agent's writes are confined by the kernel to its pod's write scope."""

    async def test_writes_inside_succeed_and_outside_fail(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(30):
            work = os.path.join(workdir, "work")
            other = os.path.join(workdir, "other")
            os.mkdir(work)
            os.mkdir(other)
            inside = f"touch {work}/f"
            await spawn(podd, "p", "--scope", f"{work}:write", "--agent", inside)
            assert 0 == await send_wait(podd, "p")
            assert exists(os.path.join(work, "f"))
            await spawn(podd, "q", "--scope", f"{work}:write", "--agent", f"touch {other}/f")
            assert 1 == await send_wait(podd, "q")
            assert "Permission denied" in await output(podd, "q")
            assert not exists(os.path.join(other, "f"))
            status = (await podd("status", "q", "--json")).json()
            assert (False, 1) == (status["last_turn"]["finished"], status["last_turn"]["exit_code"])
            assert 0 == (await podd("stop", "p")).code
            assert 0 == (await podd("stop", "q")).code

    async def test_a_read_only_child_cannot_write(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(30):
            await spawn(podd, "p", "--scope", f"{workdir}:write")
            touch = f"touch {workdir}/from-child"
            await spawn(podd, "c", "--parent", "p", "--scope", workdir, "--agent", touch)
            assert 1 == await send_wait(podd, "c")
            assert "Permission denied" in await output(podd, "c")
            assert not exists(os.path.join(workdir, "from-child"))
            assert 0 == (await podd("stop", "p")).code

    async def test_parent_cannot_write_where_a_child_holds_write_until_it_stops(
        self, podd: Podd, workdir: str
    ) -> None:
        with trio.fail_after(30):
            part = os.path.join(workdir, "part")
            os.mkdir(part)
            target = os.path.join(part, "from-parent")
            await spawn(podd, "p", "--scope", f"{workdir}:write", "--agent", f"touch {target}")
            await spawn(podd, "c", "--parent", "p", "--scope", f"{part}:write")
            assert 1 == await send_wait(podd, "p")
            assert "Permission denied" in await output(podd, "p")
            assert not exists(target)
            assert 0 == (await podd("stop", "c")).code
            assert 0 == await send_wait(podd, "p")
            assert exists(target)
            assert 0 == (await podd("stop", "p")).code

    async def test_the_turn_can_use_its_temp_dir(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(30):
            agent = 'f=$(mktemp) && echo ok > "$f" && cat "$f"'
            await spawn(podd, "p", "--scope", f"{workdir}:read", "--agent", agent)
            assert 0 == await send_wait(podd, "p")
            assert "ok\n" in await output(podd, "p")
            assert 0 == (await podd("stop", "p")).code
