"""Checking an agent command before a pod is spawned with it (no trio: the CLI uses it)."""

from __future__ import annotations

import os
import shlex
import shutil

__all__ = ["SHELL_BUILTINS", "check_agent"]

# fmt: off
SHELL_BUILTINS = frozenset([
    ":", ".", "[", "alias", "bg", "break", "cd", "command", "continue", "echo", "eval",
    "exec", "exit", "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill",
    "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "times", "trap",
    "true", "type", "ulimit", "umask", "unalias", "unset", "wait",
])
# fmt: on


def check_agent(command: str, cwd: str) -> str | None:
    """Why ``command`` cannot run, or None: its first word must be a shell builtin, or an
    executable on ``PATH`` or at the given path (relative to ``cwd``)."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = [w for w in lexer if "=" not in w or w.startswith(("/", "."))]
    except ValueError as exc:
        return f"the agent command cannot be parsed: {exc}"
    if not words:
        return "the agent command is empty"
    first = words[0]
    if first in SHELL_BUILTINS or first[0] in ";&|<>()":
        return None
    if "/" in first:
        path = first if os.path.isabs(first) else os.path.join(cwd, first)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return None
        return f"agent command {first!r} is not an executable file"
    if shutil.which(first) is None:
        return f"agent command {first!r} was not found on PATH"
    return None
