"""Shell words of agent commands: simple commands, their words as written, detection."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podd.drivers import detect, driver_for
from podd.drivers.words import Word, all_words, command_name, parse_simple, split_prefix


class TestSimpleCommand:
    """A simple command is taken apart into assignments, name and args, each as written."""

    def test_assignments_name_and_args(self) -> None:
        simple = parse_simple("IS_SANDBOX=1 FOO='a b' claude --allowedTools Bash")
        assert simple is not None
        assert ["IS_SANDBOX=1", "FOO='a b'"] == [w.raw for w in simple.assignments]
        assert "claude" == simple.name.raw
        assert ["--allowedTools", "Bash"] == [w.value for w in simple.args]

    def test_words_keep_their_quoting_and_expansions(self) -> None:
        command = 'codex -c base_url="http://127.0.0.1:$PORT/v1" -C ~/work *.md'
        simple = parse_simple(command)
        assert simple is not None
        assert command == simple.render()
        assert ["-c", None, "-C", None, None] == [w.value for w in simple.args]

    def test_quote_removal_gives_the_value(self) -> None:
        simple = parse_simple("claude --append-system-prompt 'be brief' \"x y\" a\\ b")
        assert simple is not None
        assert ["--append-system-prompt", "be brief", "x y", "a b"] == [
            w.value for w in simple.args
        ]

    def test_render_with_added_words_quotes_them(self) -> None:
        simple = parse_simple("FOO='a b' claude")
        assert simple is not None
        added = [Word.literal("--mcp-config"), Word.literal("/path with space/m.json")]
        rendered = simple.render([*simple.args, *added])
        assert "FOO='a b' claude --mcp-config '/path with space/m.json'" == rendered
        assert ["FOO=a b", "claude", "--mcp-config", "/path with space/m.json"] == shlex.split(
            rendered
        )

    @pytest.mark.parametrize(
        "command",
        [
            "cd /x && claude",
            "claude | tee log",
            "claude > out",
            "claude 2>&1",
            "claude; echo done",
            "{ claude; }",
            "( claude )",
            "if true; then claude; fi",
            "claude # a comment",
            "claude $(cat flags)",
            "claude `cat flags`",
            'claude "$(cat flags)"',
            "claude ${FLAGS:-x}",
            "claude 'unclosed",
            "claude\necho two",
            "FOO=1",
            "",
        ],
    )
    def test_anything_else_is_not_simple(self, command: str) -> None:
        assert None is parse_simple(command)


class TestCommandName:
    """The first command word after assignments names the agent, quotes removed."""

    @pytest.mark.parametrize(
        ("command", "expected"),
        [
            ("claude -p", "claude"),
            ("IS_SANDBOX=1 claude", "claude"),
            ("A=1 B='x y' /opt/bin/codex exec", "/opt/bin/codex"),
            ("'claude' -p", "claude"),
            ("~/bin/claude", "~/bin/claude"),
            ("$HOME/bin/codex", "$HOME/bin/codex"),
            ("claude -p | tee log", "claude"),
            ("cd /x && claude", "cd"),
            ("{ claude; }", None),
            ("if claude; then :; fi", None),
            ("( claude )", None),
            (">log claude", None),
            ("", None),
        ],
    )
    def test_command_name(self, command: str, expected: str | None) -> None:
        assert expected == command_name(command)


class TestDetect:
    """``auto`` picks claude or codex by the basename of the command word, else shell."""

    @pytest.mark.parametrize(
        ("command", "expected"),
        [
            ("claude", "claude"),
            ("claude -p --allowedTools Bash", "claude"),
            ("IS_SANDBOX=1 claude --dangerously-skip-permissions", "claude"),
            ("/usr/local/bin/claude", "claude"),
            ("~/.cache/podd-agents/node_modules/.bin/claude", "claude"),
            ("codex --skip-git-repo-check", "codex"),
            ("OPENAI_API_KEY=x codex exec", "codex"),
            ("claude -p | tee log", "claude"),
            ("cat", "shell"),
            ("echo claude", "shell"),
            ("claude-code", "shell"),
            ("codex2", "shell"),
            ("{ claude; }", "shell"),
            ("cd /x && codex", "shell"),
            ("", "shell"),
        ],
    )
    def test_detect(self, command: str, expected: str) -> None:
        assert expected == detect(command)

    def test_driver_for_each_name(self) -> None:
        assert ["shell", "claude", "codex"] == [
            driver_for(name).name for name in ("shell", "claude", "codex")
        ]

    def test_driver_for_an_unknown_name(self) -> None:
        with pytest.raises(KeyError):
            driver_for("gpt")


WORD = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)


class TestRoundTrip:
    """Quoted words read back as the same values, whatever they hold."""

    @given(st.lists(WORD, min_size=1, max_size=6))
    def test_quoted_words_parse_back(self, values: list[str]) -> None:
        command = " ".join(shlex.quote(v) for v in ["claude", *values])
        simple = parse_simple(command)
        assert simple is not None
        assert values == [w.value for w in simple.args]

    @given(st.text(max_size=40))
    def test_reading_never_fails(self, command: str) -> None:
        split_prefix(command)
        all_words(command)
        command_name(command)
        parse_simple(command)
