"""The ``podd`` command line.

Exit status: 0 success; 1 a failure explained on stderr; 2 bad usage; 3 the named pod
does not exist or is not running. ``--json`` prints one JSON document on stdout.

The CLI is a short-lived, synchronous client: it speaks plain JSON frames over blocking
sockets (``podd.client``) and reads the pods' files with ``json`` (``podd.records``).
Apart from starting a root pod, no command imports trio, cattrs, attrs, orjson, psutil
or (unless drawing on a terminal, or a tree) rich, so a command costs little more than
the interpreter's start-up. Commands import what they need when they run.
"""

from __future__ import annotations

import argparse
import os
import sys

from podd.cli.context import (
    EXIT_FAILED,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    Exit,
    print_json,
)
from podd.errors import PoddError, RootError, UsageError
from podd.paths import check_name

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

__all__ = ["build_parser", "command_word", "main"]


# --- Commands ---------------------------------------------------------------------


def cmd_spawn(ctx: Context) -> int:
    from podd import scope_arg

    args = ctx.args
    name = check_name(args.name)
    # An explicit --parent, even an empty one, is checked; $POD_NAME is the default.
    parent = args.parent if args.parent is not None else os.environ.get("POD_NAME") or None
    if parent is not None:
        check_name(parent)
    cwd = os.path.abspath(args.cwd) if args.cwd else os.getcwd()
    if not os.path.isdir(cwd):
        raise Exit(EXIT_FAILED, f"--cwd {cwd!r} is not a directory")
    try:
        rules = [scope_arg.parse(text, os.getcwd()) for text in args.scope]
    except ValueError as exc:
        raise Exit(EXIT_USAGE, f"--scope: {exc}") from exc
    if args.turn_timeout is not None and args.turn_timeout <= 0:
        raise Exit(EXIT_USAGE, "--turn-timeout must be a positive number of seconds")
    turn_timeout = args.turn_timeout if args.turn_timeout is not None else 1800.0
    if not parent and args.restart != "never":
        raise Exit(EXIT_USAGE, "--restart is a parent's policy: it needs --parent (or $POD_NAME)")
    if not parent and args.after:
        raise Exit(EXIT_USAGE, "--after names children of the parent: it needs --parent")
    if args.after and args.task is None:
        raise Exit(EXIT_USAGE, "--after holds back the pod's --task: give one")
    if args.until is None and (args.max_iterations or args.budget):
        raise Exit(EXIT_USAGE, "--max-iterations and --budget limit a loop: give --until")
    if args.until is not None and args.task is None:
        raise Exit(EXIT_USAGE, "--until makes --task a loop: give --task")
    if args.mcp and not _names_claude(args.driver, args.agent):
        raise Exit(
            EXIT_USAGE, "--mcp gives podd's tools to Claude Code: it needs the claude driver"
        )
    env = _env_arguments(args.env)
    after = [check_name(a.strip()) for a in (args.after or "").split(",") if a.strip()]
    loop_and_gate = {
        "driver": args.driver,
        "env": env,
        "mcp": args.mcp,
        "until": args.until,
        "max_iterations": args.max_iterations,
        "budget": args.budget,
        "gate": args.gate,
        "gate_timeout": args.gate_timeout or 60.0,
        "after": after,
        "max_running": args.max_running,
    }
    if parent:
        # A child is started by its parent: this command only asks (spawn's params).
        params = {
            **loop_and_gate,
            "name": name,
            "scope": rules or None,
            "agent": args.agent,
            "cwd": cwd if args.cwd else None,
            "task": args.task,
            "turn_timeout": turn_timeout,
            "wake_on_notify": args.wake_on_notify,
            "restart": args.restart,
            "nested_sandbox": args.nested_sandbox,
        }
        result = ctx.call(parent, "spawn", params, timeout=60.0)
    else:
        result = _spawn_root(ctx, name, cwd, rules, turn_timeout, loop_and_gate)
    if ctx.json:
        print_json({"name": result["name"], "pid": result["pid"], "socket": result["socket"]})
    else:
        print(f"{result['name']}\tpid {result['pid']}\t{result['socket']}")
    return EXIT_OK


def _names_claude(driver: str, agent: str | None) -> bool:
    if driver != "auto":
        return driver == "claude"
    from podd.drivers.words import command_name

    word = command_name(agent) if agent else None
    return bool(word) and os.path.basename(word or "") == "claude"


def _env_arguments(items: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key or not (key[0].isalpha() or key[0] == "_"):
            raise Exit(EXIT_USAGE, f"--env {item!r}: write KEY=VALUE (KEY a variable name)")
        if not all(c.isalnum() or c == "_" for c in key):
            raise Exit(EXIT_USAGE, f"--env {item!r}: {key!r} is not a variable name")
        env[key] = value
    return env


def _spawn_root(
    ctx: Context,
    name: str,
    cwd: str,
    rules: list[dict[str, Any]],
    turn_timeout: float,
    options: dict[str, Any],
) -> Any:
    # A root pod is a new interpreter that imports the runtime: what it takes to build
    # its spec is imported here.
    from podd import scope
    from podd.agent_command import check_agent
    from podd.paths import ensure_private_dir
    from podd.spawner import SpawnError, spawn_detached
    from podd.spec import PodSpec, agent_driver
    from protocol.messages import ScopeRule

    args = ctx.args
    driver = agent_driver(options["driver"], args.agent)
    if args.agent is not None:
        problem = check_agent(args.agent, cwd)
        if problem is None and driver != "shell":
            from podd.drivers import driver_for

            problem = driver_for(driver).check(args.agent)
        if problem:
            raise Exit(EXIT_FAILED, f"cannot spawn {name!r}: {problem}")
    try:
        ensure_private_dir(ctx.root)
    except RootError as exc:
        raise Exit(EXIT_FAILED, str(exc)) from exc
    spec = PodSpec(
        name=name,
        root=ctx.root,
        cwd=cwd,
        scope=[ScopeRule(**rule) for rule in rules] or scope.default_root_scope(cwd),
        agent=args.agent,
        task=args.task,
        turn_timeout=turn_timeout,
        wake_on_notify=args.wake_on_notify,
        restart=args.restart,
        reclaim_interval=args.reclaim_interval,
        nested_sandbox=args.nested_sandbox,
        driver=driver,
        env=options["env"],
        mcp=options["mcp"],
        until=options["until"],
        max_iterations=options["max_iterations"],
        budget=options["budget"],
        gate=options["gate"],
        gate_timeout=options["gate_timeout"],
        max_running=options["max_running"],
    )
    try:
        from podd.launch import run_pod

        ready = spawn_detached(spec, run_pod=run_pod)
    except SpawnError as exc:
        raise Exit(EXIT_FAILED, f"cannot spawn {name!r}: {exc.message} [{exc.code}]") from exc
    return {"name": name, "pid": ready.pid, "socket": ready.socket}


def cmd_ls(ctx: Context) -> int:
    from podd import inventory

    pods = inventory.scan(ctx.root)
    if ctx.json:
        print_json({"root": ctx.root, "pods": [p.to_dict() for p in pods]})
        return EXIT_OK
    from podd import render

    if ctx.args.tree:
        render.pod_tree(pods, ctx.root)
    else:
        render.pod_table(pods)
    return EXIT_OK


def cmd_status(ctx: Context) -> int:
    name = check_name(ctx.args.name)
    status = ctx.call(name, "status", timeout=2.0)
    if ctx.json:
        print_json(status)
    else:
        from podd import render

        render.status(status)
    return EXIT_OK


def cmd_send(ctx: Context) -> int:
    args = ctx.args
    name = check_name(args.name)
    wait = args.wait
    if args.until is None and (args.max_iterations or args.budget):
        raise Exit(EXIT_USAGE, "--max-iterations and --budget limit a loop: give --until")
    if args.priority and not args.queue:
        raise Exit(EXIT_USAGE, "--priority orders the queue: give --queue")
    params = {
        "text": args.text,
        "wait": wait,
        "queue": args.queue,
        "priority": args.priority,
        "new_session": args.new_session,
        "until": args.until,
        "max_iterations": args.max_iterations,
        "budget": args.budget,
    }
    result = ctx.call(name, "send", params, timeout=None if wait else 10.0)
    if ctx.json:
        print_json(result if wait else {"pod": name, **result})
    elif not wait:
        if result.get("queued"):
            print(f"{name}: queued (position {result['position']})")
        else:
            print(f"{name}: turn {result['turn']} started")
        return EXIT_OK
    else:
        from podd.cli.results import describe

        print(describe(name, result))
    if not wait:
        return EXIT_OK
    return EXIT_OK if result.get("outcome") == "finished" else EXIT_FAILED


def cmd_output(ctx: Context) -> int:
    from podd.cli.results import cmd_output as run

    return run(ctx)


def cmd_notifications(ctx: Context) -> int:
    name = ctx.args.name if ctx.args.name is not None else os.environ.get("POD_NAME")
    if name is None:
        raise Exit(EXIT_USAGE, "name a pod (or run inside a pod's turn, where $POD_NAME is set)")
    check_name(name)
    result = ctx.call(name, "notifications", {"peek": ctx.args.peek})
    if ctx.json:
        print_json(result)
    else:
        for item in result["notifications"]:
            print(item["text"])
    return EXIT_OK


def cmd_stop(ctx: Context) -> int:
    from podd import stopping

    name = check_name(ctx.args.name)
    if ctx.args.timeout <= 0:
        raise Exit(EXIT_USAGE, "--timeout must be a positive number of seconds")
    try:
        outcome = stopping.stop(
            ctx.root,
            name,
            timeout=ctx.args.timeout,
            drain=ctx.args.drain,
            kill=not ctx.args.no_kill,
        )
    except stopping.NotRunning as exc:
        raise Exit(EXIT_NOT_RUNNING, str(exc)) from exc
    finally:
        from podd.forkserver import stop_root_fork_server

        stop_root_fork_server(ctx.root)
    if ctx.json:
        print_json({"pod": name, "outcome": outcome})
    else:
        print(outcome)
    return EXIT_FAILED if outcome == "timeout" else EXIT_OK


def cmd_reclaim(ctx: Context) -> int:
    from podd import inventory

    if ctx.args.purge:
        from podd.cli.results import purge

        return purge(ctx)
    if ctx.args.name is not None:
        name = check_name(ctx.args.name)
        params = {"probe_timeout": inventory.PROBE_TIMEOUT}
        reclaimed = ctx.call(name, "reclaim_stale", params, timeout=10.0)["reclaimed"]
    else:
        from podd.forkserver import stop_root_fork_server

        reclaimed = inventory.sweep(ctx.root)
        stop_root_fork_server(ctx.root)
    if ctx.json:
        print_json({"reclaimed": reclaimed})
    elif not reclaimed:
        print("nothing to reclaim")
    else:
        for item in reclaimed:
            print(f"reclaimed {item['pod']} (by {item['by']}): {item['reason']}")
    return EXIT_OK


def cmd_restart(ctx: Context) -> int:
    from podd import restart

    name = check_name(ctx.args.name)
    try:
        result = restart.restart(ctx.root, name)
    except restart.RestartError as exc:
        raise Exit(exc.status, str(exc)) from exc
    if ctx.json:
        print_json(result)
    else:
        print(f"{result['name']}\tpid {result['pid']}\tincarnation {result['incarnation']}")
    return EXIT_OK


def cmd_result(ctx: Context) -> int:
    from podd.cli.results import cmd_result as run

    return run(ctx)


def cmd_wait(ctx: Context) -> int:
    from podd.cli.results import cmd_wait as run

    return run(ctx)


def cmd_events(ctx: Context) -> int:
    from podd.cli.events import cmd_events as run

    return run(ctx)


def cmd_top(ctx: Context) -> int:
    from podd.cli.top import cmd_top as run

    return run(ctx)


def cmd_mcp(ctx: Context) -> int:
    from podd.mcp_server import serve

    return serve(ctx.root, ctx.args.as_pod or os.environ.get("POD_NAME") or None)


# --- The parser -------------------------------------------------------------------


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


def command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names when that is plain: its first word, after nothing but
    ``--root DIR`` (or ``--root=DIR``); else None."""
    i = 0
    while i < len(argv) and (argv[i] == "--root" or argv[i].startswith("--root=")):
        i += 2 if argv[i] == "--root" else 1
    return argv[i] if i < len(argv) and not argv[i].startswith("-") else None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of the command line; with ``only``, of that command alone.

    Each command's parser costs a few hundred microseconds to build, on every run; a
    run needs one. ``only`` naming no command gives the whole parser, so that argparse
    says what is wrong (and ``--help`` lists every command).
    """
    root_help = "runtime root (default: $PODD_ROOT, $XDG_RUNTIME_DIR/podd, /tmp/podd-<uid>)"
    common = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
    common.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS, help=root_help)
    json_flag = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
    json_flag.add_argument("--json", action="store_true", help="print one JSON document")

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
        name: str, fn: Callable[[Context], int], help: str, *parents: Any, epilog: str = ""
    ) -> Any:
        if only is not None and name != only:
            return _Skipped()
        built.append(name)
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog or None,
            parents=[common, *parents],
            formatter_class=_HelpFormatter,
        )
        p.set_defaults(fn=fn)
        return p

    p = command("spawn", cmd_spawn, "start a pod (a root pod, or a child of --parent)", json_flag)
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
        cmd_ls,
        "list every pod under the root",
        json_flag,
        epilog="STATE is idle, running, stopping, unresponsive (process there, socket "
        "silent for 500 ms) or stale (process gone: 'podd reclaim' removes it).",
    )
    p.add_argument("--tree", action="store_true", help="show the pods as a tree")

    p = command("status", cmd_status, "show one pod", json_flag)
    p.add_argument("name", help="the pod's name")

    p = command("send", cmd_send, "start a turn with TEXT as input", json_flag)
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

    p = command("output", cmd_output, "print what the pod's agent wrote, all turns")
    p.add_argument("name", help="the pod's name")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the pod stops")
    p.add_argument("--turn", metavar="N", type=int, help="only turn N")
    p.add_argument("--raw", action="store_true", help="the agent's own lines, as written")
    p.add_argument("--stderr", action="store_true", help="what the agent wrote on stderr")

    p = command(
        "notifications", cmd_notifications, "print and drain a pod's notifications", json_flag
    )
    p.add_argument("name", nargs="?", help="default: $POD_NAME")
    p.add_argument("--peek", action="store_true", help="print without draining")

    p = command(
        "stop",
        cmd_stop,
        "stop a pod and its whole subtree, children first",
        json_flag,
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
        "restart", cmd_restart, "bring a stopped or dead pod back from its journal", json_flag
    )
    p.add_argument("name", help="the pod's name")

    p = command(
        "reclaim",
        cmd_reclaim,
        "remove dead pods: in NAME's registry, or across the root",
        json_flag,
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
        cmd_result,
        "print a pod's last turn record (its agent's final message, cost, session)",
        json_flag,
        epilog="Works on a stopped pod too, until its name is spawned again or "
        "'podd reclaim --purge NAME'. Exit 3 if the pod has no turn record.",
    )
    p.add_argument("name", help="the pod's name")
    p.add_argument("--turn", metavar="N", type=int, help="that turn instead of the last")

    p = command(
        "wait",
        cmd_wait,
        "wait until a pod has nothing running, queued or waiting; print its last turn",
        json_flag,
        epilog="Exit 0 if the last turn finished, 1 if it errored or --timeout passed, "
        "3 if there is no such pod.",
    )
    p.add_argument("name", help="the pod's name")
    p.add_argument("--timeout", metavar="S", type=_positive_float, help="give up after S s")

    p = command(
        "events",
        cmd_events,
        "print the events applied under the root (or in NAME's subtree)",
        json_flag,
        epilog="--json prints one object per line: {at, pod, event}. Without --follow, "
        "the recent events (each pod keeps its last 256).",
    )
    p.add_argument("name", nargs="?", help="only NAME and the pods below it")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing as they happen")

    p = command("top", cmd_top, "a live view of the root's pods; q quits")

    p = command(
        "mcp",
        cmd_mcp,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status; run as the program (``argv`` is
    None), end the process with it."""
    status = _run(argv)
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
    parser = build_parser(command_word(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if argv is None:
        from podd.proctitle import set_title

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
