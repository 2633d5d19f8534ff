"""Scope end to end (issue 5): delegation only narrows, writes are exclusive, and the
kernel (Landlock, and read-only bind mounts for what a child holds; or, for a pod
spawned with ``--nested-sandbox``, mounts alone) holds agents to their write scope."""

from __future__ import annotations

import os
import shutil

import pytest
import trio

from podd import sandbox
from tests.conftest import Podd, pod_processes

landlock_only = pytest.mark.skipif(
    sandbox.enforcement_mode() == "advisory", reason="Landlock is not available here"
)
exact_only = pytest.mark.skipif(
    sandbox.enforcement_mode() != "exact",
    reason=f"exclusions are not exact here: {sandbox.enforcement_detail()}",
)

mounts_only = pytest.mark.skipif(
    sandbox.mounts_only_problem() is not None,
    reason=f"no confinement by mounts alone here: {sandbox.mounts_only_problem()}",
)
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)"
)

READ_ONLY = "Read-only file system"
DENIED = "Permission denied"


def exists(path: str) -> bool:
    """A local stat (synchronous on purpose: it does not block on anything)."""
    return os.path.exists(path)


def contents(path: str) -> str:
    """A local read (synchronous on purpose, like ``exists``)."""
    with open(path) as f:
        return f.read()


def make_tree(workdir: str) -> tuple[str, str, str]:
    """``(W, W/sub, other)`` beneath ``workdir``, with a file ``W/f`` holding ``old``."""
    work = os.path.join(workdir, "W")
    sub = os.path.join(work, "sub")
    other = os.path.join(workdir, "other")
    os.makedirs(sub)
    os.mkdir(other)
    with open(os.path.join(work, "f"), "w") as f:
        f.write("old\n")
    return work, sub, other


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
            assert sandbox.enforcement_detail() == status["enforcement_detail"]
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
            assert (False, 1) == (
                (status["last_turn"]["outcome"] == "finished"),
                status["last_turn"]["exit_code"],
            )
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
            exact = sandbox.enforcement_mode() == "exact"
            assert (READ_ONLY if exact else DENIED) in await output(podd, "p")
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


@exact_only
class TestExactExclusion:
    """While a child holds W/sub for write, its parent's agent keeps every other right in W."""

    async def test_the_parent_keeps_w_and_only_w_sub_is_read_only(
        self, podd: Podd, workdir: str
    ) -> None:
        with trio.fail_after(60):
            work, sub, other = make_tree(workdir)
            await spawn(podd, "p", "--scope", f"{work}:write", "--agent", "sh")
            await spawn(podd, "c", "--parent", "p", "--scope", f"{sub}:write")
            script = f"""set -e
            cd {work}
            echo new > new.txt
            mkdir d && mkdir d/e && echo x > d/e/g && mv d/e/g d/h && rm -r d/e
            echo saved > .f.tmp && mv .f.tmp f
            staged=$(mktemp) && echo staged > "$staged" && mv "$staged" staged.txt
            """
            assert 0 == await send_wait(podd, "p", script)
            assert ["d", "f", "new.txt", "staged.txt", "sub"] == sorted(os.listdir(work))
            assert ("saved\n", "staged\n") == (
                contents(os.path.join(work, "f")),
                contents(os.path.join(work, "staged.txt")),
            )
            assert 1 == await send_wait(podd, "p", f"echo x > {sub}/x")
            assert READ_ONLY in await output(podd, "p")
            assert 1 == await send_wait(podd, "p", f"touch {other}/x")
            assert DENIED in await output(podd, "p")
            assert ([], []) == (os.listdir(sub), os.listdir(other))
            status = (await podd("status", "p", "--json")).json()
            assert "exact" == status["enforcement"]
            assert "read-only bind mounts" in status["enforcement_detail"]
            assert 0 == (await podd("stop", "c")).code
            assert 0 == await send_wait(podd, "p", f"echo x > {sub}/x")
            assert "x\n" == contents(os.path.join(sub, "x"))
            assert 0 == (await podd("stop", "p")).code

    async def test_the_child_writes_what_it_holds(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(60):
            work, sub, _ = make_tree(workdir)
            await spawn(podd, "p", "--scope", f"{work}:write")
            await spawn(podd, "c", "--parent", "p", "--scope", f"{sub}:write", "--agent", "sh")
            assert 0 == await send_wait(podd, "c", f"echo x > {sub}/x")
            assert 1 == await send_wait(podd, "c", f"touch {work}/new.txt")
            assert DENIED in await output(podd, "c")
            assert ["x"] == os.listdir(sub)
            assert not exists(os.path.join(work, "new.txt"))
            assert 0 == (await podd("stop", "p")).code


@landlock_only
class TestApproximateExclusion:
    """Without mount namespaces (forced here), an exclusion costs its parent more."""

    async def test_the_parent_cannot_create_entries_beside_the_held_path(
        self, podd: Podd, workdir: str
    ) -> None:
        with trio.fail_after(60):
            podd.env["PODD_NO_NAMESPACES"] = "1"
            work, sub, _ = make_tree(workdir)
            await spawn(podd, "p", "--scope", f"{work}:write", "--agent", "sh")
            await spawn(podd, "c", "--parent", "p", "--scope", f"{sub}:write")
            status = (await podd("status", "p", "--json")).json()
            assert "approximate" == status["enforcement"]
            assert "no mount namespaces (PODD_NO_NAMESPACES is set)" in status["enforcement_detail"]
            assert 0 == await send_wait(podd, "p", f"echo new > {work}/f")
            assert 1 == await send_wait(podd, "p", f"touch {work}/new.txt")
            assert 1 == await send_wait(podd, "p", f"touch {sub}/x")
            assert DENIED in await output(podd, "p")
            assert (["f", "sub"], []) == (sorted(os.listdir(work)), os.listdir(sub))
            assert 0 == (await podd("stop", "c")).code
            assert 0 == await send_wait(podd, "p", f"touch {work}/new.txt {sub}/x")
            assert 0 == (await podd("stop", "p")).code


@mounts_only
class TestNestedSandbox:
    """A pod spawned with --nested-sandbox is confined by mounts alone: its agent's own
    sandbox runs, and its writes still stay in its scope."""

    @needs_bwrap
    async def test_the_agent_runs_bubblewrap_and_writes_only_in_its_scope(
        self, podd: Podd, workdir: str
    ) -> None:
        with trio.fail_after(60):
            work, sub, other = make_tree(workdir)
            await spawn(podd, "p", "--scope", f"{work}:write", "--agent", "sh", "--nested-sandbox")
            await spawn(podd, "c", "--parent", "p", "--scope", f"{sub}:write")
            inside = f"bwrap --ro-bind / / --dev /dev --proc /proc true && echo x > {work}/new.txt"
            assert 0 == await send_wait(podd, "p", inside)
            assert "x\n" == contents(os.path.join(work, "new.txt"))
            assert 1 == await send_wait(podd, "p", f"touch {sub}/x")
            assert 1 == await send_wait(podd, "p", f"touch {other}/x")
            assert 2 == (await output(podd, "p")).count(READ_ONLY)
            assert ([], []) == (os.listdir(sub), os.listdir(other))
            status = (await podd("status", "p", "--json")).json()
            assert (True, "exact") == (status["nested_sandbox"], status["enforcement"])
            assert status["enforcement_detail"].startswith("mounts alone (--nested-sandbox)")
            assert sandbox.enforcement_detail(nested_sandbox=True) == status["enforcement_detail"]
            assert 0 == (await podd("stop", "p")).code

    async def test_a_child_has_it_only_when_asked(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(60):
            work, sub, _ = make_tree(workdir)
            await spawn(podd, "p", "--scope", f"{work}:write", "--nested-sandbox")
            await spawn(podd, "plain", "--parent", "p")
            agent = f"touch {work}/outside-the-scope"
            await spawn(
                podd,
                "c",
                *("--parent", "p", "--scope", f"{sub}:write", "--agent", agent),
                "--nested-sandbox",
            )
            shown = {}
            for name in ("p", "plain", "c"):
                shown[name] = (await podd("status", name, "--json")).json()["nested_sandbox"]
            assert {"p": True, "plain": False, "c": True} == shown
            assert 1 == await send_wait(podd, "c")
            assert READ_ONLY in await output(podd, "c")
            assert not exists(os.path.join(work, "outside-the-scope"))
            assert 0 == (await podd("stop", "p")).code
