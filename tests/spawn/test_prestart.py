"""The pod of a cold root spawn, forked as the command starts (``podd.spawn.prestart``):
it becomes the pod it is handed, and a process that is handed none is gone.

Each case runs in a fresh interpreter, as the CLI does: a fork is taken from a process
with a single thread.
"""

from __future__ import annotations

import json
import os
import sys

import trio

from tests.conftest import Podd, titled_processes
from tests.e2e.support import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRELUDE = """
import json, os, sys
from podd.core.scope import default_root_scope
from podd.core.spec import PodSpec
from podd.runtime.launch import load_runtime, run_pod
from podd.spawn import prestart
from podd.spawn.spawner import SpawnError, spawn_detached
root, work = sys.argv[1], sys.argv[2]
def spec(name, **fields):
    return PodSpec(name=name, root=root, cwd=work, scope=default_root_scope(work), **fields)
def report(value):
    print(json.dumps(value), flush=True)
"""


async def script(podd: Podd, workdir: str, body: str) -> object:
    """Run ``body`` after ``PRELUDE``; what it reported last."""
    with trio.fail_after(60):
        proc = await trio.run_process(
            [sys.executable, "-c", PRELUDE + body, podd.root, workdir],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=podd.env,
            cwd=REPO,
        )
    assert 0 == proc.returncode, proc.stderr.decode()
    return json.loads(proc.stdout.decode().splitlines()[-1])


def state_of(pid: int) -> str:
    """A process's state letter (``Z``: it has ended), or ``gone``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return "gone"


class TestHandOver:
    async def test_the_prestarted_process_becomes_the_pod(self, podd: Podd, workdir: str) -> None:
        pids = await script(
            podd,
            workdir,
            "prestart.prestart(load_runtime, root)\n"
            "p = prestart.take()\n"
            "ready = spawn_detached(spec('early'), prestarted=p)\n"
            "report([p.pid, ready.pid])\n",
        )
        assert isinstance(pids, list)
        assert pids[0] == pids[1]
        with trio.fail_after(30):
            status = await podd("status", "early", "--json")
            assert (0, "idle", pids[0]) == (
                status.code,
                json.loads(status.stdout)["state"],
                json.loads(status.stdout)["pid"],
            )
            assert [f"podd: pod early [{podd.root}]"] == [
                t for t in titled_processes(podd.root) if t.startswith("podd: pod ")
            ]
            assert (0, "clean") == ((r := await podd("stop", "early")).code, r.stdout.strip())

    async def test_a_spec_too_large_to_hand_over_is_started_the_usual_way(
        self, podd: Podd, workdir: str
    ) -> None:
        pids = await script(
            podd,
            workdir,
            "prestart.prestart(load_runtime, root)\n"
            "p = prestart.take()\n"
            "big = spec('big', task='x' * (prestart.MAX_HANDOVER + 1))\n"
            "ready = spawn_detached(big, run_pod=run_pod, prestarted=p)\n"
            "report([p.pid, ready.pid])\n",
        )
        assert isinstance(pids, list)
        assert pids[0] != pids[1]
        assert state_of(pids[0]) in ("gone", "Z")
        with trio.fail_after(30):
            assert 0 == (await podd("stop", "big")).code

    async def test_a_runtime_that_cannot_load_fails_the_spawn_with_its_reason(
        self, podd: Podd, workdir: str
    ) -> None:
        message = await script(
            podd,
            workdir,
            "def load():\n"
            "    raise RuntimeError('no runtime to be had')\n"
            "prestart.prestart(load, root)\n"
            "try:\n"
            "    spawn_detached(spec('broken'), prestarted=prestart.take())\n"
            "except SpawnError as exc:\n"
            "    report(exc.message)\n",
        )
        assert isinstance(message, str)
        assert "RuntimeError: no runtime to be had" in message
        assert [] == [name for name in os.listdir(podd.root) if not name.startswith(".")]


class TestNoPod:
    async def test_a_cancelled_process_is_gone_when_cancel_returns(
        self, podd: Podd, workdir: str
    ) -> None:
        states = await script(
            podd,
            workdir,
            "prestart.prestart(load_runtime, root)\n"
            "p = prestart.take()\n"
            "pid = p.pid\n"
            "before = open(f'/proc/{pid}/stat').read().rpartition(')')[2].split()[0]\n"
            "p.cancel()\n"
            "try:\n"
            "    after = open(f'/proc/{pid}/stat').read().rpartition(')')[2].split()[0]\n"
            "except FileNotFoundError:\n"
            "    after = 'gone'\n"
            "report([before, after])\n",
        )
        assert isinstance(states, list)
        assert states[0] not in ("gone", "Z")
        assert states[1] in ("gone", "Z")

    async def test_it_ends_when_the_command_ends_without_a_word(
        self, podd: Podd, workdir: str
    ) -> None:
        pid = await script(
            podd,
            workdir,
            "prestart.prestart(load_runtime, root)\n"
            "report(prestart.take().pid)\n"
            "sys.stdout.flush()\n"
            "os._exit(0)\n",
        )
        assert isinstance(pid, int)

        async def ended() -> bool:
            return state_of(pid) in ("gone", "Z")

        with trio.fail_after(30):
            await wait_for(ended)
        assert [] == os.listdir(podd.root)

    async def test_a_refused_cold_spawn_leaves_no_process(self, podd: Podd) -> None:
        with trio.fail_after(30):
            result = await podd("spawn", "x", "--no-such-flag")
        assert 2 == result.code
        assert [] == titled_processes(podd.root)
        assert [] == os.listdir(podd.root)
