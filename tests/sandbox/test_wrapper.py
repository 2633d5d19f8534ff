"""The exec wrapper, run directly: it fails closed, and reads what the pod writes."""

from __future__ import annotations

import ast
import marshal
import os
import shutil
import sys

import pytest

from podd import sandbox
from podd.sandbox import WRAPPER, prepare_confinement
from podd.sandbox._confine.config import parse_config
from podd.sandbox._confine.failure import ConfinementFailed
from podd.sandbox._confine.mounts import (
    MountState,
    mount_points_beneath,
    mount_states,
    remount_flags,
)
from podd.sandbox._confine.syscalls import mount_setattr_number as wrapper_mount_setattr_number
from tests.sandbox.support import CONFINEMENT_FAILED, run_wrapper, skip_unless, spawn


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
        with pytest.raises(ConfinementFailed) as caught:
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

    @pytest.mark.parametrize("how", ["file", "directory"])
    async def test_the_wrapper_loads_no_module_of_podd_but_its_own(self, how: str) -> None:
        wrapper = WRAPPER if how == "file" else os.path.dirname(WRAPPER)
        fd = os.memfd_create("test-config")
        try:
            os.write(fd, marshal.dumps({"command": "echo ran"}))
            os.lseek(fd, 0, os.SEEK_SET)
            argv = [sys.executable, "-I", "-S", "-X", "importtime", wrapper, str(fd)]
            result = await spawn(argv, [fd])
        finally:
            os.close(fd)
        loaded = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()}
        package = os.path.dirname(WRAPPER)
        own = {
            f"podd.sandbox._confine.{name.removesuffix('.py')}"
            for name in os.listdir(package)
            if name.endswith(".py") and name not in ("__init__.py", "__main__.py")
        }
        assert (0, "ran\n", own) == (
            result.code,
            result.stdout,
            {name for name in loaded if name.split(".")[0] == "podd"},
        )

    def test_the_package_holds_its_docstring_alone_and_shadows_no_standard_module(
        self,
    ) -> None:
        # __main__ stands in for the package's __init__, which never runs in the wrapper;
        # run as a directory, that directory comes first on sys.path.
        package = os.path.dirname(WRAPPER)
        with open(os.path.join(package, "__init__.py")) as f:
            body = ast.parse(f.read()).body
        names = {name.removesuffix(".py") for name in os.listdir(package)}
        assert ([ast.Expr], set()) == (
            [type(node) for node in body],
            names & set(sys.stdlib_module_names),
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
            wrapper_mount_setattr_number(machine),
        )
