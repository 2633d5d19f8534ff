"""The pod as a state machine: ``handle(state, input, now) -> effects``.

Every input (``podd.core.inputs``: a request with its peer's pid, or something the
runtime saw happen) goes through ``handle``, which changes ``state``
(``podd.core.state``) and returns what the runtime must do (``podd.core.effects``), in
order. ``now`` is the runtime's clock (``trio.current_time()``), passed in so that every
rule is a table test. A refusal is raised as the ``protocol`` error it answers with.

The rules of each concern live beside this module (``events``, ``liveness``,
``spawning``, ``children``, ``stopping``, ``turn_flow``); ``handle`` dispatches to them and then
carries out, itself, the effects that only change the state: a ``Notify`` is buffered
(and may wake the agent or release a sibling's task), a ``BeginStop`` starts the stop's
phases, ``DropQueuedWork`` and ``AbortStop`` settle the turns and the requesters. What
is left for the runtime is I/O: replies, events upward, the journal, processes, timers.
"""

from __future__ import annotations

from podd.core import spawning, turn_flow
from podd.core.children import on_child_exited
from podd.core.effects import (
    AbortStop,
    BeginStop,
    DropQueuedWork,
    Effect,
    FinishStop,
    Log,
    Notify,
    PersistRegistry,
    Publish,
    ReplyTo,
    RestartLater,
)
from podd.core.events import on_flush_events, on_pod_event
from podd.core.inputs import (
    AdoptAsked,
    AdoptedBy,
    AdoptedExited,
    ChildExited,
    ChildFailedToStart,
    ChildReady,
    ChildRejoined,
    ChildrenElsewhere,
    ChildrenStopped,
    ChildStarted,
    DepsAnswered,
    EventReceived,
    FlushAsked,
    Input,
    NotificationArrived,
    Orphaned,
    OutboxFlushed,
    ParentDied,
    Reclaimed,
    RejoinAsked,
    SendAsked,
    SessionSeen,
    SlotsGranted,
    SpawnAsked,
    SpawnsSettled,
    StopAsked,
    TaskDue,
    TurnDone,
    TurnStopped,
    WaitAsked,
)
from podd.core.liveness import (
    on_adopt,
    on_adopted,
    on_adopted_exited,
    on_child_rejoined,
    on_children_elsewhere,
    on_orphaned,
    on_parent_died,
    on_rejoin,
)
from podd.core.notifications import Notification
from podd.core.state import PodState
from podd.core.stopping import (
    begin_stop,
    on_children_stopped,
    on_outbox_flushed,
    on_spawns_settled,
    on_turn_stopped,
)
from podd.core.tombstones import Tombstone
from protocol import Errored, ShutDown, ShutdownParams

__all__ = ["handle"]


def handle(state: PodState, event: Input, now: float) -> list[Effect]:
    """Apply ``event`` to ``state``; the effects the runtime carries out, in order."""
    return _settle(state, _dispatch(state, event, now), now)


def _dispatch(state: PodState, event: Input, now: float) -> list[Effect]:
    registry, name = state.registry, state.name
    plan = state.stop.plan
    match event:
        # The events from below first: they are most of a busy pod's inputs.
        case EventReceived(event=pod_event, peer_pid=peer):
            return on_pod_event(registry, state.tombstones, name, pod_event, peer)
        case SpawnAsked(spec=spec, waiter=waiter):
            return spawning.on_spawn_asked(state, spec, waiter)
        case ChildStarted(spec=spec, pid=pid):
            return spawning.on_child_started(state, spec, pid)
        case ChildReady(spec=spec, pid=pid, socket=socket, start_time=started, waiter=waiter):
            return spawning.on_spawn_succeeded(state, spec, pid, socket, started, waiter)
        case ChildFailedToStart(spec=spec, error=error, waiter=waiter):
            return spawning.on_spawn_failed(state, spec, error, waiter, now)
        case FlushAsked(pod_name=pod_name, peer_pid=peer):
            return on_flush_events(registry, state.tombstones, pod_name, peer)
        case AdoptAsked(params=params, peer_pid=peer):
            return on_adopt(
                registry,
                name,
                state.pid,
                state.spec.socket,
                state.lineage,
                state.stop.stopping,
                params,
                peer,
            )
        case SendAsked(params=params, waiter=waiter):
            return turn_flow.on_send(state, params, waiter)
        case WaitAsked(waiter=waiter):
            return turn_flow.on_wait(state, waiter)
        case DepsAnswered(failed=failed, peer_pid=peer):
            return turn_flow.on_deps(state, failed, peer)
        case StopAsked(params=params, reason=reason, requester=requester):
            if requester is not None:
                state.stop.requesters.append(requester)
            return [BeginStop(params, reason)]
        case ChildExited(name=child, pid=pid, code=code):
            return _child_exited(state, child, pid, code, now)
        case AdoptedExited(name=child, pid=pid):
            return on_adopted_exited(registry, child, pid)
        case Reclaimed(record=record, cause=cause, clean=clean):
            registry.remove(record.pod_name)
            state.tombstones.bury(
                record.pod_name, Tombstone(record.pid, record.incarnation, record.last_seq)
            )
            gone = (
                ShutDown(record.pod_name, reason=f"pod {cause}")
                if clean
                else Errored(record.pod_name, f"pod died: {cause}")
            )
            # Made here, not applied from the wire: the feed gets it as this pod's own.
            return [PersistRegistry(), Notify(Notification.of(gone)), Publish(gone)]
        case NotificationArrived(notification=notification):
            return [Notify(notification)]
        case ParentDied(pid=pid) if pid is not None and pid != state.lineage.parent_pid:
            return []  # a parent this pod has left (it went back to the one that spawned it)
        case ParentDied():
            # Only the parent watched this pod's prerequisites: nobody will say they are met.
            reason = f"its parent {state.lineage.parent!r} died before its prerequisites finished"
            stopping = state.stop.stopping
            skipped = [] if stopping else turn_flow.skip_waiting_task(state, reason)
            return [*skipped, *on_parent_died(state.lineage, stopping, reason if skipped else None)]
        case RejoinAsked(params=params, peer_pid=peer, parent_pid=parent_pid):
            state.lineage, effects = on_rejoin(
                state.lineage, state.spec.parent, state.stop.stopping, params, peer, parent_pid
            )
            return effects
        case ChildrenElsewhere(names=names):
            return on_children_elsewhere(registry, name, names)
        case ChildRejoined(name=child):
            return on_child_rejoined(registry, name, child)
        case AdoptedBy(ancestor=ancestor, pid=pid):
            state.lineage, effects = on_adopted(state.lineage, ancestor, pid)
            return [Log(f"adopted by {ancestor.name}", warning=True), *effects]
        case Orphaned():
            return [Log("no live ancestor is left: stopping", warning=True), *on_orphaned()]
        case SpawnsSettled():
            # The deadline of the spawns' phase (the last spawn settling ends it sooner).
            if plan is None or plan.phase != "spawns":
                return []
            return on_spawns_settled(plan, registry, name)
        case ChildrenStopped(outcomes=outcomes):
            if plan is None:
                return []
            return on_children_stopped(
                plan,
                outcomes,
                turn_running=state.turns.running,
                queued_work=state.turns.has_queued_work(),
                self_name=name,
                now=now,
            )
        case TurnStopped(outcome=outcome):
            return on_turn_stopped(plan, outcome, name, now) if plan is not None else []
        case OutboxFlushed():
            return on_outbox_flushed(plan, registry, name) if plan is not None else []
        case TaskDue():
            return turn_flow.on_task_due(state)
        case SlotsGranted(work=work, leases=leases):
            return turn_flow.on_slots_granted(state, work, leases)
        case SessionSeen(session=session):
            return turn_flow.on_session(state, session)
        case TurnDone(record=record):
            return turn_flow.on_turn_done(state, record)
    raise TypeError(f"not an input of the pod: {event!r}")


def _child_exited(state: PodState, name: str, pid: int, code: int, now: float) -> list[Effect]:
    """A direct child's process ended: its spec is kept for its restart policy."""
    children = state.children
    record = state.registry.get(name)
    spec = None
    if record is None or record.pid == pid:
        # Not when a newer process holds the name: its spec is its own.
        spec = children.specs.pop(name, None)
    if spec is not None:
        children.restart_specs[name] = spec
    return on_child_exited(
        state.registry,
        name,
        pid,
        code,
        policy=spec.restart if spec is not None else None,
        stopping=state.stop.stopping,
        tracker=children.tracker(name),
        now=now,
    )


def _settle(state: PodState, effects: list[Effect], now: float) -> list[Effect]:
    """Carry out the effects that only change the state; keep the rest, in order."""
    out: list[Effect] = []
    for effect in effects:
        kind = type(effect)
        if kind not in _SETTLED_HERE:
            out.append(effect)  # most effects, at the cost of one set lookup
            continue
        if kind is Notify and isinstance(effect, Notify):  # from an event: no pattern to match
            out += turn_flow.notify(state, effect.notification)  # settled there
            continue
        match effect:
            case BeginStop(params=params, reason=reason):
                out += _settle(state, _begin_stop(state, params, reason, now), now)
            case DropQueuedWork():
                out += turn_flow.drop_queued_work(state)
            case AbortStop(outcome=outcome):
                # Something outlived the deadline and was left running: the stop is
                # given up, the requesters are told, the pod goes on.
                state.stop.stopping, state.stop.plan = False, None
                out += _answer_stop(state, outcome)
            case FinishStop(outcome=outcome):
                out.append(FinishStop(outcome, tuple(state.stop.requesters)))
            case RestartLater(name=child, delay=delay):
                spec = state.children.restart_specs.pop(child)
                out.append(RestartLater(child, delay, spec))
            case _:
                out.append(effect)
    return out


_SETTLED_HERE = frozenset({Notify, BeginStop, DropQueuedWork, AbortStop, FinishStop, RestartLater})


def _begin_stop(state: PodState, params: ShutdownParams, reason: str, now: float) -> list[Effect]:
    if state.stop.stopping:
        return []
    state.stop.stopping, state.stop.reason = True, reason
    state.stop.plan, effects = begin_stop(
        params,
        reason,
        now,
        spawns_pending=bool(state.children.pending),
        registry=state.registry,
        self_name=state.name,
    )
    return [Log(f"stopping: {reason}"), *effects]


def _answer_stop(state: PodState, outcome: str) -> list[Effect]:
    effects: list[Effect] = [
        ReplyTo(requester, {"outcome": outcome, "pid": state.pid})
        for requester in state.stop.requesters
    ]
    state.stop.requesters.clear()
    return effects
