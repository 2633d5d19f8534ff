"""The ``podd`` command line.

Exit status: 0 success; 1 a failure explained on stderr; 2 bad usage; 3 the named pod
does not exist or is not running. ``--json`` prints one JSON document on stdout.

The CLI is a short-lived, synchronous client: it speaks plain JSON frames over blocking
sockets (``podd.client.sync``) and reads the pods' files with ``json`` (``podd.store.records``).
Apart from starting a root pod, no command imports trio, cattrs, attrs, orjson, psutil
or (unless drawing on a terminal, or a tree) rich, so a command costs little more than
the interpreter's start-up. Commands import what they need when they run.
"""

from __future__ import annotations

import os
import sys

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import SimpleNamespace
    from typing import NoReturn

__all__ = ["main"]

UNTITLED = frozenset({"ls", "notifications", "reclaim", "result", "status"})
"""Commands that keep their command line as their title: they read and return in a few
milliseconds, and what they are given (names and flags) says what they are already
(``podd ls --json``). Every other command, which may carry a task or an agent command or
may run for long, replaces its command line with its title."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status; run as the program (``argv`` is
    None), end the process with it."""
    if argv is None:
        # First of all: a cold root spawn's pod starts importing the runtime now.
        from podd.cli.early import prestart_pod

        prestart_pod(sys.argv[1:])
    try:
        status = _run(argv)
    finally:
        from podd.cli.early import discard_prestarted

        discard_prestarted()
    if argv is None:
        _end(status)
    return status


def _end(status: int) -> NoReturn:
    """End the process at once with ``status``, stdout and stderr flushed.

    The interpreter's own teardown (freeing every module and object) would cost every
    command a few more milliseconds, and nothing here needs it: podd registers no
    ``atexit`` handler and keeps no file open but these two.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a closed stream
            continue
    os._exit(status)


def _run(argv: Sequence[str] | None) -> int:
    from podd.cli.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, Exit
    from podd.cli.early import command_word, quick_read
    from podd.errors import PoddError, UsageError

    words = sys.argv[1:] if argv is None else list(argv)
    args: argparse.Namespace | SimpleNamespace | None = quick_read(words)
    if args is None:
        from podd.cli.parser import build_parser

        args = build_parser(command_word(words)).parse_args(words)
    if argv is None and args.command not in UNTITLED:
        from podd.proc.title import set_title

        # What ps shows of this command: its name and pod, not the task or agent typed.
        name = getattr(args, "name", None)
        set_title(f"podd: {args.command} {name}" if name else f"podd: {args.command}")
    try:
        return int(args.fn(Context(args)))
    except Exit as exc:
        if exc.message:
            print(f"podd: {exc.message}", file=sys.stderr)
        return exc.status
    except UsageError as exc:
        print(f"podd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PoddError as exc:
        print(f"podd: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
