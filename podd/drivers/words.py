"""The words of an agent command, as the shell reads them, for drivers that edit it.

A driver adds flags to CMD (``claude ... -p --output-format stream-json``) or inserts
words into it (``codex exec ... resume ID``). It can do so safely only where CMD is a
*simple command*: ``[VAR=value ...] word [word ...]`` with no operator, redirection,
newline, comment or command substitution. Each word keeps its text exactly as written
(``raw``), so quoting, ``$VAR`` expansions, globs and ``~`` mean what the user meant
after the edit; words that podd adds are quoted with ``shlex.quote``.

``text`` is the word after quote removal, with any expansion left as written;
``value`` is the same, or None when the shell would expand part of the word (a
parameter, a glob, ``~``): such a word is never taken for a flag name.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

import attrs

__all__ = [
    "SimpleCommand",
    "Word",
    "all_words",
    "command_name",
    "join",
    "parse_simple",
    "split_prefix",
]

_OPERATORS = frozenset(";&|()<>\n")
_BLANKS = frozenset(" \t")
_GLOB = frozenset("*?[")
_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_REST = re.compile(r"[A-Za-z0-9_]*")
_SPECIAL_PARAMETERS = frozenset("@*#?$!-0123456789")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# fmt: off
RESERVED_WORDS = frozenset([
    "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "function",
    "if", "in", "then", "until", "while", "[[", "]]",
])
# fmt: on


@attrs.frozen
class Word:
    """One shell word: as written, after quote removal, and whether part of it expands."""

    raw: str
    text: str
    expands: bool = False

    @property
    def value(self) -> str | None:
        """The word's value when the shell expands nothing in it, else None."""
        return None if self.expands else self.text

    @classmethod
    def literal(cls, value: str) -> Word:
        """A word podd adds: quoted so that the shell reads exactly ``value``."""
        return cls(shlex.quote(value), value)


@attrs.frozen
class SimpleCommand:
    """``[VAR=value ...] name [arg ...]``: the leading assignments, the name and its args."""

    assignments: tuple[Word, ...]
    name: Word
    args: tuple[Word, ...]

    def render(self, args: Iterable[Word] | None = None) -> str:
        """The command as shell text, with ``args`` in place of its own when given."""
        return join([*self.assignments, self.name, *(self.args if args is None else args)])


class _Complex(Exception):
    """CMD holds something that is not part of a simple command."""


def _scan_dollar(text: str, i: int) -> int:
    """The index past a ``$`` expansion that starts at ``text[i]``; refuses ``$(`` and ``${``."""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if nxt in ("(", "{"):
        raise _Complex
    if nxt and _NAME_START.match(nxt):
        match = _NAME_REST.match(text, i + 2)
        return match.end() if match else i + 2
    if nxt and nxt in _SPECIAL_PARAMETERS:
        return i + 2
    return i + 1  # a lone "$" is a literal dollar sign


def _next_word(text: str, i: int) -> tuple[Word, int]:
    """The word starting at ``text[i]`` (not a blank, not an operator) and the index past it."""
    start = i
    value: list[str] = []
    expands = False
    while i < len(text):
        char = text[i]
        if char in _BLANKS or char in _OPERATORS:
            break
        if char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise _Complex
            value.append(text[i + 1 : end])
            i = end + 1
        elif char == '"':
            i += 1
            while True:
                if i >= len(text):
                    raise _Complex
                char = text[i]
                if char == '"':
                    i += 1
                    break
                if char == "`":
                    raise _Complex
                if char == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
                    if text[i + 1] == "\n":
                        raise _Complex
                    value.append(text[i + 1])
                    i += 2
                elif char == "$":
                    end = _scan_dollar(text, i)
                    expands = expands or end > i + 1
                    value.append(text[i:end])
                    i = end
                else:
                    value.append(char)
                    i += 1
        elif char == "\\":
            if i + 1 >= len(text) or text[i + 1] == "\n":
                raise _Complex
            value.append(text[i + 1])
            i += 2
        elif char == "`":
            raise _Complex
        elif char == "$":
            end = _scan_dollar(text, i)
            expands = expands or end > i + 1
            value.append(text[i:end])
            i = end
        else:
            if char in _GLOB or (char == "~" and i == start):
                expands = True
            value.append(char)
            i += 1
    return Word(text[start:i], "".join(value), expands), i


def split_prefix(command: str) -> tuple[list[Word], bool]:
    """The words CMD starts with, up to its first operator, and whether that is all of CMD.

    The second item is False when an operator, a redirection, a newline, a comment or
    something this reader does not follow (a command substitution, an unclosed quote)
    comes after those words.
    """
    words: list[Word] = []
    i = 0
    try:
        while i < len(command):
            char = command[i]
            if char in _BLANKS:
                i += 1
            elif char in _OPERATORS or char == "#":
                return words, False
            else:
                word, i = _next_word(command, i)
                words.append(word)
    except _Complex:
        return words, False
    return words, True


def _is_assignment(word: Word) -> bool:
    return _ASSIGNMENT.match(word.raw) is not None


def parse_simple(command: str) -> SimpleCommand | None:
    """CMD as a simple command, or None when it is anything else."""
    words, whole = split_prefix(command)
    if not whole:
        return None
    index = 0
    while index < len(words) and _is_assignment(words[index]):
        index += 1
    if index == len(words) or words[index].raw in RESERVED_WORDS:
        return None
    return SimpleCommand(tuple(words[:index]), words[index], tuple(words[index + 1 :]))


def command_name(command: str) -> str | None:
    """CMD's first command word after any ``VAR=value`` assignments, quotes removed.

    Expansions are left as written (``~/bin/claude``, ``$HOME/bin/codex``). None when
    CMD does not start with a word (a reserved word, a subshell, a redirection).
    """
    words, _ = split_prefix(command)
    for word in words:
        if not _is_assignment(word):
            if word.raw in RESERVED_WORDS:
                return None
            return word.text
    return None


def join(words: Iterable[Word]) -> str:
    """Shell text of ``words``, each as written."""
    return " ".join(word.raw for word in words)


def all_words(command: str) -> list[Word]:
    """Every word of CMD, whatever it is, operators left out: a best effort for finding flags.

    A word holding ``$`` or a backquote counts as expanding; unbalanced quotes fall back
    to splitting at blanks.
    """
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        tokens = command.split()
    return [
        Word(token, token, "$" in token or "`" in token)
        for token in tokens
        if not set(token) <= _OPERATORS
    ]
