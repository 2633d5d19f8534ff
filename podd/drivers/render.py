"""A readable text of one turn's output, for ``podd output``: people and models read it.

For an LLM driver it holds the assistant's text, one line per tool call
(``→ Bash: ls -la``), the errors the agent reported and the result; lines that are not
the agent's JSON are shown as they are. For ``shell`` it is the raw output.
"""

from __future__ import annotations

from typing import Any

import orjson

from podd.drivers.base import json_objects
from podd.drivers.codex import error_reason

__all__ = ["TOOL_LINE_LIMIT", "render_turn"]

TOOL_LINE_LIMIT = 200
"""The most characters of a tool call's description on its line."""


def _one_line(text: str, limit: int = TOOL_LINE_LIMIT) -> str:
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    if len(lines) > 1 or len(line) > limit:
        return line[: limit - 1] + "…"
    return line


def _tool_args(tool_input: object) -> str:
    """The part of a tool call's input that says what it does."""
    if not isinstance(tool_input, dict):
        return ""
    for key in ("command", "file_path", "path", "pattern", "url", "query", "prompt"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return value
    return orjson.dumps(tool_input).decode() if tool_input else ""


def _tool_output(content: object) -> str:
    """A tool result's text: a string, or the text blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def _tool_line(name: str, args: str) -> str:
    return f"→ {name}: {_one_line(args)}" if args else f"→ {name}"


def _claude_lines(message: dict[str, Any]) -> list[str]:
    kind = message.get("type")
    if kind == "assistant":
        body = message.get("message")
        blocks = body.get("content") if isinstance(body, dict) else None
        out = []
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                out.append(block["text"].rstrip("\n"))
            elif block.get("type") == "tool_use":
                name = str(block.get("name", "tool"))
                out.append(_tool_line(name, _tool_args(block.get("input"))))
        return out
    if kind == "user":
        body = message.get("message")
        blocks = body.get("content") if isinstance(body, dict) else None
        listed = blocks if isinstance(blocks, list) else []
        return [
            f"  ✗ {_one_line(_tool_output(block.get('content')))}"
            for block in listed
            if isinstance(block, dict)
            and block.get("type") == "tool_result"
            and block.get("is_error") is True
        ]
    if kind == "result":
        result = message.get("result")
        errors = message.get("errors")
        if message.get("is_error") is True:
            reason = result if isinstance(result, str) and result else None
            if reason is None and isinstance(errors, list) and errors:
                reason = "; ".join(str(e) for e in errors)
            return [f"✗ error: {reason or message.get('subtype', 'unknown')}"]
        return _result_lines(result if isinstance(result, str) else "")
    return []


def _result_lines(text: str) -> list[str]:
    text = text.rstrip("\n")
    return [f"✓ result: {text}"] if "\n" not in text else ["✓ result:", text]


def _codex_lines(event: dict[str, Any]) -> list[str]:
    kind = event.get("type")
    item = event.get("item")
    if kind == "item.completed" and isinstance(item, dict):
        item_type = item.get("type")
        if item_type == "agent_message" and isinstance(item.get("text"), str):
            return [item["text"].rstrip("\n")]
        if item_type == "command_execution":
            line = _tool_line("shell", str(item.get("command", "")))
            code = item.get("exit_code")
            return [line if code in (0, None) else f"{line} (exit {code})"]
        if item_type == "mcp_tool_call":
            name = f"{item.get('server', 'mcp')}.{item.get('tool', 'tool')}"
            return [_tool_line(name, _tool_args(item.get("arguments")))]
        if item_type == "file_change":
            changes = item.get("changes")
            listed = changes if isinstance(changes, list) else []
            paths = [str(change.get("path")) for change in listed if isinstance(change, dict)]
            return [_tool_line("edit", ", ".join(paths))]
        return []
    if kind == "turn.failed":
        error = event.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        return [f"✗ error: {error_reason(message) if isinstance(message, str) else 'turn failed'}"]
    if kind == "error" and isinstance(event.get("message"), str):
        return [f"! {error_reason(event['message'])}"]
    return []


def render_turn(driver_name: str, raw_stdout: bytes) -> str:
    """The readable text of one turn's stdout, as ``driver_name`` wrote it."""
    text = raw_stdout.decode("utf-8", "replace")
    if driver_name not in ("claude", "codex"):
        return text
    lines: list[str] = []
    last_message = ""
    for raw_line in raw_stdout.splitlines():
        objects = json_objects(raw_line)
        if not objects:
            if raw_line.strip():
                lines.append(raw_line.decode("utf-8", "replace"))
            continue
        for obj in objects:
            if driver_name == "claude":
                lines.extend(_claude_lines(obj))
            else:
                rendered = _codex_lines(obj)
                item = obj.get("item")
                if isinstance(item, dict) and item.get("type") == "agent_message" and rendered:
                    last_message = rendered[0]
                if rendered and lines and rendered[0] == "✗ error: " + lines[-1][2:]:
                    lines.pop()  # the error event that the failure repeats
                lines.extend(rendered)
                if obj.get("type") == "turn.completed":
                    lines.extend(_result_lines(last_message))
    return "".join(line + "\n" for line in lines)
