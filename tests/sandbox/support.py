"""Running commands confined the way the pod runs turns, and what the tests check them with.

Every command runs through ``prepare_confinement`` and, under Landlock, the exec wrapper;
``spawn`` bounds each run with ``trio.fail_after``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, NamedTuple

import pytest
import trio

from podd.sandbox import (
    WRAPPER,
    EnforcementMode,
    enforcement_detail,
    enforcement_mode,
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


def make_dir() -> str:
    return os.path.realpath(tempfile.mkdtemp(dir="/tmp"))


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


SYSTEM_PYTHON = "/usr/bin/python3"
"""An interpreter nobody can run (the test's own may lie in a directory closed to it)."""


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
        copy = os.path.join(top, *WRAPPER.split(os.sep)[-2:])
        argv = [SYSTEM_PYTHON, "-I", "-S", copy, confine.argv[-1]]
        return await spawn(
            argv, confine.pass_fds, cwd=top, user=NOBODY, group=NOBODY, extra_groups=[]
        )
