"""The MCP server of ``podd mcp`` and its tools, one per CLI command.

Each tool turns its typed parameters into a command line (options first, then ``--``
and the positional arguments, so no text is taken for an option), runs it through
``CliRunner`` and hands back the command's JSON document. A failed command becomes a
``ToolError`` naming the podd error code. Where the CLI reports a turn that errored
with exit status 1 and the turn's record on stdout (``send --wait``, ``wait``,
``result``), the record is the result, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

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

Name = Annotated[
    str,
    Field(
        description="A pod's name: lower-case letters, digits, '_', '.', '-', starting "
        "with a letter or digit, at most 63 characters."
    ),
]


def _instructions(as_pod: str | None) -> str:
    who = (
        f"You act as pod '{as_pod}': pods you spawn are its children, and what they do "
        "reaches you as its notifications (read_notifications)."
        if as_pod
        else "You act for no pod: pods you spawn are root pods, each a tree of its own."
    )
    return (
        "podd supervises trees of agent pods on this host. A pod is a process that runs "
        "its agent command once per turn (the turn's text is the agent's input) and may "
        "spawn child pods, giving them part of its filesystem scope. When a child's turn "
        "ends, its parent gets a notification. " + who + " Tool errors start with a podd "
        "error code (already_exists, not_found, scope_not_subset, invalid_params, ...)."
    )


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


def build_server(cli: CliRunner) -> MCPServer:
    """The MCP server whose tools run ``podd`` commands through ``cli``."""
    server: MCPServer = MCPServer(
        "podd", instructions=_instructions(cli.as_pod), log_level="WARNING"
    )

    @server.tool()
    async def spawn_pod(
        name: Name,
        agent: Annotated[
            str | None,
            Field(
                description="The command line run by /bin/sh -c once per turn; the turn's "
                "input reaches it on stdin (a claude or codex command gets it as its "
                "prompt). Omit it for a pure supervisor, which runs no turns."
            ),
        ] = None,
        task: Annotated[
            str | None, Field(description="The input of a first turn, started at once.")
        ] = None,
        scope: Annotated[
            tuple[str, ...],
            Field(
                description="Paths the pod may use: 'PATH' or 'PATH:read' to read, "
                "'PATH:write' to write (relative to this server's working directory). "
                "A child's paths must lie inside its parent's scope. Default: a root pod "
                "writes its cwd; a child reads its parent's scope and writes nothing."
            ),
        ] = (),
        cwd: Annotated[
            str | None,
            Field(description="The agent's working directory (default: this server's)."),
        ] = None,
        driver: Annotated[
            Literal["auto", "shell", "claude", "codex"],
            Field(
                description="How the agent is run: 'auto' picks claude or codex when "
                "the command runs one of them, else shell."
            ),
        ] = "auto",
        env: Annotated[
            dict[str, str] | None, Field(description="Environment variables for the agent.")
        ] = None,
        until: Annotated[
            str | None,
            Field(
                description="Repeat the task, as one turn, until a result contains this "
                "token (a result containing BLOCKED ends it as errored)."
            ),
        ] = None,
        max_iterations: Annotated[
            int | None,
            Field(ge=1, description="With until: give up after this many iterations (10)."),
        ] = None,
        after: Annotated[
            tuple[str, ...],
            Field(
                description="Pods with the same parent that must each finish a turn "
                "before this pod's task starts."
            ),
        ] = (),
        wake_on_notify: Annotated[
            bool,
            Field(description="Run a turn whenever a notification reaches the idle pod."),
        ] = False,
        turn_timeout: Annotated[
            float | None,
            Field(gt=0, description="Seconds a turn may run before it is killed (1800)."),
        ] = None,
        mcp: Annotated[
            bool,
            Field(
                description="Claude agents: give the agent these podd tools, acting as "
                "the new pod (so it can spawn and drive pods of its own)."
            ),
        ] = False,
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
        if until is not None:
            options.append(f"--until={until}")
        if max_iterations is not None:
            options.append(f"--max-iterations={max_iterations}")
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
        name: Name,
        text: Annotated[str, Field(min_length=1, description="The turn's input.")],
        wait: Annotated[
            bool,
            Field(description="Block until the turn ends and return its record."),
        ] = False,
        queue: Annotated[
            bool,
            Field(description="If the pod is busy, queue the turn instead of refusing."),
        ] = False,
        priority: Annotated[
            int, Field(description="With queue: higher runs first, FIFO within a priority.")
        ] = 0,
        new_session: Annotated[
            bool,
            Field(description="LLM agents: start a new conversation instead of resuming."),
        ] = False,
        until: Annotated[
            str | None,
            Field(
                description="Repeat the input, as one turn, until a result contains this "
                "token (a result containing BLOCKED ends it as errored)."
            ),
        ] = None,
        max_iterations: Annotated[
            int | None,
            Field(ge=1, description="With until: give up after this many iterations (10)."),
        ] = None,
        budget_s: Annotated[
            float | None,
            Field(gt=0, description="With until: seconds for all iterations together."),
        ] = None,
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
        if until is not None:
            options.append(f"--until={until}")
        if max_iterations is not None:
            options.append(f"--max-iterations={max_iterations}")
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
        name: Name,
        timeout_s: Annotated[
            float, Field(gt=0, description="Seconds to wait before giving up.")
        ] = 600.0,
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
        name: Name,
        turn: Annotated[
            int | None, Field(ge=1, description="That turn's record instead of the last.")
        ] = None,
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
        name: Name,
        turn: Annotated[int | None, Field(ge=1, description="Only this turn.")] = None,
        stderr: Annotated[
            bool, Field(description="What the agent wrote on stderr instead.")
        ] = False,
        raw: Annotated[
            bool, Field(description="The agent's own lines, as written (LLM agents).")
        ] = False,
        max_chars: Annotated[
            int, Field(ge=1, description="Keep only the last this many characters.")
        ] = 20000,
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
    async def pod_status(name: Name) -> dict[str, Any]:
        """One pod in detail: state, pid, parent, turns, scope rules, children,
        notifications_pending, queue, last_turn (its record), session_id, cost_usd."""
        return await _run(cli, "status", [], [name])

    @server.tool()
    async def read_notifications(
        name: Annotated[
            str | None,
            Field(description="Whose notifications (default: the pod this server acts as)."),
        ] = None,
        peek: Annotated[bool, Field(description="Read them without removing them.")] = False,
    ) -> dict[str, Any]:
        """A pod's notifications, oldest first, removed once read (unless peek):
        {notifications: [{text, event}]}. A notification says a child finished a turn
        (with a summary of its result), errored, or shut down."""
        options = ["--peek"] if peek else []
        pod = name if name is not None else cli.as_pod
        return await _run(cli, "notifications", options, [] if pod is None else [pod])

    @server.tool()
    async def stop_pod(
        name: Name,
        timeout_s: Annotated[
            float, Field(gt=0, description="Seconds before what is left is killed.")
        ] = 10.0,
        drain: Annotated[
            bool,
            Field(description="Let a turn in progress finish (its queue is discarded)."),
        ] = False,
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
    async def reclaim_pods(
        name: Annotated[
            str | None,
            Field(description="Reclaim only in this pod's registry (default: the whole root)."),
        ] = None,
    ) -> dict[str, Any]:
        """Remove pods whose process died and return their scope to their parents:
        {reclaimed: [{pod, by, reason}]}."""
        return await _run(cli, "reclaim", [], [] if name is None else [name])

    return server
