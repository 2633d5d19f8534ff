"""Process facts from /proc agree with psutil's, which the pods record."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import psutil
import pytest

from podd.proc import facts as procfacts
from podd.proc import procfs


@pytest.fixture
def odd_name_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="podd-p", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def exited_child(executable: str) -> subprocess.Popen[bytes]:
    """A child that has exited and is not reaped yet: a zombie."""
    proc = subprocess.Popen([executable])
    # WNOWAIT: wait until it has exited, and leave it unreaped.
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    return proc


class TestAgreesWithPsutil:
    """read_stat gives psutil's create_time() and status, and is_alive the same answer."""

    def test_this_process(self) -> None:
        facts = procfs.read_stat(os.getpid())
        assert facts is not None
        me = psutil.Process()
        assert (me.create_time(), "R") == (facts.start_time, facts.state)
        assert procfs.is_alive(os.getpid(), me.create_time())
        assert procfacts.start_time(os.getpid()) == facts.start_time

    def test_a_zombie(self) -> None:
        proc = exited_child("/bin/true")
        try:
            facts = procfs.read_stat(proc.pid)
            zombie = psutil.Process(proc.pid)
            assert facts is not None
            assert (zombie.create_time(), "Z") == (facts.start_time, facts.state)
            assert psutil.STATUS_ZOMBIE == zombie.status()
            started = zombie.create_time()
            assert (False, False) == (
                procfs.is_alive(proc.pid, started),
                procfacts.is_alive(proc.pid, started),
            )
        finally:
            proc.wait()

    def test_a_command_name_with_spaces_and_parentheses(self, odd_name_dir: str) -> None:
        # The command name (field 2) comes from the executable's file name.
        odd = os.path.join(odd_name_dir, "a) (b c")
        os.symlink(shutil.which("true") or "/bin/true", odd)
        proc = exited_child(odd)
        try:
            with open(f"/proc/{proc.pid}/stat", "rb") as f:
                assert b"(a) (b c)" in f.read()
            facts = procfs.read_stat(proc.pid)
            assert facts is not None
            assert psutil.Process(proc.pid).create_time() == facts.start_time
            assert "Z" == facts.state
        finally:
            proc.wait()

    def test_a_living_child(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
        try:
            started = psutil.Process(proc.pid).create_time()
            assert (True, True) == (
                procfs.is_alive(proc.pid, started),
                procfacts.is_alive(proc.pid, started),
            )
            # Another start time: the pid now belongs to another process.
            assert (False, False) == (
                procfs.is_alive(proc.pid, started - 1.0),
                procfacts.is_alive(proc.pid, started - 1.0),
            )
            assert procfs.is_alive(proc.pid, 0.0)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()


class TestReadStat:
    """The stat line is read after the last ')'; a missing process has no facts."""

    def test_parse_skips_the_command_name(self) -> None:
        fields = " ".join(["S", *[str(n) for n in range(4, 22)], "12345", "0", "0"])
        line = f"42 (x) S ((y) {fields}\n".encode()
        assert ("S", 12345) == procfs.parse_stat(line)

    @pytest.mark.parametrize("line", [b"", b"42 (x", b"42 (x) S 1 2\n"])
    def test_parse_refuses_what_is_not_a_stat_line(self, line: bytes) -> None:
        with pytest.raises(ValueError):
            procfs.parse_stat(line)

    @pytest.mark.parametrize("pid", [0, -1, 2**22 + 1])
    def test_no_such_process(self, pid: int) -> None:
        assert None is procfs.read_stat(pid)
        assert not procfs.is_alive(pid, 0.0)

    def test_boot_time_is_psutils(self) -> None:
        assert psutil.boot_time() == procfs.boot_time()
