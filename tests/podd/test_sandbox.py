"""Confinement of turns: real commands started the way the pod starts them.

Every command runs through ``prepare_confinement`` and, under Landlock, the exec wrapper;
``spawn`` bounds each run with ``trio.fail_after``.
"""

from __future__ import annotations

import marshal
import os
import pathlib
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import pytest
import trio

from podd import _confine_exec, sandbox
from podd._confine_exec import (
    MountState,
    mount_points_beneath,
    mount_states,
    parse_config,
    remount_flags,
)
from podd.runtime.turn_process import OutputLog, TurnHandle, run_turn
from podd.sandbox import (
    WRAPPER,
    EnforcementMode,
    enforcement_detail,
    enforcement_mode,
    namespace_problem,
    prepare_confinement,
)

RUN_TIMEOUT = 20.0
NOBODY = 65534
READ_ONLY = "Read-only file system"
DENIED = "Permission denied"
CONFINEMENT_FAILED = "podd: confinement failed: "


class Ran(NamedTuple):
    code: int
    stdout: str
    stderr: str


def read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def contents(path: str) -> str:
    """A local read (synchronous on purpose: a test file, it blocks on nothing)."""
    with open(path) as f:
        return f.read()


def put(path: str, text: str, mode: str = "w") -> None:
    with open(path, mode) as f:
        f.write(text)


def exists(path: str) -> bool:
    return os.path.exists(path)


def skip_unless(mode: EnforcementMode) -> None:
    """Skip unless this kernel can confine turns in ``mode``."""
    here = enforcement_mode()
    if here == "advisory" and mode != "advisory":
        pytest.skip("Landlock is not available here: confinement is advisory")
    if mode == "exact" and here != "exact":
        pytest.skip(f"no mount namespaces here: {enforcement_detail()}")


@pytest.fixture
def landlock() -> None:
    if enforcement_mode() == "advisory":
        pytest.skip("Landlock is not available here: confinement is advisory")


@pytest.fixture(params=["exact", "approximate"])
def mode(request: pytest.FixtureRequest) -> EnforcementMode:
    chosen: EnforcementMode = request.param
    skip_unless(chosen)
    return chosen


def make_dir() -> str:
    return os.path.realpath(tempfile.mkdtemp(dir="/tmp"))


@pytest.fixture
def work() -> Iterator[str]:
    """A write-scope directory holding file f, directories held/ (with f and deep/) and free/."""
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


async def spawn(
    argv: Sequence[str], pass_fds: Sequence[int] = (), *, cwd: str | None = None, **options: Any
) -> Ran:
    """Start ``argv`` as ``run_turn`` does (own process group, ``pass_fds``) and wait."""
    with trio.fail_after(RUN_TIMEOUT):
        proc = await trio.run_process(
            list(argv),
            pass_fds=pass_fds,
            process_group=0,
            cwd=cwd,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            **options,
        )
    return Ran(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


async def run(
    script: str,
    write_paths: Sequence[str] = (),
    excluded: Sequence[str] = (),
    extra_write: Sequence[str] = (),
    *,
    mode: EnforcementMode | None = None,
    cwd: str | None = None,
    nested_sandbox: bool = False,
) -> Ran:
    """Run ``sh -c script`` confined as a turn is, and return its outcome."""
    with prepare_confinement(
        script, write_paths, excluded, extra_write, mode=mode, nested_sandbox=nested_sandbox
    ) as confine:
        return await spawn(confine.argv, confine.pass_fds, cwd=cwd)


async def run_wrapper(config: bytes) -> Ran:
    """Run the wrapper directly on a configuration given as bytes."""
    fd = os.memfd_create("test-config")
    try:
        os.write(fd, config)
        os.lseek(fd, 0, os.SEEK_SET)
        return await spawn([sys.executable, "-I", "-S", WRAPPER, str(fd)], [fd])
    finally:
        os.close(fd)


def assert_ok(result: Ran) -> None:
    assert (0, "") == (result.code, result.stderr)


def assert_denied(result: Ran) -> None:
    assert 0 != result.code
    assert DENIED in result.stderr, result


def assert_read_only(result: Ran) -> None:
    assert 0 != result.code
    assert READ_ONLY in result.stderr, result


def mount_points() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


class TestWriteScope:
    """A confined turn writes beneath its write paths and nowhere else, in either mode."""

    async def test_touch_inside_works(self, mode: EnforcementMode, work: str) -> None:
        script = f"touch {work}/new && mkdir {work}/d && echo x > {work}/d/g"
        assert_ok(await run(script, [work], mode=mode))
        assert exists(os.path.join(work, "d", "g"))

    async def test_remove_and_rename_inside_work(self, mode: EnforcementMode, work: str) -> None:
        assert_ok(
            await run(f"mv {work}/free/f {work}/moved && rm -r {work}/held", [work], mode=mode)
        )
        assert ["f", "free", "moved"] == sorted(os.listdir(work))

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
    async def test_writes_outside_fail_with_permission_denied(
        self, mode: EnforcementMode, work: str, outside: str, script: str
    ) -> None:
        assert_denied(await run(script.format(outside=outside), [work], mode=mode))
        assert [] == os.listdir(outside)

    async def test_existing_file_outside_cannot_be_changed(
        self, mode: EnforcementMode, work: str, outside: str
    ) -> None:
        path = os.path.join(outside, "f")
        put(path, "old\n")
        assert_denied(await run(f"echo new > {path}", [work], mode=mode))
        assert_denied(await run(f"rm {path}", [work], mode=mode))
        assert_denied(await run(f"mv {work}/f {path}", [work], mode=mode))
        assert "old\n" == contents(path)

    async def test_descendants_inherit_the_confinement(
        self, mode: EnforcementMode, work: str, outside: str
    ) -> None:
        assert_denied(await run(f"/bin/sh -c 'sh -c \"touch {outside}/f\"'", [work], mode=mode))

    async def test_no_write_paths_means_read_only(self, mode: EnforcementMode, work: str) -> None:
        assert_denied(await run(f"touch {work}/new", mode=mode))

    async def test_missing_write_path_is_skipped(self, mode: EnforcementMode, work: str) -> None:
        assert_ok(await run(f"touch {work}/new", [f"{work}/missing", work], mode=mode))

    async def test_symlinked_write_path_is_resolved(
        self, mode: EnforcementMode, work: str, outside: str
    ) -> None:
        link = os.path.join(outside, "link")
        os.symlink(work, link)
        assert_ok(await run(f"touch {work}/new", [link], mode=mode))

    async def test_write_path_may_be_a_file(self, mode: EnforcementMode, work: str) -> None:
        assert_ok(await run(f"echo new > {work}/f", [f"{work}/f"], mode=mode))
        assert_denied(await run(f"touch {work}/g", [f"{work}/f"], mode=mode))

    async def test_temp_dir_is_writable(self, mode: EnforcementMode, work: str, temp: str) -> None:
        script = f"mktemp -p {temp} && touch {temp}/f"
        assert_ok(await run(script, [work], extra_write=[temp], mode=mode))

    async def test_temp_dir_stays_writable_inside_an_exclusion(
        self, mode: EnforcementMode, work: str
    ) -> None:
        temp = os.path.join(work, "held", "tmp")
        os.mkdir(temp)
        assert_ok(await run(f"touch {temp}/f", [work], [f"{work}/held"], [temp], mode=mode))
        assert_ok(await run(f"touch {temp}/g", [work], [f"{work}/held"], [temp], mode=mode))
        assert ["f", "g"] == sorted(os.listdir(temp))

    async def test_exclusion_of_the_write_path_itself_leaves_nothing_writable(
        self, mode: EnforcementMode, work: str
    ) -> None:
        assert_denied(await run(f"touch {work}/free/g", [work], [work], mode=mode))

    async def test_exclusion_above_the_write_path_leaves_it_read_only(
        self, mode: EnforcementMode, work: str
    ) -> None:
        assert_denied(await run(f"touch {work}/free/g", [f"{work}/free"], [work], mode=mode))

    async def test_excluded_directory_cannot_be_written(
        self, mode: EnforcementMode, work: str
    ) -> None:
        held = f"{work}/held"
        for script in (
            f"touch {held}/new",
            f"echo x > {held}/f",
            f"touch {held}/deep/new",
            f"rm {held}/f",
            f"mv {work}/free/f {held}/g",
            f"mv {held} {work}/free/held",
            f"rm -rf {held}",
        ):
            result = await run(script, [work], [held], mode=mode)
            assert 0 != result.code, script
        assert ["deep", "f"] == sorted(os.listdir(held))
        assert "old\n" == contents(f"{work}/free/f")


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
    async def test_reads_and_exec_work(self, work: str, script: str) -> None:
        assert_ok(await run(script, [work], [f"{work}/held"]))

    async def test_reads_outside_the_write_scope(self, work: str, outside: str) -> None:
        put(os.path.join(outside, "f"), "hello\n")
        result = await run(f"cat {outside}/f {work}/held/f", [work], [f"{work}/held"])
        assert (0, "hello\nold\n") == (result.code, result.stdout)

    async def test_the_agent_inherits_no_descriptor_of_the_confinement(self, work: str) -> None:
        script = "ls /proc/$$/fd"
        plain = await run(script, mode="advisory")
        confined = await run(script, [work], [f"{work}/held"])
        assert (0, plain.stdout) == (confined.code, confined.stdout)
        assert ["0", "1", "2"] == plain.stdout.split()

    async def test_python_runs_confined(self, work: str) -> None:
        script = f"{sys.executable} -c 'import json; print(json.dumps(1))'"
        result = await run(script, [work], [f"{work}/held"])
        assert (0, "1\n") == (result.code, result.stdout)

    async def test_the_turn_keeps_its_environment_and_ids(self, work: str) -> None:
        script = 'echo "$PODD_TEST_VALUE $(id -u) $(id -g)"'
        with prepare_confinement(script, [work], [f"{work}/held"], []) as confine:
            env = {**os.environ, "PODD_TEST_VALUE": "kept"}
            result = await spawn(confine.argv, confine.pass_fds, env=env)
        assert (0, f"kept {os.getuid()} {os.getgid()}\n") == (result.code, result.stdout)


class TestExactExclusions:
    """In exact mode, only beneath an excluded path is the write path read-only."""

    @pytest.fixture(autouse=True)
    def exact(self) -> None:
        skip_unless("exact")

    async def test_everything_else_in_the_write_path_works(self, work: str, temp: str) -> None:
        script = f"""set -e
        cd {work}
        echo new > new.txt
        mkdir d && mkdir -p d/e/f && echo x > d/e/f/g && rm d/e/f/g && rmdir d/e/f
        touch free/gone && rm free/gone && rm -r free
        mv f moved && mv moved f
        echo saved > .f.tmp && mv .f.tmp f
        staged=$(mktemp -p {temp}) && echo staged > "$staged" && mv "$staged" staged.txt
        """
        assert_ok(await run(script, [work], [f"{work}/held"], [temp]))
        assert ["d", "f", "held", "new.txt", "staged.txt"] == sorted(os.listdir(work))
        assert ["e"] == os.listdir(f"{work}/d")
        assert ("saved\n", "staged\n") == (contents(f"{work}/f"), contents(f"{work}/staged.txt"))

    async def test_atomic_save_with_python_works(self, work: str) -> None:
        code = (
            "import os, tempfile; "
            f"fd, tmp = tempfile.mkstemp(dir={work!r}); os.write(fd, b'atomic'); os.close(fd); "
            f"os.replace(tmp, {work + '/f'!r})"
        )
        assert_ok(await run(f'{sys.executable} -c "{code}"', [work], [f"{work}/held"]))
        assert "atomic" == contents(f"{work}/f")

    @pytest.mark.parametrize(
        "script",
        [
            "touch {held}/x",
            "echo x > {held}/f",
            "mkdir {held}/d",
            "touch {held}/deep/new",
            "rm {held}/f",
            "mv {held}/f {held}/g",
            "cp {work}/f {held}/copy",
        ],
    )
    async def test_writes_beneath_the_excluded_path_fail_read_only(
        self, work: str, script: str
    ) -> None:
        held = f"{work}/held"
        assert_read_only(await run(script.format(work=work, held=held), [work], [held]))
        assert ["deep", "f"] == sorted(os.listdir(held))

    async def test_the_excluded_path_cannot_be_moved_or_removed(self, work: str) -> None:
        held = f"{work}/held"
        for script in (f"mv {held} {work}/gone", f"rmdir {held}", f"rm -rf {held}"):
            result = await run(script, [work], [held])
            assert 0 != result.code, script
        assert ["deep", "f"] == sorted(os.listdir(held))

    async def test_writes_outside_still_fail_with_permission_denied(
        self, work: str, outside: str
    ) -> None:
        assert_denied(await run(f"touch {outside}/x", [work], [f"{work}/held"]))
        assert [] == os.listdir(outside)

    async def test_a_working_directory_beneath_the_excluded_path_is_read_only(
        self, work: str
    ) -> None:
        held = f"{work}/held"
        assert_read_only(await run("touch relative", [work], [held], cwd=held))
        assert ["deep", "f"] == sorted(os.listdir(held))

    async def test_an_excluded_file_is_read_only_and_its_siblings_are_not(self, work: str) -> None:
        assert_read_only(await run(f"echo new > {work}/f", [work], [f"{work}/f"]))
        assert_ok(await run(f"echo new > {work}/g && mv {work}/g {work}/h", [work], [f"{work}/f"]))
        assert "old\n" == contents(f"{work}/f")

    async def test_nested_exclusion_leaves_the_way_to_it_writable(self, work: str) -> None:
        held = f"{work}/held"
        script = f"echo x > {held}/new && mkdir {held}/other && mv {held}/f {held}/other/f"
        assert_ok(await run(script, [work], [f"{held}/deep"]))
        assert_read_only(await run(f"touch {held}/deep/new", [work], [f"{held}/deep"]))

    async def test_several_exclusions_are_each_read_only(self, work: str) -> None:
        excluded = [f"{work}/held", f"{work}/free"]
        assert_read_only(await run(f"touch {work}/free/x", [work], excluded))
        assert_read_only(await run(f"touch {work}/held/x", [work], excluded))
        assert_ok(await run(f"touch {work}/x", [work], excluded))

    async def test_missing_excluded_path_is_skipped(self, work: str) -> None:
        assert_ok(
            await run(f"mkdir {work}/later && touch {work}/later/x", [work], [f"{work}/later"])
        )

    @pytest.mark.parametrize(
        ("excluded", "own_namespace"), [([], False), (["{outside}"], False), (["{held}"], True)]
    )
    async def test_a_namespace_only_for_a_path_to_bind(
        self, work: str, outside: str, excluded: list[str], own_namespace: bool
    ) -> None:
        paths = [p.format(outside=outside, held=f"{work}/held") for p in excluded]
        result = await run("readlink /proc/self/ns/mnt", [work], paths)
        assert 0 == result.code
        assert own_namespace == (os.readlink("/proc/self/ns/mnt") + "\n" != result.stdout)

    async def test_mounts_beneath_the_excluded_path_are_read_only_too(self, work: str) -> None:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            pytest.skip("needs root and unshare(1) to mount a file system for the test")
        held = f"{work}/held"
        with prepare_confinement(f"touch {held}/deep/x", [work], [held], []) as confine:
            # A tmpfs on held/deep, made in a namespace of the test's own so that the host
            # never sees it; the wrapper then runs inside that namespace.
            mount = f'mount -t tmpfs podd-test {held}/deep && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"]
            result = await spawn([*argv, *confine.argv], confine.pass_fds)
        assert_read_only(result)

    async def test_the_binds_do_not_propagate_to_shared_mounts(self, work: str) -> None:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            pytest.skip("needs root and unshare(1) to make shared mounts for the test")
        held = f"{work}/held"
        with prepare_confinement("true", [work], [held], []) as confine:
            # The wrapper runs below a namespace of the test's own whose mounts are all
            # shared, which then looks for the bind in its own mount table.
            outer = (
                f'mount --make-rshared / && "$@"; echo $?; grep -c " {held} " /proc/self/mountinfo'
            )
            argv = ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c", outer, "sh"]
            result = await spawn([*argv, *confine.argv], confine.pass_fds)
        assert "0\n0\n" == result.stdout

    async def test_the_agent_cannot_lift_the_read_only_bind(self, work: str) -> None:
        held = f"{work}/held"
        script = f"""
        umount {held} 2>/dev/null; mount -o remount,rw {held} 2>/dev/null
        mount --bind {work}/free {held} 2>/dev/null
        echo x > {held}/f
        """
        assert_read_only(await run(script, [work], [held]))
        assert "old\n" == contents(f"{held}/f")

    async def test_other_processes_roots_do_not_bypass_the_bind(self, work: str) -> None:
        held = f"{work}/held"
        target = f"/proc/{os.getpid()}/root{held}/x"
        assert_denied(await run(f"touch {target}", [work], [held]))
        assert ["deep", "f"] == sorted(os.listdir(held))

    async def test_the_binds_stay_in_the_turns_namespace(self, work: str) -> None:
        assert_ok(await run(f"touch {work}/x", [work], [f"{work}/held"]))
        assert work not in mount_points()
        put(f"{work}/held/f", "still writable here\n", "a")


class TestApproximateExclusions:
    """In approximate mode an exclusion also takes away creating entries on the way to it."""

    @pytest.fixture(autouse=True)
    def approximate(self) -> None:
        skip_unless("approximate")

    async def test_excluded_directory_is_denied(self, work: str) -> None:
        held = f"{work}/held"
        for script in (f"touch {held}/new", f"echo x > {held}/f", f"rm {held}/f"):
            assert_denied(await run(script, [work], [held], mode="approximate"))

    async def test_siblings_stay_writable(self, work: str) -> None:
        script = f"echo new > {work}/f && touch {work}/free/g && mkdir {work}/free/d"
        assert_ok(await run(script, [work], [f"{work}/held"], mode="approximate"))
        assert "new\n" == contents(f"{work}/f")

    async def test_new_entries_beside_an_exclusion_cannot_be_created(self, work: str) -> None:
        assert_denied(
            await run(f"touch {work}/new.txt", [work], [f"{work}/held"], mode="approximate")
        )
        assert not exists(f"{work}/new.txt")

    async def test_atomic_save_beside_an_exclusion_is_refused(self, work: str) -> None:
        script = f"echo new > {work}/f.tmp && mv {work}/f.tmp {work}/f"
        assert_denied(await run(script, [work], [f"{work}/held"], mode="approximate"))

    async def test_nested_exclusion_keeps_the_other_entries_on_the_way(self, work: str) -> None:
        held = f"{work}/held"
        os.mkdir(f"{held}/other")
        script = f"echo x > {held}/f && touch {held}/other/g"
        assert_ok(await run(script, [work], [f"{held}/deep"], mode="approximate"))
        assert_denied(
            await run(f"touch {held}/deep/new", [work], [f"{held}/deep"], mode="approximate")
        )

    async def test_missing_excluded_path_blocks_its_parent(self, work: str) -> None:
        later = f"{work}/later"
        assert_denied(await run(f"mkdir {later}", [work], [later], mode="approximate"))
        assert_ok(await run(f"touch {work}/free/g", [work], [later], mode="approximate"))

    async def test_symlink_beside_an_exclusion_grants_nothing(
        self, work: str, outside: str
    ) -> None:
        os.symlink(outside, f"{work}/link")
        result = await run(f"touch {work}/link/f", [work], [f"{work}/held"], mode="approximate")
        assert_denied(result)
        assert [] == os.listdir(outside)

    async def test_no_namespace_is_made(self, work: str) -> None:
        script = "readlink /proc/self/ns/mnt"
        result = await run(script, [work], [f"{work}/held"], mode="approximate")
        assert (0, os.readlink("/proc/self/ns/mnt") + "\n") == (result.code, result.stdout)


@pytest.mark.usefixtures("landlock")
class TestDeviceFiles:
    """Common device files stay writable for a confined turn."""

    @pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
    async def test_device_is_writable(self, work: str, device: str) -> None:
        assert_ok(await run(f"echo x > {device}", [work], [f"{work}/held"]))

    async def test_dev_full_opens_for_writing(self, work: str) -> None:
        result = await run("echo x > /dev/full", [work])
        assert 0 != result.code
        assert result.stderr
        assert DENIED not in result.stderr

    async def test_other_devices_are_not_writable(self, work: str) -> None:
        assert_denied(await run("echo x > /dev/ptmx", [work]))


SYSTEM_PYTHON = "/usr/bin/python3"
"""An interpreter nobody can run (the test's own may lie in a directory closed to it)."""


@pytest.fixture
def nobody_tree() -> Iterator[str]:
    """A fresh directory owned by nobody: W (with sub/ and f), out/ and tmp/, and a copy of
    the wrapper that nobody can read wherever the checkout lives."""
    if os.geteuid() != 0:
        pytest.skip("already not root: every other test here runs in a user namespace")
    problem = namespace_problem(NOBODY, read_text)
    if problem is not None:
        pytest.skip(f"no user namespaces for nobody here: {problem}")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"no {SYSTEM_PYTHON} for nobody to run the wrapper with")
    top = make_dir()
    os.chmod(top, 0o755)
    for path in ("W/sub/deep", "W/tmp", "out", "tmp"):
        os.makedirs(os.path.join(top, path))
    with open(os.path.join(top, "W", "f"), "w") as file:
        file.write("old\n")
    shutil.copy(WRAPPER, os.path.join(top, "_confine_exec.py"))
    for directory, dirs, files in os.walk(top):
        for name in [directory] + [os.path.join(directory, n) for n in dirs + files]:
            os.chown(name, NOBODY, NOBODY)
    yield top
    shutil.rmtree(top)


async def run_as_nobody(
    top: str,
    script: str,
    excluded: Sequence[str],
    extra_write: Sequence[str],
    *,
    nested_sandbox: bool = False,
) -> Ran:
    """Run ``script`` confined as a pod of nobody's would: the ruleset and configuration
    are built here, the wrapper runs as nobody."""
    work = os.path.join(top, "W")
    with prepare_confinement(
        script, [work], excluded, extra_write, mode="exact", nested_sandbox=nested_sandbox
    ) as confine:
        argv = [SYSTEM_PYTHON, "-I", "-S", os.path.join(top, "_confine_exec.py"), confine.argv[-1]]
        return await spawn(
            argv, confine.pass_fds, cwd=top, user=NOBODY, group=NOBODY, extra_groups=[]
        )


class TestNonRoot:
    """As an ordinary user, the turn gets a user namespace and the same exact exclusions."""

    @pytest.fixture(autouse=True)
    def exact(self) -> None:
        skip_unless("exact")

    async def test_exact_exclusion_as_nobody(self, nobody_tree: str) -> None:
        top = nobody_tree
        work = f"{top}/W"
        script = f"""set -e
        cd {work}
        touch new.txt && mkdir d && mkdir d/e && touch d/e/g && rm -r d/e
        echo saved > f.tmp && mv f.tmp f
        staged=$(mktemp -p {top}/tmp) && echo staged > "$staged" && mv "$staged" staged.txt
        echo "$(id -u) $(id -g)"
        """
        result = await run_as_nobody(top, script, [f"{work}/sub"], [f"{top}/tmp"])
        assert (0, f"{NOBODY} {NOBODY}\n", "") == result
        assert ["d", "f", "new.txt", "staged.txt", "sub", "tmp"] == sorted(os.listdir(work))

    async def test_the_excluded_path_is_read_only_for_nobody(self, nobody_tree: str) -> None:
        work = f"{nobody_tree}/W"
        result = await run_as_nobody(nobody_tree, f"touch {work}/sub/x", [f"{work}/sub"], [])
        assert_read_only(result)
        assert ["deep"] == os.listdir(f"{work}/sub")

    async def test_outside_is_denied_for_nobody(self, nobody_tree: str) -> None:
        work = f"{nobody_tree}/W"
        script = f"touch {nobody_tree}/out/x"
        assert_denied(await run_as_nobody(nobody_tree, script, [f"{work}/sub"], []))
        assert [] == os.listdir(f"{nobody_tree}/out")

    async def test_temp_dir_inside_an_exclusion_stays_writable_for_nobody(
        self, nobody_tree: str
    ) -> None:
        work = f"{nobody_tree}/W"
        script = f"touch {work}/tmp/x"
        assert_ok(
            await run_as_nobody(
                nobody_tree, script, [work + "/tmp", work + "/sub"], [work + "/tmp"]
            )
        )
        assert ["x"] == os.listdir(f"{work}/tmp")


BWRAP = "bwrap --ro-bind / / --proc /proc --dev /dev true"
"""What a sandbox of the agent's own runs, at the least: bubblewrap's mounts."""

CLEAR_READ_ONLY = """
import ctypes, errno, sys
call = ctypes.CDLL(None, use_errno=True)["syscall"]
call.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_char_p, ctypes.c_long]
call.argtypes += [ctypes.c_void_p, ctypes.c_long]
attr = (ctypes.c_uint64 * 4)(0, 1, 0, 0)  # attr_clr = MOUNT_ATTR_RDONLY
done = call({number}, -100, sys.argv[1].encode(), 0, ctypes.byref(attr), 32) == 0
print("cleared" if done else errno.errorcode[ctypes.get_errno()])
"""
"""A program that clears read-only on the mount at argv[1] with ``mount_setattr(2)``."""


def clear_read_only_program(directory: str) -> str:
    """Write ``CLEAR_READ_ONLY`` into ``directory``; return its path."""
    number = sandbox.mount_setattr_number(os.uname().machine)
    path = os.path.join(directory, "clear_read_only.py")
    put(path, CLEAR_READ_ONLY.format(number=number))
    return path


def skip_unless_mounts_only() -> None:
    problem = sandbox.mounts_only_problem()
    if problem is not None:
        pytest.skip(f"no confinement by mounts alone here: {problem}")


def skip_unless_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root {why}")


@pytest.fixture
def bwrap() -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")


async def run_nested(
    script: str,
    write_paths: Sequence[str] = (),
    excluded: Sequence[str] = (),
    extra_write: Sequence[str] = (),
    *,
    cwd: str | None = None,
) -> Ran:
    """Run ``sh -c script`` confined as the turn of a ``--nested-sandbox`` pod is."""
    return await run(script, write_paths, excluded, extra_write, cwd=cwd, nested_sandbox=True)


class TestNestedSandbox:
    """Confined by mounts alone, a turn can start bubblewrap and writes only in its scope."""

    @pytest.fixture(autouse=True)
    def mounts_only(self) -> None:
        skip_unless_mounts_only()

    @pytest.mark.usefixtures("bwrap")
    @pytest.mark.parametrize("options", ["", "--unshare-user ", "--unshare-all "])
    async def test_bubblewrap_runs_inside_the_turn(self, work: str, options: str) -> None:
        command = f"bwrap {options}--ro-bind / / --proc /proc --dev /dev true"
        assert_ok(await run_nested(command, [work], [f"{work}/held"]))

    @pytest.mark.usefixtures("bwrap")
    async def test_bubblewrap_in_the_turn_writes_only_in_the_scope(
        self, work: str, outside: str
    ) -> None:
        # As Codex's sandbox does: all read-only, then its writable roots bound again.
        inner = f"touch {work}/from-bwrap && touch {work}/held/x; touch {outside}/x"
        script = f"bwrap --ro-bind / / --dev /dev --proc /proc --bind {work} {work} sh -c '{inner}'"
        result = await run_nested(script, [work], [f"{work}/held"])
        assert 2 * [READ_ONLY] == [line[-len(READ_ONLY) :] for line in result.stderr.splitlines()]
        assert (True, [], ["deep", "f"]) == (
            exists(f"{work}/from-bwrap"),
            os.listdir(outside),
            sorted(os.listdir(f"{work}/held")),
        )

    @pytest.mark.usefixtures("bwrap", "landlock")
    async def test_without_it_landlock_refuses_bubblewrap_its_mounts(self, work: str) -> None:
        result = await run(BWRAP, [work], [f"{work}/held"])
        assert 0 != result.code
        assert "Operation not permitted" in result.stderr, result

    async def test_everything_else_in_the_write_path_works(self, work: str, temp: str) -> None:
        script = f"""set -e
        cd {work}
        echo new > new.txt
        mkdir d && mkdir -p d/e/f && echo x > d/e/f/g && rm d/e/f/g && rmdir d/e/f
        touch free/gone && rm free/gone && rm -r free
        mv f moved && mv moved f
        echo saved > .f.tmp && mv .f.tmp f
        staged=$(mktemp -p {temp}) && echo staged > "$staged" && mv "$staged" staged.txt
        """
        assert_ok(await run_nested(script, [work], [f"{work}/held"], [temp]))
        assert ["d", "f", "held", "new.txt", "staged.txt"] == sorted(os.listdir(work))
        assert ["e"] == os.listdir(f"{work}/d")
        assert ("saved\n", "staged\n") == (contents(f"{work}/f"), contents(f"{work}/staged.txt"))

    async def test_atomic_save_with_python_works(self, work: str) -> None:
        code = (
            "import os, tempfile; "
            f"fd, tmp = tempfile.mkstemp(dir={work!r}); os.write(fd, b'atomic'); os.close(fd); "
            f"os.replace(tmp, {work + '/f'!r})"
        )
        assert_ok(await run_nested(f'{sys.executable} -c "{code}"', [work], [f"{work}/held"]))
        assert "atomic" == contents(f"{work}/f")

    async def test_a_rename_from_the_temp_dir_into_the_scope_crosses_a_mount(
        self, work: str, temp: str
    ) -> None:
        code = (
            "import errno, os\n"
            f"open({temp + '/x'!r}, 'w').close()\n"
            f"try: os.replace({temp + '/x'!r}, {work + '/x'!r})\n"
            "except OSError as exc: print(errno.errorcode[exc.errno])\n"
        )
        result = await run_nested(f"{sys.executable} -c {shlex.quote(code)}", [work], [], [temp])
        assert (0, "EXDEV\n") == (result.code, result.stdout)

    @pytest.mark.parametrize(
        "script",
        [
            "touch {held}/x",
            "echo x > {held}/f",
            "mkdir {held}/d",
            "touch {held}/deep/new",
            "rm {held}/f",
            "mv {held}/f {held}/g",
            "cp {work}/f {held}/copy",
        ],
    )
    async def test_writes_beneath_the_excluded_path_fail_read_only(
        self, work: str, script: str
    ) -> None:
        held = f"{work}/held"
        assert_read_only(await run_nested(script.format(work=work, held=held), [work], [held]))
        assert ["deep", "f"] == sorted(os.listdir(held))

    async def test_the_excluded_path_cannot_be_moved_or_removed(self, work: str) -> None:
        held = f"{work}/held"
        for script in (f"mv {held} {work}/gone", f"rmdir {held}", f"rm -rf {held}"):
            result = await run_nested(script, [work], [held])
            assert 0 != result.code, script
        assert ["deep", "f"] == sorted(os.listdir(held))

    @pytest.mark.parametrize(
        "script",
        [
            "touch {outside}/f",
            "mkdir {outside}/d",
            "echo x > {outside}/f",
            "touch /tmp/podd-sandbox-test-never",
            "ln -s /etc/passwd {outside}/l",
            "sh -c 'sh -c \"touch {outside}/f\"'",
        ],
    )
    async def test_writes_outside_fail_read_only(
        self, work: str, outside: str, script: str
    ) -> None:
        assert_read_only(await run_nested(script.format(outside=outside), [work]))
        assert [] == os.listdir(outside)

    async def test_an_existing_file_outside_cannot_be_changed(
        self, work: str, outside: str
    ) -> None:
        path = os.path.join(outside, "f")
        put(path, "old\n")
        for script in (f"echo new > {path}", f"rm {path}", f"mv {work}/f {path}"):
            result = await run_nested(script, [work])
            assert 0 != result.code, script
        assert "old\n" == contents(path)

    async def test_no_write_paths_means_read_only(self, work: str) -> None:
        assert_read_only(await run_nested(f"touch {work}/new"))

    async def test_write_path_may_be_a_file(self, work: str) -> None:
        assert_ok(await run_nested(f"echo new > {work}/f", [f"{work}/f"]))
        assert_read_only(await run_nested(f"touch {work}/g", [f"{work}/f"]))
        assert "new\n" == contents(f"{work}/f")

    async def test_the_whole_tree_may_be_the_write_path(self, work: str, outside: str) -> None:
        held = f"{work}/held"
        assert_ok(await run_nested(f"touch {outside}/x {work}/x", ["/"], [held]))
        assert_read_only(await run_nested(f"touch {held}/x", ["/"], [held]))
        assert (["x"], ["deep", "f"]) == (os.listdir(outside), sorted(os.listdir(held)))

    async def test_temp_dir_is_writable(self, work: str, temp: str) -> None:
        assert_ok(await run_nested(f"mktemp -p {temp} && touch {temp}/f", [work], [], [temp]))

    async def test_temp_dir_stays_writable_inside_an_exclusion(self, work: str) -> None:
        temp = os.path.join(work, "held", "tmp")
        os.mkdir(temp)
        held = f"{work}/held"
        assert_ok(await run_nested(f"touch {temp}/f", [work], [held], [temp]))
        assert_read_only(await run_nested(f"touch {held}/g", [work], [held], [temp]))
        assert ["f"] == os.listdir(temp)

    async def test_a_working_directory_beneath_the_excluded_path_is_read_only(
        self, work: str
    ) -> None:
        held = f"{work}/held"
        assert_read_only(await run_nested("touch relative", [work], [held], cwd=held))
        assert ["deep", "f"] == sorted(os.listdir(held))

    async def test_the_turn_keeps_its_environment_and_ids(self, work: str) -> None:
        script = 'echo "$PODD_TEST_VALUE $(id -u) $(id -g)"'
        with prepare_confinement(script, [work], [], [], nested_sandbox=True) as confine:
            env = {**os.environ, "PODD_TEST_VALUE": "kept"}
            result = await spawn(confine.argv, confine.pass_fds, env=env)
        assert (0, f"kept {os.getuid()} {os.getgid()}\n") == (result.code, result.stdout)

    async def test_the_mounts_stay_in_the_turns_namespace(self, work: str) -> None:
        assert_ok(await run_nested(f"touch {work}/x", [work], [f"{work}/held"]))
        assert work not in mount_points()
        put(f"{work}/held/f", "still writable here\n", "a")

    @pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
    async def test_device_files_are_writable(self, work: str, device: str) -> None:
        assert_ok(await run_nested(f"echo x > {device}", [work]))

    async def test_random_devices_read(self, work: str) -> None:
        result = await run_nested("head -c 16 /dev/urandom | wc -c", [work])
        assert (0, "16") == (result.code, result.stdout.strip())

    async def test_a_device_node_in_the_scope_cannot_be_opened(self, work: str) -> None:
        skip_unless_root("to make a device node")
        os.mknod(f"{work}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        assert_denied(await run_nested(f"echo x > {work}/null", [work]))

    async def test_ptys_work(self, work: str) -> None:
        code = (
            "import os, pty\n"
            "pid, fd = pty.fork()\n"
            "if pid == 0: os.execv('/bin/echo', ['echo', 'in a pty'])\n"
            "print(os.read(fd, 100).decode().strip()); os.waitpid(pid, 0)\n"
        )
        result = await run_nested(f'{sys.executable} -c "{code}"', [work])
        assert (0, "in a pty\n") == (result.code, result.stdout)

    async def test_script_gets_a_terminal(self, work: str) -> None:
        if shutil.which("script") is None:
            pytest.skip("no script(1) here")
        result = await run_nested(
            "script -qc 'tty && echo through-the-tty > /dev/tty' /dev/null", [work]
        )
        lines = result.stdout.split()
        assert (0, True, "through-the-tty") == (
            result.code,
            lines[0].startswith("/dev/pts/"),
            lines[-1],
        ), result

    async def test_shared_memory_is_the_turns_own(self, work: str) -> None:
        name = f"/dev/shm/podd-sandbox-test-{os.getpid()}"
        result = await run_nested(f"echo shared > {name} && cat {name}", [work])
        assert (0, "shared\n", False) == (result.code, result.stdout, exists(name))

    async def test_mounts_beneath_a_write_path_keep_their_writability(self, work: str) -> None:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            pytest.skip("needs root and unshare(1) to mount file systems for the test")
        script = f"touch {work}/free/x && echo free; touch {work}/held/x || echo held"
        with prepare_confinement(script, [work], [], [], nested_sandbox=True) as confine:
            # In a namespace of the test's own: a writable tmpfs and a read-only one.
            mount = (
                f"mount -t tmpfs podd-test {work}/free && "
                f'mount -t tmpfs -o ro podd-test {work}/held && exec "$@"'
            )
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"]
            result = await spawn([*argv, *confine.argv], confine.pass_fds)
        assert (0, "free\nheld\n") == (result.code, result.stdout)
        assert READ_ONLY in result.stderr

    async def test_the_agent_cannot_undo_the_mounts(self, work: str, temp: str) -> None:
        skip_unless_root("for an agent that holds every capability in its namespace")
        held = f"{work}/held"
        clear = clear_read_only_program(temp)
        script = f"""
        mount -o remount,rw {held} 2>/dev/null && echo remounted
        mount -o remount,rw,bind {held} 2>/dev/null && echo remounted the bind
        umount {held} 2>/dev/null && echo unmounted
        umount -l {held} 2>/dev/null && echo detached
        mount -o remount,rw / 2>/dev/null && echo remounted /
        {sys.executable} {clear} {held}
        {sys.executable} {clear} /
        echo x > {held}/f
        """
        result = await run_nested(script, [work], [held])
        assert "EPERM\nEPERM\n" == result.stdout
        assert_read_only(result)
        assert "old\n" == contents(f"{held}/f")

    async def test_a_new_bind_of_the_excluded_path_stays_read_only(self, work: str) -> None:
        skip_unless_root("for an agent that can mount in its namespace")
        held = f"{work}/held"
        script = f"""
        mount --bind {held} {work}/free && echo bound
        mount -o remount,rw,bind {work}/free 2>/dev/null && echo remounted
        touch {work}/free/x
        """
        result = await run_nested(script, [work], [held])
        assert "bound\n" == result.stdout
        assert_read_only(result)
        assert ["deep", "f"] == sorted(os.listdir(held))

    async def test_other_processes_roots_do_not_bypass_the_mounts(
        self, work: str, outside: str
    ) -> None:
        target = f"/proc/{os.getpid()}/root{outside}/x"
        assert_denied(await run_nested(f"touch {target}", [work]))
        assert [] == os.listdir(outside)

    async def test_a_write_path_gone_before_the_turn_runs_nothing(
        self, work: str, outside: str
    ) -> None:
        free = f"{work}/free"
        with prepare_confinement(f"touch {outside}/x", [free], [], [], nested_sandbox=True) as c:
            shutil.rmtree(free)
            result = await spawn(c.argv, c.pass_fds)
            c.spawned()
            failure = c.failure()
        expected = f"{CONFINEMENT_FAILED}bind mount of {free} (No such file or directory)"
        assert (126, expected + "\n", expected) == (result.code, result.stderr, failure)
        assert [] == os.listdir(outside)

    def test_the_wrapper_reads_what_the_pod_writes(self, work: str, temp: str) -> None:
        inner = f"{work}/held/tmp"
        os.mkdir(inner)
        excluded = [f"{work}/held", f"{work}/missing"]
        with prepare_confinement(
            "true",
            [work, f"{work}/free"],
            excluded,
            [temp, inner, f"{work}/free"],
            nested_sandbox=True,
        ) as confine:
            status_fd, config_fd = confine.pass_fds
            config = parse_config(os.pread(config_fd, 65536, 0))
        assert (True, "exact", [work, temp], [f"{work}/held"], [inner], None, status_fd) == (
            confine.mounts_only,
            confine.mode,
            config.write,
            config.excluded,
            config.writable,
            config.ruleset_fd,
            config.status_fd,
        )
        assert set(config.devices) <= set(sandbox.DEVICE_FILES)
        assert "/dev/null" in config.devices


class TestNestedSandboxAsNobody:
    """As an ordinary user, mounts alone confine the turn and bubblewrap runs in it."""

    @pytest.fixture(autouse=True)
    def mounts_only(self) -> None:
        skip_unless_mounts_only()

    @pytest.mark.usefixtures("bwrap")
    async def test_bubblewrap_runs_for_nobody(self, nobody_tree: str) -> None:
        work = f"{nobody_tree}/W"
        script = "bwrap --unshare-user --ro-bind / / --proc /proc --dev /dev id -u"
        result = await run_as_nobody(
            nobody_tree, script, [f"{work}/sub"], [f"{nobody_tree}/tmp"], nested_sandbox=True
        )
        assert (0, f"{NOBODY}\n", "") == result

    async def test_the_scope_for_nobody(self, nobody_tree: str) -> None:
        top = nobody_tree
        work = f"{top}/W"
        script = f"""set -e
        cd {work}
        touch new.txt && mkdir d && mkdir d/e && touch d/e/g && rm -r d/e
        echo saved > f.tmp && mv f.tmp f
        staged=$(mktemp -p {top}/tmp) && echo staged > "$staged" && mv "$staged" staged.txt
        echo "$(id -u) $(id -g)"
        """
        result = await run_as_nobody(
            top, script, [f"{work}/sub"], [f"{top}/tmp"], nested_sandbox=True
        )
        assert (0, f"{NOBODY} {NOBODY}\n", "") == result
        assert ["d", "f", "new.txt", "staged.txt", "sub", "tmp"] == sorted(os.listdir(work))

    @pytest.mark.parametrize("where", ["W/sub/x", "out/x"])
    async def test_writes_beneath_the_excluded_path_and_outside_fail_read_only(
        self, nobody_tree: str, where: str
    ) -> None:
        work = f"{nobody_tree}/W"
        script = f"touch {nobody_tree}/{where}"
        assert_read_only(
            await run_as_nobody(nobody_tree, script, [f"{work}/sub"], [], nested_sandbox=True)
        )
        assert ([], ["deep"]) == (os.listdir(f"{nobody_tree}/out"), os.listdir(f"{work}/sub"))

    async def test_nobody_cannot_undo_the_mounts(self, nobody_tree: str) -> None:
        work = f"{nobody_tree}/W"
        clear = clear_read_only_program(nobody_tree)
        os.chown(clear, NOBODY, NOBODY)
        script = f"""
        umount {work}/sub 2>/dev/null && echo unmounted
        unshare -rm sh -c 'umount {work}/sub' 2>/dev/null && echo unmounted inside
        {SYSTEM_PYTHON} {clear} {work}/sub
        touch {work}/sub/x
        """
        result = await run_as_nobody(nobody_tree, script, [f"{work}/sub"], [], nested_sandbox=True)
        assert "EPERM\n" == result.stdout
        assert_read_only(result)


class TestWrapper:
    """The exec wrapper runs the command only once it is confined."""

    async def test_bad_configuration_runs_nothing(self, outside: str) -> None:
        # A configuration cut short: what a torn write would leave.
        result = await run_wrapper(marshal.dumps({"command": f"touch {outside}/x"})[:-3])
        assert (126, "") == (result.code, result.stdout)
        assert result.stderr.startswith(
            CONFINEMENT_FAILED + "bad configuration: not a marshalled configuration"
        )
        assert [] == os.listdir(outside)

    async def test_bad_ruleset_runs_nothing(self, outside: str) -> None:
        config = {"command": f"touch {outside}/x", "ruleset_fd": 999}
        result = await run_wrapper(marshal.dumps(config))
        expected = f"{CONFINEMENT_FAILED}landlock_restrict_self (Bad file descriptor)\n"
        assert (126, expected) == (result.code, result.stderr)
        assert [] == os.listdir(outside)

    async def test_a_bind_that_fails_runs_nothing(self, outside: str) -> None:
        skip_unless("exact")
        missing = f"{outside}/missing"
        config = {"command": f"touch {outside}/x", "unshare": True, "excluded": [missing]}
        result = await run_wrapper(marshal.dumps(config))
        expected = f"{CONFINEMENT_FAILED}bind mount of {missing} (No such file or directory)\n"
        assert (126, expected) == (result.code, result.stderr)
        assert [] == os.listdir(outside)

    async def test_an_unexpected_error_still_fails_closed(self) -> None:
        result = await run_wrapper(marshal.dumps({"command": "true\0"}))
        expected = f"{CONFINEMENT_FAILED}ValueError: embedded null byte (Invalid argument)\n"
        assert (126, expected) == (result.code, result.stderr)

    async def test_missing_descriptor_argument_runs_nothing(self) -> None:
        result = await spawn([sys.executable, "-I", "-S", WRAPPER])
        assert 126 == result.code
        assert result.stderr.startswith(CONFINEMENT_FAILED + "usage:")

    async def test_the_failure_message_reaches_the_pod(self, work: str, outside: str) -> None:
        skip_unless("exact")
        held = f"{work}/held"
        with prepare_confinement(f"touch {outside}/x", [work], [held], []) as confine:
            shutil.rmtree(held)
            result = await spawn(confine.argv, confine.pass_fds)
            confine.spawned()
            failure = confine.failure()
        expected = f"{CONFINEMENT_FAILED}bind mount of {held} (No such file or directory)"
        assert (126, expected + "\n", expected) == (result.code, result.stderr, failure)
        assert [] == os.listdir(outside)

    async def test_no_failure_once_the_command_ran(self, work: str) -> None:
        skip_unless("approximate")
        with prepare_confinement("exit 126", [work], [], []) as confine:
            result = await spawn(confine.argv, confine.pass_fds)
            confine.spawned()
            assert (126, None) == (result.code, confine.failure())

    def test_the_wrapper_reads_what_the_pod_writes(self, landlock: None, work: str) -> None:
        skip_unless("exact")
        temp = f"{work}/held/tmp"
        os.mkdir(temp)
        excluded = [f"{work}/held", f"{work}/missing"]
        with prepare_confinement("echo 'a b'", [work], excluded, [temp]) as confine:
            status_fd, ruleset_fd, config_fd = confine.pass_fds
            config = parse_config(os.pread(config_fd, 65536, 0))
        assert ("echo 'a b'", True, [f"{work}/held"], [temp], ruleset_fd, status_fd) == (
            config.command,
            config.unshare,
            config.excluded,
            config.writable,
            config.ruleset_fd,
            config.status_fd,
        )

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ([], "not a configuration (a dict)"),
            ({}, "'command' must be a string"),
            ({"command": "x", "unshare": 1}, "'unshare' must be true or false"),
            ({"command": "x", "unshare": True, "excluded": ["rel"]}, "absolute paths"),
            ({"command": "x", "excluded": ["/a"]}, "without a namespace"),
            ({"command": "x", "ruleset_fd": True}, "'ruleset_fd' must be"),
            ({"command": "x", "status_fd": -1}, "'status_fd' must be"),
            ({"command": "x", "mounts_only": 1}, "'mounts_only' must be true or false"),
            ({"command": "x", "write": ["/a"]}, "'write' and 'devices' are for 'mounts_only'"),
            ({"command": "x", "devices": ["/dev/null"]}, "are for 'mounts_only'"),
            ({"command": "x", "mounts_only": True, "write": ["a"]}, "absolute paths"),
            (
                {"command": "x", "mounts_only": True, "ruleset_fd": 3},
                "a Landlock ruleset with 'mounts_only'",
            ),
        ],
    )
    def test_bad_configurations_are_refused(self, doc: object, message: str) -> None:
        with pytest.raises(_confine_exec.ConfinementFailed) as caught:
            parse_config(marshal.dumps(doc))
        assert message in str(caught.value)
        assert str(caught.value).endswith("(Invalid argument)")

    @pytest.mark.parametrize(
        ("f_flag", "read_only", "expected"),
        [
            # rw,relatime -> ro, relatime kept
            (4096, True, 32 | 4096 | 1 | (1 << 21)),
            # rw,nosuid,nodev,noexec,relatime
            (2 | 4 | 8 | 4096, True, 32 | 4096 | 1 | 2 | 4 | 8 | (1 << 21)),
            # noatime,nodiratime
            (1024 | 2048, True, 32 | 4096 | 1 | 1024 | 2048),
            # strictatime (neither noatime nor relatime) must be named
            (0, True, 32 | 4096 | 1 | (1 << 24)),
            # ro,nosymfollow, made writable again: ro dropped, nosymfollow kept
            (1 | 8192 | 4096, False, 32 | 4096 | 256 | (1 << 21)),
        ],
    )
    def test_remount_flags_keep_what_the_mount_has(
        self, f_flag: int, read_only: bool, expected: int
    ) -> None:
        assert expected == remount_flags(f_flag, read_only=read_only)

    def test_mount_points_beneath_a_path(self) -> None:
        table = b"\n".join(
            [
                b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw",
                b"30 22 8:1 /w/sub /w/sub rw,relatime - ext4 /dev/vda rw",
                b"31 30 0:40 / /w/sub/m\\040nt rw - tmpfs none rw",
                b"32 22 0:41 / /w/subway rw - tmpfs none rw",
                b"33 30 8:1 /w/sub /w/sub rw,relatime - ext4 /dev/vda rw",
            ]
        )
        assert ["/w/sub", "/w/sub/m nt"] == mount_points_beneath(table, "/w/sub")

    def test_mount_states_take_the_mount_on_top(self) -> None:
        table = b"\n".join(
            [
                b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw",
                b"24 22 0:6 / /dev rw,nosuid,relatime - devtmpfs udev rw",
                b"30 22 8:1 /w /w ro,nodev,relatime - ext4 /dev/vda rw",
                b"31 30 0:40 / /w/m\\040nt ro - tmpfs none rw",
                b"33 22 8:1 /w /w rw,relatime - ext4 /dev/vda rw",
                b"",
            ]
        )
        assert {
            "/": MountState(False, False),
            "/dev": MountState(False, False),
            "/w": MountState(False, False),
            "/w/m nt": MountState(True, False),
        } == mount_states(table)
        assert MountState(True, True) == mount_states(table.replace(b"33 22", b"#"))["/w"]

    def test_a_config_for_mounts_alone_is_read(self) -> None:
        doc = {
            "command": "true",
            "mounts_only": True,
            "write": ["/w"],
            "excluded": ["/w/sub"],
            "writable": ["/w/sub/tmp"],
            "devices": ["/dev/null"],
        }
        config = parse_config(marshal.dumps(doc))
        assert (True, True, ["/w"], ["/w/sub"], ["/w/sub/tmp"], ["/dev/null"], None) == (
            config.mounts_only,
            config.unshare,
            config.write,
            config.excluded,
            config.writable,
            config.devices,
            config.ruleset_fd,
        )

    @pytest.mark.parametrize(
        ("machine", "number"),
        [("x86_64", 442), ("aarch64", 442), ("riscv64", 442), ("alpha", 552), ("mips64", None)],
    )
    def test_mount_setattr_has_one_number_here_and_in_the_wrapper(
        self, machine: str, number: int | None
    ) -> None:
        assert (number, number) == (
            sandbox.mount_setattr_number(machine),
            _confine_exec.mount_setattr_number(machine),
        )


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


class TestModes:
    """``status`` reports the mode this host allows, and why it is not exact."""

    def test_mode_and_detail(self) -> None:
        assert enforcement_mode() in ("exact", "approximate", "advisory")
        assert enforcement_mode() is enforcement_mode()
        assert enforcement_detail().startswith(
            {"exact": "Landlock", "approximate": "Landlock", "advisory": "no Landlock"}[
                enforcement_mode()
            ]
        )

    async def test_no_namespaces_variable_forces_approximate(
        self, monkeypatch: pytest.MonkeyPatch, work: str
    ) -> None:
        skip_unless("approximate")
        monkeypatch.setenv("PODD_NO_NAMESPACES", "1")
        assert "approximate" == enforcement_mode()
        detail = enforcement_detail()
        assert "no mount namespaces (PODD_NO_NAMESPACES is set)" in detail
        assert "can be written but not created, removed or renamed" in detail
        assert_denied(await run(f"touch {work}/new.txt", [work], [f"{work}/held"]))
        assert not exists(f"{work}/new.txt")

    def test_nested_sandbox_mode_and_detail(self) -> None:
        if sandbox.mounts_only_problem() is None:
            expected = ("exact", "mounts alone (--nested-sandbox), no Landlock")
        else:
            expected = (enforcement_mode(), "--nested-sandbox is not possible here")
        detail = enforcement_detail(nested_sandbox=True)
        assert expected == (enforcement_mode(nested_sandbox=True), detail[: len(expected[1])])

    async def test_without_namespaces_a_nested_sandbox_falls_back_to_landlock(
        self, monkeypatch: pytest.MonkeyPatch, work: str, outside: str
    ) -> None:
        skip_unless("approximate")
        monkeypatch.setenv("PODD_NO_NAMESPACES", "1")
        prefix = (
            "--nested-sandbox is not possible here (PODD_NO_NAMESPACES is set), so turns are"
            " confined as without it: Landlock"
        )
        detail = enforcement_detail(nested_sandbox=True)
        assert ("approximate", prefix) == (
            enforcement_mode(nested_sandbox=True),
            detail[: len(prefix)],
        )
        with prepare_confinement("true", [work], [], [], nested_sandbox=True) as confine:
            assert (False, "approximate") == (confine.mounts_only, confine.mode)
        assert_denied(await run(f"touch {outside}/x", [work], nested_sandbox=True))
        assert [] == os.listdir(outside)

    @pytest.mark.parametrize(
        ("files", "expected"),
        [
            ({"/proc/sys/user/max_user_namespaces": "15000\n"}, None),
            ({}, "the kernel has no user namespaces"),
            (
                {"/proc/sys/user/max_user_namespaces": "0\n"},
                "user namespaces disabled: user.max_user_namespaces is 0",
            ),
            (
                {
                    "/proc/sys/user/max_user_namespaces": "15000\n",
                    "/proc/sys/kernel/unprivileged_userns_clone": "0\n",
                },
                None,
            ),
        ],
    )
    def test_a_nested_sandbox_needs_user_namespaces_as_root_too(
        self, files: dict[str, str], expected: str | None
    ) -> None:
        files = {"/proc/self/status": "CapEff:\t000001ffffffffff\n", **files}
        assert (None, expected) == (
            namespace_problem(0, files.get),
            namespace_problem(0, files.get, nested_sandbox=True),
        )

    @pytest.mark.parametrize(
        ("euid", "files", "expected"),
        [
            (0, {"/proc/self/status": "CapEff:\t000001ffffffffff\n"}, None),
            (0, {"/proc/self/status": "CapEff:\t0000000000000000\n"}, "root without CAP_SYS_ADMIN"),
            (0, {"/proc/self/status": "CapEff:\tnot-hex\n"}, "root without CAP_SYS_ADMIN"),
            (1000, {"/proc/sys/user/max_user_namespaces": "15000\n"}, None),
            (1000, {}, "the kernel has no user namespaces"),
            (
                1000,
                {"/proc/sys/user/max_user_namespaces": "0\n"},
                "user namespaces disabled: user.max_user_namespaces is 0",
            ),
            (
                1000,
                {
                    "/proc/sys/user/max_user_namespaces": "15000\n",
                    "/proc/sys/kernel/unprivileged_userns_clone": "0\n",
                },
                "user namespaces disabled: kernel.unprivileged_userns_clone is 0",
            ),
            (
                1000,
                {
                    "/proc/sys/user/max_user_namespaces": "15000\n",
                    "/proc/sys/kernel/unprivileged_userns_clone": "1\n",
                    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1\n",
                },
                "user namespaces disabled: kernel.apparmor_restrict_unprivileged_userns is 1",
            ),
        ],
    )
    def test_namespace_problem(
        self, euid: int, files: dict[str, str], expected: str | None
    ) -> None:
        assert expected == namespace_problem(euid, files.get)

    def test_the_wrapper_imports_nothing_of_podd(self) -> None:
        with open(WRAPPER) as f:
            source = f.read()
        imports = {
            line.split()[1].split(".")[0]
            for line in source.splitlines()
            if line.startswith(("import ", "from "))
        }
        assert {
            "__future__",
            "collections",
            "contextlib",
            "ctypes",
            "errno",
            "marshal",
            "os",
            "sys",
        } == imports
        assert sandbox.WRAPPER == _confine_exec.__file__
