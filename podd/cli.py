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
import json
import os
import sys

from podd.errors import PoddError, PodFailed, PodUnreachable, RootError, UsageError
from podd.paths import check_name, resolve_root

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3

USAGE_CODES = frozenset({"invalid_name", "invalid_params", "unknown_method", "invalid_json"})


class Exit(Exception):
    """Leave with ``status``, after printing ``message`` on stderr."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _fail_for(exc: PoddError, what: str) -> NoReturn:
    if isinstance(exc, UsageError):
        raise Exit(EXIT_USAGE, str(exc))
    if isinstance(exc, PodUnreachable):
        raise Exit(EXIT_NOT_RUNNING, f"{what} is not running ({exc})")
    if isinstance(exc, PodFailed):
        status = EXIT_USAGE if exc.code in USAGE_CODES else EXIT_FAILED
        if exc.code == "not_found":
            status = EXIT_NOT_RUNNING
        raise Exit(status, f"{exc.error.message} [{exc.code}]")
    raise Exit(EXIT_FAILED, str(exc))


class Context:
    """What every command needs: the root and ways to reach pods under it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = resolve_root(getattr(args, "root", None))
        self.json = bool(getattr(args, "json", False))

    def pod_dir(self, name: str) -> str:
        return os.path.join(self.root, name)

    def socket(self, name: str) -> str:
        return os.path.join(self.root, name, "sock")

    def _process_alive(self, name: str) -> bool:
        from podd.procfs import is_alive
        from podd.records import read_pod_record

        try:
            record = read_pod_record(os.path.join(self.pod_dir(name), "pod.json"))
        except (OSError, ValueError):
            return False
        return is_alive(record.pid, record.start_time)

    def call(self, name: str, method: str, params: Any = None, timeout: float | None = 10.0) -> Any:
        from podd.client import call

        try:
            check_name(name)
            return call(self.socket(name), method, params, timeout=timeout)
        except PodUnreachable as exc:
            if not os.path.isdir(self.pod_dir(name)):
                raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {self.root}") from exc
            if self._process_alive(name):
                raise Exit(
                    EXIT_FAILED, f"pod {name!r} is unresponsive: its process lives but {exc}"
                ) from exc
            _fail_for(exc, f"pod {name!r}")
        except PoddError as exc:
            _fail_for(exc, f"pod {name!r}")


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
    if parent:
        # A child is started by its parent: this command only asks (spawn's params).
        params = {
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
        result = _spawn_root(ctx, name, cwd, rules, turn_timeout)
    if ctx.json:
        _print_json({"name": result["name"], "pid": result["pid"], "socket": result["socket"]})
    else:
        print(f"{result['name']}\tpid {result['pid']}\t{result['socket']}")
    return EXIT_OK


def _spawn_root(
    ctx: Context, name: str, cwd: str, rules: list[dict[str, Any]], turn_timeout: float
) -> Any:
    # A root pod is a new interpreter that imports the runtime: what it takes to build
    # its spec is imported here.
    from podd import scope
    from podd.agent_command import check_agent
    from podd.paths import ensure_private_dir
    from podd.spawner import SpawnError, spawn_detached
    from podd.spec import PodSpec
    from protocol.messages import ScopeRule

    args = ctx.args
    if args.agent is not None:
        problem = check_agent(args.agent, cwd)
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
        _print_json({"root": ctx.root, "pods": [p.to_dict() for p in pods]})
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
        _print_json(status)
    else:
        from podd import render

        render.status(status)
    return EXIT_OK


def cmd_send(ctx: Context) -> int:
    name = check_name(ctx.args.name)
    wait = ctx.args.wait
    params = {"text": ctx.args.text, "wait": wait}
    result = ctx.call(name, "send", params, timeout=None if wait else 10.0)
    if not wait:
        print(f"{name}: turn {result['turn']} started")
        return EXIT_OK
    print(f"{name}: {result['message']}")
    return EXIT_OK if result["finished"] else EXIT_FAILED


def cmd_output(ctx: Context) -> int:
    from podd import output

    name = check_name(ctx.args.name)
    directory = ctx.pod_dir(name)
    if not os.path.isdir(directory):
        raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {ctx.root}")
    output.show(directory, follow=ctx.args.follow, out=sys.stdout.buffer)
    return EXIT_OK


def cmd_notifications(ctx: Context) -> int:
    name = ctx.args.name if ctx.args.name is not None else os.environ.get("POD_NAME")
    if name is None:
        raise Exit(EXIT_USAGE, "name a pod (or run inside a pod's turn, where $POD_NAME is set)")
    check_name(name)
    result = ctx.call(name, "notifications", {"peek": ctx.args.peek})
    if ctx.json:
        _print_json(result)
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
        _print_json({"pod": name, "outcome": outcome})
    else:
        print(outcome)
    return EXIT_FAILED if outcome == "timeout" else EXIT_OK


def cmd_reclaim(ctx: Context) -> int:
    from podd import inventory

    if ctx.args.name is not None:
        name = check_name(ctx.args.name)
        params = {"probe_timeout": inventory.PROBE_TIMEOUT}
        reclaimed = ctx.call(name, "reclaim_stale", params, timeout=10.0)["reclaimed"]
    else:
        from podd.forkserver import stop_root_fork_server

        reclaimed = inventory.sweep(ctx.root)
        stop_root_fork_server(ctx.root)
    if ctx.json:
        _print_json({"reclaimed": reclaimed})
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
        _print_json(result)
    else:
        print(f"{result['name']}\tpid {result['pid']}\tincarnation {result['incarnation']}")
    return EXIT_OK


# --- The parser -------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


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

    p = command("send", cmd_send, "start a turn with TEXT as input")
    p.add_argument("name", help="the pod's name")
    p.add_argument("text", help="the turn's input (on stdin, after pending notifications)")
    p.add_argument(
        "--wait", action="store_true", help="wait for the turn: exit 0 finished, 1 errored"
    )

    p = command("output", cmd_output, "print what the pod's agent wrote, all turns")
    p.add_argument("name", help="the pod's name")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the pod stops")

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
