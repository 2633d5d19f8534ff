"""Liveness rules: adoption, both ways, and what a pod does when its parent dies.

When a pod's parent dies, it asks its ancestors, nearest first, to adopt it; the one
that does already knows it (through ``scope_sub_delegated``), takes the events it sends
from then on and watches its process. With no ancestor left the pod stops itself and
its subtree. When the dead parent is restarted, with its registry, it asks the children
adopted meanwhile back (``rejoin``): they report to it again, and it tells its own
parent, the adopter, which moves them back under it. Pure: the runtime does the
asking, the watching and the stopping.
"""

from __future__ import annotations

from typing import Any

import attrs

from podd.core.effects import (
    AskToRejoin,
    BeginStop,
    Effect,
    FindAdopter,
    Log,
    Notify,
    PersistRegistry,
    PostEvent,
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
from protocol.messages import RejoinParams, ScopeSubDelegated, TaskSkipped
from protocol.values import Value

__all__ = [
    "ORPHAN_STOP_TIMEOUT",
    "Lineage",
    "on_adopt",
    "on_adopted",
    "on_adopted_exited",
    "on_child_rejoined",
    "on_children_elsewhere",
    "on_orphaned",
    "on_parent_died",
    "on_rejoin",
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


# --- Back to a restarted parent ---------------------------------------------------------


def on_children_elsewhere(
    registry: Registry, self_name: str, names: tuple[str, ...]
) -> list[Effect]:
    """This pod restarted with its registry, and these of its children live on under
    another parent: ask each back."""
    return [
        AskToRejoin(record.pod_name, record.socket_path)
        for record in registry.children_of(self_name)
        if record.pod_name in names
    ]


def on_child_rejoined(registry: Registry, self_name: str, name: str) -> list[Effect]:
    """Child ``name`` reports here again: the parent (its adopter meanwhile) is told
    that it is below this pod again, and this pod watches its process (it is not its
    OS parent any more)."""
    record = registry.get(name)
    if record is None or record.parent_pod != self_name:
        return []
    return [
        Log(f"{name} reports here again"),
        WatchAdopted(name, record.pid, record.start_time),
        PostEvent(
            ScopeSubDelegated(
                parent_pod=self_name,
                sub_pod=name,
                sub_socket=record.socket_path,
                scope=list(record.scope_delegated),
                sub_pid=record.pid,
                sub_start_time=record.start_time,
                sub_parent=self_name,
                rejoined=True,
            )
        ),
    ]


def on_rejoin(
    lineage: Lineage,
    spawned_by: str | None,
    stopping: bool,
    params: RejoinParams,
    peer_pid: int | None,
    parent_pid: int | None,
) -> tuple[Lineage, list[Effect]]:
    """Handle ``rejoin``: the pod that spawned this one (``spawned_by``), restarted, asks
    it back. Only that pod's live process may ask. This pod reports to it from then on;
    its adopter, now the parent's parent, stays above it. Returns the new lineage."""
    if stopping:
        raise ShuttingDown("this pod is stopping")
    if params.parent != spawned_by:
        raise Forbidden(f"only {spawned_by!r}, which spawned this pod, may ask it back")
    if parent_pid is None or peer_pid != parent_pid:
        raise Forbidden(f"only the live process of {params.parent!r} may ask this pod back")
    if lineage.parent == params.parent and lineage.parent_pid == peer_pid:
        return lineage, [Reply({"ok": True})]
    # Adopted meanwhile: the adopter (the parent's parent) goes above the parent.
    above = lineage.ancestors if lineage.parent == params.parent else tuple(lineage.upward())
    new = Lineage(params.parent, params.socket, peer_pid, above)
    return new, [
        Log(f"back with {params.parent}, which spawned it", warning=True),
        RetargetOutbox(params.socket),
        WriteInfo(),
        WatchParent(peer_pid),
        Reply({"ok": True}),
    ]
