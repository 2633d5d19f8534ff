"""Test doubles of the agent CLIs: ``bin/claude`` and ``bin/codex``.

Both follow the interface of the real CLIs (Claude Code 2.1.197, Codex 0.171.0) as far
as podd uses it: flags, prompt on stdin, JSON-lines output, sessions kept in the config
dir, exit codes and error texts. Put ``FAKES_BIN`` first on ``PATH`` to run them in
place of the real ones. They are stdlib-only Python and make no network call.

What the fake "model" does is read from a scenario, a JSON file named by
``PODD_FAKE_SCRIPT``::

    {"turns": [TURN, ...]}

Turn N of a session (the session's N-th user message, the current one included) plays
``turns[N-1]``; a session's earlier turns are read back from its transcript, so a
resumed session really continues. A TURN holds (every key optional):

- ``steps``: ``[{"text": "...", "bash": "a shell command"}, ...]``, the model's answers
  in order. ``bash`` is run with ``/bin/sh -c`` in the cwd, as the CLI's shell tool
  would (claude: only when permitted, see below); its output goes back to the model and
  the next step follows. The last step's text is the result.
- ``error``: ``{"status": 500, "message": "..."}``: the API fails; claude reports
  ``is_error: true`` with ``result: "API Error: 500 ..."``, codex ``error`` and
  ``turn.failed``; both exit 1.
- ``cost_usd`` (claude only; default 0.001), ``usage`` (``input_tokens``,
  ``output_tokens``, ``cache_read_input_tokens``, ``cache_creation_input_tokens``).
- ``sleep``: seconds to wait before answering (for timeouts and cancellation).

Without a scenario, or past its last turn, the result is ``fake reply to user message
N: <the prompt>``, N counting the session's user messages: a test sees whether turn 2
was given turn 1.

Authentication (fake claude): as the real CLI, it needs ``ANTHROPIC_API_KEY`` (or
``ANTHROPIC_AUTH_TOKEN``, ``CLAUDE_CODE_OAUTH_TOKEN``, a cloud provider) or a login in
its config dir (``.credentials.json`` with ``claudeAiOauth.accessToken``); without one
it answers ``Not logged in · Please run /login`` with ``is_error: true`` and exits 1.
``fake_env`` sets a key unless one is given.

Permissions (fake claude): a Bash call runs when ``--allowedTools``/``--allowed-tools``
names ``Bash`` (or ``Bash(...)``), with ``--dangerously-skip-permissions`` or
``--permission-mode bypassPermissions`` (refused as root unless ``IS_SANDBOX=1``), or
when the command is read-only (``echo``, ``ls``, ``cat``, ``pwd`` ... without a
redirection). Otherwise it is denied and listed in ``permission_denials``. Fake codex
runs every command (it has no sandbox of its own). Neither starts MCP servers.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FAKES_BIN", "fake_env", "write_scenario"]

FAKES_BIN = pathlib.Path(__file__).resolve().parent / "bin"


def write_scenario(path: os.PathLike[str] | str, turns: Sequence[Mapping[str, Any]]) -> str:
    """Write a scenario file for ``PODD_FAKE_SCRIPT`` and return its path."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"turns": list(turns)}, file)
    return os.fspath(path)


def fake_env(scenario: str | None = None, **extra: str) -> dict[str, str]:
    """The environment with the fakes first on ``PATH`` (and the scenario, if given)."""
    env = dict(os.environ)
    env["PATH"] = f"{FAKES_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PODD_FAKE_SCRIPT", None)
    env.setdefault("ANTHROPIC_API_KEY", "sk-ant-fake")
    if scenario is not None:
        env["PODD_FAKE_SCRIPT"] = scenario
    env.update(extra)
    return env
