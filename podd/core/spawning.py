"""The bookkeeping of spawning a child: reserved, started, registered or given back.

The runtime checks what only the system can tell (the cwd exists, the agent command
can run, no live pod elsewhere under the root holds the name) and hands over the
child's spec (``SpawnAsked``). The rules refuse what the books forbid (the name held
here, a scope not covered or in conflict, ``--after`` naming no child) and keep them
from then on: the name and scope are reserved until the spawn settles, the child is
in the registry from the moment its process exists (so that its first events are
accepted), and once it is ready it is registered for good, watched, reported upward
(``scope_sub_delegated``) and the requester answered, after the registry file names
it. A failed spawn gives everything back; a failed restart by policy counts as a
failure of the child.
"""

from __future__ import annotations

import attrs

from podd.core import scope
from podd.core.children import restart_effects
from podd.core.effects import (
    Effect,
    Log,
    Notify,
    PersistRegistry,
    PostEvent,
    ReplyError,
    ReplyWhenPersisted,
    StartChild,
    WatchChild,
)
from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import PodSpec
from podd.core.state import PodState, Waiter
from podd.core.stopping import on_spawns_settled
from protocol import Errored, PodExists, PodNotFound, ProtocolError, ScopeSubDelegated

__all__ = [
    "on_child_started",
    "on_spawn_asked",
    "on_spawn_failed",
    "on_spawn_succeeded",
    "refusal",
]


def refusal(state: PodState, spec: PodSpec) -> ProtocolError | None:
    """Why the books forbid starting the child of ``spec``, if they do: its name is
    this pod's or held here; its scope is not covered by this pod's or overlaps a write
    held below (``podd.core.scope``); a new child's ``--after`` names no child."""
    name = spec.name
    if name == state.name or name in state.registry or name in state.children.pending:
        return PodExists(f"a pod named {name!r} already exists")
    held = state.held()
    if spec.restore:
        # What it spawned before it died may live on, adopted here: those delegations
        # are its own, and come back to it (``rejoin``), not a conflict.
        for below in state.registry.spawned_below(name):
            held.pop(below, None)
    try:
        scope.check_delegation(state.spec.scope, held, spec.scope)
    except ProtocolError as exc:
        return exc
    if not spec.restore:
        children = {r.pod_name for r in state.registry.children_of(state.name)}
        missing = [a for a in spec.after if a not in children]
        if missing:
            return PodNotFound(
                f"--after names no child of {state.name!r}: {', '.join(map(repr, missing))}"
            )
    return None


def on_spawn_asked(state: PodState, spec: PodSpec, waiter: Waiter | None) -> list[Effect]:
    """Reserve the name and scope of the child of ``spec`` and start it, unless the
    books forbid it (``refusal``): then the requester is answered the error, or, for a
    restart by policy (no requester), a notification says the restart was refused. A
    new child's ``--after`` keeps the siblings that have not finished a turn yet."""
    problem = refusal(state, spec)
    if problem is not None:
        if waiter is not None:
            return [ReplyError(waiter, problem)]
        refused = Errored(spec.name, f"restart refused: {problem.message}")
        return [Notify(Notification.of(refused))]
    after = spec.after
    if not spec.restore:
        after = [a for a in spec.after if a not in state.children.finished]
    spec = attrs.evolve(
        spec,
        parent=state.name,
        parent_socket=state.spec.socket,
        parent_pid=state.pid,
        ancestors=state.lineage.upward(),
        after=after if spec.task is not None else [],
    )
    if spec.after:
        state.children.prerequisites[spec.name] = set(spec.after)
    state.children.pending[spec.name] = list(spec.scope)
    return [StartChild(spec, waiter)]


def on_child_started(state: PodState, spec: PodSpec, pid: int) -> list[Effect]:
    """The child's process exists (not yet ready): its events are accepted from now."""
    state.registry.add_starting(_record(state, spec, pid, spec.socket, 0.0))
    return []


def on_spawn_succeeded(
    state: PodState,
    spec: PodSpec,
    pid: int,
    socket: str,
    start_time: float,
    waiter: Waiter | None,
) -> list[Effect]:
    """The child is ready: registered for good, watched, reported upward, answered."""
    record = state.registry.confirm(spec.name) or _record(state, spec, pid, socket, start_time)
    record.socket_path, record.start_time = socket, start_time
    state.registry.add(record)
    state.tombstones.forget(spec.name)
    state.children.specs[spec.name] = spec
    effects: list[Effect] = [
        PersistRegistry(),
        WatchChild(spec.name),
        PostEvent(
            ScopeSubDelegated(
                parent_pod=state.name,
                sub_pod=spec.name,
                sub_socket=socket,
                scope=list(spec.scope),
                sub_pid=pid,
                sub_start_time=start_time,
                sub_parent=state.name,
            )
        ),
    ]
    if state.stop.stopping:
        effects.append(Log(f"child {spec.name} came up while stopping; it is stopped too"))
    if waiter is not None:
        result = {"name": spec.name, "pid": pid, "socket": socket, "incarnation": spec.incarnation}
        effects.append(ReplyWhenPersisted(waiter, result))
    return effects + _settled(state, spec.name)


def on_spawn_failed(
    state: PodState, spec: PodSpec, error: ProtocolError, waiter: Waiter | None, now: float
) -> list[Effect]:
    """The spawn failed: the name and scope are free again and the requester told; a
    restart by policy that failed counts as a failure of the child."""
    state.registry.discard_starting(spec.name)
    state.children.prerequisites.pop(spec.name, None)
    effects: list[Effect] = []
    if waiter is not None:
        effects.append(ReplyError(waiter, error))
    elif spec.restore:
        failed = Errored(spec.name, f"restart failed: {error.message}")
        effects.append(Notify(Notification.of(failed)))
        state.children.restart_specs[spec.name] = spec
        effects += restart_effects(
            spec.name,
            spec.restart,
            failed=True,
            stopping=state.stop.stopping,
            tracker=state.children.tracker(spec.name),
            now=now,
        )
    return effects + _settled(state, spec.name)


def _settled(state: PodState, name: str) -> list[Effect]:
    """A spawn settled; a stop that waited for the spawns goes on once none is left."""
    del state.children.pending[name]
    plan = state.stop.plan
    if state.children.pending or plan is None or plan.phase != "spawns":
        return []
    return on_spawns_settled(plan, state.registry, state.name)


def _record(state: PodState, spec: PodSpec, pid: int, socket: str, started: float) -> ChildRecord:
    return ChildRecord(
        pod_name=spec.name,
        socket_path=socket,
        scope_delegated=list(spec.scope),
        callback_address=state.spec.socket,
        pid=pid,
        start_time=started,
        parent_pod=state.name,
        incarnation=spec.incarnation,
        restart=spec.restart,
        spawned_by=state.name,
    )
