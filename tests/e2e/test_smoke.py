"""A first end-to-end pass: spawn a tree, see it, stop it."""

from __future__ import annotations

import os

import trio

from tests.conftest import Podd, pod_processes


class TestTree:
    """A root with children spawned through their parents can be listed and stopped."""

    async def test_spawn_list_stop_leaves_nothing(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            assert (await podd("spawn", "root")).code == 0
            assert (await podd("spawn", "a", "--parent", "root")).code == 0
            assert (await podd("spawn", "c", "--parent", "a")).code == 0
            listing = (await podd("ls", "--json")).json()
            assert ["a", "c", "root"] == [p["name"] for p in listing["pods"]]
            stop = await podd("stop", "root")
            assert (0, "clean\n") == (stop.code, stop.stdout)
            assert [] == pod_processes(root)
            # Only the stopped records that ``podd restart`` reads remain: files, no
            # directory and no socket.
            kept = (".stopped.", ".kept")
            assert [] == [e for e in os.listdir(root) if not e.startswith(kept)]
