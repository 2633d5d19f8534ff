"""The root fork server: born with the first root pod (a fork of that pod, on the socket
the CLI bound), there and listening when the cold spawn returns, watching every root
pod, and gone once the last one is."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

import psutil
import pytest
import trio

from podd.spawn.forkserver import ROOT_SOCKET, claim_root_socket
from tests.conftest import Podd, titled_processes
from tests.e2e.support import wait_for


async def spawn(podd: Podd, *args: str) -> int:
    result = await podd("spawn", *args, "--json")
    assert 0 == result.code, result
    return int(json.loads(result.stdout)["pid"])


def root_servers(root: str) -> list[psutil.Process]:
    title = f"podd: root fork server [{root}]"
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            titled = " ".join(proc.info["cmdline"] or []).strip() == title
            if titled and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def listens(root: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        probe.connect(os.path.join(root, ROOT_SOCKET))
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def nothing_left(root: str) -> None:
    async def none() -> bool:
        return not titled_processes(root)

    with trio.fail_after(5):
        await wait_for(none)


def turn_group(root: str, name: str) -> int | None:
    try:
        with open(os.path.join(root, name, "turn.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class TestBornWithTheFirstPod:
    async def test_it_listens_when_the_cold_spawn_returns(self, podd: Podd, root: str) -> None:
        with trio.fail_after(60):
            first = await spawn(podd, "a")
            assert listens(root)
            (server,) = root_servers(root)
            # A process of its own session, not the pod's child: the pod forked it off
            # itself, with the pod's parent as its parent.
            assert first != server.ppid()
            assert server.pid == os.getsid(server.pid)
            assert psutil.Process(first).ppid() == server.ppid()
            # The next root pod comes from it.
            second = await spawn(podd, "b")
            assert server.pid == psutil.Process(second).ppid()
            assert [server.pid] == [p.pid for p in root_servers(root)]
            for name in ("b", "a"):
                assert 0 == (await podd("stop", name)).code
            await nothing_left(root)

    async def test_the_pod_serves_at_once(self, podd: Podd, root: str) -> None:
        with trio.fail_after(60):
            await spawn(podd, "a", "--agent", "true")
            sent = await podd("send", "a", "x", "--wait", "--json")
            assert 0 == sent.code, sent
            assert "finished" == sent.json()["outcome"]
            kid = await spawn(podd, "kid", "--parent", "a")
            assert psutil.Process(kid).ppid() == podd.pid("a")
            assert 0 == (await podd("stop", "a")).code
            await nothing_left(root)

    async def test_concurrent_cold_spawns(self, podd: Podd, root: str) -> None:
        names = [f"p{i}" for i in range(4)]
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for name in names:
                    nursery.start_soon(spawn, podd, name)
            assert listens(root)
            assert set(names) <= set(os.listdir(root))
            for name in names:
                assert 0 == (await podd("stop", name)).code
            await nothing_left(root)

    async def test_it_goes_by_itself_when_its_pod_is_killed(self, podd: Podd, root: str) -> None:
        with trio.fail_after(60):
            pid = await spawn(podd, "a")
            os.kill(pid, signal.SIGKILL)
            await nothing_left(root)  # within a few seconds, without any podd command


class TestOtherStarts:
    async def test_a_pod_started_with_exec_forks_it_too(self, podd: Podd, root: str) -> None:
        """``spawn_detached`` without ``run_pod`` (a caller that holds no runtime)
        execs the pod, which forks the root's fork server off itself all the same."""
        program = (
            "import sys; from podd.core.scope import default_root_scope;"
            " from podd.core.spec import PodSpec; from podd.spawn.spawner import spawn_detached;"
            " root, cwd = sys.argv[1:];"
            " print(spawn_detached(PodSpec(name='a', root=root, cwd=cwd,"
            " scope=default_root_scope(cwd))).pid)"
        )
        with trio.fail_after(60):
            done = await trio.run_process(
                [sys.executable, "-c", program, root, root], capture_stdout=True, env=podd.env
            )
            first = int(done.stdout)
            (server,) = root_servers(root)
            assert first != server.ppid()
            assert listens(root)
            second = await spawn(podd, "b")
            assert server.pid == psutil.Process(second).ppid()
            for name in ("a", "b"):
                assert 0 == (await podd("stop", name)).code
            await nothing_left(root)

    async def test_without_fork_servers(self, podd: Podd, root: str) -> None:
        podd.env["PODD_NO_FORKSERVER"] = "1"
        with trio.fail_after(60):
            await spawn(podd, "a", "--agent", "true")
            assert [] == root_servers(root)
            assert ROOT_SOCKET not in os.listdir(root)
            assert 0 == (await podd("send", "a", "x", "--wait")).code
            assert 0 == (await podd("stop", "a")).code
            await nothing_left(root)


class TestWatching:
    """A root pod's death kills the turn it left, and only that pod's turn."""

    @pytest.mark.parametrize("server", ["running", "gone"])
    async def test_a_refused_spawn_leaves_the_live_pods_turn(
        self, podd: Podd, root: str, server: str
    ) -> None:
        with trio.fail_after(60):
            await spawn(podd, "a", "--agent", "sleep 600")
            assert 0 == (await podd("send", "a", "x")).code

            async def started() -> int | None:
                return turn_group(root, "a")

            group = await wait_for(started)
            assert group is not None
            if server == "gone":
                # The next spawn finds no server: a cold one, whose pod (refused: the
                # name is taken) is the new server's first watched pod.
                for proc in root_servers(root):
                    proc.kill()
                    proc.wait(5)
            refused = await podd("spawn", "a", "--agent", "sleep 600")
            assert 1 == refused.code and "already_exists" in refused.stderr, refused
            await trio.sleep(0.5)  # a watcher would have killed it by now
            assert group_alive(group)
            assert "running" == (await podd("status", "a", "--json")).json()["state"]
            assert 0 == (await podd("stop", "a")).code
            await nothing_left(root)

    async def test_the_first_pods_turn_dies_with_it(self, podd: Podd, root: str) -> None:
        with trio.fail_after(60):
            pid = await spawn(podd, "a", "--agent", "sleep 600")
            assert 0 == (await podd("send", "a", "x")).code

            async def started() -> int | None:
                return turn_group(root, "a")

            group = await wait_for(started)
            assert group is not None
            os.kill(pid, signal.SIGKILL)

            async def gone() -> bool:
                return not group_alive(group)

            await wait_for(gone)
            await nothing_left(root)


class TestClaimingTheSocket:
    def test_a_stale_socket_file_is_taken_over(self, root: str) -> None:
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stale.bind(os.path.join(root, ROOT_SOCKET))
        stale.close()  # the file stays, nobody listens
        claimed = claim_root_socket(root)
        assert claimed is not None
        listener, identity = claimed
        with listener:
            assert identity == os.stat(os.path.join(root, ROOT_SOCKET)).st_ino
            assert listens(root)
            assert 0o600 == os.stat(os.path.join(root, ROOT_SOCKET)).st_mode & 0o777

    def test_a_live_one_is_left_unless_replaced(self, root: str) -> None:
        claimed = claim_root_socket(root)
        assert claimed is not None
        first, identity = claimed
        with first:
            assert claim_root_socket(root) is None
            taken = claim_root_socket(root, replace=True)
            assert taken is not None
            with taken[0]:
                assert identity != taken[1]
