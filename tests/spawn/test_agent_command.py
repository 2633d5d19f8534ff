"""Agent commands: any POSIX shell program is accepted; only what surely cannot run is
refused before a pod is spawned with it."""

from __future__ import annotations

import os

import pytest

from podd.spawn.agent_command import check_agent, first_command_word

ACCEPTED = [
    "cat -u",
    '{ echo "=== turn"; cat; } >> log',
    "( cd /tmp && cat )",
    "if true; then cat; fi",
    "for i in 1 2; do echo $i; done",
    "while read line; do echo $line; done",
    'case "$POD_TURN" in 1) echo one;; *) cat;; esac',
    "! false",
    "f() { cat; }; f",
    "FOO=1 BAR=2 cat",
    ">>log cat",
    "2>&1 cat",
    "exec cat",
    "cat | tr a-z A-Z",
    "$SHELL -c cat",
    '"$(command -v cat)"',
    "/bin/cat",
    "echo hi && nosuch-command-anywhere",
]

REFUSED = [
    ("nosuch-command-anywhere -p", "'nosuch-command-anywhere' was not found on PATH"),
    ("FOO=1 nosuch-command-anywhere", "'nosuch-command-anywhere' was not found on PATH"),
    (">log nosuch-command-anywhere", "'nosuch-command-anywhere' was not found on PATH"),
    ("/nonexistent/agent", "'/nonexistent/agent' is not an executable file"),
    ("./not-here.sh", "'./not-here.sh' is not an executable file"),
    ("if true; then cat", "syntax error"),
    ("{ cat;", "syntax error"),
    ("cat )", "syntax error"),
    ("   ", "empty"),
    ("cat\0x", "NUL byte"),
]


class TestCheckAgent:
    """Shell programs run as they are; typos and syntax errors are refused up front."""

    @pytest.mark.parametrize("command", ACCEPTED)
    def test_shell_program_is_accepted(self, command: str) -> None:
        assert None is check_agent(command, "/")

    @pytest.mark.parametrize(("command", "reason"), REFUSED)
    def test_what_cannot_run_is_refused_with_the_reason(self, command: str, reason: str) -> None:
        problem = check_agent(command, "/")
        assert problem is not None and reason in problem, problem

    def test_relative_command_path_is_taken_from_cwd(self, tmp_path: object) -> None:
        directory = str(tmp_path)
        script = os.path.join(directory, "agent.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ncat\n")
        os.chmod(script, 0o700)
        assert (None, True) == (
            check_agent("./agent.sh", directory),
            "not an executable" in (check_agent("./agent.sh", "/") or ""),
        )

    def test_path_given_is_the_one_searched(self, tmp_path: object) -> None:
        directory = str(tmp_path)
        os.symlink("/bin/cat", os.path.join(directory, "my-agent"))
        assert (None, True) == (
            check_agent("my-agent", "/", path=directory),
            "not found on PATH" in (check_agent("my-agent", "/", path="/nonexistent") or ""),
        )


class TestFirstCommandWord:
    """The first simple command's word, past assignments and redirections."""

    @pytest.mark.parametrize(
        ("command", "word"),
        [
            ("claude -p", "claude"),
            ("FOO=1 claude", "claude"),
            ("2>/dev/null codex exec", "codex"),
            ("< in > out cat", "cat"),
            ("{ cat; }", None),
            ("(cat)", None),
            ("f() { cat; }", None),
            ("FOO=1", None),
            ("'unterminated", None),
        ],
    )
    def test_word(self, command: str, word: str | None) -> None:
        assert word == first_command_word(command)
