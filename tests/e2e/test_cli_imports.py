"""The command line stays lean: no command but a root pod's spawn imports trio, cattrs,
attrs, orjson, psutil or (piped) rich.

Each command runs in a fresh interpreter against real pods; what it imported is read
from its ``sys.modules`` once it is done.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
import trio

from tests.conftest import Podd

HEAVY = frozenset({"attr", "attrs", "cattrs", "orjson", "psutil", "rich", "trio"})

PROBE = """
import json, sys
from podd.cli import main
status = main(sys.argv[1:])
print(json.dumps([status, sorted({m.split(".")[0] for m in sys.modules})]), file=sys.stderr)
"""


async def run(podd: Podd, *args: str) -> tuple[int, list[str]]:
    """The command's exit status and the heavy packages it imported."""
    with trio.fail_after(30):
        proc = await trio.run_process(
            [sys.executable, "-c", PROBE, *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=podd.env,
            cwd=podd.root,
        )
    status, modules = json.loads(proc.stderr.decode().splitlines()[-1])
    return status, sorted(HEAVY & set(modules))


class TestLean:
    """Every command's imports leave out the heavy packages."""

    @pytest.mark.parametrize(
        "args",
        [
            ("ls",),
            ("ls", "--json"),
            ("status", "nope"),
            ("send", "nope", "hello"),
            ("notifications", "nope"),
            ("output", "nope"),
            ("stop", "nope"),
            ("restart", "nope"),
            ("reclaim",),
            ("reclaim", "--json"),
        ],
    )
    async def test_without_pods(self, podd: Podd, args: tuple[str, ...]) -> None:
        status, heavy = await run(podd, *args)
        assert (0 if args[0] in ("ls", "reclaim") else 3, []) == (status, heavy)

    async def test_with_a_tree_of_pods(self, podd: Podd, workdir: str) -> None:
        with trio.fail_after(60):
            assert 0 == (await podd("spawn", "top", "--cwd", workdir)).code
            results = {
                "spawn child": await run(podd, "spawn", "kid", "--parent", "top"),
                "spawn with scope": await run(
                    podd, "spawn", "kid2", "--parent", "top", "--scope", f"{workdir}:write"
                ),
                "ls": await run(podd, "ls"),
                "ls --json": await run(podd, "ls", "--json"),
                "status": await run(podd, "status", "top"),
                "status --json": await run(podd, "status", "kid", "--json"),
                "notifications": await run(podd, "notifications", "top", "--json"),
                "send (no agent)": await run(podd, "send", "top", "hello"),
                "output": await run(podd, "output", "top"),
                "reclaim NAME": await run(podd, "reclaim", "top"),
                "stop child": await run(podd, "stop", "kid"),
                "restart child": await run(podd, "restart", "kid"),
                "stop": await run(podd, "stop", "top"),
                "reclaim": await run(podd, "reclaim"),
            }
        expected = {what: (0, []) for what in results}
        expected["send (no agent)"] = (1, [])
        assert expected == results
        assert [] == [n for n in os.listdir(podd.root) if not n.startswith(".")]
