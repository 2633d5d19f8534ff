"""Liveness rules: adoption, both ways, and what a pod does when its parent dies.

When a pod's parent dies, it asks its ancestors, nearest first, to adopt it; the one
that does already knows it (through ``scope_sub_delegated``), takes the events it sends
from then on and watches its process. With no ancestor left the pod stops itself and
its subtree. Pure: the runtime does the asking, the watching and the stopping.
"""

from __future__ import annotations

from typing import Any

import attrs

from podd.core.effects import (
    BeginStop,
    Effect,
    FindAdopter,
    Notify,
    PersistRegistry,
    Reclaim,
    Reply,
    RetargetOutbox,
    WatchAdopted,
    WatchParent,
    WriteInfo,
)
from podd.core.notifications import Notification
from podd.core.registry import Registry
from podd.core.spec import Ancestor
from protocol import (
    Adopted,
    AdoptParams,
    Forbidden,
    PodNotFound,
    ShutdownParams,
    ShuttingDown,
)
from protocol.messages import TaskSkipped
from protocol.values import Value

__all__ = [
    "ORPHAN_STOP_TIMEOUT",
    "Lineage",
    "on_adopt",
    "on_adopted",
    "on_adopted_exited",
    "on_orphaned",
    "on_parent_died",
]

ORPHAN_STOP_TIMEOUT = 5.0
"""Seconds an orphan with no live ancestor gives its subtree to stop."""


@attrs.frozen(repr=False, eq=False)
class Lineage(Value):
    """Where a pod's events go, and whom to ask if that pod dies."""

    parent: str | None
    parent_socket: str | None
    parent_pid: int
    ancestors: tuple[Ancestor, ...] = ()
    """Above the parent, nearest first."""

    def upward(self) -> list[Ancestor]:
        """The parent, then the ancestors: what a child of this pod has above it."""
        parent = [Ancestor(self.parent, self.parent_socket or "")] if self.parent else []
        return parent + list(self.ancestors)


def on_adopt(
    registry: Registry,
    self_name: str,
    self_pid: int,
    self_socket: str,
    lineage: Lineage,
    stopping: bool,
    params: AdoptParams,
    peer_pid: int | None,
) -> list[Effect]:
    """Handle ``adopt``: take over a pod below whose parent died.

    Only a pod this one knows (a registry entry) may ask, and only from its own process.
    The pods it spawned are reported through it from then on, as its events come here
    now: its ``shut_down`` removes them with it.
    """
    if stopping:
        raise ShuttingDown(f"pod {self_name!r} is stopping")
    record = registry.get(params.pod_name)
    if record is None:
        raise PodNotFound(f"pod {params.pod_name!r} is not registered here")
    if record.pid != peer_pid:
        raise Forbidden(f"only pod {params.pod_name!r} itself may ask to be adopted")
    record.parent_pod = self_name
    record.callback_address = self_socket
    record.socket_path = params.socket
    registry.rehome(params.pod_name, params.socket)
    result: dict[str, Any] = {
        "name": self_name,
        "pid": self_pid,
        "socket": self_socket,
        "ancestors": [attrs.asdict(a) for a in lineage.upward()],
    }
    effects: list[Effect] = [
        PersistRegistry(),
        Notify(Notification.of(Adopted(params.pod_name, params.previous_parent))),
    ]
    if params.skipped_task is not None:
        skipped = TaskSkipped(params.pod_name, params.skipped_task)
        effects.append(Notify(Notification.of(skipped)))
    return [*effects, WatchAdopted(record.pod_name, record.pid, record.start_time), Reply(result)]


def on_parent_died(
    lineage: Lineage, stopping: bool, skipped_task: str | None = None
) -> list[Effect]:
    """The parent's process is gone: look for an adopter (a stopping pod just stops
    sending events). ``skipped_task``: why this pod dropped its task that waited for
    prerequisites (the parent was the one waiting for them), for the adopter to tell."""
    if stopping:
        return [RetargetOutbox(None)]
    return [FindAdopter(lineage.parent or "", skipped_task)]


def on_adopted(
    lineage: Lineage, adopter: Ancestor, adopter_pid: int
) -> tuple[Lineage, list[Effect]]:
    """An ancestor adopted this pod: it is the parent from now on; the ancestors above it
    stay. Returns the new lineage."""
    names = [a.name for a in lineage.ancestors]
    rest = lineage.ancestors[names.index(adopter.name) + 1 :] if adopter.name in names else ()
    new = Lineage(adopter.name, adopter.socket, adopter_pid, tuple(rest))
    return new, [RetargetOutbox(adopter.socket), WriteInfo(), WatchParent(adopter_pid)]


def on_orphaned() -> list[Effect]:
    """No ancestor adopted this pod: it stops, and its subtree with it. Its parent stays
    in the lineage, so that a restart brings it back under the same parent."""
    return [
        RetargetOutbox(None),
        BeginStop(ShutdownParams(timeout=ORPHAN_STOP_TIMEOUT), "orphaned: no live ancestor"),
    ]


def on_adopted_exited(registry: Registry, name: str, pid: int) -> list[Effect]:
    """An adopted pod's process is gone: reclaim it, unless its record has moved on (it
    said ``shut_down``, or a new process took the name)."""
    record = registry.get(name)
    if record is None or record.pid != pid:
        return []
    return [Reclaim(record, "process gone")]
