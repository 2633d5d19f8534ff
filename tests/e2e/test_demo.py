"""The README's demo: it runs to the end, shows what it says it shows, leaves nothing."""

from __future__ import annotations

import os
import re

import trio

from tests.conftest import titled_processes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def test_the_demo_shows_both_workers_reporting_and_cleans_up() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PODD_ROOT", "POD_NAME")}
    with trio.fail_after(120):
        done = await trio.run_process(
            ["bash", os.path.join(REPO, "scripts", "demo")],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
            stdin=b"",
        )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert (0, "") == (done.returncode, err.replace("podd: ready\n", "")), err
    assert "the planner heard from 2 workers" in out, out
    assert "pod 'worker-1' finished turn 1" in out and "pod 'worker-2' finished turn 1" in out
    (root,) = re.findall(r"^left under (\S+): 0 pod directories or sockets", out, re.M)
    assert ([], False) == (titled_processes(root), await trio.Path(root).exists())
