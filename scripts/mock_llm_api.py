#!/usr/bin/env python3
"""A scripted stand-in for the Anthropic and OpenAI APIs, on loopback only.

Claude Code (``ANTHROPIC_BASE_URL``) and Codex (a ``model_providers`` entry with
``wire_api="responses"``) talk to it instead of the real services, so the real CLIs can
be run offline and deterministically. It serves:

- ``POST /v1/messages`` (Anthropic Messages API, streamed as server-sent events, or one
  JSON message when the request does not ask for a stream);
- ``POST /v1/messages/count_tokens``;
- ``POST /v1/responses`` (OpenAI Responses API, streamed as server-sent events).

Usage::

    mock_llm_api.py [--port 0] [--scenario FILE] [--log FILE] [--idle-timeout S]

The first line on stdout is the port it listens on. Every request is appended to the log
as one JSON line: ``{"api", "path", "turn", "step", "body"}``.

A scenario is a JSON file ``{"turns": [TURN, ...]}``, read again on every request (a
harness may replace it between runs). A request belongs to turn N when its conversation
holds N user messages written by a person (tool results and the CLIs' own context
blocks do not count), and to step K of that turn when K model answers follow the last
of them. A TURN is ``{"steps": [STEP, ...]}`` or ``{"error": {"status": 500,
"message": "..."}}``; a STEP is ``{"text": "...", "bash": "a shell command", "usage":
{"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0,
"cache_creation_input_tokens": 0}}`` (every key optional). Past the scripted steps, or
without a scenario, the answer is ``mock reply to user message N: <that message>``, so
a test can see whether a resumed turn was sent the earlier ones.

A step with ``bash`` asks the CLI to run that command with its shell tool, and the CLI
sends the tool's result in the next request (the next step): for Claude Code a
``tool_use`` block for ``Bash``; for Codex a ``custom_tool_call`` of its code-mode tool
``exec`` (JavaScript that calls ``tools.exec_command``), or a ``function_call`` of
``exec_command`` when the request offers no ``exec`` tool.

Claude Code only: a step with ``"tool": {"name": "mcp__podd__spawn_pod", "input":
{...}}`` asks for any other tool by the name the CLI offers (an MCP server's tools are
``mcp__SERVER__TOOL``), and a step's ``text`` may quote what the last tool answered:
``{tool_result}`` is the text of the last ``tool_result`` block in the request,
``{tool_result.KEY}`` the field KEY of that text read as a JSON object (empty when it
has none).

An error TURN answers each of its requests with that HTTP status and the API's error
body: Anthropic's ``{"type": "error", "error": {"type", "message"}}`` with the header
``x-should-retry: false`` (Claude Code then gives up at once instead of retrying), or
OpenAI's ``{"error": {"type", "code", "message", "param"}}``.

The server exits when its parent process dies or after ``--idle-timeout`` seconds
(default 600) without a request.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import sys
import threading
import time
import uuid
from typing import Any

DEFAULT_USAGE = {
    "input_tokens": 12,
    "output_tokens": 7,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}
# Blocks the CLIs put into user messages on their own: they are context, not a person.
CONTEXT_PREFIXES = (
    "<environment_context>",
    "<user_instructions>",
    "<system-reminder>",
    "<permissions instructions>",
    "<skills_instructions>",
    "<apps_instructions>",
    "<collaboration_mode>",
    "# AGENTS.md instructions",
    "Caveat:",
)
DEFAULT_MODEL = "claude-mock-1"


class Scenario:
    """The scripted answers, chosen by a request's turn and step."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.turns: list[dict[str, Any]] = list(data.get("turns", []))

    def turn(self, turn: int) -> dict[str, Any]:
        if 1 <= turn <= len(self.turns):
            return self.turns[turn - 1]
        return {}

    def step(self, turn: int, step: int) -> dict[str, Any] | None:
        steps = self.turn(turn).get("steps", [])
        if 0 <= step < len(steps):
            return dict(steps[step])
        return None


def default_text(count: int, last: str) -> str:
    return f"mock reply to user message {count}: {last.strip()}"


# --- Anthropic ----------------------------------------------------------------------


def _anthropic_text_of(content: Any) -> tuple[str, bool]:
    """The person's text in a user message's content, and whether it holds a tool result."""
    if isinstance(content, str):
        return ("" if content.startswith(CONTEXT_PREFIXES) else content), False
    texts = []
    tool_result = False
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result":
            tool_result = True
        elif block.get("type") == "text":
            text = str(block.get("text", ""))
            if not text.startswith(CONTEXT_PREFIXES):
                texts.append(text)
    return "\n".join(texts), tool_result


def anthropic_position(body: dict[str, Any]) -> tuple[int, int, str]:
    """``(turn, step, last user text)`` of a Messages request."""
    turn = 0
    step = 0
    last = ""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            text, tool_result = _anthropic_text_of(message.get("content"))
            if text and not tool_result:
                turn += 1
                step = 0
                last = text
        elif message.get("role") == "assistant":
            step += 1
    return turn, step, last


def last_tool_result(body: dict[str, Any]) -> str:
    """The text of the last ``tool_result`` block of a Messages request ("" if none)."""
    found = ""
    for message in body.get("messages", []):
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = "".join(
                        str(part.get("text", "")) for part in inner if isinstance(part, dict)
                    )
                found = str(inner or "")
    return found


_QUOTE_RE = re.compile(r"\{tool_result(?:\.([A-Za-z0-9_]+))?\}")


def quote_tool_result(text: str, tool_result: str) -> str:
    """``text`` with ``{tool_result}`` and ``{tool_result.KEY}`` filled in."""

    def fill(found: re.Match[str]) -> str:
        key = found.group(1)
        if key is None:
            return tool_result
        try:
            document = json.loads(tool_result)
        except ValueError:
            return ""
        value = document.get(key) if isinstance(document, dict) else None
        return "" if value is None else value if isinstance(value, str) else json.dumps(value)

    return _QUOTE_RE.sub(fill, text)


def anthropic_tool(step: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The tool a step asks Claude Code to call, as ``(name, input)``, or None."""
    if step.get("bash") is not None:
        return "Bash", {"command": step["bash"], "description": "Run a command"}
    tool = step.get("tool")
    if isinstance(tool, dict):
        return str(tool["name"]), dict(tool.get("input") or {})
    return None


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_events(
    model: str, text: str, tool: tuple[str, dict[str, Any]] | None, usage: dict[str, int]
) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of one streamed answer."""
    message_id = "msg_" + uuid.uuid4().hex[:24]
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": usage["input_tokens"],
                        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                        "cache_read_input_tokens": usage["cache_read_input_tokens"],
                        "output_tokens": 1,
                    },
                },
            },
        )
    ]
    index = 0
    if text:
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        half = len(text) // 2
        for piece in (text[:half], text[half:]):
            if piece:
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    if tool is not None:
        arguments = json.dumps(tool[1])
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_" + uuid.uuid4().hex[:24],
                        "name": tool[0],
                        "input": {},
                    },
                },
            )
        )
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if tool is not None else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_message(
    model: str, text: str, tool: tuple[str, dict[str, Any]] | None, usage: dict[str, int]
) -> dict[str, Any]:
    """The same answer as one JSON message (a request without ``stream``)."""
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    if tool is not None:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": tool[0],
                "input": tool[1],
            }
        )
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if tool is not None else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


# --- OpenAI Responses ---------------------------------------------------------------


def _responses_text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [
            str(part.get("text", ""))
            for part in content or []
            if isinstance(part, dict) and part.get("type") in ("input_text", "text")
        ]
    return "\n".join(text for text in texts if not text.lstrip().startswith(CONTEXT_PREFIXES))


_MODEL_ITEMS = frozenset(["function_call", "custom_tool_call", "reasoning", "local_shell_call"])


def responses_position(body: dict[str, Any]) -> tuple[int, int, str]:
    """``(turn, step, last user text)`` of a Responses request.

    The items of one model answer (text, reasoning, tool calls) stand next to each other
    in the input, so a run of them counts as one step.
    """
    turn = 0
    step = 0
    last = ""
    items = body.get("input", [])
    if isinstance(items, str):
        return 1, 0, items
    in_answer = False
    for item in items:
        kind = item.get("type", "message")
        role = item.get("role")
        if kind == "message" and role == "user":
            text = _responses_text_of(item)
            if text:
                turn += 1
                step = 0
                last = text
            in_answer = False
        elif (kind == "message" and role == "assistant") or kind in _MODEL_ITEMS:
            if not in_answer:
                step += 1
            in_answer = True
        else:
            in_answer = False
    return turn, step, last


def _offered_tools(body: dict[str, Any]) -> dict[str, str]:
    """Every tool a Responses request offers, by name, with its type (nested ones too)."""
    found: dict[str, str] = {}

    def walk(tools: Any) -> None:
        for tool in tools or []:
            if isinstance(tool, dict):
                found.setdefault(str(tool.get("name", "")), str(tool.get("type", "")))
                walk(tool.get("tools"))

    walk(body.get("tools"))
    for item in body.get("input", []):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            walk(item.get("tools"))
    return found


def responses_shell_call(body: dict[str, Any], bash: str) -> dict[str, Any]:
    """The output item that asks Codex to run ``bash`` with the shell tool it offers."""
    tools = _offered_tools(body)
    call_id = "call_" + uuid.uuid4().hex[:24]
    if tools.get("exec") != "custom":
        return {
            "type": "function_call",
            "id": "fc_" + uuid.uuid4().hex[:24],
            "call_id": call_id,
            "name": "exec_command",
            "arguments": json.dumps({"cmd": bash}),
            "status": "completed",
        }
    # Codex's code mode offers one custom tool, ``exec``, that runs JavaScript in
    # which the shell tool is ``tools.exec_command``.
    source = f"const r = await tools.exec_command({{cmd: {json.dumps(bash)}}});\ntext(r.output);\n"
    return {
        "type": "custom_tool_call",
        "id": "ctc_" + uuid.uuid4().hex[:24],
        "call_id": call_id,
        "name": "exec",
        "input": source,
        "status": "completed",
    }


def responses_events(
    body: dict[str, Any], text: str, bash: str | None, usage: dict[str, int]
) -> list[tuple[str, dict[str, Any]]]:
    response_id = "resp_" + uuid.uuid4().hex[:24]
    model = str(body.get("model", "gpt-mock-1"))
    head: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "model": model,
        "status": "in_progress",
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"type": "response.created", "response": head}),
        ("response.in_progress", {"type": "response.in_progress", "response": head}),
    ]
    output: list[dict[str, Any]] = []
    if text:
        item_id = "msg_" + uuid.uuid4().hex[:24]
        index = len(output)
        events.append(
            (
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {
                        "type": "message",
                        "id": item_id,
                        "role": "assistant",
                        "status": "in_progress",
                        "content": [],
                    },
                },
            )
        )
        events.append(
            (
                "response.content_part.added",
                {
                    "type": "response.content_part.added",
                    "item_id": item_id,
                    "output_index": index,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                },
            )
        )
        half = len(text) // 2
        for piece in (text[:half], text[half:]):
            if piece:
                events.append(
                    (
                        "response.output_text.delta",
                        {
                            "type": "response.output_text.delta",
                            "item_id": item_id,
                            "output_index": index,
                            "content_index": 0,
                            "delta": piece,
                        },
                    )
                )
        done = {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        events.append(
            (
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": index, "item": done},
            )
        )
        output.append(done)
    if bash is not None:
        call = responses_shell_call(body, bash)
        index = len(output)
        events.append(
            (
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": index, "item": call},
            )
        )
        events.append(
            (
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": index, "item": call},
            )
        )
        output.append(call)
    completed = dict(head)
    completed["status"] = "completed"
    completed["output"] = output
    completed["usage"] = {
        "input_tokens": usage["input_tokens"],
        "input_tokens_details": {"cached_tokens": usage["cache_read_input_tokens"]},
        "output_tokens": usage["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
    }
    events.append(("response.completed", {"type": "response.completed", "response": completed}))
    return events


# --- the server ---------------------------------------------------------------------


class MockServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, scenario_path: str | None, log_path: str | None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.scenario_path = scenario_path
        self.log_path = log_path
        self.log_lock = threading.Lock()
        self.last_request = time.monotonic()

    @property
    def scenario(self) -> Scenario:
        """The scenario as the file holds it now: a harness may replace it between runs."""
        if self.scenario_path is None:
            return Scenario({})
        with open(self.scenario_path, encoding="utf-8") as file:
            return Scenario(json.load(file))

    def log_request_body(self, record: dict[str, Any]) -> None:
        if self.log_path is None:
            return
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    server: MockServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log file is the record; stderr stays quiet

    def do_GET(self) -> None:
        self.server.last_request = time.monotonic()
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error"}})

    def do_HEAD(self) -> None:
        self.server.last_request = time.monotonic()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.server.last_request = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"unparsed": raw.decode("utf-8", "replace")}
        path = self.path.split("?", 1)[0]
        if path.endswith("/messages/count_tokens"):
            self._log("anthropic", path, 0, 0, body)
            self._send_json(200, {"input_tokens": 100})
        elif path.endswith("/messages"):
            self._anthropic(path, body)
        elif path.endswith("/responses"):
            self._responses(path, body)
        else:
            self._log("unknown", path, 0, 0, body)
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error"}})

    def _log(self, api: str, path: str, turn: int, step: int, body: Any) -> None:
        self.server.log_request_body(
            {"api": api, "path": path, "turn": turn, "step": step, "body": body}
        )

    def _answer(
        self, turn: int, step: int, last: str
    ) -> tuple[str, dict[str, Any], dict[str, int]]:
        """The text, the scripted step (empty past the script) and the usage of an answer."""
        scripted = self.server.scenario.step(turn, step)
        if scripted is None:
            return default_text(turn, last), {}, dict(DEFAULT_USAGE)
        usage = dict(DEFAULT_USAGE)
        usage.update(scripted.get("usage", {}))
        return str(scripted.get("text", "")), scripted, usage

    def _anthropic(self, path: str, body: dict[str, Any]) -> None:
        turn, step, last = anthropic_position(body)
        self._log("anthropic", path, turn, step, body)
        error = self.server.scenario.turn(turn).get("error")
        if error is not None:
            status = int(error.get("status", 500))
            self._send_json(
                status,
                {
                    "type": "error",
                    "error": {
                        "type": error.get("type", "api_error"),
                        "message": error.get("message", "Internal server error"),
                    },
                },
                {"x-should-retry": "false", "request-id": "req_" + uuid.uuid4().hex[:24]},
            )
            return
        text, scripted, usage = self._answer(turn, step, last)
        text = quote_tool_result(text, last_tool_result(body)) if scripted else text
        tool = anthropic_tool(scripted)
        model = str(body.get("model", DEFAULT_MODEL))
        if not body.get("stream"):
            self._send_json(200, anthropic_message(model, text, tool, usage))
            return
        self._send_events(anthropic_events(model, text, tool, usage))

    def _responses(self, path: str, body: dict[str, Any]) -> None:
        turn, step, last = responses_position(body)
        self._log("responses", path, turn, step, body)
        error = self.server.scenario.turn(turn).get("error")
        if error is not None:
            status = int(error.get("status", 500))
            self._send_json(
                status,
                {
                    "error": {
                        "type": error.get("type", "invalid_request_error"),
                        "code": error.get("code"),
                        "message": error.get("message", "Internal server error"),
                        "param": None,
                    }
                },
                {"x-should-retry": "false"},
            )
            return
        text, scripted, usage = self._answer(turn, step, last)
        self._send_events(responses_events(body, text, scripted.get("bash"), usage))

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        data = b"".join(_sse(event, payload) for event, payload in events)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _watch(server: MockServer, parent: int, idle_timeout: float) -> None:
    """Shut the server down once its parent is gone or it has been idle too long."""
    while True:
        time.sleep(0.2)
        if os.getppid() != parent:
            break
        if time.monotonic() - server.last_request > idle_timeout:
            break
    server.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", help="a JSON scenario file")
    parser.add_argument("--log", help="append each request as one JSON line to this file")
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    server = MockServer(args.port, args.scenario, args.log)
    print(server.server_address[1], flush=True)
    threading.Thread(
        target=_watch, args=(server, os.getppid(), args.idle_timeout), daemon=True
    ).start()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
