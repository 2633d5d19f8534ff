"""The command line's parser: every command, its flags and their help.

Building a command's parser costs a few hundred microseconds; a run builds only the one
it needs (``build_parser(only=...)``).
"""

from __future__ import annotations

import argparse
import os
import sys

from podd.cli import commands as c
from podd.cli.early import command_word

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from podd.cli.context import Context

__all__ = ["build_parser", "command_word"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _loop_arguments(p: Any, what: str) -> None:
    """``--until`` and its limits, for ``spawn`` (its task) and ``send``."""
    p.add_argument(
        "--until",
        metavar="TOKEN",
        help=f"repeat {what} as one turn until a result contains TOKEN "
        "(a result containing BLOCKED ends it as errored)",
    )
    p.add_argument(
        "--max-iterations",
        metavar="N",
        type=_positive_int,
        help="with --until: give up after N iterations (default 10)",
    )
    p.add_argument(
        "--budget",
        metavar="S",
        type=_positive_float,
        help="with --until: seconds for all iterations (default: the turn timeout)",
    )


def _terminal_width() -> int:
    """The width help is wrapped to, found as ``shutil.get_terminal_size`` finds it."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told how wide the terminal is.

    argparse makes a formatter for every argument it is given, and the formatter
    imports shutil (and with it zlib, bz2 and lzma) to find the width: milliseconds on
    every command, for help that is rarely printed.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_width() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _Skipped:
    """Stands for the parser of a command that is not built: its arguments go nowhere."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of the command line; with ``only``, of that command alone.

    Each command's parser costs a few hundred microseconds to build, on every run; a
    run needs one. ``only`` naming no command gives the whole parser, so that argparse
    says what is wrong (and ``--help`` lists every command).
    """
    root_help = "runtime root (default: $PODD_ROOT, $XDG_RUNTIME_DIR/podd, /tmp/podd-<uid>)"

    parser = argparse.ArgumentParser(
        prog="podd",
        formatter_class=_HelpFormatter,
        description="Supervise trees of agent pods on this host.",
        epilog="Exit status: 0 ok, 1 failed, 2 bad usage, 3 no such pod or not running.",
    )
    parser.add_argument("--root", metavar="DIR", help=root_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    built: list[str] = []

    def command(
        name: str, fn: Callable[[Context], int], help: str, json: bool = False, epilog: str = ""
    ) -> Any:
        if only is not None and name != only:
            return _Skipped()
        built.append(name)
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog or None,
            formatter_class=_HelpFormatter,
        )
        # Added to each command, not inherited from parent parsers: every ArgumentParser
        # made costs a run a few hundred microseconds.
        p.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS, help=root_help)
        if json:
            p.add_argument("--json", action="store_true", help="print one JSON document")
        p.set_defaults(fn=fn)
        return p

    p = command("spawn", c.cmd_spawn, "start a pod (a root pod, or a child of --parent)", json=True)
    p.add_argument("name", help="pod name: ^[a-z0-9][a-z0-9_.-]{0,62}$, unique under the root")
    p.add_argument("--parent", metavar="P", help="the parent pod (default: $POD_NAME if set)")
    p.add_argument(
        "--scope",
        metavar="PATH[:read|:write]",
        action="append",
        default=[],
        help="a path the pod may read (default) or write; repeatable",
    )
    p.add_argument("--agent", metavar="CMD", help="command run by /bin/sh -c once per turn")
    p.add_argument("--cwd", metavar="DIR", help="working directory (default: this one)")
    p.add_argument("--task", metavar="TEXT", help="input of a first turn, run at once")
    p.add_argument(
        "--turn-timeout", metavar="S", type=_positive_float, help="turn time limit (default 1800)"
    )
    p.add_argument(
        "--wake-on-notify", action="store_true", help="run a turn when a notification arrives"
    )
    p.add_argument(
        "--restart",
        choices=["never", "on-failure", "always"],
        default="never",
        help="what the parent does when this pod dies (default: never)",
    )
    p.add_argument(
        "--nested-sandbox",
        action="store_true",
        help="the agent starts its own sandbox (bubblewrap: Codex, Claude Code's sandbox);"
        " podd confines it with mounts only, so that sandbox can run; writes outside the"
        " scope fail with EROFS ('Read-only file system') instead of EACCES",
    )
    p.add_argument(
        "--driver",
        choices=["auto", "shell", "claude", "codex"],
        default="auto",
        help="how the agent is run and read (default auto: claude or codex when CMD's "
        "first command is one of them, else shell)",
    )
    p.add_argument(
        "--env",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="an environment variable for the agent; repeatable",
    )
    p.add_argument(
        "--mcp",
        action="store_true",
        help="claude driver: give the agent podd's tools (podd mcp, acting as this pod)",
    )
    _loop_arguments(p, "--task")
    p.add_argument(
        "--gate",
        metavar="CMD",
        help="run /bin/sh -c CMD after a turn that would finish: only exit 0 lets it finish",
    )
    p.add_argument(
        "--gate-timeout",
        metavar="S",
        type=_positive_float,
        help="seconds the gate may take (default 60)",
    )
    p.add_argument(
        "--after",
        metavar="A[,B...]",
        help="run --task only once each of these children of the parent has finished a turn",
    )
    p.add_argument(
        "--max-running",
        metavar="N",
        type=_positive_int,
        help="at most N agent turns run at once in this pod's whole subtree",
    )
    p.add_argument(
        "--reclaim-interval",
        metavar="S",
        type=_positive_float,
        default=5.0,
        help="seconds between stale-pod sweeps of a root pod's tree (default 5)",
    )

    p = command(
        "ls",
        c.cmd_ls,
        "list every pod under the root",
        json=True,
        epilog="STATE is idle, running, stopping, unresponsive (process there, socket "
        "silent for 500 ms) or stale (process gone: 'podd reclaim' removes it).",
    )
    p.add_argument("--tree", action="store_true", help="show the pods as a tree")

    p = command("status", c.cmd_status, "show one pod", json=True)
    p.add_argument("name", help="the pod's name")

    p = command("send", c.cmd_send, "start a turn with TEXT as input", json=True)
    p.add_argument("name", help="the pod's name")
    p.add_argument("text", help="the turn's input (on stdin, after pending notifications)")
    p.add_argument(
        "--wait", action="store_true", help="wait for the turn: exit 0 finished, 1 errored"
    )
    p.add_argument(
        "--queue",
        action="store_true",
        help="if the pod is busy, queue the turn instead of failing with already_running",
    )
    p.add_argument(
        "--priority",
        metavar="N",
        type=int,
        default=0,
        help="with --queue: higher runs first, FIFO within a priority (default 0)",
    )
    p.add_argument(
        "--new-session",
        action="store_true",
        help="LLM drivers: start a new conversation instead of resuming the pod's",
    )
    _loop_arguments(p, "TEXT")

    p = command("output", c.cmd_output, "print what the pod's agent wrote, all turns")
    p.add_argument("name", help="the pod's name")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the pod stops")
    p.add_argument("--turn", metavar="N", type=int, help="only turn N")
    p.add_argument("--raw", action="store_true", help="the agent's own lines, as written")
    p.add_argument("--stderr", action="store_true", help="what the agent wrote on stderr")

    p = command(
        "notifications", c.cmd_notifications, "print and drain a pod's notifications", json=True
    )
    p.add_argument("name", nargs="?", help="default: $POD_NAME")
    p.add_argument("--peek", action="store_true", help="print without draining")

    p = command(
        "stop",
        c.cmd_stop,
        "stop a pod and its whole subtree, children first",
        json=True,
        epilog="Prints the outcome: clean; drained_with_discards (--drain: the turn "
        "finished, queued work was dropped); force_killed (something outlived --timeout "
        "and got SIGKILL); timeout (--no-kill: something outlived --timeout and was left "
        "running; exit 1). Exit 0 once every process of the subtree is gone.",
    )
    p.add_argument("name", help="the pod's name")
    p.add_argument(
        "--timeout",
        metavar="S",
        type=_positive_float,
        default=10.0,
        help="seconds before SIGKILL (default 10)",
    )
    p.add_argument("--drain", action="store_true", help="let an in-flight turn finish")
    p.add_argument(
        "--no-kill",
        action="store_true",
        help="never SIGKILL: report 'timeout' (exit 1) if something outlives --timeout",
    )

    p = command(
        "restart", c.cmd_restart, "bring a stopped or dead pod back from its journal", json=True
    )
    p.add_argument("name", help="the pod's name")

    p = command(
        "reclaim",
        c.cmd_reclaim,
        "remove dead pods: in NAME's registry, or across the root",
        json=True,
    )
    p.add_argument("name", nargs="?")
    p.add_argument(
        "--purge",
        action="store_true",
        help="with NAME: also delete what a stopped NAME keeps (its agent state dir, "
        "output and turn records)",
    )

    p = command(
        "result",
        c.cmd_result,
        "print a pod's last turn record (its agent's final message, cost, session)",
        json=True,
        epilog="Works on a stopped pod too, until its name is spawned again or "
        "'podd reclaim --purge NAME'. Exit 3 if the pod has no turn record.",
    )
    p.add_argument("name", help="the pod's name")
    p.add_argument("--turn", metavar="N", type=int, help="that turn instead of the last")

    p = command(
        "wait",
        c.cmd_wait,
        "wait until a pod has nothing running, queued or waiting; print its last turn",
        json=True,
        epilog="Exit 0 if the last turn finished, 1 if it errored or --timeout passed, "
        "3 if there is no such pod.",
    )
    p.add_argument("name", help="the pod's name")
    p.add_argument("--timeout", metavar="S", type=_positive_float, help="give up after S s")

    p = command(
        "events",
        c.cmd_events,
        "print the events applied under the root (or in NAME's subtree)",
        json=True,
        epilog="--json prints one object per line: {at, pod, event}. Without --follow, "
        "the recent events (each pod keeps its last 256).",
    )
    p.add_argument("name", nargs="?", help="only NAME and the pods below it")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing as they happen")

    p = command("top", c.cmd_top, "a live view of the root's pods; q quits")

    p = command(
        "mcp",
        c.cmd_mcp,
        "serve podd's tools to an MCP client on stdin/stdout",
        epilog="Add it to Claude Code with: claude mcp add podd -- podd mcp",
    )
    p.add_argument(
        "--as",
        dest="as_pod",
        metavar="NAME",
        help="act as pod NAME: spawn its children (default: $POD_NAME; none: root pods)",
    )
    if not built:
        return build_parser()
    return parser
