"""Atomic replacement, and the temp files that a writer killed before its rename leaves."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from podd.store.atomic import remove_abandoned, write_atomic


@pytest.fixture
def directory() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="podd-a", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_write_atomic_leaves_only_the_file(directory: str) -> None:
    path = os.path.join(directory, "data.json")
    write_atomic(path, b"old")
    write_atomic(path, b"new")
    with open(path, "rb") as f:
        assert b"new" == f.read()
    assert ["data.json"] == os.listdir(directory)
    assert 0o600 == os.stat(path).st_mode & 0o777


def test_only_the_temp_files_of_gone_writers_are_removed(directory: str) -> None:
    gone, alive = dead_pid(), os.getpid()
    names = {
        "abandoned": f"..stopped.a.json.{gone}.tmp",
        "being_written": f"..stopped.b.json.{alive}.tmp",
        "record": ".stopped.c.json",
        "no_pid": ".notes.tmp",
        "not_hidden": f"x.{gone}.tmp",
    }
    for name in names.values():
        open(os.path.join(directory, name), "w").close()
    assert [names["abandoned"]] == remove_abandoned(directory)
    expected = sorted(v for k, v in names.items() if k != "abandoned")
    assert expected == sorted(os.listdir(directory))
    assert [] == remove_abandoned(directory)


def test_a_missing_directory_has_nothing_to_remove(directory: str) -> None:
    assert [] == remove_abandoned(os.path.join(directory, "absent"))
