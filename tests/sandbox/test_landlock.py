"""Confinement under Landlock: the write scope, exclusions in exact and approximate mode."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from podd.sandbox import EnforcementMode, prepare_confinement
from tests.sandbox.support import (
    DENIED,
    NOBODY,
    assert_denied,
    assert_ok,
    assert_read_only,
    contents,
    exists,
    mount_points,
    put,
    run,
    run_as_nobody,
    skip_unless,
    spawn,
)


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
