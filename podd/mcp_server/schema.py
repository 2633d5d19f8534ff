"""What an MCP client is told of podd's tools, apart from each tool's own docstring.

``instructions`` is the server's description. The types below are the tools'
parameters: each is ``Annotated`` with the pydantic ``Field`` that gives its bounds and
its description, from which the tool's JSON schema is made (the parameter's name and
default are in the tool's signature, in ``podd.mcp_server.tools``). A module that uses
them in a signature imports them at run time, not under ``TYPE_CHECKING``: the schema
is made from the names the signature's annotations resolve to.

Imports pydantic, so only the server imports it (``podd.mcp_server.serve``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

__all__ = [
    "After",
    "Agent",
    "Budget",
    "Cwd",
    "Drain",
    "Driver",
    "Env",
    "MaxChars",
    "MaxIterations",
    "Mcp",
    "Name",
    "NewSession",
    "NotificationsOf",
    "OutputTurn",
    "Peek",
    "Priority",
    "Queue",
    "Raw",
    "ReclaimIn",
    "ResultTurn",
    "Scope",
    "SendUntil",
    "SpawnUntil",
    "Stderr",
    "StopTimeout",
    "Task",
    "Text",
    "TurnTimeout",
    "Wait",
    "WaitTimeout",
    "WakeOnNotify",
    "instructions",
]


def instructions(as_pod: str | None) -> str:
    """The server's description, for a server acting as ``as_pod`` (None: no pod)."""
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


Name = Annotated[
    str,
    Field(
        description="A pod's name: lower-case letters, digits, '_', '.', '-', starting "
        "with a letter or digit, at most 63 characters."
    ),
]

MaxIterations = Annotated[
    int | None,
    Field(ge=1, description="With until: give up after this many iterations (10)."),
]

# --- spawn_pod --------------------------------------------------------------------

Agent = Annotated[
    str | None,
    Field(
        description="The command line run by /bin/sh -c once per turn; the turn's "
        "input reaches it on stdin (a claude or codex command gets it as its "
        "prompt). Omit it for a pure supervisor, which runs no turns."
    ),
]

Task = Annotated[str | None, Field(description="The input of a first turn, started at once.")]

Scope = Annotated[
    tuple[str, ...],
    Field(
        description="Paths the pod may use: 'PATH' or 'PATH:read' to read, "
        "'PATH:write' to write (relative to this server's working directory). "
        "A child's paths must lie inside its parent's scope. Default: a root pod "
        "writes its cwd; a child reads its parent's scope and writes nothing."
    ),
]

Cwd = Annotated[
    str | None,
    Field(description="The agent's working directory (default: this server's)."),
]

Driver = Annotated[
    Literal["auto", "shell", "claude", "codex"],
    Field(
        description="How the agent is run: 'auto' picks claude or codex when "
        "the command runs one of them, else shell."
    ),
]

Env = Annotated[dict[str, str] | None, Field(description="Environment variables for the agent.")]

SpawnUntil = Annotated[
    str | None,
    Field(
        description="Repeat the task, as one turn, until a result contains this "
        "token (a result containing BLOCKED ends it as errored)."
    ),
]

After = Annotated[
    tuple[str, ...],
    Field(
        description="Pods with the same parent that must each finish a turn "
        "before this pod's task starts."
    ),
]

WakeOnNotify = Annotated[
    bool,
    Field(description="Run a turn whenever a notification reaches the idle pod."),
]

TurnTimeout = Annotated[
    float | None,
    Field(gt=0, description="Seconds a turn may run before it is killed (1800)."),
]

Mcp = Annotated[
    bool,
    Field(
        description="Claude agents: give the agent these podd tools, acting as "
        "the new pod (so it can spawn and drive pods of its own)."
    ),
]

# --- send_to_pod ------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1, description="The turn's input.")]

Wait = Annotated[bool, Field(description="Block until the turn ends and return its record.")]

Queue = Annotated[
    bool,
    Field(description="If the pod is busy, queue the turn instead of refusing."),
]

Priority = Annotated[
    int, Field(description="With queue: higher runs first, FIFO within a priority.")
]

NewSession = Annotated[
    bool,
    Field(description="LLM agents: start a new conversation instead of resuming."),
]

SendUntil = Annotated[
    str | None,
    Field(
        description="Repeat the input, as one turn, until a result contains this "
        "token (a result containing BLOCKED ends it as errored)."
    ),
]

Budget = Annotated[
    float | None,
    Field(gt=0, description="With until: seconds for all iterations together."),
]

# --- wait_for_pod, pod_result, read_pod_output ----------------------------------

WaitTimeout = Annotated[float, Field(gt=0, description="Seconds to wait before giving up.")]

ResultTurn = Annotated[
    int | None, Field(ge=1, description="That turn's record instead of the last.")
]

OutputTurn = Annotated[int | None, Field(ge=1, description="Only this turn.")]

Stderr = Annotated[bool, Field(description="What the agent wrote on stderr instead.")]

Raw = Annotated[bool, Field(description="The agent's own lines, as written (LLM agents).")]

MaxChars = Annotated[int, Field(ge=1, description="Keep only the last this many characters.")]

# --- read_notifications, stop_pod, reclaim_pods -----------------------------------

NotificationsOf = Annotated[
    str | None,
    Field(description="Whose notifications (default: the pod this server acts as)."),
]

Peek = Annotated[bool, Field(description="Read them without removing them.")]

StopTimeout = Annotated[float, Field(gt=0, description="Seconds before what is left is killed.")]

Drain = Annotated[
    bool,
    Field(description="Let a turn in progress finish (its queue is discarded)."),
]

ReclaimIn = Annotated[
    str | None,
    Field(description="Reclaim only in this pod's registry (default: the whole root)."),
]
