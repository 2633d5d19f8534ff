"""Shared fixtures: a private runtime root per test, and the ``podd`` CLI as a process.

Every test that starts pods gets its own short root under /tmp (pytest's ``tmp_path``
can exceed ``sun_path``). At teardown every process recorded under the root is
stopped (SIGKILL if need be) and the root removed; a test that leaves a process
behind fails.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio

from podd.proc.facts import is_alive
from podd.store.pod_files import read_info

CLI_TIMEOUT = 30.0


@attrs.frozen
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def pod_processes(root: str) -> list[tuple[str, int, float]]:
    """``(name, pid, start_time)`` of every live pod process recorded under ``root``."""
    found = []
    if not os.path.isdir(root):
        return found
    for name in os.listdir(root):
        try:
            info = read_info(os.path.join(root, name, "pod.json"))
        except (OSError, ValueError):
            continue
        if is_alive(info.pid, info.start_time):
            found.append((name, info.pid, info.start_time))
    return found


def titled_processes(root: str) -> list[str]:
    """The titles of live processes whose title names ``root`` (``podd: ... [ROOT]``):
    pods, fork servers, the root's fork server."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            # A title fills argv[0]; the rest of the old command line is blank.
            title = " ".join(proc.info["cmdline"] or []).strip()
            ours = title.startswith("podd: ") and title.endswith(f"[{root}]")
            if ours and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(title)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


class Podd:
    """Runs the real ``podd`` CLI against one root."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.env = {**os.environ, "PODD_ROOT": root}
        for var in ("POD_NAME", "POD_SOCKET", "POD_TURN", "POD_PARENT"):
            self.env.pop(var, None)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "podd", *args]

    async def __call__(
        self, *args: str, timeout: float = CLI_TIMEOUT, cwd: str | None = None
    ) -> CliResult:
        with trio.fail_after(timeout):
            proc = await trio.run_process(
                self.argv(*args),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=self.env,
                cwd=cwd or self.root,
            )
        return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def run_sync(self, *args: str, timeout: float = CLI_TIMEOUT) -> CliResult:
        proc = subprocess.run(
            self.argv(*args), capture_output=True, env=self.env, timeout=timeout, cwd=self.root
        )
        return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def sock(self, name: str) -> str:
        return os.path.join(self.root, name, "sock")

    def pid(self, name: str) -> int:
        return read_info(os.path.join(self.root, name, "pod.json")).pid


def kill_everything(root: str) -> list[str]:
    """SIGKILL every pod process (and leftover turn) under ``root``; return their names."""
    killed = []
    for name, pid, _ in pod_processes(root):
        turn_marker = os.path.join(root, name, "turn.pid")
        try:
            with open(turn_marker) as f:
                os.killpg(int(f.read().split()[0]), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(name)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while pod_processes(root) and time.monotonic() < deadline:
        time.sleep(0.01)
    return killed


@pytest.fixture(scope="session", autouse=True)
def codex_daemon_dir() -> Iterator[None]:
    """A codex pod's turn makes ``/tmp/codex-daemon-<uid>`` (``podd.drivers.codex``); a
    test run that found none leaves none."""
    from podd.drivers.codex import daemon_dir

    path = pathlib.Path(daemon_dir())
    there = path.exists()
    yield
    if not there and path.is_dir() and not any(path.iterdir()):
        path.rmdir()


@pytest.fixture
def root() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="podd-t", dir="/tmp")
    os.chmod(path, 0o700)
    try:
        yield path
    finally:
        leftovers = kill_everything(path)
        shutil.rmtree(path, ignore_errors=True)
        assert not leftovers, f"test left pods running: {leftovers}"


@pytest.fixture
def podd(root: str) -> Podd:
    return Podd(root)


@pytest.fixture
def tmp_path() -> Iterator[pathlib.Path]:
    """Like pytest's, but removed afterwards: a test run leaves no directory behind."""
    path = tempfile.mkdtemp(prefix="podd-p", dir="/tmp")
    try:
        yield pathlib.Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="podd-w", dir="/tmp")
    try:
        yield os.path.realpath(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)
