"""A turn's output made readable: text, one line per tool call, errors, the result."""

from __future__ import annotations

import json

from podd.drivers import render_turn
from tests.drivers.support import recorded


class TestClaude:
    """Claude Code's lines read as the conversation, tool calls on a line each."""

    def test_tool_call(self) -> None:
        expected = (
            "Let me run it.\n"
            "→ Bash: echo tool-output-42\n"
            "The command printed tool-output-42.\n"
            "✓ result: The command printed tool-output-42.\n"
        )
        assert expected == render_turn("claude", recorded("claude_tool_call.jsonl"))

    def test_a_failed_tool_call_says_why(self) -> None:
        lines = render_turn("claude", recorded("claude_read_only_config.jsonl")).splitlines()
        assert "→ Bash: echo hi" == lines[1]
        assert lines[2].startswith("  ✗ EROFS: read-only file system, mkdir ")

    def test_error(self) -> None:
        lines = render_turn("claude", recorded("claude_is_error.jsonl")).splitlines()
        assert lines[-1].startswith("✗ error: API Error: 500")

    def test_unknown_session(self) -> None:
        text = render_turn("claude", recorded("claude_unknown_resume.jsonl"))
        assert text.startswith("✗ error: No conversation found with session ID: ")

    def test_tool_calls_fit_on_one_line(self) -> None:
        block = {"type": "tool_use", "name": "Bash", "input": {"command": "a\nb" + "c" * 500}}
        line = {"type": "assistant", "message": {"content": [block]}}
        assert "→ Bash: a…\n" == render_turn("claude", json.dumps(line).encode())
        block["input"] = {"command": "x" * 500}
        rendered = render_turn("claude", json.dumps(line).encode())
        assert rendered.startswith("→ Bash: xxx") and rendered.endswith("…\n")
        assert 1 == rendered.count("\n")

    def test_other_tools_show_what_they_touch(self) -> None:
        blocks = [
            {"type": "tool_use", "name": "Read", "input": {"file_path": "/w/a.py"}},
            {"type": "tool_use", "name": "TodoWrite", "input": {"todos": [1]}},
            {"type": "tool_use", "name": "Noop", "input": {}},
        ]
        line = {"type": "assistant", "message": {"content": blocks}}
        expected = '→ Read: /w/a.py\n→ TodoWrite: {"todos":[1]}\n→ Noop\n'
        assert expected == render_turn("claude", json.dumps(line).encode())

    def test_lines_that_are_not_json_are_kept(self) -> None:
        data = b"Warning: low disk\n" + recorded("claude_stream_turn1.jsonl")
        assert render_turn("claude", data).startswith("Warning: low disk\nmock reply")


class TestCodex:
    """Codex's events read as messages, commands and the result."""

    def test_tool_call(self) -> None:
        expected = (
            "Let me run it.\n"
            "→ shell: /bin/bash -lc 'echo tool-output-42'\n"
            "The command printed tool-output-42.\n"
            "✓ result: The command printed tool-output-42.\n"
        )
        assert expected == render_turn("codex", recorded("codex_tool_call.jsonl"))

    def test_turn_failed_once(self) -> None:
        expected = "✗ error: The model is not available.\n"
        assert expected == render_turn("codex", recorded("codex_turn_failed.jsonl"))

    def test_failed_command_and_file_change(self) -> None:
        data = b"".join(
            json.dumps(event).encode() + b"\n"
            for event in [
                {
                    "type": "item.completed",
                    "item": {"type": "command_execution", "command": "false", "exit_code": 1},
                },
                {
                    "type": "item.completed",
                    "item": {"type": "file_change", "changes": [{"path": "a"}, {"path": "b"}]},
                },
                {
                    "type": "item.completed",
                    "item": {
                        "type": "mcp_tool_call",
                        "server": "podd",
                        "tool": "spawn",
                        "arguments": {"name": "c1"},
                    },
                },
            ]
        )
        expected = '→ shell: false (exit 1)\n→ edit: a, b\n→ podd.spawn: {"name":"c1"}\n'
        assert expected == render_turn("codex", data)


class TestShell:
    """A shell turn's output is shown as it is."""

    def test_raw(self) -> None:
        assert 'a\n{"type": "result"}\n' == render_turn("shell", b'a\n{"type": "result"}\n')
