"""The codex driver: ``exec`` then ``exec resume``, and what it reads from the events."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podd.drivers import RESULT_LIMIT, CodexDriver, TurnInput, TurnResult, UnsupportedCommand
from tests.drivers.support import parse, recorded, run_invocation, split_at
from tests.fakes import write_scenario

DRIVER = CodexDriver()
BYPASS = "codex --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox"


def turn(command: str = "codex", **fields: Any) -> TurnInput:
    values: dict[str, Any] = {
        "command": command,
        "text": "task",
        "new_session_id": "unused-by-codex",
        "state_dir": "/state/codex",
    }
    values.update(fields)
    return TurnInput(**values)


def command_of(command: str, session: str | None = None) -> str:
    return DRIVER.invocation(turn(command, session=session)).argv[2]


def thread_of(name: str) -> str:
    first = json.loads(recorded(name).splitlines()[0])
    return str(first["thread_id"])


def usage(inputs: int, outputs: int, read: int = 0, created: int = 0) -> dict[str, int | None]:
    return {
        "input_tokens": inputs,
        "output_tokens": outputs,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    }


class TestInvocation:
    """exec and its options first; then the same options in front of ``resume <thread>``."""

    def test_first_turn(self) -> None:
        invocation = DRIVER.invocation(turn())
        assert ("/bin/sh", "-c", "codex exec --json -") == invocation.argv
        assert {"CODEX_HOME": "/state/codex"} == invocation.env
        assert (b"task\n", None) == (invocation.stdin, invocation.session)

    def test_its_daemon_dir_is_made_for_it(self) -> None:
        # In /tmp whatever TMPDIR says: Codex puts it there.
        dirs = DRIVER.invocation(turn()).runtime_dirs
        assert (f"/tmp/codex-daemon-{os.getuid()}",) == dirs

    def test_later_turn_resumes_the_thread(self) -> None:
        invocation = DRIVER.invocation(turn(session="019a-thread"))
        assert "codex exec resume 019a-thread --json -" == invocation.argv[2]
        assert "019a-thread" == invocation.session

    @pytest.mark.parametrize(
        ("command", "first", "later"),
        [
            (BYPASS,
             "codex exec --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox "
             "--json -",
             "codex exec --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox "
             "resume T --json -"),
            ("OPENAI_API_KEY=sk-x codex -s read-only -m gpt-5",
             "OPENAI_API_KEY=sk-x codex exec -s read-only -m gpt-5 --json -",
             "OPENAI_API_KEY=sk-x codex exec -s read-only -m gpt-5 resume T --json -"),
            ("codex -c 'model_providers.m={base_url=\"http://127.0.0.1:$PORT/v1\"}'",
             "codex exec -c 'model_providers.m={base_url=\"http://127.0.0.1:$PORT/v1\"}' "
             "--json -",
             "codex exec -c 'model_providers.m={base_url=\"http://127.0.0.1:$PORT/v1\"}' "
             "resume T --json -"),
            ("codex -c x=1 exec --skip-git-repo-check",
             "codex -c x=1 exec --skip-git-repo-check --json -",
             "codex -c x=1 exec --skip-git-repo-check resume T --json -"),
            ("/opt/bin/codex e --json -",
             "/opt/bin/codex exec --json -",
             "/opt/bin/codex exec resume T --json -"),
            ("codex -m resume", "codex exec -m resume --json -",
             "codex exec -m resume resume T --json -"),
        ],
    )  # fmt: skip
    def test_commands(self, command: str, first: str, later: str) -> None:
        assert (first, later) == (command_of(command), command_of(command, "T"))

    def test_notifications_are_framed(self) -> None:
        stdin = DRIVER.invocation(turn(notifications=("a", "b"), text="go")).stdin
        assert b"[podd: 2 notifications]\na\nb\n[podd: end of notifications]\ngo\n" == stdin


class TestCheck:
    """CMD must be ``[VAR=value ...] codex [options]``; anything else is refused, saying why."""

    @pytest.mark.parametrize(
        "command", ["codex", BYPASS, "A=1 codex -m o3", "codex exec", "~/bin/codex -p prof"]
    )
    def test_accepted(self, command: str) -> None:
        assert None is DRIVER.check(command)

    @pytest.mark.parametrize(
        ("command", "reason"),
        [
            ("cd /w && codex", "simple command"),
            ("codex | tee log", "simple command"),
            ("codex 2>log", "simple command"),
            ("codex $(flags)", "simple command"),
            ("claude -p", "CMD's command is 'claude'"),
            ("codex 'fix the bug'", "not 'fix the bug'"),
            ("codex exec resume --last", "not 'resume'"),
            ("codex review", "not 'review'"),
        ],
    )
    def test_refused(self, command: str, reason: str) -> None:
        refusal = DRIVER.check(command)
        assert refusal is not None and reason in refusal

    def test_invocation_of_a_refused_command_raises(self) -> None:
        with pytest.raises(UnsupportedCommand, match="simple command"):
            DRIVER.invocation(turn("cd /w && codex"))


class TestRecordedOutput:
    """The real CLI's recorded events give the record's fields."""

    def test_first_turn(self) -> None:
        expected = TurnResult(
            result="mock reply to user message 1: What is two plus two?",
            session=thread_of("codex_turn1.jsonl"),
            usage=usage(12, 7),
        )
        assert expected == parse(DRIVER, recorded("codex_turn1.jsonl"))

    def test_resumed_turn_keeps_the_thread(self) -> None:
        got = parse(DRIVER, recorded("codex_resume.jsonl"))
        assert "mock reply to user message 2: And x3?" == got.result
        assert thread_of("codex_turn1.jsonl") == got.session

    def test_tool_call(self) -> None:
        expected = TurnResult(
            result="The command printed tool-output-42.",
            session=thread_of("codex_tool_call.jsonl"),
            usage=usage(200, 40, read=80),
            tool_calls=1,
        )
        assert expected == parse(DRIVER, recorded("codex_tool_call.jsonl"))

    def test_turn_failed(self) -> None:
        got = parse(DRIVER, recorded("codex_turn_failed.jsonl"), exit_code=1)
        assert (
            TurnResult(
                session=thread_of("codex_turn_failed.jsonl"), error="The model is not available."
            )
            == got
        )

    @pytest.mark.parametrize(
        "name",
        ["codex_turn1.jsonl", "codex_resume.jsonl", "codex_tool_call.jsonl",
         "codex_turn_failed.jsonl"],
    )  # fmt: skip
    @settings(max_examples=30)
    @given(cuts=st.lists(st.integers(min_value=0), max_size=12))
    def test_chunking_does_not_matter(self, name: str, cuts: list[int]) -> None:
        data = recorded(name)
        assert parse(DRIVER, data) == parse(DRIVER, split_at(data, cuts))


def events(*items: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


class TestParser:
    """The last agent message is the result; failures and missing ends are errors."""

    def test_last_agent_message_wins(self) -> None:
        data = events(
            {"type": "thread.started", "thread_id": "t"},
            {"type": "item.completed", "item": {"type": "agent_message", "text": "first"}},
            {"type": "item.completed", "item": {"type": "reasoning", "text": "hmm"}},
            {"type": "item.started", "item": {"type": "command_execution", "command": "ls"}},
            {"type": "item.completed", "item": {"type": "command_execution", "command": "ls"}},
            {"type": "item.completed", "item": {"type": "file_change", "changes": []}},
            {"type": "item.completed", "item": {"type": "mcp_tool_call", "tool": "x"}},
            {"type": "item.completed", "item": {"type": "agent_message", "text": "last"}},
            {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 2}},
        )
        expected = TurnResult(
            result="last",
            session="t",
            usage={
                **usage(5, 2),
                "cache_read_input_tokens": None,
                "cache_creation_input_tokens": None,
            },
            tool_calls=3,
        )
        assert expected == parse(DRIVER, data)

    def test_an_error_event_then_completion_is_a_retry_notice(self) -> None:
        data = events(
            {"type": "error", "message": "Reconnecting... 1/5"},
            {"type": "turn.completed", "usage": {}},
        )
        assert None is parse(DRIVER, data).error

    def test_an_error_event_without_an_end(self) -> None:
        data = events(
            {"type": "thread.started", "thread_id": "t"}, {"type": "error", "message": "boom"}
        )
        assert "boom" == parse(DRIVER, data, exit_code=1).error

    def test_no_end_and_exit_0(self) -> None:
        data = events({"type": "thread.started", "thread_id": "t"})
        assert "codex printed no turn.completed" == parse(DRIVER, data).error

    def test_progress_and_noise_are_ignored(self) -> None:
        data = b"Reading prompt from stdin...\nnot json\n" + recorded("codex_turn1.jsonl")
        assert parse(DRIVER, recorded("codex_turn1.jsonl")) == parse(DRIVER, data)

    def test_long_message_is_capped(self) -> None:
        text = "m" * (RESULT_LIMIT + 10)
        data = events({"type": "item.completed", "item": {"type": "agent_message", "text": text}})
        result = parse(DRIVER, data).result
        assert result is not None
        assert RESULT_LIMIT == len(result.encode()) and result.endswith("…")

    def test_no_cost(self) -> None:
        assert None is parse(DRIVER, recorded("codex_tool_call.jsonl")).cost_usd


class TestAgainstTheFake:
    """Driver and fake CLI together: the thread started by turn 1 is resumed by turn 2."""

    def test_two_turns_resume_the_thread(self, tmp_path: pathlib.Path) -> None:
        state = tmp_path / "state"
        state.mkdir()
        done = run_invocation(
            DRIVER.invocation(turn(BYPASS, state_dir=str(state), text="one")), tmp_path
        )
        assert 0 == done.returncode, done.stderr
        got = parse(DRIVER, done.stdout)
        assert "fake reply to user message 1: one" == got.result
        assert got.session is not None

        later = turn(
            BYPASS + " -s read-only", state_dir=str(state), text="two", session=got.session
        )
        done = run_invocation(DRIVER.invocation(later), tmp_path)
        assert 0 == done.returncode, done.stderr
        got2 = parse(DRIVER, done.stdout)
        assert (got.session, "fake reply to user message 2: two") == (got2.session, got2.result)

    def test_outside_a_git_repository_it_needs_the_flag(self, tmp_path: pathlib.Path) -> None:
        done = run_invocation(DRIVER.invocation(turn(state_dir=str(tmp_path))), tmp_path)
        assert 1 == done.returncode
        assert b"Not inside a trusted directory" in done.stderr
        assert "codex printed no turn.completed" != parse(DRIVER, done.stdout, 1).error

    def test_a_scripted_tool_call_and_failure(self, tmp_path: pathlib.Path) -> None:
        scenario = write_scenario(
            tmp_path / "scenario.json",
            [
                {"steps": [{"text": "Listing.", "bash": "echo listed"}, {"text": "Listed."}]},
                {"error": {"status": 400, "message": "Bad request: no."}},
            ],
        )
        first = run_invocation(
            DRIVER.invocation(turn(BYPASS, state_dir=str(tmp_path))), tmp_path, scenario
        )
        got = parse(DRIVER, first.stdout, first.returncode)
        assert ("Listed.", 1, None) == (got.result, got.tool_calls, got.error)
        later = turn(BYPASS, state_dir=str(tmp_path), session=got.session)
        second = run_invocation(DRIVER.invocation(later), tmp_path, scenario)
        failed = parse(DRIVER, second.stdout, second.returncode)
        assert (1, "Bad request: no.") == (second.returncode, failed.error)
