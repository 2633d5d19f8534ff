from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence

import pytest

from podd.sandbox import Confinement, enforcement_mode, prepare_confinement


@pytest.fixture
def landlock() -> None:
    if enforcement_mode() == "advisory":
        pytest.skip("Landlock is not available here: confinement is advisory")


def make_dir() -> str:
    return os.path.realpath(tempfile.mkdtemp(dir="/tmp"))


@pytest.fixture
def work() -> Iterator[str]:
    """A write-scope directory holding file f, directories held/ (with f) and free/."""
    top = make_dir()
    os.makedirs(os.path.join(top, "held", "deep"))
    os.makedirs(os.path.join(top, "free"))
    for path in ("f", "held/f", "free/f"):
        with open(os.path.join(top, path), "w") as file:
            file.write("old\n")
    yield top
    shutil.rmtree(top)


@pytest.fixture
def outside() -> Iterator[str]:
    top = make_dir()
    yield top
    shutil.rmtree(top)


@pytest.fixture
def temp() -> Iterator[str]:
    top = make_dir()
    yield top
    shutil.rmtree(top)


def run(
    script: str,
    write_paths: Sequence[str] = (),
    excluded: Sequence[str] = (),
    extra_write: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``sh -c script`` confined, with a timeout, and return its outcome."""
    with prepare_confinement(write_paths, excluded, extra_write) as confine:
        return run_with(["/bin/sh", "-c", script], confine)


def run_with(argv: list[str], preexec: Callable[[], None]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, preexec_fn=preexec, capture_output=True, text=True, timeout=10, check=False
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stderr) == (0, "")


def assert_denied(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


@pytest.mark.usefixtures("landlock")
class TestWriteScope:
    """A confined turn writes beneath its write paths and nowhere else."""

    def test_touch_inside_works(self, work: str) -> None:
        assert_ok(run(f"touch {work}/new && mkdir {work}/d && echo x > {work}/d/g", [work]))
        assert os.path.exists(os.path.join(work, "d", "g"))

    def test_remove_and_rename_inside_work(self, work: str) -> None:
        assert_ok(run(f"mv {work}/free/f {work}/moved && rm -r {work}/held", [work]))
        assert sorted(os.listdir(work)) == ["f", "free", "moved"]

    @pytest.mark.parametrize(
        "script",
        [
            "touch {outside}/f",
            "mkdir {outside}/d",
            "echo x > {outside}/f",
            "touch /tmp/podd-sandbox-test-never",
            "ln -s /etc/passwd {outside}/l",
        ],
    )
    def test_writes_outside_fail_with_permission_denied(
        self, work: str, outside: str, script: str
    ) -> None:
        assert_denied(run(script.format(outside=outside), [work]))
        assert os.listdir(outside) == []

    def test_existing_file_outside_cannot_be_changed(self, work: str, outside: str) -> None:
        path = os.path.join(outside, "f")
        with open(path, "w") as file:
            file.write("old\n")
        assert_denied(run(f"echo new > {path}", [work]))
        assert_denied(run(f"rm {path}", [work]))
        assert_denied(run(f"mv {work}/f {path}", [work]))
        with open(path) as file:
            assert file.read() == "old\n"

    def test_descendants_inherit_the_confinement(self, work: str, outside: str) -> None:
        assert_denied(run(f"/bin/sh -c 'sh -c \"touch {outside}/f\"'", [work]))

    def test_no_write_paths_means_read_only(self, work: str) -> None:
        assert_denied(run(f"touch {work}/new"))

    def test_missing_write_path_is_skipped(self, work: str) -> None:
        assert_ok(run(f"touch {work}/new", [f"{work}/missing", work]))

    def test_symlinked_write_path_is_resolved(self, work: str, outside: str) -> None:
        link = os.path.join(outside, "link")
        os.symlink(work, link)
        assert_ok(run(f"touch {work}/new", [link]))

    def test_write_path_may_be_a_file(self, work: str) -> None:
        assert_ok(run(f"echo new > {work}/f", [f"{work}/f"]))
        assert_denied(run(f"touch {work}/g", [f"{work}/f"]))

    def test_temp_dir_is_writable(self, work: str, temp: str) -> None:
        assert_ok(run(f"mktemp -p {temp} && touch {temp}/f", [work], extra_write=[temp]))

    def test_temp_dir_stays_writable_inside_an_exclusion(self, work: str) -> None:
        temp = os.path.join(work, "held", "tmp")
        os.mkdir(temp)
        assert_ok(run(f"touch {temp}/f", [work], [f"{work}/held"], [temp]))


@pytest.mark.usefixtures("landlock")
class TestReadAndExecute:
    """A confined turn still reads files and runs system programs."""

    @pytest.mark.parametrize(
        "script",
        [
            "cat /etc/passwd > /dev/null",
            "ls /usr/bin > /dev/null",
            "/bin/sh -c true",
            "/usr/bin/env true",
            "/usr/bin/id -u",
            "echo x | /usr/bin/tr x y",
            "head -c 16 /dev/urandom | wc -c",
            "head -c 16 /dev/zero > /dev/null",
        ],
    )
    def test_reads_and_exec_work(self, work: str, script: str) -> None:
        assert_ok(run(script, [work]))

    def test_reads_outside_the_write_scope(self, work: str, outside: str) -> None:
        with open(os.path.join(outside, "f"), "w") as file:
            file.write("hello\n")
        result = run(f"cat {outside}/f", [work])
        assert (result.returncode, result.stdout) == (0, "hello\n")

    def test_python_runs_confined(self, work: str) -> None:
        with prepare_confinement([work], [], []) as confine:
            result = run_with([sys.executable, "-c", "import json; print(json.dumps(1))"], confine)
        assert (result.returncode, result.stdout) == (0, "1\n")


@pytest.mark.usefixtures("landlock")
class TestExclusions:
    """Beneath an excluded path nothing is written; existing siblings stay writable."""

    def test_excluded_directory_cannot_be_written(self, work: str) -> None:
        held = f"{work}/held"
        for script in (
            f"touch {held}/new",
            f"echo x > {held}/f",
            f"touch {held}/deep/new",
            f"rm {held}/f",
            f"mv {work}/free/f {held}/g",
        ):
            assert_denied(run(script, [work], [held]))
        assert sorted(os.listdir(held)) == ["deep", "f"]

    def test_excluded_directory_cannot_be_removed_or_renamed(self, work: str) -> None:
        held = f"{work}/held"
        assert_denied(run(f"mv {held} {work}/free/held", [work], [held]))
        assert_denied(run(f"rm -rf {held}", [work], [held]))
        assert os.path.isdir(held)

    def test_siblings_stay_writable(self, work: str) -> None:
        script = f"echo new > {work}/f && touch {work}/free/g && mkdir {work}/free/d"
        assert_ok(run(script, [work], [f"{work}/held"]))
        with open(f"{work}/f") as file:
            assert file.read() == "new\n"

    def test_new_entries_beside_an_exclusion_cannot_be_created(self, work: str) -> None:
        assert_denied(run(f"touch {work}/new", [work], [f"{work}/held"]))

    def test_nested_exclusion_keeps_the_other_entries_on_the_way(self, work: str) -> None:
        held = f"{work}/held"
        os.mkdir(f"{held}/other")
        script = f"echo x > {held}/f && touch {held}/other/g"
        assert_ok(run(script, [work], [f"{held}/deep"]))
        assert_denied(run(f"touch {held}/deep/new", [work], [f"{held}/deep"]))

    def test_exclusion_of_the_write_path_itself_leaves_nothing_writable(self, work: str) -> None:
        assert_denied(run(f"touch {work}/free/g", [work], [work]))

    def test_exclusion_above_the_write_path_leaves_it_read_only(self, work: str) -> None:
        assert_denied(run(f"touch {work}/free/g", [f"{work}/free"], [work]))

    def test_missing_excluded_path_blocks_its_parent(self, work: str) -> None:
        assert_denied(run(f"mkdir {work}/later", [work], [f"{work}/later"]))
        assert_ok(run(f"touch {work}/free/g", [work], [f"{work}/later"]))

    def test_symlink_beside_an_exclusion_grants_nothing(self, work: str, outside: str) -> None:
        os.symlink(outside, f"{work}/link")
        assert_denied(run(f"touch {work}/link/f", [work], [f"{work}/held"]))
        assert os.listdir(outside) == []


@pytest.mark.usefixtures("landlock")
class TestDeviceFiles:
    """Common device files stay writable for a confined turn."""

    @pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
    def test_device_is_writable(self, work: str, device: str) -> None:
        assert_ok(run(f"echo x > {device}", [work]))

    def test_dev_full_opens_for_writing(self, work: str) -> None:
        result = run("echo x > /dev/full", [work])
        assert result.returncode != 0
        assert result.stderr
        assert "Permission denied" not in result.stderr

    def test_other_devices_are_not_writable(self, work: str) -> None:
        assert_denied(run("echo x > /dev/ptmx", [work]))


class TestConfinementObject:
    """The returned callable always sets a new process group and can be closed."""

    def test_turn_gets_its_own_process_group(self, work: str) -> None:
        script = "import os; print(os.getpgrp() == os.getpid() != os.getppid())"
        with prepare_confinement([work], [], []) as confine:
            result = run_with([sys.executable, "-c", script], confine)
        assert (result.returncode, result.stdout) == (0, "True\n")

    def test_advisory_confinement_only_sets_the_process_group(self, outside: str) -> None:
        script = f"import os; open('{outside}/f', 'w'); print(os.getpgrp() == os.getpid())"
        confine = Confinement()
        assert not confine.enforced
        result = run_with([sys.executable, "-c", script], confine)
        assert (result.returncode, result.stdout) == (0, "True\n")
        assert os.listdir(outside) == ["f"]

    def test_enforced_exactly_when_landlock_is_available(self, work: str) -> None:
        with prepare_confinement([work], [], []) as confine:
            assert (enforcement_mode() == "landlock") == confine.enforced

    def test_close_releases_the_ruleset_and_is_idempotent(self, landlock: None, work: str) -> None:
        confine = prepare_confinement([work], [], [])
        fd = confine._fd
        assert fd is not None
        os.fstat(fd)
        confine.close()
        confine.close()
        with pytest.raises(OSError):
            os.fstat(fd)

    def test_closed_confinement_refuses_to_spawn(self, landlock: None, work: str) -> None:
        confine = prepare_confinement([work], [], [])
        confine.close()
        with pytest.raises(subprocess.SubprocessError):
            run_with(["/bin/true"], confine)

    def test_enforcement_mode_is_cached(self) -> None:
        assert enforcement_mode() is enforcement_mode()
        assert enforcement_mode() in ("landlock", "advisory")
