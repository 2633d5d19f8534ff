"""The mock LLM API answers in the streamed formats the CLIs read, as its scenario says."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

MOCK = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "mock_llm_api.py"
TIMEOUT = 10.0


class Mock:
    """The mock API as a child process, with its scenario file and request log."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.scenario = directory / "scenario.json"
        self.log = directory / "requests.jsonl"
        self.scenario.write_text("{}")
        self.process = subprocess.Popen(
            [sys.executable, str(MOCK), "--scenario", str(self.scenario), "--log", str(self.log)],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def script(self, *turns: dict[str, Any]) -> None:
        self.scenario.write_text(json.dumps({"turns": list(turns)}))

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def mock(tmp_path: pathlib.Path) -> Iterator[Mock]:
    server = Mock(tmp_path)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(TIMEOUT)
        assert server.process.stdout is not None
        server.process.stdout.close()


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in data.decode().split("\n\n"):
        if block.strip():
            head, body = block.split("\n", 1)
            found.append((head.removeprefix("event: "), json.loads(body.removeprefix("data: "))))
    return found


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


class TestAnthropic:
    """Messages are streamed as Anthropic's server-sent events."""

    def test_default_answer_counts_the_prompts(self, mock: Mock) -> None:
        body = {
            "stream": True,
            "messages": [
                {"role": "user", "content": "<system-reminder>context</system-reminder>"},
                user("first"),
                {"role": "assistant", "content": [{"type": "text", "text": "one"}]},
                user("second"),
            ],
        }
        status, headers, data = mock.post("/v1/messages?beta=true", body)
        assert (200, "text/event-stream") == (status, headers["Content-Type"])
        names = [name for name, _ in events(data)]
        assert ["message_start", "content_block_start", "content_block_delta",
                "content_block_delta", "content_block_stop", "message_delta",
                "message_stop"] == names  # fmt: skip
        text = "".join(
            e["delta"]["text"] for name, e in events(data) if name == "content_block_delta"
        )
        assert "mock reply to user message 2: second" == text
        assert [(2, 0)] == [(r["turn"], r["step"]) for r in mock.requests()]

    def test_a_bash_step_streams_a_tool_use(self, mock: Mock) -> None:
        mock.script({"steps": [{"bash": "ls -l"}, {"text": "done"}]})
        _, _, data = mock.post("/v1/messages", {"stream": True, "messages": [user("go")]})
        starts = [e["content_block"] for n, e in events(data) if n == "content_block_start"]
        assert [("tool_use", "Bash")] == [(b["type"], b["name"]) for b in starts]
        partial = "".join(
            e["delta"]["partial_json"] for n, e in events(data) if n == "content_block_delta"
        )
        assert "ls -l" == json.loads(partial)["command"]
        assert (
            "tool_use"
            == next(e for n, e in events(data) if n == "message_delta")["delta"]["stop_reason"]
        )

    def test_error_turn(self, mock: Mock) -> None:
        mock.script({"error": {"status": 500, "message": "Internal server error"}})
        status, headers, data = mock.post("/v1/messages", {"messages": [user("x")]})
        assert (500, "false") == (status, headers["x-should-retry"])
        assert {"type": "api_error", "message": "Internal server error"} == json.loads(data)[
            "error"
        ]


class TestResponses:
    """Responses are streamed as OpenAI's Responses events, as Codex reads them."""

    def test_text_answer(self, mock: Mock) -> None:
        body = {
            "stream": True,
            "input": [
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "<environment_context>x"}]},
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "hello"}]},
            ],
        }  # fmt: skip
        _, _, data = mock.post("/v1/responses", body)
        names = [name for name, _ in events(data)]
        assert "response.created" == names[0] and "response.completed" == names[-1]
        done = [e["item"] for n, e in events(data) if n == "response.output_item.done"]
        assert "mock reply to user message 1: hello" == done[0]["content"][0]["text"]

    def test_code_mode_gets_a_custom_exec_call(self, mock: Mock) -> None:
        mock.script({"steps": [{"bash": "echo hi"}]})
        tools = {"type": "additional_tools", "tools": [{"type": "namespace", "name": "functions",
                 "tools": [{"type": "custom", "name": "exec"}]}]}  # fmt: skip
        message = {"type": "message", "role": "user", "content": "go"}
        _, _, data = mock.post("/v1/responses", {"input": [tools, message]})
        done = [e["item"] for n, e in events(data) if n == "response.output_item.done"]
        assert ("custom_tool_call", "exec") == (done[0]["type"], done[0]["name"])
        assert 'tools.exec_command({cmd: "echo hi"})' in done[0]["input"]

    def test_error_turn(self, mock: Mock) -> None:
        mock.script({"error": {"status": 400, "message": "no"}})
        status, _, data = mock.post("/v1/responses", {"input": "x"})
        assert (400, "no") == (status, json.loads(data)["error"]["message"])
