"""A stateful test of ``podd.core.machine.handle``, driven the way a pod drives it.

``PodMachine`` plays the pod ``ME`` and a tree of pods below it. ``ME`` spawns children
(asked, started, ready; or still in flight when it is stopped), restarts them by their
policy, learns of their exits, reclaims dead pods and is stopped, phase by phase. The
pods below spawn pods of their own (reported with ``scope_sub_delegated`` by the nearest
pod that reports to ``ME``, again and again), end turns, stop, crash and ask to be
adopted when their parent dies. What they post to ``ME`` arrives as an outbox delivers
it: in order on each connection, again after a reconnect (duplicates), interleaved with
every other sender's events, late on the connections of dead processes and of older
incarnations (the kernel may give a restarted child its old pid again), late after
``shut_down``; the senders ask for acknowledgements. One process's events never overtake
each other: each connection starts at the oldest unacknowledged one, which the
cumulative de-duplication (``seq`` at or below the last applied is a duplicate) relies
on.

Beside ``ME``'s real state (a ``PodState``, changed only by ``podd.core.machine.handle``:
every spawn, exit, reclaim, adoption, event, acknowledgement and phase of a stop goes
in as an input), the machine keeps a small model: which pods ``ME`` has been told of
and not yet told are gone, and which of their events ``ME`` must have applied. It
compares every input's effects with what the model expects, and after every step
checks that:

- each (pod, turn) gave at most one notification, and exactly one once its event
  reached ``ME`` while the pod was registered; the end of each pod gave at most one,
  and exactly one once ``ME`` learned of it;
- the registry holds exactly the pods of the model, and only they hold scope: a pod
  that is gone holds no name and no write scope any more, the subtree of an adopted
  pod included once it said ``shut_down``;
- every pod registered here went upward once, however often it was reported;
- no effect names a pod that is gone: a ``Reclaim`` names a registered record, a
  restart only follows the reclaim of the child that exited, never while stopping, and
  an acknowledgement covers only applied events.

One rule, ``step``, draws what happens next, with weights (see there).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from podd.core import scope
from podd.core.children import exit_cause
from podd.core.effects import (
    Effect,
    FinishStop,
    FlushOutbox,
    Journal,
    Log,
    Notify,
    PersistRegistry,
    PostEvent,
    Publish,
    Reclaim,
    Reply,
    ReplyTo,
    ReplyWhenPersisted,
    RestartLater,
    StartChild,
    StopChildren,
    Trace,
    WaitSpawns,
    WatchAdopted,
    WatchChild,
)
from podd.core.events import NO_LONGER_REGISTERED, on_pod_event
from podd.core.inputs import (
    AdoptAsked,
    AdoptedExited,
    ChildExited,
    ChildFailedToStart,
    ChildReady,
    ChildrenStopped,
    ChildStarted,
    EventReceived,
    FlushAsked,
    Input,
    OutboxFlushed,
    Reclaimed,
    SpawnAsked,
    StopAsked,
)
from podd.core.liveness import Lineage, on_adopt
from podd.core.machine import handle
from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.restart_policy import RestartTracker
from podd.core.spec import PodSpec
from podd.core.state import PodState
from podd.core.stopping import (
    Stop,
)
from podd.core.tombstones import Tombstone, Tombstones
from protocol import (
    Adopted,
    AdoptParams,
    Errored,
    Forbidden,
    PodEvent,
    PodNotFound,
    RestartGaveUp,
    ScopeRule,
    ScopeSubDelegated,
    ShutDown,
    ShutdownParams,
    ShuttingDown,
    SpawnFailed,
    TurnEnded,
    WriteConflict,
)
from protocol.messages import LOCAL_EVENT_KINDS, RestartPolicy
from tests.core.test_events import ME, MY_SOCKET, child, registry_of

OWN = [ScopeRule("/work", "write")]
"""``ME``'s own scope: every pod below holds write on a path beneath it."""

NAMES = ("a", "b", "c", "g", "h")
"""Few names, so that they are often taken again by another pod."""

MAX_DEPTH = 3
"""Children, grandchildren and their children."""

STEPS = 50
STOP_AFTER = 30
"""``ME`` may be stopped only this late, so that a tree has grown first."""

POLICIES: tuple[RestartPolicy, ...] = ("never", "on-failure", "always")
ME_PID = 10
LINEAGE = Lineage(None, None, 0)
ROOT = "/run/podd"
REQUESTER = ("stop", 0)
"""Who asked ``ME`` to stop (a connection and a request id, to the runtime)."""
LATE = PodSpec(name="late", root=ROOT, cwd="/work", scope=[])
"""A spawn still in flight when ``ME`` is stopped."""


def notified(note: Notification) -> list[Effect]:
    """What ``handle`` makes of a ``Notify``: the notification buffered and journaled
    (and, for one this pod made itself, recorded in its feed)."""
    effects: list[Effect] = [Journal({"op": "notify", "notification": note.to_dict()})]
    if note.event.kind in LOCAL_EVENT_KINDS:
        effects.append(Publish(note.event))
    return effects


def settled(effects: list[Effect]) -> list[Effect]:
    """``effects`` of a sub-handler as ``handle`` returns them, notifications settled."""
    return [
        e
        for effect in effects
        for e in (notified(effect.notification) if isinstance(effect, Notify) else [effect])
    ]


@attrs.define(eq=False, repr=False)
class Proc:
    """One pod process below ``ME``, as the model sees it."""

    name: str
    pid: int
    incarnation: int
    target: str
    parent: Proc | None
    """Its parent now (None: ``ME``); an adoption moves it up."""
    direct: bool = False
    """``ME``'s own OS child: ``ME`` learns of its exit from the process."""
    policy: RestartPolicy = "never"
    alive: bool = True
    reports_here: bool = False
    """Its events come to ``ME``: a direct child, or adopted by ``ME``."""
    adopted: bool = False
    reporter: str = ME
    """The pod through which ``ME`` learned of it (``ME``: it spawned or adopted it)."""
    spawner: str = ME
    """The pod that spawned it (an adoption does not change it)."""
    events: list[PodEvent] = attrs.field(factory=list)
    """What it posted to ``ME``, stamped: ``seq`` is ``seq_base`` + index + 1."""
    seq_base: int = 0
    acked: int = 0
    """``events[:acked]`` are acknowledged: its outbox dropped them."""
    conns: list[int] = attrs.field(factory=list)
    """Per open connection to ``ME``: the index of the next event it delivers."""
    applied: set[int] = attrs.field(factory=set)
    turns: int = 0
    said_shut_down: bool = False
    pending_exit: int | None = None
    """It exited with this code and ``ME`` has yet to learn of it."""
    stopped_with: list[Proc] = attrs.field(factory=list)
    """The pods it stopped before its ``shut_down`` (its subtree)."""
    removed: bool = False
    """``ME`` registered it and has removed it since."""
    expected_turns: set[int] = attrs.field(factory=set)
    turn_notes: collections.Counter[int] = attrs.field(factory=collections.Counter)
    gone_expected: bool = False
    gone_notes: int = 0

    def __repr__(self) -> str:
        return f"<{self.name} pid {self.pid} incarnation {self.incarnation}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints drawn values with this: a process in one line."""
        printer.text(repr(self))

    @property
    def socket(self) -> str:
        return f"/run/podd/{self.name}/sock"

    @property
    def start_time(self) -> float:
        return 1000.0 + self.pid

    @property
    def rule(self) -> ScopeRule:
        return ScopeRule(self.target, "write")

    def depth(self) -> int:
        return 1 if self.parent is None else 1 + self.parent.depth()

    def last_applied_seq(self) -> int:
        return self.seq_base + max(self.applied) + 1 if self.applied else 0


def overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


Action = Callable[[st.DataObject], None]


class PodMachine(RuleBasedStateMachine):
    """``ME``, the pods below it, and what ``ME`` must know of them."""

    def __init__(self) -> None:
        super().__init__()
        # ME's state: changed only by ``handle`` and by the effects it returns.
        self.state = PodState(
            spec=PodSpec(name=ME, root=ROOT, cwd="/work", scope=OWN),
            pid=ME_PID,
            lineage=LINEAGE,
        )
        self.registry = self.state.registry
        self.tombs = self.state.tombstones
        self.trackers = self.state.children.trackers
        self.waiters = itertools.count(1)
        self.upward: list[PodEvent] = []
        self.notes: list[Notification] = []
        self.to_stop: list[Proc] = []
        self.phase = "running"
        """``running``; while stopping ``spawns``, ``children``, ``upward``; ``ended``."""
        # The model.
        self.procs: list[Proc] = []
        self.known: dict[str, Proc] = {}
        self.tomb_pids: dict[str, int] = {}
        self.registered: collections.Counter[tuple[str, int]] = collections.Counter()
        self.restart_times: dict[str, list[float]] = {}
        self.pending_restarts: list[Proc] = []
        self.pids = itertools.count(100)
        self.now = 0.0
        self.steps = 0

    # --- The model's views -----------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self.phase != "running"

    @property
    def stop(self) -> Stop | None:
        return self.state.stop.plan

    def handle(self, event: Input) -> list[Effect]:
        return handle(self.state, event, self.now)

    def alive(self) -> list[Proc]:
        return [p for p in self.procs if p.alive]

    def name_free(self, name: str) -> bool:
        """Nobody alive under the root has it (names are unique in a root)."""
        return name != ME and all(p.name != name for p in self.alive())

    def chain_reporter(self, proc: Proc) -> Proc | None:
        """The pod that passes ``proc``'s news to ``ME``: itself or its nearest ancestor
        whose events come here, if every pod on the way is alive."""
        node: Proc | None = proc
        while node is not None and node.alive:
            if node.reports_here:
                return node
            node = node.parent
        return None

    def subtree(self, proc: Proc) -> list[Proc]:
        below = [p for p in self.procs if p.parent is proc]
        return below + [q for p in below for q in self.subtree(p)]

    def reported_through(self, name: str) -> list[Proc]:
        """The pods ``ME`` learned of through ``name``, at any depth."""
        found: list[Proc] = []
        frontier = [name]
        while frontier:
            node = frontier.pop()
            for other in self.known.values():
                if other.reporter == node and other not in found:
                    found.append(other)
                    frontier.append(other.name)
        return found

    def proc_of(self, name: str, pid: int) -> Proc:
        """The newest process of that name and pid (a pid may be given again)."""
        return next(p for p in reversed(self.procs) if (p.name, p.pid) == (name, pid))

    def holders_of(self, target: str) -> list[str]:
        """The known pods whose write scope overlaps ``target``."""
        return [p.name for p in self.known.values() if overlaps(p.target, target)]

    def in_flight(self) -> list[tuple[Proc, int]]:
        return [(p, i) for p in self.procs for i, at in enumerate(p.conns) if at < len(p.events)]

    def spawnable(self) -> list[str]:
        """Names ``ME`` may spawn; one that a pod whose exit is not yet seen had is
        drawn more often, so that the late exit meets the new child."""
        free = [n for n in NAMES if self.name_free(n) and n not in self.known]
        exiting = [p.name for p in self.exits_to_see()]
        return free + [n for n in exiting if n in free]

    def senders(self) -> list[Proc]:
        return [p for p in self.alive() if p.reports_here]

    # --- ME's runtime, reduced to what the handlers' effects ask for ----------------

    def run(self, effects: list[Effect], origin: Proc | None = None) -> None:
        """Carry out ``effects`` as ``PodCore.run_effects`` does; a notification is
        counted against ``origin``, the pod it speaks of."""
        for effect in effects:
            match effect:
                case PostEvent(event=event):
                    self.upward.append(event)
                case Journal(record={"op": "notify", "notification": raw}):
                    note = Notification.from_dict(raw)
                    self.notes.append(note)
                    assert origin is not None
                    if isinstance(note.event, TurnEnded | Errored):
                        origin.turn_notes[note.event.turn] += 1
                        assert origin.turn_notes[note.event.turn] == 1, "a turn notified twice"
                    elif isinstance(note.event, ShutDown):
                        self.gone_note(origin)
                case Reclaim(record=record, cause=cause, clean=clean):
                    self.reclaim(record, cause, clean)
                case RestartLater(name=name, delay=delay, spec=spec):
                    assert not self.stopping, "a restart while stopping"
                    assert delay > 0 and name not in self.registry
                    assert origin is not None and origin.name == name and not origin.alive
                    assert spec is not None and spec.incarnation == origin.incarnation
                    self.pending_restarts.append(origin)
                case _:
                    pass

    def gone_note(self, proc: Proc) -> None:
        proc.gone_notes += 1
        assert proc.gone_notes == 1, f"the end of {proc.name} (pid {proc.pid}) notified twice"

    def reclaim(self, record: ChildRecord, cause: str, clean: bool) -> None:
        """What ``podd.core.machine`` does with a ``Reclaimed`` input to the registry
        and the tombstones."""
        assert self.registry.get(record.pod_name) is record, "Reclaim of a pod not registered"
        proc = self.known.pop(record.pod_name)
        assert proc.pid == record.pid
        if clean:
            event: PodEvent = ShutDown(record.pod_name, reason=f"pod {cause}")
        else:
            event = Errored(record.pod_name, f"pod died: {cause}")
        effects = self.handle(Reclaimed(record, cause, clean))
        assert [PersistRegistry(), *notified(Notification.of(event)), Publish(event)] == effects
        assert (None, Tombstone(record.pid, record.incarnation, record.last_seq)) == (
            self.registry.get(record.pod_name),
            self.tombs.get(record.pod_name),
        )
        self.notes.append(Notification.of(event))
        self.gone_note(proc)
        proc.gone_expected = proc.removed = True
        self.tomb_pids[record.pod_name] = record.pid

    def start_child(self, proc: Proc) -> None:
        """What ``podd.core.spawning`` does once a child is ready."""
        self.procs.append(proc)
        proc.reports_here, proc.conns = True, [0]
        spec = PodSpec(
            name=proc.name,
            root=ROOT,
            cwd="/work",
            scope=[proc.rule],
            restart=proc.policy,
            incarnation=proc.incarnation,
            restore=proc.incarnation > 1,
        )
        waiter = ("spawn", next(self.waiters))
        (start,) = self.handle(SpawnAsked(spec, waiter))
        assert isinstance(start, StartChild) and (ME, ME_PID) == (
            start.spec.parent,
            start.spec.parent_pid,
        )
        assert [] == self.handle(ChildStarted(start.spec, proc.pid))
        effects = self.handle(
            ChildReady(start.spec, proc.pid, proc.socket, proc.start_time, waiter)
        )
        report = ScopeSubDelegated(
            ME, proc.name, proc.socket, [proc.rule], proc.pid, proc.start_time, sub_parent=ME
        )
        result = {
            "name": proc.name,
            "pid": proc.pid,
            "socket": proc.socket,
            "incarnation": proc.incarnation,
        }
        assert [
            PersistRegistry(),
            WatchChild(proc.name),
            PostEvent(report),
            ReplyWhenPersisted(waiter, result),
        ] == effects
        record = self.registry.get(proc.name)
        assert record is not None and (MY_SOCKET, proc.policy) == (
            record.callback_address,
            record.restart,
        )
        assert self.tombs.get(proc.name) is None
        self.run(effects)
        self.known[proc.name] = proc
        self.tomb_pids.pop(proc.name, None)
        self.registered[proc.name, proc.pid] += 1

    def post(self, proc: Proc, event: Any) -> None:
        """What ``proc``'s outbox does with an event: stamp it and queue it."""
        seq = proc.seq_base + len(proc.events) + 1
        proc.events.append(attrs.evolve(event, incarnation=proc.incarnation, seq=seq))

    def report(self, reporter: Proc, proc: Proc) -> None:
        event = ScopeSubDelegated(
            reporter.name,
            proc.name,
            proc.socket,
            [proc.rule],
            proc.pid,
            proc.start_time,
            sub_parent=proc.spawner,
        )
        self.post(reporter, event)

    def kill(self, proc: Proc, code: int) -> None:
        proc.alive = False
        if proc.direct or proc.adopted:
            proc.pending_exit = code

    def stop_pod(self, proc: Proc) -> None:
        """``proc`` stops as ``podd stop`` does: its subtree first, then ``shut_down``."""
        proc.stopped_with = self.subtree(proc)
        for other in proc.stopped_with:
            if other.alive:
                self.kill(other, 0)
        self.post(proc, ShutDown(proc.name, reason="stopped"))
        proc.said_shut_down = True

    def choose(self, data: st.DataObject, actions: dict[str, tuple[int, Action]]) -> None:
        """Do one of ``actions``, each drawn as often as its weight says (0: not now)."""
        names = [name for name, (weight, _) in sorted(actions.items()) for _ in range(weight)]
        actions[data.draw(st.sampled_from(names), label="action")][1](data)

    # --- The rules -------------------------------------------------------------------

    @initialize(data=st.data())
    def grow_a_tree(self, data: st.DataObject) -> None:
        """Every example starts from a small tree: children of ``ME``, pods below them,
        and their reports delivered, so that the steps are spent on what follows."""
        for _ in range(data.draw(st.integers(1, 3), label="children")):
            self.spawn(data)
        for _ in range(data.draw(st.integers(0, 3), label="pods below")):
            self.spawn_below(data)
        while self.in_flight():
            self.deliver(data)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One thing happens: ``ME`` acts, a pod below acts, or the wire carries an
        event. The rule draws which itself, with weights: Hypothesis' swarm testing turns
        whole rules off for an example, and most stories here need every kind of step."""
        self.steps += 1
        senders = self.senders()
        may_stop = self.steps > STOP_AFTER and self.phase != "ended"
        self.choose(
            data,
            {
                # ME
                "spawn": (2 * (not self.stopping and bool(self.spawnable())), self.spawn),
                "restart": (3 * bool(self.pending_restarts), self.restart),
                "exit seen": (2 * bool(self.exits_to_see()), self.exit_seen),
                "reclaim_stale": (2 * bool(self.stale_known()), self.reclaim_stale),
                "stop me": (3 * may_stop, self.stop_goes_on),
                "time passes": (1, self.time_passes),
                # the pods below
                "spawn below": (3 * bool(self.parents()), self.spawn_below),
                "report again": (int(bool(self.reports())), self.report_again),
                "end turn": (3 * bool(senders), self.end_turn),
                "stop": (int(any(not p.said_shut_down for p in senders)), self.stop_one),
                "die": (int(bool(self.alive())), self.die),
                "ask adoption": (3 * bool(self.orphans()), self.ask_adoption),
                # the wire
                "deliver": (6 * bool(self.in_flight()), self.deliver),
                "reconnect": (int(bool(senders)), self.reconnect),
                "flush": (2 * bool(senders), self.flush),
            },
        )

    # --- ME ----------------------------------------------------------------------------

    def spawn(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.spawnable()), label="name")
        policy = data.draw(st.sampled_from(POLICIES), label="policy")
        proc = Proc(name, next(self.pids), 1, f"/work/{name}", None, direct=True, policy=policy)
        holders = self.holders_of(proc.target)
        if holders:
            with pytest.raises(WriteConflict) as refused:
                scope.check_delegation(OWN, self.registry.held_scopes(), [proc.rule])
            assert any(f"held by pod {h!r}" in str(refused.value) for h in holders)
            return
        scope.check_delegation(OWN, self.registry.held_scopes(), [proc.rule])
        self.start_child(proc)

    def restart(self, data: st.DataObject, old: Proc | None = None) -> None:
        """As ``podd.runtime.children.Children._restart``; the kernel may give the new
        process the pid of the old one again."""
        if old is None:
            old = data.draw(st.sampled_from(self.pending_restarts), label="restart")
        self.pending_restarts.remove(old)
        if self.stopping or not self.name_free(old.name) or old.name in self.known:
            return  # dropped or refused by the runtime
        if self.holders_of(old.target):
            with pytest.raises(WriteConflict):
                scope.check_delegation(OWN, self.registry.held_scopes(), [old.rule])
            return
        pid = old.pid if data.draw(st.booleans(), label="same pid") else next(self.pids)
        self.start_child(
            Proc(old.name, pid, old.incarnation + 1, old.target, None, True, old.policy)
        )

    def exits_to_see(self) -> list[Proc]:
        return [p for p in self.procs if p.pending_exit is not None]

    def stale_known(self) -> list[Proc]:
        return [p for p in self.known.values() if not p.alive and not p.direct]

    def exit_seen(self, data: st.DataObject) -> None:
        """``ME`` learns of an exit: its own child's from the process, an adopted pod's
        from its pidfd."""
        proc = data.draw(st.sampled_from(self.exits_to_see()), label="exited")
        code, proc.pending_exit = proc.pending_exit, None
        assert code is not None
        record = self.registry.get(proc.name)
        expected: list[type] = []
        if self.known.get(proc.name) is proc:
            expected = [Reclaim, *self.restart_expected(proc, code)] if proc.direct else [Reclaim]
        if proc.direct:
            effects = self.handle(ChildExited(proc.name, proc.pid, code))
        else:
            effects = self.handle(AdoptedExited(proc.name, proc.pid))
        effects = [e for e in effects if not isinstance(e, Journal)]
        assert expected == [type(e) for e in effects]
        if effects:
            cause = exit_cause(code) if proc.direct else "process gone"
            assert record is not None
            assert Reclaim(record, cause, clean=proc.direct and code == 0) == effects[0]
        if Publish in expected:
            gave_up = RestartGaveUp(proc.name, self.trackers[proc.name].describe_limit())
            assert Publish(gave_up) == effects[1]
            self.notes.append(Notification.of(gave_up))
        self.run(effects, proc)
        if RestartLater in expected and data.draw(st.booleans(), label="restart at once"):
            # Before the old process's last events are read: they meet the new one.
            self.restart(data, proc)

    def restart_expected(self, proc: Proc, code: int) -> list[type]:
        """What the restart policy must do after ``proc`` exited with ``code``."""
        if self.stopping or proc.policy == "never" or (proc.policy == "on-failure" and not code):
            return []
        limit = RestartTracker()
        times = [t for t in self.restart_times.get(proc.name, []) if t > self.now - limit.window]
        if len(times) >= limit.limit:
            self.restart_times[proc.name] = times
            return [Publish]  # restart_gave_up: notified, and in the feed
        self.restart_times[proc.name] = [*times, self.now]
        return [RestartLater]

    def reclaim_stale(self, data: st.DataObject) -> None:
        """The periodic ``reclaim_stale`` finds pods further down dead (the runtime
        probes; the reclaim is the one a ``Reclaim`` effect asks for). ``ME``'s own
        children are left to their exits, which ``ME`` learns of at once."""
        for proc in self.stale_known():
            record = self.registry.get(proc.name)
            assert record is not None
            self.reclaim(record, "process gone (reclaim_stale)", clean=False)

    def stop_goes_on(self, data: st.DataObject) -> None:
        """``ME`` is stopped: the next phase of the stop ends."""
        match self.phase:
            case "running":
                self.begin_stop(data)
            case "spawns":
                # The spawn in flight fails; the last spawn settling ends the phase.
                effects = self.handle(ChildFailedToStart(LATE, SpawnFailed("stopping"), None))
                self.stop_children(effects)
            case "children":
                self.children_stopped(data)
            case "upward":
                self.outbox_flushed()

    def begin_stop(self, data: st.DataObject) -> None:
        drain, kill, spawns = (
            data.draw(st.booleans(), label=x) for x in ("drain", "kill", "spawns")
        )
        params = ShutdownParams(timeout=10, drain=drain, kill=kill)
        if spawns:
            assert [StartChild(attrs.evolve(LATE, parent_pid=ME_PID), None)] == [
                attrs.evolve(e, spec=attrs.evolve(e.spec, parent=None, parent_socket=None))
                for e in self.handle(SpawnAsked(LATE, None))
                if isinstance(e, StartChild)
            ]
        effects = self.handle(StopAsked(params, "stopped", REQUESTER))
        assert [Log("stopping: stopped")] == effects[:1]
        if spawns:
            assert [WaitSpawns(self.now + 10)] == effects[1:]
            self.phase = "spawns"
        else:
            self.stop_children(effects[1:])

    def stop_children(self, effects: list[Effect]) -> None:
        (effect,) = effects
        assert isinstance(effect, StopChildren)
        expected = {
            (p.name, tuple(sorted(q.name for q in self.reported_through(p.name))))
            for p in self.known.values()
            if p.reporter == ME
        }
        assert expected == {
            (r.pod_name, tuple(sorted(b.pod_name for b in below))) for r, below in effect.children
        }
        self.to_stop = [self.proc_of(r.pod_name, r.pid) for r, _ in effect.children]
        self.phase = "children"

    def children_stopped(self, data: st.DataObject) -> None:
        """Each child stopped cleanly, was killed, or (without ``kill``) outlived the
        deadline."""
        assert self.stop is not None
        outcomes = []
        for proc in self.to_stop:
            if not proc.alive:
                outcomes.append("clean")
                continue
            bad = "force_killed" if self.stop.params.kill else "timeout"
            outcome = data.draw(st.sampled_from(["clean", bad]), label=proc.name)
            outcomes.append(outcome)
            if outcome == "clean":
                self.stop_pod(proc)
                self.kill(proc, 0)
            elif outcome == "force_killed":
                for other in [proc, *self.subtree(proc)]:
                    if other.alive:
                        self.kill(other, -9)
        effects = self.handle(ChildrenStopped(tuple(outcomes)))
        if "timeout" in outcomes:
            assert [ReplyTo(REQUESTER, {"outcome": "timeout", "pid": ME_PID})] == effects
            assert (False, None) == (self.state.stop.stopping, self.state.stop.plan)
            self.phase = "running"
            return
        assert [PostEvent(ShutDown(ME, reason="stopped")), FlushOutbox] == [
            e if isinstance(e, PostEvent) else type(e) for e in effects
        ]
        self.run(effects)
        self.phase = "upward"

    def outbox_flushed(self) -> None:
        assert self.stop is not None
        outcome = "force_killed" if "force_killed" in self.stop.outcomes else "clean"
        direct = [self.registry.get(p.name) for p in self.known.values() if p.reporter == ME]
        effects = self.handle(OutboxFlushed())
        assert [
            *(Reclaim(r, "stopped with its parent", clean=True) for r in direct if r),
            FinishStop(outcome, (REQUESTER,)),
        ] == effects
        for effect in effects[:-1]:
            assert isinstance(effect, Reclaim)
            self.run([effect], self.known[effect.record.pod_name])
        self.phase = "ended"

    def time_passes(self, data: st.DataObject) -> None:
        self.now += data.draw(st.sampled_from([1.0, 30.0, 61.0]), label="seconds")

    # --- The pods below ----------------------------------------------------------------

    def parents(self) -> list[Proc]:
        return [p for p in self.alive() if p.depth() < MAX_DEPTH and self.chain_reporter(p)]

    def reports(self) -> list[tuple[Proc, Proc]]:
        """What a pod that reports here may report once more: a pod below it, alive
        or not, but never one that a newer process of its name has replaced (a pod's
        reports go out in order)."""
        newest = {p.name: p for p in self.procs}
        return [(r, p) for r in self.senders() for p in self.subtree(r) if newest[p.name] is p]

    def orphans(self) -> list[Proc]:
        return [p for p in self.alive() if p.parent is not None and not p.parent.alive]

    def spawn_below(self, data: st.DataObject) -> None:
        """A pod below spawns a child: the nearest pod that reports to ``ME`` tells
        ``ME`` with ``scope_sub_delegated``."""
        parent = data.draw(st.sampled_from(self.parents()), label="parent")
        reporter = self.chain_reporter(parent)
        assert reporter is not None

        def free(name: str) -> bool:
            held = self.known.get(name)
            return self.name_free(name) and (held is None or held.reporter == reporter.name)

        names = [n for n in NAMES if free(n)]
        if names:
            name = data.draw(st.sampled_from(names), label="name")
            target = f"{parent.target}/{name}"
            proc = Proc(name, next(self.pids), 1, target, parent, spawner=parent.name)
            self.procs.append(proc)
            self.report(reporter, proc)

    def report_again(self, data: st.DataObject) -> None:
        """A pod reports a pod below it once more (a forward of a forward, late: the
        pod may be dead by now)."""
        self.report(*data.draw(st.sampled_from(self.reports()), label="report"))

    def end_turn(self, data: st.DataObject) -> None:
        """A pod ends a turn: one terminal event (after its ``shut_down`` too)."""
        proc = data.draw(st.sampled_from(self.senders()), label="pod")
        proc.turns += 1
        if data.draw(st.booleans(), label="errored"):
            self.post(proc, Errored(proc.name, "exited with status 1", turn=proc.turns))
        else:
            self.post(proc, TurnEnded(proc.name, turn=proc.turns))

    def stop_one(self, data: st.DataObject) -> None:
        """A pod that reports here is stopped (``podd stop``), and may exit at once."""
        candidates = [p for p in self.senders() if not p.said_shut_down]
        proc = data.draw(st.sampled_from(candidates), label="pod")
        self.stop_pod(proc)
        if data.draw(st.booleans(), label="exits"):
            self.kill(proc, 0)

    def die(self, data: st.DataObject) -> None:
        """A pod dies; one with children is drawn more often (they are orphaned)."""
        alive = self.alive()
        parents = [p for p in alive if any(q.parent is p for q in alive)]
        proc = data.draw(st.sampled_from(alive + parents), label="pod")
        self.kill(proc, data.draw(st.sampled_from([0, 1, 70, -9, -15]), label="code"))

    def ask_adoption(self, data: st.DataObject) -> None:
        """A pod whose parent died asks its nearest live ancestor to adopt it."""
        proc = data.draw(st.sampled_from(self.orphans()), label="orphan")
        assert proc.parent is not None
        previous, adopter = proc.parent.name, proc.parent.parent
        while adopter is not None and not adopter.alive:
            adopter = adopter.parent
        if adopter is not None:
            proc.parent = adopter  # adopted further down: nothing changes here
            return
        params = AdoptParams(proc.name, previous_parent=previous, socket=proc.socket)
        known = self.known.get(proc.name)
        if self.stopping or known is not proc:
            error = ShuttingDown if self.stopping else PodNotFound if known is None else Forbidden
            with pytest.raises(error):
                self.handle(AdoptAsked(params, proc.pid))
            # Orphaned: it stops with its subtree; ME keeps what it knew of them.
            for other in [proc, *self.subtree(proc)]:
                if other.alive:
                    self.kill(other, 0)
            return
        with pytest.raises(Forbidden):  # only the pod's own process may ask
            self.handle(AdoptAsked(params, 1))
        effects = self.handle(AdoptAsked(params, proc.pid))
        adopted = Notification.of(Adopted(proc.name, previous))
        assert [
            PersistRegistry(),
            *notified(adopted),
            WatchAdopted(proc.name, proc.pid, proc.start_time),
            Reply({"name": ME, "pid": ME_PID, "socket": MY_SOCKET, "ancestors": []}),
        ] == effects
        record = self.registry.get(proc.name)
        assert record is not None and (ME, proc.socket) == (record.parent_pod, record.socket_path)
        self.notes.append(adopted)
        proc.parent, proc.reporter = None, ME
        proc.reports_here = proc.adopted = True
        # What it spawned, at any depth, is reported through it from now on.
        spawners = {proc.name}
        while moved := [
            p for p in self.known.values() if p.spawner in spawners and p.name not in spawners
        ]:
            for other in moved:
                other.reporter = proc.name
                spawners.add(other.name)
        # Its outbox now sends here what its dead parent did not acknowledge: among
        # them reports of pods below it, alive or not, which ME may know already.
        proc.seq_base, proc.conns = data.draw(st.integers(0, 3), label="seq base"), [0]
        for below in self.subtree(proc):
            if data.draw(st.booleans(), label=f"resend the report of {below.name}"):
                self.report(proc, below)

    # --- The wire ----------------------------------------------------------------------

    def deliver(self, data: st.DataObject) -> None:
        """The next event on one of a pod's connections reaches ``ME``."""
        proc, conn = data.draw(st.sampled_from(self.in_flight()), label="connection")
        index = proc.conns[conn]
        proc.conns[conn] += 1
        event = proc.events[index]
        expected = self.expect(proc, index, event)
        if expected is None:
            with pytest.raises(Forbidden):
                self.handle(EventReceived(event, proc.pid))
            return
        effects = self.handle(EventReceived(event, proc.pid))
        assert settled(expected) == effects
        self.run(effects, proc)

    def forget(self, proc: Proc, tomb_pid: int) -> None:
        del self.known[proc.name]
        proc.removed = True
        self.tomb_pids[proc.name] = tomb_pid

    def expect(self, proc: Proc, index: int, event: PodEvent) -> list[Effect] | None:
        """The effects of ``event`` from ``proc`` (None: ``Forbidden``); the model
        follows."""
        known = self.known.get(proc.name)
        trace = Trace(f"apply {proc.name} {getattr(event, 'turn', 0)}")
        if known is not proc:
            if known is not None and known.pid == proc.pid:
                assert known.incarnation > proc.incarnation
                return [trace, Reply({"applied": False})]  # an older incarnation's
            if self.tomb_pids.get(proc.name) == proc.pid:
                return [Reply(NO_LONGER_REGISTERED)]
            return None
        if index in proc.applied:
            return [trace, Reply({"applied": False})]
        proc.applied.add(index)
        applied = Reply({"applied": True})
        if isinstance(event, TurnEnded | Errored):
            proc.expected_turns.add(event.turn)
            return [trace, Notify(Notification.of(event)), applied]
        if isinstance(event, ShutDown):
            for other in [proc, *self.reported_through(proc.name)]:
                self.forget(other, proc.pid if other is proc else 0)
            proc.gone_expected = True
            return [trace, PersistRegistry(), Notify(Notification.of(event)), applied]
        assert isinstance(event, ScopeSubDelegated)
        sub = self.proc_of(event.sub_pod, event.sub_pid)
        held = self.known.get(sub.name)
        if held is sub or (held is not None and held.reporter != proc.name):
            return [trace, applied]  # registered once; another reporter's record stays
        if held is None and self.tomb_pids.get(sub.name) == sub.pid:
            return [trace, applied]  # a late report of a process removed here
        if held is not None:  # the same reporter's pod of that name, in a new process
            assert not held.alive
            held.removed = True
        self.known[sub.name] = sub
        sub.reporter = proc.name
        self.registered[sub.name, sub.pid] += 1
        forward = attrs.evolve(
            event,
            parent_pod=ME,
            sub_parent=event.sub_parent or event.parent_pod,
            incarnation=0,
            seq=0,
        )
        return [trace, PersistRegistry(), PostEvent(forward), applied]

    def reconnect(self, data: st.DataObject) -> None:
        """A pod's outbox reconnects: everything not acknowledged goes again, and the
        old connection may still deliver what it carries."""
        proc = data.draw(st.sampled_from(self.senders()), label="pod")
        proc.conns = [*proc.conns[-2:], proc.acked]

    def flush(self, data: st.DataObject) -> None:
        """A pod's outbox asks for its acknowledgement (``flush_events``)."""
        proc = data.draw(st.sampled_from(self.senders()), label="pod")
        with pytest.raises(Forbidden):  # nobody else may ask for its acknowledgement
            self.handle(FlushAsked(proc.name, proc.pid + 1000))
        if self.known.get(proc.name) is not proc and self.tomb_pids.get(proc.name) != proc.pid:
            with pytest.raises(Forbidden):
                self.handle(FlushAsked(proc.name, proc.pid))
            proc.acked = len(proc.events)  # its outbox gives up on them
            return
        (reply,) = self.handle(FlushAsked(proc.name, proc.pid))
        seq = proc.last_applied_seq()
        incarnation = proc.incarnation if seq or proc.direct else 0
        assert Reply({"incarnation": incarnation, "seq": seq}) == reply
        if incarnation == proc.incarnation:
            proc.acked = max(proc.acked, seq - proc.seq_base)
        assert set(range(proc.acked)) <= proc.applied, "an event acknowledged, not applied"

    # --- Invariants -------------------------------------------------------------------

    @invariant()
    def the_registry_is_what_me_knows(self) -> None:
        expected = {n: (p.pid, p.reporter) for n, p in self.known.items()}
        assert expected == {r.pod_name: (r.pid, r.parent_pod) for r in self.registry}

    @invariant()
    def only_known_pods_hold_scope(self) -> None:
        held = self.registry.held_scopes()
        assert {n: [p.rule] for n, p in self.known.items()} == dict(held)
        for proc in self.procs:
            if proc.name in self.known:
                continue
            if not self.holders_of(proc.target):
                scope.check_delegation(OWN, held, [proc.rule])
            else:
                with pytest.raises(WriteConflict):
                    scope.check_delegation(OWN, held, [proc.rule])

    @invariant()
    def tombstones_are_of_removed_pods(self) -> None:
        for name in NAMES:
            tomb = self.tombs.get(name)
            assert self.tomb_pids.get(name) == (tomb.pid if tomb else None)

    @invariant()
    def one_notification_per_turn_and_per_end(self) -> None:
        for proc in self.procs:
            assert collections.Counter(proc.expected_turns) == proc.turn_notes
            assert (1 if proc.gone_expected else 0) == proc.gone_notes

    @invariant()
    def each_registered_pod_went_upward_once(self) -> None:
        reports = collections.Counter(
            (e.sub_pod, e.sub_pid) for e in self.upward if isinstance(e, ScopeSubDelegated)
        )
        assert self.registered == reports
        shut_down = [e for e in self.upward if isinstance(e, ShutDown)]
        assert len(shut_down) == (1 if self.phase in ("upward", "ended") else 0)


TestPodMachine = PodMachine.TestCase
TestPodMachine.settings = settings(
    max_examples=100,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


class TestFindings:
    """What the machine found in ``podd.core``, as table tests of the fixes."""

    def test_shut_down_of_an_adopted_pod_removes_its_subtree(self) -> None:
        # a -> b -> c; ME learned of b and c through a. a died and b was adopted here.
        b = child("b", 101, parent="a", spawned_by="a")
        c = child("c", 102, parent="a", spawned_by="b")
        b.scope_delegated = [ScopeRule("/work/a/b", "write")]
        c.scope_delegated = [ScopeRule("/work/a/b/c", "write")]
        registry, tombs = registry_of(b, c), Tombstones()
        adopt = AdoptParams("b", previous_parent="a", socket=b.socket_path)
        on_adopt(registry, ME, ME_PID, MY_SOCKET, LINEAGE, False, adopt, 101)
        # b is stopped: c first, then b says shut_down.
        on_pod_event(registry, tombs, ME, ShutDown("b", incarnation=1, seq=1), 101)
        assert ([], {}) == ([r.pod_name for r in registry], dict(registry.held_scopes()))

    def test_a_late_report_does_not_register_a_removed_pod_again(self) -> None:
        # a -> g -> h; ME learned of g and h through a. a died and g was adopted here.
        g, h = child("g", 400, parent="a"), child("h", 500, parent="a")
        g.scope_delegated = [ScopeRule("/work/a/g", "write")]
        h.scope_delegated = [ScopeRule("/work/a/g/h", "write")]
        registry, tombs = registry_of(g, h), Tombstones()
        adopt = AdoptParams("g", previous_parent="a", socket=g.socket_path)
        on_adopt(registry, ME, ME_PID, MY_SOCKET, LINEAGE, False, adopt, 400)
        # h died; reclaim_stale reclaimed it (``Reclaimed``).
        registry.remove("h")
        tombs.bury("h", Tombstone(500, 0, 0))
        # g's outbox sends here the report of h that a never acknowledged.
        late = ScopeSubDelegated(
            "g", "h", h.socket_path, h.scope_delegated, 500, 1500.0, incarnation=1, seq=3
        )
        effects = on_pod_event(registry, tombs, ME, late, 400)
        assert (["g"], []) == (
            [r.pod_name for r in registry],
            [e for e in effects if isinstance(e, PostEvent)],
        )
