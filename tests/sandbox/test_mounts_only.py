"""Confinement by mounts alone (``--nested-sandbox``): bubblewrap runs inside the turn."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from collections.abc import Sequence

import pytest

from podd import sandbox
from podd.sandbox import prepare_confinement
from podd.sandbox._confine.config import parse_config
from tests.sandbox.support import (
    CONFINEMENT_FAILED,
    NOBODY,
    READ_ONLY,
    SYSTEM_PYTHON,
    Ran,
    assert_denied,
    assert_ok,
    assert_read_only,
    contents,
    exists,
    mount_points,
    put,
    run,
    run_as_nobody,
    spawn,
)

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
