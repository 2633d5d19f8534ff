"""A pod's command line, as the spawner writes it and the pod reads it."""

from __future__ import annotations

import pytest

from podd.runtime.main import parse_options
from podd.spawn.spawner import pod_command


def test_the_spawners_command_line_reads_back() -> None:
    argv = pod_command(7, 9)
    assert ["-m", "podd._pod_main"] == argv[1:3]
    options = parse_options([*argv[3:], "--root-server-fd", "11", "--root-server-ino=42"])
    assert {
        "--ready-fd": 9,
        "--spec-fd": 7,
        "--root-server-fd": 11,
        "--root-server-ino": 42,
    } == options


def test_absent_options_are_minus_one() -> None:
    assert -1 == parse_options(["--ready-fd", "3"])["--root-server-fd"]


@pytest.mark.parametrize("argv", [["--ready"], ["--ready-fd"], ["--ready-fd", "x"], ["3"]])
def test_anything_else_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_options(argv)
