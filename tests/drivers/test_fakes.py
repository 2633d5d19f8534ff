"""The fake CLIs follow the real ones: flags, sessions, output shapes, errors, exit codes.

``scripts/test-agents --fakes`` runs the same scenarios as against the real CLIs; these
tests pin the details podd relies on, in CI.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import uuid
from typing import Any

import pytest

from tests.drivers.support import run_fake
from tests.fakes import write_scenario

STREAM = ["-p", "--output-format", "stream-json", "--verbose"]


@pytest.fixture
def world(tmp_path: pathlib.Path) -> dict[str, Any]:
    """A cwd, a Claude config dir and a Codex home of the test's own."""
    paths = {name: tmp_path / name for name in ("work", "claude", "codex")}
    for path in paths.values():
        path.mkdir()
    return {
        "cwd": paths["work"],
        "root": tmp_path,
        "env": {"CLAUDE_CONFIG_DIR": str(paths["claude"]), "CODEX_HOME": str(paths["codex"])},
        "claude": paths["claude"],
        "codex": paths["codex"],
    }


def claude(world: dict[str, Any], args: list[str], stdin: bytes = b"hi\n", **env: str) -> Any:
    return run_fake(
        ["claude", *args], stdin, world["cwd"], env.pop("scenario", None), **{**world["env"], **env}
    )


def codex(world: dict[str, Any], args: list[str], stdin: bytes = b"hi\n", **env: str) -> Any:
    return run_fake(
        ["codex", *args], stdin, world["cwd"], env.pop("scenario", None), **{**world["env"], **env}
    )


def lines(done: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def final(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    return [line for line in lines(done) if line["type"] == "result"][-1]


class TestClaudeSessions:
    """Sessions live in the config dir; reusing or missing one fails as the real CLI does."""

    def test_session_store_and_resume(self, world: dict[str, Any]) -> None:
        session = str(uuid.uuid4())
        first = claude(world, [*STREAM, "--session-id", session], b"one\n")
        assert 0 == first.returncode
        assert ["system", "assistant", "result"] == [line["type"] for line in lines(first)]
        assert "init" == lines(first)[0]["subtype"]
        encoded = re.sub(r"[^A-Za-z0-9]", "-", str(world["cwd"]))
        assert (world["claude"] / "projects" / encoded / f"{session}.jsonl").is_file()
        second = claude(world, [*STREAM, "--resume", session], b"two\n")
        assert "fake reply to user message 2: two" == final(second)["result"]
        assert session == final(second)["session_id"]

    def test_session_id_in_use(self, world: dict[str, Any]) -> None:
        session = str(uuid.uuid4())
        claude(world, ["-p", "--session-id", session])
        again = claude(world, ["-p", "--session-id", session])
        assert (1, b"") == (again.returncode, again.stdout)
        assert f"Error: Session ID {session} is already in use.\n" == again.stderr.decode()

    def test_unknown_resume(self, world: dict[str, Any]) -> None:
        missing = str(uuid.uuid4())
        quiet = claude(world, ["-p", "--output-format", "json", "--resume", missing])
        assert (1, b"") == (quiet.returncode, quiet.stdout)
        assert f"No conversation found with session ID: {missing}\n" == quiet.stderr.decode()
        streamed = claude(world, [*STREAM, "--resume", missing])
        assert 1 == streamed.returncode
        assert ["result"] == [line["type"] for line in lines(streamed)]
        assert (True, "error_during_execution") == (
            final(streamed)["is_error"],
            final(streamed)["subtype"],
        )

    def test_continue_takes_the_newest_session(self, world: dict[str, Any]) -> None:
        first = claude(world, ["-p", "--output-format", "json"], b"one\n")
        later = claude(world, ["-p", "--output-format", "json", "-c"], b"two\n")
        assert final(first)["session_id"] == final(later)["session_id"]
        assert "fake reply to user message 2: two" == final(later)["result"]

    def test_continue_without_a_session_starts_one(self, world: dict[str, Any]) -> None:
        done = claude(world, ["-p", "--output-format", "json", "--continue"])
        assert "fake reply to user message 1: hi" == final(done)["result"]


class TestClaudeRefusals:
    """Bad usage exits 1 with the real CLI's message on stderr."""

    @pytest.mark.parametrize(
        ("args", "stdin", "message"),
        [
            (["-p"], b"", "Error: Input must be provided either through stdin or as a prompt "
             "argument when using --print"),
            (["-p"], b"  \n", "Error: No messages returned from query"),
            (["-p", "--output-format", "stream-json"], b"hi\n",
             "Error: When using --print, --output-format=stream-json requires --verbose"),
            (["-p", "--output-format", "yaml"], b"hi\n",
             "error: option '--output-format <format>' argument 'yaml' is invalid. Allowed "
             "choices are text, json, stream-json."),
            (["-p", "--session-id", "nope"], b"hi\n",
             "Error: Invalid session ID. Must be a valid UUID."),
            (["-p", "--session-id", "11111111-2222-4333-8444-555555555555", "-c"], b"hi\n",
             "Error: --session-id can only be used with --continue or --resume if "
             "--fork-session is also specified."),
            (["-p", "--resume"], b"hi\n", "Error: --resume requires a valid session ID or "
             "session title when used with --print. Usage: claude -p --resume "
             "<session-id|title>"),
            (["-p", "--bogus"], b"hi\n", "error: unknown option '--bogus'"),
            (["-p", "--mcp-config", "/nonexistent/m.json"], b"hi\n",
             "Error: Invalid MCP configuration:\nMCP config file not found: /nonexistent/m.json"),
        ],
    )  # fmt: skip
    def test_refused(
        self, world: dict[str, Any], args: list[str], stdin: bytes, message: str
    ) -> None:
        done = claude(world, args, stdin)
        assert (1, b"", message + "\n") == (done.returncode, done.stdout, done.stderr.decode())

    @pytest.mark.skipif(os.geteuid() != 0, reason="the refusal concerns root")
    def test_bypass_as_root(self, world: dict[str, Any]) -> None:
        for flags in (
            ["--dangerously-skip-permissions"],
            ["--permission-mode", "bypassPermissions"],
        ):
            done = claude(world, ["-p", *flags])
            assert 1 == done.returncode
            assert b"cannot be used with root/sudo privileges" in done.stderr
            assert 0 == claude(world, ["-p", *flags], IS_SANDBOX="1").returncode


class TestClaudeOutput:
    """Text, JSON and stream-json output have the real shapes."""

    def test_text(self, world: dict[str, Any]) -> None:
        done = claude(world, ["-p"], b"hello\n")
        assert (0, b"fake reply to user message 1: hello\n") == (done.returncode, done.stdout)

    def test_piped_input_without_p_is_print_mode(self, world: dict[str, Any]) -> None:
        assert b"fake reply to user message 1: hi\n" == claude(world, []).stdout

    def test_json_and_its_verbose_array(self, world: dict[str, Any]) -> None:
        one = claude(world, ["-p", "--output-format", "json"])
        assert 1 == len(one.stdout.splitlines())
        assert {
            "type",
            "subtype",
            "is_error",
            "result",
            "session_id",
            "total_cost_usd",
            "usage",
            "num_turns",
            "duration_ms",
            "permission_denials",
        } <= set(final(one))
        array = claude(world, ["-p", "--output-format", "json", "--verbose"])
        assert ["system", "assistant", "result"] == [m["type"] for m in json.loads(array.stdout)]

    def test_prompt_argument_and_stdin(self, world: dict[str, Any]) -> None:
        done = claude(world, ["-p", "--output-format", "json", "from arg"], b"from stdin\n")
        assert "fake reply to user message 1: from arg\nfrom stdin" == final(done)["result"]

    def test_mcp_servers_are_listed(self, world: dict[str, Any]) -> None:
        config = world["root"] / "mcp.json"
        config.write_text(json.dumps({"mcpServers": {"podd": {"command": "podd"}}}))
        done = claude(world, [*STREAM, "--mcp-config", str(config)])
        assert [{"name": "podd", "status": "failed"}] == lines(done)[0]["mcp_servers"]


class TestClaudeScenario:
    """The scenario drives the model: text, tool calls, errors, cost, usage."""

    def test_tool_call_runs_when_allowed(self, world: dict[str, Any]) -> None:
        scenario = write_scenario(
            world["root"] / "s.json",
            [
                {
                    "steps": [
                        {"text": "Writing.", "bash": "echo x > f; echo wrote"},
                        {"text": "Wrote f."},
                    ],
                    "cost_usd": 0.5,
                }
            ],
        )
        done = claude(world, [*STREAM, "--allowedTools", "Bash"], scenario=scenario)
        kinds = [
            (line["type"], line.get("message", {}).get("content", [{}])[0].get("type"))
            for line in lines(done)[1:-1]
        ]
        assert [
            ("assistant", "text"),
            ("assistant", "tool_use"),
            ("user", "tool_result"),
            ("assistant", "text"),
        ] == kinds
        tool_result = lines(done)[3]["message"]["content"][0]
        assert ("wrote", False) == (tool_result["content"], tool_result["is_error"])
        assert (0.5, 2, "Wrote f.") == (
            final(done)["total_cost_usd"],
            final(done)["num_turns"],
            final(done)["result"],
        )
        assert (world["cwd"] / "f").is_file()

    def test_writes_are_denied_without_permission(self, world: dict[str, Any]) -> None:
        scenario = write_scenario(
            world["root"] / "s.json",
            [{"steps": [{"bash": "echo hi"}, {"bash": "touch f"}, {"text": "Tried."}]}],
        )
        done = claude(world, STREAM, scenario=scenario)
        assert 0 == done.returncode
        denials = final(done)["permission_denials"]
        assert [{"command": "touch f", "description": "Run a command"}] == [
            d["tool_input"] for d in denials
        ]
        assert not (world["cwd"] / "f").exists()

    def test_api_error(self, world: dict[str, Any]) -> None:
        scenario = write_scenario(
            world["root"] / "s.json", [{"error": {"status": 500, "message": "Internal error"}}]
        )
        done = claude(world, STREAM, scenario=scenario)
        assert 1 == done.returncode
        assert (True, 500, "API Error: 500 Internal error") == (
            final(done)["is_error"],
            final(done)["api_error_status"],
            final(done)["result"],
        )

    def test_an_unwritable_config_dir_fails_quietly(self, world: dict[str, Any]) -> None:
        blocker = world["root"] / "a-file"
        blocker.write_text("")
        config = str(blocker / "claude")
        scenario = write_scenario(
            world["root"] / "s.json", [{"steps": [{"bash": "echo hi"}, {"text": "Done."}]}]
        )
        session = str(uuid.uuid4())
        args = [*STREAM, "--allowedTools", "Bash", "--session-id", session]
        done = claude(world, args, scenario=scenario, CLAUDE_CONFIG_DIR=config)
        assert (0, False) == (done.returncode, final(done)["is_error"])
        tool_result = lines(done)[2]["message"]["content"][0]
        assert tool_result["is_error"] is True
        assert f"mkdir '{config}/session-env'" in tool_result["content"]
        later = claude(world, [*STREAM, "--resume", session], CLAUDE_CONFIG_DIR=config)
        assert 1 == later.returncode


class TestCodex:
    """``codex exec`` and ``exec resume`` take what the real ones take, and fail alike."""

    def test_exec_then_resume(self, world: dict[str, Any]) -> None:
        first = codex(world, ["exec", "--skip-git-repo-check", "--json", "-"], b"one\n")
        assert ["thread.started", "turn.started", "item.completed", "turn.completed"] == [
            line["type"] for line in lines(first)
        ]
        thread = lines(first)[0]["thread_id"]
        assert 1 == len(list(world["codex"].glob(f"sessions/*/*/*/rollout-*-{thread}.jsonl")))
        args = ["exec", "--skip-git-repo-check", "-s", "read-only", "resume", thread, "--json", "-"]
        second = codex(world, args, b"two\n")
        assert thread == lines(second)[0]["thread_id"]
        assert "fake reply to user message 2: two" == lines(second)[2]["item"]["text"]
        last = codex(world, ["exec", "--skip-git-repo-check", "resume", "--last", "--json", "-"])
        assert "fake reply to user message 3: hi" == lines(last)[2]["item"]["text"]

    def test_resume_refuses_exec_only_options_after_it(self, world: dict[str, Any]) -> None:
        done = codex(world, ["exec", "resume", "-s", "read-only", "x", "--json", "-"])
        assert 2 == done.returncode
        assert done.stderr.startswith(b"error: unexpected argument '-s' found")

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            (["exec", "--json", "-"], 1,
             "Not inside a trusted directory and --skip-git-repo-check was not specified."),
            (["exec", "--skip-git-repo-check", "resume", "nope", "--json", "-"], 1,
             "Error: thread/resume: thread/resume failed: no rollout found for thread id nope "
             "(code -32600)"),
        ],
    )  # fmt: skip
    def test_refused(self, world: dict[str, Any], args: list[str], code: int, message: str) -> None:
        done = codex(world, args)
        assert (code, b"", message + "\n") == (done.returncode, done.stdout, done.stderr.decode())

    def test_json_twice(self, world: dict[str, Any]) -> None:
        done = codex(world, ["exec", "--skip-git-repo-check", "--json", "--json", "-"])
        assert 2 == done.returncode
        assert b"the argument '--json' cannot be used multiple times" in done.stderr

    def test_codex_home_must_exist(self, world: dict[str, Any]) -> None:
        missing = str(world["root"] / "absent")
        done = codex(world, ["exec", "--skip-git-repo-check", "--json", "-"], CODEX_HOME=missing)
        expected = f'Error finding codex home: CODEX_HOME points to "{missing}", but that path '
        assert 1 == done.returncode and done.stderr.decode().startswith(expected)

    def test_a_git_repository_is_trusted(self, world: dict[str, Any]) -> None:
        (world["cwd"] / ".git").mkdir()
        assert 0 == codex(world, ["exec", "--json", "-"]).returncode

    def test_prompt_from_stdin(self, world: dict[str, Any]) -> None:
        implicit = codex(world, ["exec", "--skip-git-repo-check", "--json"])
        assert b"Reading prompt from stdin...\n" == implicit.stderr
        explicit = codex(world, ["exec", "--skip-git-repo-check", "--json", "-"])
        assert b"" == explicit.stderr
        empty = codex(world, ["exec", "--skip-git-repo-check", "--json", "-"], b" \n")
        assert (1, b"No prompt provided via stdin.\n") == (empty.returncode, empty.stderr)

    def test_human_output(self, world: dict[str, Any]) -> None:
        done = codex(world, ["exec", "--skip-git-repo-check", "-"], b"hello\n")
        assert b"fake reply to user message 1: hello\n" == done.stdout
        assert b"session id: " in done.stderr

    def test_scripted_commands_and_errors(self, world: dict[str, Any]) -> None:
        scenario = write_scenario(
            world["root"] / "s.json",
            [
                {"steps": [{"bash": "exit 3"}, {"text": "It failed."}]},
                {"error": {"status": 503, "message": "upstream"}},
            ],
        )
        args = ["exec", "--skip-git-repo-check", "--json", "-"]
        first = codex(world, args, scenario=scenario)
        run = next(line["item"] for line in lines(first) if line["type"] == "item.completed")
        assert ("command_execution", 3, "failed") == (run["type"], run["exit_code"], run["status"])
        thread = lines(first)[0]["thread_id"]
        args = ["exec", "--skip-git-repo-check", "resume", thread, "--json", "-"]
        second = codex(world, args, scenario=scenario)
        assert 1 == second.returncode
        assert ["thread.started", "turn.started", "error", "turn.failed"] == [
            line["type"] for line in lines(second)
        ]
