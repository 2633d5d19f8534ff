"""Checking an agent command before a pod is spawned with it (no trio: the CLI uses it).

An agent command is any POSIX shell program, run as ``/bin/sh -c CMD``. Only what
surely cannot run is refused: a syntax error (``sh -n``), or a first simple command
that is a plain word naming no builtin, reserved word, function or executable. Anything
the shell decides at run time (an expansion, a function defined in CMD, a compound
command) is given the benefit of the doubt.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

__all__ = ["RESERVED_WORDS", "SHELL_BUILTINS", "check_agent", "first_command_word"]

# fmt: off
SHELL_BUILTINS = frozenset([
    # POSIX special and regular builtins, and what dash and bash add that agents use.
    ":", ".", "[", "alias", "bg", "break", "builtin", "cd", "command", "continue", "echo",
    "eval", "exec", "exit", "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill",
    "local", "printf", "pwd", "read", "readonly", "return", "set", "shift", "source", "test",
    "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "wait",
])
RESERVED_WORDS = frozenset([
    "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "function",
    "if", "in", "then", "until", "while",
])
# fmt: on

_OPERATOR_START = ";&|()"
_REDIRECT_START = "<>"
_NOT_PLAIN = set("$`\\*?[~")
SYNTAX_CHECK_TIMEOUT = 5.0


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.isidentifier()


def first_command_word(command: str) -> str | None:
    """The command word of CMD's first simple command, if CMD starts with one.

    Leading assignments (``FOO=1``) and redirections (``>log``, ``2>&1``) are skipped.
    Returns None when CMD starts with something other than a simple command (a reserved
    word, a subshell, a function definition) or cannot be split into words.
    """
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return None
    index = 0
    while index < len(words):
        word = words[index]
        if word[0] in _REDIRECT_START:
            index += 2  # the operator and its target
        elif word.isdigit() and index + 1 < len(words) and words[index + 1][0] in _REDIRECT_START:
            index += 3  # an io number, the operator and its target
        elif _is_assignment(word):
            index += 1
        else:
            break
    else:
        return None
    word = words[index]
    if word[0] in _OPERATOR_START or word in RESERVED_WORDS:
        return None
    if index + 1 < len(words) and words[index + 1].startswith("("):
        return None  # a function definition: name() ...
    return word


def _syntax_error(command: str) -> str | None:
    try:
        checked = subprocess.run(
            ["/bin/sh", "-n", "-c", command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=SYNTAX_CHECK_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # the check itself could not run: the turn will tell
    if checked.returncode == 0:
        return None
    detail = checked.stderr.decode(errors="replace").strip() or f"status {checked.returncode}"
    return f"the agent command has a shell syntax error: {detail}"


def check_agent(command: str, cwd: str, path: str | None = None) -> str | None:
    """Why ``command`` surely cannot run as ``/bin/sh -c command``, or None.

    ``path`` is the ``PATH`` the agent will see (default: this process's); a relative
    command path is taken relative to ``cwd``.
    """
    if not command.strip():
        return "the agent command is empty"
    if "\0" in command:
        return "the agent command contains a NUL byte, which no shell program can"
    problem = _syntax_error(command)
    if problem:
        return problem
    word = first_command_word(command)
    if word is None or word in SHELL_BUILTINS or _NOT_PLAIN & set(word):
        return None
    if "/" in word:
        target = word if os.path.isabs(word) else os.path.join(cwd, word)
        if os.path.isfile(target) and os.access(target, os.X_OK):
            return None
        return f"agent command {word!r} is not an executable file"
    if shutil.which(word, path=path) is None:
        return f"agent command {word!r} was not found on PATH"
    return None
