"""Helpers of the driver tests: recorded output, parsing in chunks, running the fakes."""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Iterable, Sequence

from podd.drivers import Driver, Invocation, TurnResult
from tests.fakes import fake_env

RECORDED = pathlib.Path(__file__).resolve().parent / "recorded"
FAKE_TIMEOUT = 30.0


def recorded(name: str) -> bytes:
    """The raw stdout of a real CLI run that ``scripts/test-agents`` recorded."""
    return (RECORDED / name).read_bytes()


def parse(driver: Driver, chunks: bytes | Iterable[bytes], exit_code: int | None = 0) -> TurnResult:
    """What ``driver``'s parser makes of stdout fed as ``chunks`` (or all at once)."""
    parser = driver.parser()
    for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
        parser.feed(chunk)
    return parser.finish(exit_code)


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length, in order)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces = []
    start = 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def run_invocation(
    invocation: Invocation,
    cwd: os.PathLike[str] | str,
    scenario: str | None = None,
    **extra_env: str,
) -> subprocess.CompletedProcess[bytes]:
    """Run what a driver built, as the pod will, with the fakes first on ``PATH``."""
    env = fake_env(scenario, **extra_env)
    env.update(invocation.env)
    return subprocess.run(
        invocation.argv,
        input=invocation.stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=FAKE_TIMEOUT,
        check=False,
    )


def run_fake(
    argv: Sequence[str],
    stdin: bytes,
    cwd: os.PathLike[str] | str,
    scenario: str | None = None,
    **extra_env: str,
) -> subprocess.CompletedProcess[bytes]:
    """Run a fake CLI (``claude`` or ``codex``) directly with ``argv``."""
    return subprocess.run(
        list(argv),
        input=stdin,
        cwd=cwd,
        env=fake_env(scenario, **extra_env),
        capture_output=True,
        timeout=FAKE_TIMEOUT,
        check=False,
    )
