"""Everything a pod knows, as one typed value: ``PodState`` and its parts.

The pod's rules (``podd.core.machine.handle`` and the handlers it calls) are the only
writers of this state; the runtime holds its one copy, reads it to answer and to
report, and never changes it except through ``handle``. Each part belongs to one
concern and is a field, not a base class:

    lineage        whom this pod reports to, and whom to ask if that pod dies
    registry       the pods below, as far as they were reported (``podd.core.registry``)
    tombstones     what is remembered of the pods removed from the registry
    notifications  what the agent reads before its next turn
    children       spawns in flight, the specs of live children, restart trackers,
                   and the ``--after`` prerequisites of children's tasks
    turns          the current work item, the queue, the totals of past turns
    stop           whether the pod is stopping, and how far it has got

Values that only the runtime can hold (connections awaiting a reply, leases) appear
here as opaque ``Waiter`` tokens: the rules decide who is answered, and when.
"""

from __future__ import annotations

from typing import Any

import attrs

from podd.core.liveness import Lineage
from podd.core.notifications import NotificationBuffer
from podd.core.registry import Registry
from podd.core.restart_policy import RestartTracker
from podd.core.spec import PodSpec
from podd.core.stopping import Stop
from podd.core.tombstones import Tombstones
from podd.core.turns import Queue, Work, empty_usage
from protocol import ScopeRule

__all__ = ["ChildrenState", "PodState", "StopState", "TurnsState", "Waiter"]

Waiter = Any
"""Whoever waits for a reply (a connection and a request id, to the runtime)."""


@attrs.define
class ChildrenState:
    """The direct children as they come and go (the registry holds what they reported)."""

    pending: dict[str, list[ScopeRule]] = attrs.field(factory=dict)
    """Spawns in flight: the name and the scope each one reserves until it settles."""
    specs: dict[str, PodSpec] = attrs.field(factory=dict)
    """The spec of each live direct child, for its restart policy."""
    restart_specs: dict[str, PodSpec] = attrs.field(factory=dict)
    """The specs of dead children whose restart policy is being applied."""
    trackers: dict[str, RestartTracker] = attrs.field(factory=dict)
    finished: set[str] = attrs.field(factory=set)
    """Children that have finished a turn (for their siblings' ``--after``)."""
    prerequisites: dict[str, set[str]] = attrs.field(factory=dict)
    """Child -> the siblings its task still waits for."""

    def tracker(self, name: str) -> RestartTracker:
        return self.trackers.setdefault(name, RestartTracker())


@attrs.define
class TurnsState:
    """The agent's work: what runs or waits now, what is queued, what is done."""

    count: int = 0
    """Turns begun so far; the current one's number while one is current."""
    last_record: dict[str, Any] | None = None
    session: str | None = None
    """The agent's conversation, resumed by the next turn (LLM drivers)."""
    cost_usd: float | None = None
    usage: dict[str, int | None] = attrs.field(factory=empty_usage)
    queue: Queue = attrs.field(factory=Queue)
    work: Work | None = None
    """The current work item: waiting (``waiting_on`` says for what) or running."""
    waiting_on: str | None = None
    running: bool = False
    """A process of the current work item runs (it is past its waits)."""
    awaiting_prerequisites: bool = False
    wake_pending: bool = False
    """A notification arrived during a turn of a ``--wake-on-notify`` pod."""
    idle_waiters: list[Waiter] = attrs.field(factory=list)
    """``wait`` requests, answered once nothing runs, waits or is queued."""

    def has_queued_work(self) -> bool:
        """Whether a stop would drop work that was asked for: a pending wake, a queued
        turn, or a work item that never started (waiting)."""
        return (
            self.wake_pending
            or len(self.queue) > 0
            or (self.work is not None and self.waiting_on is not None)
        )


@attrs.define
class StopState:
    stopping: bool = False
    plan: Stop | None = None
    """The stop in progress (``podd.core.stopping``)."""
    reason: str = "stopped"
    requesters: list[Waiter] = attrs.field(factory=list)
    """``shutdown`` requests, answered with the outcome."""


@attrs.define
class PodState:
    """One pod's state; see the module docstring."""

    spec: PodSpec
    pid: int
    lineage: Lineage
    registry: Registry = attrs.field(factory=Registry)
    tombstones: Tombstones = attrs.field(factory=Tombstones)
    notifications: NotificationBuffer = attrs.field(factory=NotificationBuffer)
    children: ChildrenState = attrs.field(factory=ChildrenState)
    turns: TurnsState = attrs.field(factory=TurnsState)
    stop: StopState = attrs.field(factory=StopState)

    @classmethod
    def of(cls, spec: PodSpec, pid: int) -> PodState:
        """The state of a pod just started from ``spec``."""
        lineage = Lineage(spec.parent, spec.parent_socket, spec.parent_pid, tuple(spec.ancestors))
        return cls(spec=spec, pid=pid, lineage=lineage)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def phase(self) -> str:
        """``stopping``, ``running``, ``waiting`` or ``idle``: what ``ls`` shows."""
        if self.stop.stopping:
            return "stopping"
        if self.turns.running:
            return "running"
        return "waiting" if self.turns.waiting_on is not None else "idle"

    def held(self) -> dict[str, list[ScopeRule]]:
        """The scope held below: by the registered pods and by the spawns in flight."""
        held = dict(self.registry.held_scopes())
        held.update(self.children.pending)
        return held
