"""The claude driver: what it adds to CMD, and what it reads from Claude Code's output."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podd.drivers import RESULT_LIMIT, ClaudeDriver, TurnInput, TurnResult
from tests.drivers.support import parse, recorded, run_invocation, split_at
from tests.fakes import write_scenario

DRIVER = ClaudeDriver()
NEW = "0b6f3cfb-3f7e-4a54-9a4c-1f7c8e0d6a11"
STREAM = "-p --output-format stream-json --verbose"


def turn(command: str = "claude", **fields: Any) -> TurnInput:
    values: dict[str, Any] = {
        "command": command,
        "text": "task",
        "new_session_id": NEW,
        "state_dir": "/state/claude",
    }
    values.update(fields)
    return TurnInput(**values)


def command_of(command: str, **fields: Any) -> str:
    return DRIVER.invocation(turn(command, **fields)).argv[2]


def final_of(name: str) -> dict[str, Any]:
    """The result object of a recorded run, read directly."""
    lines = [json.loads(line) for line in recorded(name).splitlines()]
    found = [m for line in lines for m in (line if isinstance(line, list) else [line])]
    return next(m for m in found if m.get("type") == "result")


def usage(inputs: int, outputs: int, read: int = 0, created: int = 0) -> dict[str, int | None]:
    return {
        "input_tokens": inputs,
        "output_tokens": outputs,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    }


class TestInvocation:
    """Flags are added only when CMD lacks them; the session starts, then is resumed."""

    def test_first_turn(self) -> None:
        invocation = DRIVER.invocation(turn())
        assert ("/bin/sh", "-c", f"claude {STREAM} --session-id {NEW}") == invocation.argv
        assert {"CLAUDE_CONFIG_DIR": "/state/claude"} == invocation.env
        assert NEW == invocation.session
        assert b"task\n" == invocation.stdin

    def test_later_turn_resumes(self) -> None:
        invocation = DRIVER.invocation(turn(session="s-1"))
        assert f"claude {STREAM} --resume s-1" == invocation.argv[2]
        assert "s-1" == invocation.session

    @pytest.mark.parametrize(
        ("command", "expected"),
        [
            ("claude -p", f"claude -p --output-format stream-json --verbose --session-id {NEW}"),
            ("claude --print --verbose", f"claude --print --verbose --output-format stream-json "
             f"--session-id {NEW}"),
            ("claude --output-format stream-json", f"claude --output-format stream-json -p "
             f"--verbose --session-id {NEW}"),
            ("claude --output-format=stream-json -p", f"claude --output-format=stream-json -p "
             f"--verbose --session-id {NEW}"),
            ("claude --output-format json", f"claude --output-format json -p --session-id {NEW}"),
            (f"claude {STREAM}", f"claude {STREAM} --session-id {NEW}"),
        ],
    )  # fmt: skip
    def test_only_missing_flags_are_added(self, command: str, expected: str) -> None:
        assert expected == command_of(command)

    def test_assignments_and_quoting_are_kept(self) -> None:
        command = "IS_SANDBOX=1 PROMPT='be brief' claude --dangerously-skip-permissions"
        assert f"{command} {STREAM} --session-id {NEW}" == command_of(command)

    def test_allowed_tools_stay_in_front_of_the_added_flags(self) -> None:
        added = command_of("claude --allowedTools Bash Read")
        assert ["claude", "--allowedTools", "Bash", "Read", "-p"] == shlex.split(added)[:5]

    @pytest.mark.parametrize(
        ("command", "session"),
        [
            ("claude --session-id 11111111-2222-4333-8444-555555555555",
             "11111111-2222-4333-8444-555555555555"),
            ("claude --resume abc", "abc"),
            ("claude --resume=abc", "abc"),
            ("claude -r abc", "abc"),
            ("claude --continue", None),
            ("claude -c", None),
            ("claude -pc", None),
            ("claude --no-session-persistence", None),
        ],
    )  # fmt: skip
    def test_a_session_named_in_cmd_is_the_users(self, command: str, session: str | None) -> None:
        for previous in (None, "s-1"):
            invocation = DRIVER.invocation(turn(command, session=previous))
            assert "--session-id " + NEW not in invocation.argv[2]
            assert "--resume s-1" not in invocation.argv[2]
            assert session == invocation.session

    def test_mcp_config(self) -> None:
        expected = f"claude {STREAM} --session-id {NEW} --mcp-config '/pods/a b/mcp.json'"
        assert expected == command_of("claude", mcp_config="/pods/a b/mcp.json")

    def test_a_compound_command_gets_the_flags_at_its_end(self) -> None:
        expected = f"cd /work && claude {STREAM} --session-id {NEW} --mcp-config /m.json"
        assert expected == command_of("cd /work && claude", mcp_config="/m.json")

    def test_a_compound_command_is_searched_for_flags(self) -> None:
        command = f"cd /w && claude {STREAM} --resume x"
        assert command == command_of(command)

    def test_expansions_are_kept(self) -> None:
        command = 'claude --mcp-config "$HOME/mcp.json"'
        assert f"{command} {STREAM} --session-id {NEW}" == command_of(command)

    def test_notifications_are_framed(self) -> None:
        stdin = DRIVER.invocation(turn(notifications=("pod 'c' finished turn 1: done",))).stdin
        expected = (
            b"[podd: 1 notifications]\npod 'c' finished turn 1: done\n"
            b"[podd: end of notifications]\ntask\n"
        )
        assert expected == stdin


class TestCheck:
    """Any CMD runs, except one that asks for text output or JSON input."""

    @pytest.mark.parametrize(
        "command", ["claude", "claude -p --output-format json", "cd /x && claude", "my-wrapper"]
    )
    def test_accepted(self, command: str) -> None:
        assert None is DRIVER.check(command)

    def test_text_output_is_refused(self) -> None:
        reason = DRIVER.check("claude -p --output-format text")
        assert reason is not None and "--output-format text" in reason

    def test_stream_json_input_is_refused(self) -> None:
        reason = DRIVER.check("claude --input-format stream-json")
        assert reason is not None and "--input-format stream-json" in reason


class TestRecordedOutput:
    """The real CLI's recorded lines give the record's fields."""

    def test_first_turn(self) -> None:
        final = final_of("claude_stream_turn1.jsonl")
        expected = TurnResult(
            result="mock reply to user message 1: What is two plus two?",
            session=final["session_id"],
            cost_usd=final["total_cost_usd"],
            usage=usage(12, 7),
            num_turns=1,
            permission_denials=[],
        )
        assert expected == parse(DRIVER, recorded("claude_stream_turn1.jsonl"))

    def test_resumed_turn(self) -> None:
        got = parse(DRIVER, recorded("claude_stream_resume.jsonl"))
        assert "mock reply to user message 2: And times three?" == got.result
        assert final_of("claude_stream_turn1.jsonl")["session_id"] == got.session

    def test_tool_call(self) -> None:
        final = final_of("claude_tool_call.jsonl")
        expected = TurnResult(
            result="The command printed tool-output-42.",
            session=final["session_id"],
            cost_usd=final["total_cost_usd"],
            usage=usage(200, 40, read=80, created=16),
            num_turns=2,
            permission_denials=[],
            tool_calls=1,
        )
        assert expected == parse(DRIVER, recorded("claude_tool_call.jsonl"))

    def test_denied_tool_call(self) -> None:
        got = parse(DRIVER, recorded("claude_denied.jsonl"))
        assert got.permission_denials is not None
        assert ["Bash"] == [d["tool_name"] for d in got.permission_denials]
        assert {"command": "touch made-by-the-agent", "description": "Run a command"} == (
            got.permission_denials[0]["tool_input"]
        )
        assert (None, 2) == (got.error, got.tool_calls)

    def test_is_error(self) -> None:
        got = parse(DRIVER, recorded("claude_is_error.jsonl"), exit_code=1)
        assert got.error is not None and got.error.startswith("API Error: 500")
        assert got.error == got.result
        assert (0.0, usage(0, 0)) == (got.cost_usd, got.usage)

    def test_is_error_counts_even_when_the_cli_exits_0(self) -> None:
        got = parse(DRIVER, recorded("claude_is_error.jsonl"), exit_code=0)
        assert got.error is not None and got.error.startswith("API Error: 500")

    def test_unknown_session(self) -> None:
        final = final_of("claude_unknown_resume.jsonl")
        got = parse(DRIVER, recorded("claude_unknown_resume.jsonl"), exit_code=1)
        assert f"No conversation found with session ID: {final['session_id']}" == got.error
        assert (None, final["session_id"]) == (got.result, got.session)

    def test_json_output(self) -> None:
        got = parse(DRIVER, recorded("claude_json.json"))
        assert "mock reply to user message 1: Say hi." == got.result
        assert final_of("claude_json.json")["session_id"] == got.session

    def test_unwritable_config_dir_looks_like_success(self) -> None:
        got = parse(DRIVER, recorded("claude_read_only_config.jsonl"))
        assert ("Done.", None, 1) == (got.result, got.error, got.tool_calls)

    @pytest.mark.parametrize(
        "name",
        [
            "claude_stream_turn1.jsonl",
            "claude_tool_call.jsonl",
            "claude_denied.jsonl",
            "claude_is_error.jsonl",
            "claude_unknown_resume.jsonl",
        ],
    )
    @settings(max_examples=30)
    @given(cuts=st.lists(st.integers(min_value=0), max_size=12))
    def test_chunking_does_not_matter(self, name: str, cuts: list[int]) -> None:
        data = recorded(name)
        assert parse(DRIVER, data) == parse(DRIVER, split_at(data, cuts))

    def test_byte_by_byte(self) -> None:
        data = recorded("claude_tool_call.jsonl")
        assert parse(DRIVER, data) == parse(DRIVER, [data[i : i + 1] for i in range(len(data))])


class TestParser:
    """Noise is ignored, results are capped, and a missing result is an error."""

    def test_noise_lines_are_ignored(self) -> None:
        data = b"Warning: something\n\n{not json\n[1, 2]\n" + recorded("claude_stream_turn1.jsonl")
        assert parse(DRIVER, recorded("claude_stream_turn1.jsonl")) == parse(DRIVER, data)

    def test_verbose_json_array(self) -> None:
        messages = [json.loads(line) for line in recorded("claude_tool_call.jsonl").splitlines()]
        array = json.dumps(messages).encode() + b"\n"
        assert parse(DRIVER, recorded("claude_tool_call.jsonl")) == parse(DRIVER, array)

    def test_last_line_without_newline(self) -> None:
        data = recorded("claude_stream_turn1.jsonl").rstrip(b"\n")
        assert "mock reply to user message 1: What is two plus two?" == parse(DRIVER, data).result

    def test_no_result_and_exit_0(self) -> None:
        init = recorded("claude_stream_turn1.jsonl").splitlines()[0] + b"\n"
        got = parse(DRIVER, init, exit_code=0)
        assert "claude printed no result" == got.error
        assert final_of("claude_stream_turn1.jsonl")["session_id"] == got.session

    def test_no_result_after_a_failure_adds_nothing(self) -> None:
        assert TurnResult() == parse(DRIVER, b"", exit_code=1)
        assert TurnResult() == parse(DRIVER, b"", exit_code=None)

    def test_long_result_is_capped(self) -> None:
        final = {"type": "result", "is_error": False, "result": "r" * (2 * RESULT_LIMIT)}
        got = parse(DRIVER, json.dumps(final).encode() + b"\n")
        assert got.result is not None
        assert RESULT_LIMIT == len(got.result.encode()) and got.result.endswith("…")

    def test_odd_field_types_become_none(self) -> None:
        final = {
            "type": "result",
            "result": 5,
            "total_cost_usd": "free",
            "usage": {"input_tokens": "many", "output_tokens": True},
            "num_turns": 1.5,
            "permission_denials": "none",
        }
        expected = TurnResult(usage=dict.fromkeys(usage(0, 0)))
        assert expected == parse(DRIVER, json.dumps(final).encode())


class TestAgainstTheFake:
    """Driver and fake CLI together: two turns share one session, as in a pod."""

    def test_two_turns_resume_the_session(self, tmp_path: pathlib.Path) -> None:
        state = tmp_path / "state"
        state.mkdir()
        first = turn(state_dir=str(state), text="first question")
        done = run_invocation(DRIVER.invocation(first), tmp_path)
        assert 0 == done.returncode, done.stderr
        got = parse(DRIVER, done.stdout)
        assert (NEW, "fake reply to user message 1: first question") == (got.session, got.result)
        assert (0.001, None) == (got.cost_usd, got.error)

        later = turn(
            state_dir=str(state),
            text="second",
            session=got.session,
            notifications=("pod 'c' finished turn 1: ok",),
        )
        done = run_invocation(DRIVER.invocation(later), tmp_path)
        assert 0 == done.returncode, done.stderr
        got2 = parse(DRIVER, done.stdout)
        assert NEW == got2.session
        assert got2.result is not None
        assert got2.result.startswith("fake reply to user message 2: [podd: 1 notifications]\n")
        assert (state / "projects").is_dir()

    def test_a_scripted_tool_call(self, tmp_path: pathlib.Path) -> None:
        scenario = write_scenario(
            tmp_path / "scenario.json",
            [
                {
                    "steps": [{"text": "Running.", "bash": "echo hi > made"}, {"text": "Made."}],
                    "cost_usd": 0.25,
                    "usage": {"input_tokens": 40, "output_tokens": 9},
                }
            ],
        )
        command = "claude --allowedTools Bash"
        invocation = DRIVER.invocation(turn(command, state_dir=str(tmp_path), text="make"))
        done = run_invocation(invocation, tmp_path, scenario)
        expected = TurnResult(
            result="Made.",
            session=NEW,
            cost_usd=0.25,
            usage=usage(40, 9),
            num_turns=2,
            permission_denials=[],
            tool_calls=1,
        )
        assert expected == parse(DRIVER, done.stdout, done.returncode)
        assert "hi\n" == (tmp_path / "made").read_text()

    def test_a_reported_error(self, tmp_path: pathlib.Path) -> None:
        scenario = write_scenario(
            tmp_path / "scenario.json", [{"error": {"status": 529, "message": "Overloaded"}}]
        )
        invocation = DRIVER.invocation(turn(state_dir=str(tmp_path)))
        done = run_invocation(invocation, tmp_path, scenario)
        got = parse(DRIVER, done.stdout, done.returncode)
        assert (1, "API Error: 529 Overloaded") == (done.returncode, got.error)

    def test_a_lost_session(self, tmp_path: pathlib.Path) -> None:
        missing = str(uuid.uuid4())
        invocation = DRIVER.invocation(turn(state_dir=str(tmp_path), session=missing))
        done = run_invocation(invocation, tmp_path)
        got = parse(DRIVER, done.stdout, done.returncode)
        assert 1 == done.returncode
        assert f"No conversation found with session ID: {missing}" == got.error

    @pytest.mark.skipif(os.geteuid() != 0, reason="the refusal concerns root")
    def test_bypass_as_root_needs_is_sandbox(self, tmp_path: pathlib.Path) -> None:
        refused = DRIVER.invocation(
            turn("claude --dangerously-skip-permissions", state_dir=str(tmp_path))
        )
        done = run_invocation(refused, tmp_path)
        assert (1, b"") == (done.returncode, done.stdout)
        assert b"cannot be used with root/sudo privileges" in done.stderr
        allowed = DRIVER.invocation(
            turn("IS_SANDBOX=1 claude --dangerously-skip-permissions", state_dir=str(tmp_path))
        )
        done = run_invocation(allowed, tmp_path)
        assert 0 == done.returncode, done.stderr
