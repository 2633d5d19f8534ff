"""The commands: one function each, taking the parsed ``Context`` and returning the exit
status. Each imports what it needs when it runs."""

from __future__ import annotations

import os

from podd.cli.context import (
    EXIT_FAILED,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    Exit,
    print_json,
)
from podd.core.names import check_name
from podd.errors import RootError

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def cmd_spawn(ctx: Context) -> int:
    from podd.core import scope_arg

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
    if args.task is not None and not args.task.strip() and _names_llm(args.driver, args.agent):
        raise Exit(EXIT_USAGE, "--task is empty: an LLM agent needs input")
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


def _named_driver(driver: str, agent: str | None) -> str:
    """The driver ``--driver`` names, or for ``auto`` what CMD's first command says."""
    if driver != "auto":
        return driver
    from podd.drivers.words import command_name

    word = os.path.basename(command_name(agent) or "") if agent else ""
    return word if word in ("claude", "codex") else "shell"


def _names_claude(driver: str, agent: str | None) -> bool:
    return _named_driver(driver, agent) == "claude"


def _names_llm(driver: str, agent: str | None) -> bool:
    return _named_driver(driver, agent) != "shell"


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
    # A root pod is forked from this process and imports the runtime itself: what it
    # takes to build its spec is imported here, without the cyclic garbage collector
    # (a short-lived process; the pod turns it on again: ``podd.runtime.launch``).
    import gc

    gc.disable()
    from podd.core import scope
    from podd.core.spec import PodSpec, agent_driver
    from podd.spawn.agent_command import check_agent
    from podd.spawn.spawner import SpawnError, spawn_detached
    from podd.store.paths import ensure_private_dir
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
        from podd.runtime.launch import run_pod
        from podd.spawn import prestart

        ready = spawn_detached(spec, run_pod=run_pod, prestarted=prestart.take())
    except SpawnError as exc:
        raise Exit(EXIT_FAILED, f"cannot spawn {name!r}: {exc.message} [{exc.code}]") from exc
    return {"name": name, "pid": ready.pid, "socket": ready.socket}


def cmd_ls(ctx: Context) -> int:
    from podd.cli import inventory

    pods = inventory.scan(ctx.root)
    if ctx.json:
        print_json({"root": ctx.root, "pods": [p.to_dict() for p in pods]})
        return EXIT_OK
    from podd.cli import render

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
        from podd.cli import render

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
    from podd.cli import stopping

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
        from podd.spawn.forkserver import stop_root_fork_server

        stop_root_fork_server(ctx.root)
    if ctx.json:
        print_json({"pod": name, "outcome": outcome})
    else:
        print(outcome)
    return EXIT_FAILED if outcome == "timeout" else EXIT_OK


def cmd_reclaim(ctx: Context) -> int:
    from podd.cli import inventory

    if ctx.args.purge:
        from podd.cli.results import purge

        return purge(ctx)
    if ctx.args.name is not None:
        name = check_name(ctx.args.name)
        from podd.core.probing import PROBE_TIMEOUT

        params = {"probe_timeout": PROBE_TIMEOUT}
        reclaimed = ctx.call(name, "reclaim_stale", params, timeout=10.0)["reclaimed"]
    else:
        from podd.spawn.forkserver import stop_root_fork_server

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
    from podd.cli import restart

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
