"""The CLI builds the parser of the command it runs; the result is the whole parser's."""

from __future__ import annotations

import pytest

from podd.cli.early import command_word
from podd.cli.parser import build_parser

ARGVS = [
    ["spawn", "a", "--parent", "p", "--scope", "/x:write", "--json"],
    ["--root", "/r", "ls", "--json"],
    ["ls", "--tree", "--root", "/r"],
    ["--root=/r", "status", "a", "--json"],
    ["send", "a", "hello", "--wait"],
    ["output", "a", "-f"],
    ["notifications", "--peek"],
    ["stop", "a", "--timeout", "3", "--drain", "--no-kill"],
    ["restart", "a"],
    ["reclaim", "--json"],
]


class TestCommandWord:
    """The command is the first word after nothing but --root."""

    @pytest.mark.parametrize(
        ("argv", "expected"),
        [
            ([], None),
            (["ls"], "ls"),
            (["--root", "/r", "ls", "--json"], "ls"),
            (["--root=/r", "status", "x"], "status"),
            (["--root", "/r", "--root", "/s", "stop", "x"], "stop"),
            (["-h"], None),
            (["--root"], None),
            (["--ro", "/r", "ls"], None),
            (["--", "ls"], None),
        ],
    )
    def test_command_word(self, argv: list[str], expected: str | None) -> None:
        assert expected == command_word(argv)


class TestOneCommand:
    """The parser of one command parses as the whole parser does."""

    @pytest.mark.parametrize("argv", ARGVS)
    def test_same_namespace(self, argv: list[str]) -> None:
        whole = vars(build_parser().parse_args(argv))
        alone = vars(build_parser(command_word(argv)).parse_args(argv))
        assert whole == alone

    def test_an_unknown_word_gives_every_command(self) -> None:
        whole = build_parser().format_help()
        assert whole == build_parser("bogus").format_help()
        assert all(name in whole for name in ("spawn", "ls", "status", "reclaim"))
