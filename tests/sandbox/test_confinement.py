"""``run_turn`` through a confinement, and the ``Confinement`` object itself."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import trio

from podd.runtime.turn_process import OutputLog, TurnHandle, run_turn
from podd.sandbox import WRAPPER, EnforcementMode, prepare_confinement
from tests.sandbox.support import CONFINEMENT_FAILED, RUN_TIMEOUT, contents, skip_unless, spawn


class TestRunTurn:
    """``run_turn`` starts a turn through its confinement, and reports one that cannot run."""

    async def test_the_turn_is_its_own_process_group(
        self, mode: EnforcementMode, work: str, tmp_path: pathlib.Path
    ) -> None:
        output = OutputLog(str(tmp_path / "output.log"))
        started: list[int] = []
        script = "echo $(cut -d' ' -f5 /proc/$$/stat) $$"
        with prepare_confinement(script, [work], [f"{work}/held"], [], mode=mode) as confine:
            with trio.fail_after(RUN_TIMEOUT):
                outcome = await run_turn(
                    TurnHandle(1),
                    confinement=confine,
                    cwd=work,
                    env=os.environ,
                    stdin_data=b"",
                    timeout=RUN_TIMEOUT,
                    stdout=output.write,
                    stderr=output.write,
                    on_start=started.append,
                )
        output.close()
        pgid, pid = contents(output.path).split()
        assert (True, [int(pid)], pid) == (outcome.finished, started, pgid)

    async def test_a_turn_whose_confinement_fails_is_not_run(
        self, work: str, outside: str, tmp_path: pathlib.Path
    ) -> None:
        skip_unless("exact")
        held = f"{work}/held"
        output = OutputLog(str(tmp_path / "output.log"))
        with prepare_confinement(f"touch {outside}/x", [work], [held], []) as confine:
            shutil.rmtree(held)
            with trio.fail_after(RUN_TIMEOUT):
                outcome = await run_turn(
                    TurnHandle(1),
                    confinement=confine,
                    cwd=work,
                    env=os.environ,
                    stdin_data=b"",
                    timeout=RUN_TIMEOUT,
                    stdout=output.write,
                    stderr=output.write,
                )
        output.close()
        failure = f"{CONFINEMENT_FAILED}bind mount of {held} (No such file or directory)"
        assert (False, f"turn 1 not run: {failure}", 126) == (
            outcome.finished,
            outcome.message,
            outcome.exit_code,
        )
        assert (failure + "\n", []) == (contents(output.path), os.listdir(outside))


class TestConfinementObject:
    """A confinement says how to start the turn and holds its descriptors until closed."""

    async def test_advisory_confinement_runs_the_shell_directly(self, outside: str) -> None:
        with prepare_confinement(
            f"touch {outside}/f", ["/nonexistent"], [], [], mode="advisory"
        ) as c:
            assert (["/bin/sh", "-c", f"touch {outside}/f"], (), False) == (
                c.argv,
                c.pass_fds,
                c.enforced,
            )
            result = await spawn(c.argv, c.pass_fds)
        assert (0, ["f"]) == (result.code, os.listdir(outside))

    def test_only_a_descriptor_number_is_on_the_command_line(
        self, landlock: None, work: str
    ) -> None:
        with prepare_confinement("echo secret", [work], [f"{work}/held"], []) as confine:
            assert [sys.executable, "-I", "-S", WRAPPER] == confine.argv[:4]
            assert int(confine.argv[4]) in confine.pass_fds
            assert 5 == len(confine.argv)

    async def test_status_fd_turns_readable_once_the_command_runs(self, landlock: None) -> None:
        with trio.fail_after(RUN_TIMEOUT), prepare_confinement("exec cat", [], [], []) as c:
            proc = await trio.lowlevel.open_process(
                c.argv, pass_fds=c.pass_fds, process_group=0, stdin=subprocess.PIPE
            )
            c.spawned()
            assert c.status_fd is not None
            await trio.lowlevel.wait_readable(c.status_fd)
            running = proc.returncode is None
            assert proc.stdin is not None
            await proc.stdin.aclose()
            assert (True, 0, None) == (running, await proc.wait(), c.failure())

    def test_close_releases_the_descriptors_and_is_idempotent(
        self, landlock: None, work: str
    ) -> None:
        confine = prepare_confinement("true", [work], [], [])
        fds = confine.pass_fds
        assert 3 == len(fds)
        for fd in fds:
            os.fstat(fd)
        confine.close()
        confine.close()
        for fd in fds:
            with pytest.raises(OSError):
                os.fstat(fd)

    def test_spawned_closes_only_the_passed_descriptors(self, landlock: None, work: str) -> None:
        with prepare_confinement("true", [work], [], []) as confine:
            confine.spawned()
            confine.spawned()
            for fd in confine.pass_fds:
                with pytest.raises(OSError):
                    os.fstat(fd)
            assert confine.failure() is None
