"""What a pod is started with (``PodSpec``) and what it records about itself (``PodInfo``).

The spawner hands the spec to the new process as one JSON argument. The pod writes
``pod.json`` into its directory once its socket listens: the spec plus its pid, start
time and incarnation. ``podd ls``, ``reclaim`` and ``restart`` read that file.
"""

from __future__ import annotations

import os

import attrs

from protocol import ScopeRule
from protocol.messages import RestartPolicy
from protocol.values import Value

__all__ = [
    "Ancestor",
    "PodInfo",
    "PodSpec",
    "agent_driver",
    "slot_holders_below",
]


@attrs.frozen(repr=False, eq=False)
class Ancestor(Value):
    """A pod above this one: where to turn if every pod below it has died."""

    name: str
    socket: str


@attrs.frozen(repr=False, eq=False)
class PodSpec(Value):
    name: str
    root: str
    cwd: str
    scope: list[ScopeRule]
    agent: str | None = None
    task: str | None = None
    turn_timeout: float = 1800.0
    wake_on_notify: bool = False
    restart: RestartPolicy = "never"
    parent: str | None = None
    parent_socket: str | None = None
    parent_pid: int = 0
    ancestors: list[Ancestor] = attrs.field(factory=list)
    """Nearest first, the parent excluded."""
    incarnation: int = 1
    reclaim_interval: float = 5.0
    restore: bool = False
    """Start from the state the previous incarnation left (``podd restart``)."""
    nested_sandbox: bool = False
    """Confine turns by mounts alone, so that a sandbox the agent starts can run
    (``podd spawn --nested-sandbox``; see ``podd.sandbox``)."""
    driver: str = "shell"
    """How the agent is run and read: ``shell``, ``claude`` or ``codex`` (``auto`` is
    resolved before the spec is made)."""
    env: dict[str, str] = attrs.field(factory=dict)
    """Variables set for the agent (``spawn --env``)."""
    mcp: bool = False
    """Give a claude agent podd's tools, acting as this pod (``spawn --mcp``)."""
    until: str | None = None
    """The task runs as a loop until a result contains this token."""
    max_iterations: int | None = None
    budget: float | None = None
    gate: str | None = None
    """Run after a turn that would finish; only exit 0 lets it finish."""
    gate_timeout: float = 60.0
    after: list[str] = attrs.field(factory=list)
    """Siblings that must each finish a turn before the task runs."""
    max_running: int | None = None
    """At most this many agent turns at once in this pod's subtree."""
    slot_holders: list[Ancestor] = attrs.field(factory=list)
    """The pods above (nearest first) whose ``max_running`` this pod's turns count
    against: a turn takes a slot from each before it starts."""

    @property
    def directory(self) -> str:
        return os.path.join(self.root, self.name)

    @property
    def socket(self) -> str:
        return os.path.join(self.root, self.name, "sock")


def agent_driver(requested: str, agent: str | None) -> str:
    """The driver a pod runs ``agent`` with: ``requested``, or for ``auto`` the one
    CMD's first command names (``claude``, ``codex``), else ``shell``."""
    if requested != "auto":
        return requested
    if not agent:
        return "shell"
    from podd.drivers import detect

    return detect(agent)


def slot_holders_below(parent: PodSpec) -> list[Ancestor]:
    """The pods whose slots a child of ``parent`` takes: the parent if it limits its
    subtree, and whatever limits the parent's own turns."""
    own = [Ancestor(parent.name, parent.socket)] if parent.max_running is not None else []
    return own + list(parent.slot_holders)


@attrs.frozen(repr=False, eq=False)
class PodInfo(Value):
    spec: PodSpec
    pid: int
    start_time: float
