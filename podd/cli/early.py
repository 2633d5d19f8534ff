"""What the command line reads of its arguments before it imports its parser.

``command_word`` picks the command out of a plain command line, so that only that
command's parser is built. ``quick_read`` parses the plain command lines of the two
reads that agents and scripts call in loops, ``podd ls`` and ``podd status NAME``,
without argparse: importing it (with gettext and locale) and building the command's
parser cost a few milliseconds of a command that takes some forty. It gives exactly
the namespace argparse would (the tests hold the two equal) and leaves everything
else to argparse: another command, an unknown or abbreviated flag, ``--help``, a
missing value. ``prestart_pod`` forks the pod of a cold root spawn as the command
starts (``podd.spawn.prestart``), so that the pod imports the runtime while the
command parses its arguments: it reads the few words that say whether this is a root
spawn, and where the root is, without parsing them. Whatever it guesses wrong only
costs that head start: the spawn itself goes by what argparse makes of them.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

# Type checkers take this as true; the typing module is not imported.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["command_word", "discard_prestarted", "prestart_pod", "quick_read"]


def command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names when that is plain: its first word, after nothing but
    ``--root DIR`` (or ``--root=DIR``); else None."""
    i = 0
    while i < len(argv) and (argv[i] == "--root" or argv[i].startswith("--root=")):
        i += 2 if argv[i] == "--root" else 1
    return argv[i] if i < len(argv) and not argv[i].startswith("-") else None


QUICK_FLAGS = {"ls": ("--json", "--tree"), "status": ("--json",)}
"""The quick reads, and the flags each takes (``--root`` aside)."""

QUICK_POSITIONALS = {"ls": (), "status": ("name",)}


def quick_read(argv: Sequence[str]) -> SimpleNamespace | None:
    """The namespace argparse would make of ``argv`` if it is a plain ``ls`` or
    ``status NAME`` (``--root DIR`` or ``--root=DIR`` before the command or anywhere
    after it, the command's flags, its name); None for anything else."""
    command = command_word(argv)
    flags = QUICK_FLAGS.get(command or "")
    if flags is None:
        return None
    from podd.cli import commands

    fields: dict[str, object] = {"root": None, "command": command}
    fields.update(dict.fromkeys((flag[2:] for flag in flags), False))
    positionals: list[str] = []
    words = iter(argv)
    seen_command = False
    for word in words:
        if word == "--root":
            value = next(words, None)
            if value is None or (value.startswith("-") and value != "-"):
                return None
            fields["root"] = value
        elif word.startswith("--root="):
            fields["root"] = word[len("--root=") :]
        elif not seen_command:
            seen_command = True  # the command word itself: command_word found it first
        elif word in flags:
            fields[word[2:]] = True
        elif word.startswith("-"):
            return None  # --help, an abbreviation, anything argparse must judge
        else:
            positionals.append(word)
    names = QUICK_POSITIONALS[command or ""]
    if len(positionals) != len(names):
        return None
    fields.update(zip(names, positionals, strict=True))
    fields["fn"] = getattr(commands, f"cmd_{command}")
    return SimpleNamespace(**fields)


def _root_given(argv: Sequence[str]) -> str | None:
    """The last ``--root DIR`` (or ``--root=DIR``) in ``argv``, as argparse takes it."""
    given = None
    for i, word in enumerate(argv):
        if word == "--root" and i + 1 < len(argv):
            given = argv[i + 1]
        elif word.startswith("--root="):
            given = word.partition("=")[2]
    return given


def cold_root_spawn(argv: Sequence[str]) -> str | None:
    """The root, if ``argv`` asks for a root pod there that no root fork server will
    start: a ``spawn`` without ``--parent`` (nor ``$POD_NAME``, which makes it a
    child), no ``--help``, and no root fork server's socket in the root; else None."""
    if command_word(argv) != "spawn" or os.environ.get("POD_NAME"):
        return None
    for word in argv:
        if word in ("-h", "--help", "--parent") or word.startswith("--parent="):
            return None
    from podd.spawn.forkserver import available, root_server_may_run
    from podd.store.paths import resolve_root

    root = resolve_root(_root_given(argv))
    return root if available() and not root_server_may_run(root) else None


def prestart_pod(argv: Sequence[str]) -> None:
    """For a cold root spawn, fork its pod process now (``podd.spawn.prestart``)."""
    root = cold_root_spawn(argv)
    if root is not None:
        from podd.runtime.launch import load_runtime
        from podd.spawn.prestart import prestart

        prestart(load_runtime, root)


def discard_prestarted() -> None:
    """Kill the pod process ``prestart_pod`` forked if the command has not handed it a
    spec: it failed, or was a usage error (which ends through argparse's
    ``SystemExit``). Imports nothing: a command that forked none has not loaded
    ``podd.spawn.prestart``."""
    prestart = sys.modules.get("podd.spawn.prestart")
    if prestart is not None:
        prestart.discard()
