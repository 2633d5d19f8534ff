"""The MCP server of ``podd mcp`` and its tools, one per CLI command.

Each tool turns its typed parameters into a command line (options first, then ``--``
and the positional arguments, so no text is taken for an option), runs it through
``CliRunner`` and hands back the command's JSON document. A failed command becomes a
``ToolError`` naming the podd error code. Where the CLI reports a turn that errored
with exit status 1 and the turn's record on stdout (``send --wait``, ``wait``,
``result``), the record is the result, not an error.

A tool's docstring is its description; its parameters' types, bounds and descriptions
are ``podd.mcp_server.schema``'s, and so are the server's instructions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

# The tools' signatures name the parameter types of ``schema``: it is imported at run
# time, as the tools' JSON schemas are made from those names.
from podd.mcp_server import schema
from podd.mcp_server.runner import EXIT_FAILED, CliRunner, failure_of, json_document

__all__ = ["build_server"]

QUICK = 60.0
"""Seconds a command that only asks (status, ls, output, ...) may take."""

SPAWN = 120.0
"""Seconds ``spawn`` may take: the parent has 60 s to start a child."""

TURN = 7200.0
"""Seconds ``send --wait`` waits for its turn before the tool gives up (the turn goes
on; ``wait_for_pod`` waits again)."""

MARGIN = 30.0
"""Seconds a command with a timeout of its own gets past that timeout."""


async def _run(
    cli: CliRunner,
    command: str,
    options: Sequence[str],
    positional: Sequence[str] = (),
    *,
    bound: float = QUICK,
    record_on_failure: bool = False,
    after_timeout: str = "",
) -> dict[str, Any]:
    """Run ``podd COMMAND OPTIONS... --json -- POSITIONAL...``; its JSON document.

    ``after_timeout`` is said after the error of a run that outlived ``bound``.
    """
    args = [*options, "--json"]
    if positional:
        args += ["--", *positional]
    run = await cli.run(command, args, bound=bound)
    document = json_document(run.stdout)
    if run.status == 0:
        return document if document is not None else {"message": run.stdout.strip()}
    if record_on_failure and run.status == EXIT_FAILED and document is not None:
        return document
    text = failure_of(run).text()
    raise ToolError(f"{text}; {after_timeout}" if run.status is None and after_timeout else text)


def _loop_options(until: str | None, max_iterations: int | None) -> list[str]:
    """The options of a turn repeated ``until`` a token shows (spawn's and send's)."""
    options = [] if until is None else [f"--until={until}"]
    if max_iterations is not None:
        options.append(f"--max-iterations={max_iterations}")
    return options


def build_server(cli: CliRunner) -> MCPServer:
    """The MCP server whose tools run ``podd`` commands through ``cli``."""
    server: MCPServer = MCPServer(
        "podd", instructions=schema.instructions(cli.as_pod), log_level="WARNING"
    )

    @server.tool()
    async def spawn_pod(
        name: schema.Name,
        agent: schema.Agent = None,
        task: schema.Task = None,
        scope: schema.Scope = (),
        cwd: schema.Cwd = None,
        driver: schema.Driver = "auto",
        env: schema.Env = None,
        until: schema.SpawnUntil = None,
        max_iterations: schema.MaxIterations = None,
        after: schema.After = (),
        wake_on_notify: schema.WakeOnNotify = False,
        turn_timeout: schema.TurnTimeout = None,
        mcp: schema.Mcp = False,
    ) -> dict[str, Any]:
        """Start a new pod and return {name, pid, socket} once it accepts requests.

        The pod is a child of the pod this server acts as (else a root pod). Give it
        work with `task` now or `send_to_pod` later; its turn results reach its parent
        as notifications. Refusals: already_exists (name taken), scope_not_subset or
        write_conflict (scope), not_found (a missing pod in `after`).
        """
        options = []
        if cli.as_pod is not None:
            options.append(f"--parent={cli.as_pod}")
        if agent is not None:
            options.append(f"--agent={agent}")
        if task is not None:
            options.append(f"--task={task}")
        options += [f"--scope={rule}" for rule in scope]
        if cwd is not None:
            options.append(f"--cwd={cwd}")
        if driver != "auto":
            options.append(f"--driver={driver}")
        for key, value in sorted((env or {}).items()):
            if not key or "=" in key:
                raise ToolError(f"invalid_params: {key!r} cannot name an environment variable")
            options.append(f"--env={key}={value}")
        options += _loop_options(until, max_iterations)
        if after:
            options.append(f"--after={','.join(after)}")
        if wake_on_notify:
            options.append("--wake-on-notify")
        if turn_timeout is not None:
            options.append(f"--turn-timeout={turn_timeout}")
        if mcp:
            options.append("--mcp")
        return await _run(cli, "spawn", options, [name], bound=SPAWN)

    @server.tool()
    async def send_to_pod(
        name: schema.Name,
        text: schema.Text,
        wait: schema.Wait = False,
        queue: schema.Queue = False,
        priority: schema.Priority = 0,
        new_session: schema.NewSession = False,
        until: schema.SendUntil = None,
        max_iterations: schema.MaxIterations = None,
        budget_s: schema.Budget = None,
    ) -> dict[str, Any]:
        """Start a turn of a pod with `text` as its input.

        Without `wait` it returns at once: {pod, turn}, or {pod, queued, position}
        with `queue` when the pod is busy. With `wait` it returns the turn's record
        when the turn ends: turn, outcome (finished or errored), cause, exit_code,
        result (the agent's final message), duration_s, cost_usd, usage, session_id.
        An errored turn is a result, not a tool error. Refusals: already_running (the
        pod is in a turn: use queue, or wait_for_pod first), no_agent, not_found.
        """
        options = []
        if wait:
            options.append("--wait")
        if queue:
            options += ["--queue", f"--priority={priority}"]
        if new_session:
            options.append("--new-session")
        options += _loop_options(until, max_iterations)
        if budget_s is not None:
            options.append(f"--budget={budget_s}")
        return await _run(
            cli,
            "send",
            options,
            [name, text],
            bound=TURN if wait else QUICK,
            record_on_failure=wait,
            after_timeout="the turn goes on in the pod: wait_for_pod waits for it",
        )

    @server.tool()
    async def wait_for_pod(
        name: schema.Name,
        timeout_s: schema.WaitTimeout = 600.0,
    ) -> dict[str, Any]:
        """Wait until a pod has nothing running, queued or waiting; return {pod,
        last_turn}: the record of its last turn (outcome finished or errored, result,
        cost_usd, ...), null if it has run none.

        Use it after send_to_pod without wait, or for a pod started with a task. An
        errored turn is a result; still busy after timeout_s is a tool error.
        """
        options = [f"--timeout={timeout_s}"]
        return await _run(
            cli, "wait", options, [name], bound=timeout_s + MARGIN, record_on_failure=True
        )

    @server.tool()
    async def pod_result(
        name: schema.Name,
        turn: schema.ResultTurn = None,
    ) -> dict[str, Any]:
        """The record of a pod's last (or given) turn: turn, outcome (finished or
        errored), cause, exit_code, result (the agent's final message), duration_s,
        cost_usd, usage, session_id.

        Works for a stopped pod too. not_found if the pod has no such turn.
        """
        options = [] if turn is None else [f"--turn={turn}"]
        return await _run(cli, "result", options, [name], record_on_failure=True)

    @server.tool()
    async def read_pod_output(
        name: schema.Name,
        turn: schema.OutputTurn = None,
        stderr: schema.Stderr = False,
        raw: schema.Raw = False,
        max_chars: schema.MaxChars = 20000,
    ) -> dict[str, Any]:
        """What a pod's agent wrote, all turns in order (or one turn): {pod, output,
        truncated, omitted_chars}.

        Use it to see how a turn went in detail; for the final message alone,
        pod_result is shorter. When the output is longer than max_chars, its start is
        cut and `truncated` is true.
        """
        options = []
        if turn is not None:
            options.append(f"--turn={turn}")
        if stderr:
            options.append("--stderr")
        if raw:
            options.append("--raw")
        run = await cli.run("output", [*options, "--", name], bound=QUICK)
        if run.status != 0:
            raise ToolError(failure_of(run).text())
        omitted = max(0, len(run.stdout) - max_chars)
        document: dict[str, Any] = {
            "pod": name,
            "output": run.stdout[omitted:],
            "truncated": omitted > 0,
            "omitted_chars": omitted,
        }
        if omitted:
            document["note"] = (
                f"the first {omitted} characters were cut; ask for one turn or a "
                "larger max_chars to see them"
            )
        return document

    @server.tool()
    async def list_pods() -> dict[str, Any]:
        """Every pod under the root: {root, pods: [{name, state, pid, parent, socket,
        ...}]}. state is idle, running, waiting, stopping, unresponsive (process there,
        socket silent) or stale (process gone: reclaim_pods removes it)."""
        return await _run(cli, "ls", [])

    @server.tool()
    async def pod_status(name: schema.Name) -> dict[str, Any]:
        """One pod in detail: state, pid, parent, turns, scope rules, children,
        notifications_pending, queue, last_turn (its record), session_id, cost_usd."""
        return await _run(cli, "status", [], [name])

    @server.tool()
    async def read_notifications(
        name: schema.NotificationsOf = None, peek: schema.Peek = False
    ) -> dict[str, Any]:
        """A pod's notifications, oldest first, removed once read (unless peek):
        {notifications: [{text, event}]}. A notification says a child finished a turn
        (with a summary of its result), errored, or shut down."""
        options = ["--peek"] if peek else []
        pod = name if name is not None else cli.as_pod
        return await _run(cli, "notifications", options, [] if pod is None else [pod])

    @server.tool()
    async def stop_pod(
        name: schema.Name,
        timeout_s: schema.StopTimeout = 10.0,
        drain: schema.Drain = False,
    ) -> dict[str, Any]:
        """Stop a pod and its whole subtree, children first: {pod, outcome}. outcome is
        clean, drained_with_discards or force_killed. A turn in progress is cancelled
        unless drain. Its output and results stay readable."""
        options = [f"--timeout={timeout_s}"]
        if drain:
            options.append("--drain")
        return await _run(
            cli, "stop", options, [name], bound=2 * timeout_s + MARGIN, record_on_failure=True
        )

    @server.tool()
    async def reclaim_pods(name: schema.ReclaimIn = None) -> dict[str, Any]:
        """Remove pods whose process died and return their scope to their parents:
        {reclaimed: [{pod, by, reason}]}."""
        return await _run(cli, "reclaim", [], [] if name is None else [name])

    return server
