"""Table tests of ``podd.core.machine.handle``: each input, on a given state, changes
the state as the pod's rules say and returns exactly these effects. No event loop, no
sockets, no processes: the time is an argument."""

from __future__ import annotations

from typing import Any

import pytest

from podd.core.effects import (
    Effect,
    FindAdopter,
    FinishStop,
    FlushOutbox,
    Journal,
    Log,
    PersistRegistry,
    PostEvent,
    Publish,
    Reclaim,
    Reply,
    ReplyError,
    ReplyTo,
    ReplyWhenPersisted,
    RestartLater,
    RunTurn,
    StartChild,
    StopChildren,
    StopTurn,
    TakeSlots,
    TellPrerequisites,
    Trace,
    TurnOver,
    WaitSpawns,
    WatchChild,
)
from podd.core.inputs import (
    AdoptedBy,
    ChildExited,
    ChildFailedToStart,
    ChildReady,
    ChildrenStopped,
    ChildStarted,
    DepsAnswered,
    EventReceived,
    Input,
    OutboxFlushed,
    ParentDied,
    Reclaimed,
    SendAsked,
    SlotsGranted,
    SpawnAsked,
    SpawnsSettled,
    StopAsked,
    TaskDue,
    TurnDone,
    TurnStopped,
    WaitAsked,
)
from podd.core.machine import handle
from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import Ancestor, PodSpec
from podd.core.state import PodState
from podd.core.tombstones import Tombstone
from protocol import (
    AlreadyRunning,
    Errored,
    Forbidden,
    InvalidParams,
    NoAgent,
    PodExists,
    PodNotFound,
    ScopeNotSubset,
    ScopeRule,
    SendParams,
    ShutDown,
    ShutdownParams,
    ShuttingDown,
    SpawnFailed,
    TurnEnded,
)
from protocol.errors import QueueFull, WriteConflict
from protocol.messages import TaskSkipped
from tests.core.test_events import ME, child

NOW = 100.0
PARENT_PID = 7
WAITER = ("conn", 1)


def state_of(*records: Any, **spec: Any) -> PodState:
    """The state of pod ``ME`` (parent ``up``, pid 10) holding ``records``."""
    fields: dict[str, Any] = {
        "name": ME,
        "root": "/run/podd",
        "cwd": "/work",
        "scope": [ScopeRule("/work", "write")],
        "parent": "up",
        "parent_socket": "/run/podd/up/sock",
        "parent_pid": PARENT_PID,
        "agent": "cat",
    }
    fields.update(spec)
    state = PodState.of(PodSpec(**fields), 10)
    for record in records:
        state.registry.add(record)
    return state


def run(state: PodState, *inputs: Input) -> list[Effect]:
    """Feed ``inputs`` in order; the effects of the last."""
    effects: list[Effect] = []
    for event in inputs:
        effects = handle(state, event, NOW)
    return effects


def writing(record: ChildRecord, target: str) -> ChildRecord:
    """``record``, holding write on ``target`` only."""
    record.scope_delegated = [ScopeRule(target, "write")]
    return record


def of(kind: type, effects: list[Effect]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def send(text: str = "go", **params: Any) -> SendAsked:
    waiter = params.pop("waiter", None)
    return SendAsked(SendParams(text=text, **params), waiter)


def finished(turn: int, **fields: Any) -> TurnDone:
    record = {"turn": turn, "outcome": "finished", "cause": None, **fields}
    return TurnDone(record)


class TestSend:
    """A send begins a turn on an idle pod, queues or is refused on a busy one."""

    def test_an_idle_pod_begins_turn_one_and_says_so(self) -> None:
        state = state_of()
        effects = run(state, send("hello"))
        assert [RunTurn, Reply] == [type(e) for e in effects if not isinstance(e, Publish)]
        started = of(RunTurn, effects)[0]
        assert (1, ("hello", 1, ())) == (
            state.turns.count,
            (started.work.text, started.turn, started.notes),
        )
        assert Reply({"turn": 1, "queued": False}) == effects[-1]
        assert ("running", None) == (state.phase, state.turns.waiting_on)

    def test_the_turn_input_carries_the_drained_notifications(self) -> None:
        state = state_of()
        state.notifications.push(Notification.of(TurnEnded("kid")))
        effects = run(state, send())
        assert Journal({"op": "drain"}) in effects
        assert (("pod 'kid' finished a turn",), 0) == (
            of(RunTurn, effects)[0].notes,
            len(state.notifications),
        )

    def test_a_busy_pod_refuses_without_queue(self) -> None:
        state = state_of()
        run(state, send())
        with pytest.raises(AlreadyRunning, match="already running turn 1"):
            run(state, send())

    def test_a_busy_pod_queues_by_priority_and_journals_the_push(self) -> None:
        state = state_of()
        run(state, send())
        run(state, send("low", queue=True))
        effects = run(state, send("high", queue=True, priority=5))
        assert Reply({"turn": None, "queued": True, "position": 1}) == effects[-1]
        assert ["queue_push"] == [e.record["op"] for e in of(Journal, effects)]
        assert ["high", "low"] == [w.text for w in state.turns.queue.items()]

    def test_a_full_queue_is_refused(self) -> None:
        state = state_of()
        run(state, send())
        for _ in range(1000):
            run(state, send(queue=True))
        with pytest.raises(QueueFull):
            run(state, send(queue=True))

    @pytest.mark.parametrize(
        ("spec", "params", "error"),
        [
            ({"agent": None}, {}, NoAgent),
            ({"driver": "claude", "agent": "claude"}, {"text": "  "}, InvalidParams),
        ],
    )
    def test_what_cannot_run_is_refused(
        self, spec: dict[str, Any], params: dict[str, Any], error: type
    ) -> None:
        state = state_of(**spec)
        with pytest.raises(error):
            run(state, send(**params))
        assert (0, None) == (state.turns.count, state.turns.work)

    def test_a_stopping_pod_refuses(self) -> None:
        state = state_of()
        run(state, StopAsked(ShutdownParams(), "stopped"))
        with pytest.raises(ShuttingDown):
            run(state, send())

    def test_a_pod_under_a_limit_waits_for_slots_first(self) -> None:
        state = state_of(max_running=1)
        effects = run(state, send())
        assert [TakeSlots] == [type(e) for e in effects if not isinstance(e, Reply)]
        assert ("waiting", "a slot (--max-running)") == (state.phase, state.turns.waiting_on)
        work = of(TakeSlots, effects)[0].work
        effects = run(state, SlotsGranted(work, ("lease",)))
        assert ("lease",) == of(RunTurn, effects)[0].leases
        assert "running" == state.phase


class TestTurnDone:
    """A work item ends once: totals, journal, one event upward, replies, what is next."""

    def test_the_effects_of_a_finished_turn_in_order(self) -> None:
        state = state_of()
        run(state, send(waiter=WAITER))
        record = {
            "turn": 1,
            "outcome": "finished",
            "cause": None,
            "summary": "done",
            "cost_usd": 0.5,
            "permission_denials": [{}, {}],
            "session_id": "s1",
        }
        effects = run(state, TurnDone(record))
        assert [TurnOver, Journal, Journal, PostEvent, Log, ReplyTo] == [type(e) for e in effects]
        assert ["session", "turn"] == [e.record["op"] for e in of(Journal, effects)]
        assert TurnEnded(ME, turn=1, summary="done", cost_usd=0.5, denied=2) == (
            of(PostEvent, effects)[0].event
        )
        assert ReplyTo(WAITER, record) == effects[-1]
        assert ("idle", 0.5, "s1", record) == (
            state.phase,
            state.turns.cost_usd,
            state.turns.session,
            state.turns.last_record,
        )

    def test_an_errored_turn_goes_up_as_errored_with_its_message(self) -> None:
        state = state_of()
        run(state, send())
        effects = run(state, TurnDone({"turn": 1, "outcome": "errored", "cause": "exit 3"}))
        assert [Errored(ME, "exit 3", turn=1)] == [e.event for e in of(PostEvent, effects)]

    def test_the_next_queued_item_begins_as_the_next_turn(self) -> None:
        state = state_of()
        run(state, send(), send("second", queue=True))
        effects = run(state, finished(1))
        pops = [e.record for e in of(Journal, effects) if e.record["op"] == "queue_pop"]
        assert (1, "second", 2) == (len(pops), of(RunTurn, effects)[0].work.text, 2)
        assert 2 == state.turns.count

    def test_wait_is_answered_once_nothing_runs_or_is_queued(self) -> None:
        state = state_of()
        run(state, send(), send(queue=True))
        assert [] == run(state, WaitAsked(WAITER))
        assert [] == of(ReplyTo, run(state, finished(1)))
        record = {"turn": 2, "outcome": "finished", "cause": None}
        effects = run(state, TurnDone(record))
        assert [ReplyTo(WAITER, {"last_turn": record})] == of(ReplyTo, effects)

    def test_wait_on_an_idle_pod_answers_at_once(self) -> None:
        assert [Reply({"last_turn": None})] == run(state_of(), WaitAsked(WAITER))


class TestNotifications:
    """Notifications are buffered, wake an idle wake-on-notify pod, and release or skip
    the tasks of children that wait for a sibling."""

    def test_an_event_from_below_is_buffered_and_journaled(self) -> None:
        state = state_of(child("a", 11))
        event = TurnEnded("a", turn=1, incarnation=1, seq=1)
        effects = run(state, EventReceived(event, 11))
        assert [Trace, Journal, Reply] == [type(e) for e in effects]
        assert "notify" == of(Journal, effects)[0].record["op"]
        assert 1 == len(state.notifications)

    def test_it_wakes_an_idle_wake_on_notify_pod_with_the_notification_as_input(self) -> None:
        state = state_of(child("a", 11), wake_on_notify=True)
        effects = run(state, EventReceived(TurnEnded("a", turn=1), 11))
        assert ("pod 'a' finished turn 1",) == of(RunTurn, effects)[0].notes
        assert (1, 0) == (state.turns.count, len(state.notifications))

    def test_during_a_turn_it_makes_one_more_turn_pending(self) -> None:
        state = state_of(child("a", 11), wake_on_notify=True)
        run(state, send())
        assert [] == of(RunTurn, run(state, EventReceived(TurnEnded("a", turn=1), 11)))
        assert state.turns.wake_pending
        assert [2] == [e.turn for e in of(RunTurn, run(state, finished(1)))]

    def test_a_sibling_finishing_releases_the_waiting_task(self) -> None:
        state = state_of(child("a", 11), child("b", 12))
        state.children.prerequisites["b"] = {"a"}
        effects = run(state, EventReceived(TurnEnded("a", turn=1), 11))
        assert [TellPrerequisites("b", None)] == of(TellPrerequisites, effects)
        assert ({}, {"a"}) == (state.children.prerequisites, state.children.finished)

    def test_a_child_finishing_is_remembered_when_no_task_waits(self) -> None:
        # For a sibling spawned later with --after: it does not wait for this one.
        state = state_of(child("a", 11))
        effects = run(state, EventReceived(TurnEnded("a", turn=1), 11))
        assert [] == of(TellPrerequisites, effects)
        assert ({}, {"a"}) == (state.children.prerequisites, state.children.finished)

    def test_a_sibling_erroring_skips_the_waiting_task_and_says_so(self) -> None:
        state = state_of(child("a", 11), child("b", 12))
        state.children.prerequisites["b"] = {"a"}
        effects = run(state, EventReceived(Errored("a", "boom", turn=1), 11))
        skipped = TaskSkipped("b", "'a' errored")
        assert [TellPrerequisites("b", "'a' errored")] == of(TellPrerequisites, effects)
        assert [skipped] == [e.event for e in of(Publish, effects)]
        assert [Notification.of(skipped).text] == [
            n.text for n in state.notifications.peek() if n.event.kind == "task_skipped"
        ]


class TestTask:
    """The task begins when the pod is up, unless it waits for siblings (``--after``),
    which only the parent's ``deps`` releases."""

    def test_the_task_begins_when_due(self) -> None:
        state = state_of(task="build")
        effects = run(state, TaskDue())
        work = state.turns.work
        assert ("build", True) == (of(RunTurn, effects)[0].work.text, work and work.task)

    def test_a_task_after_siblings_waits_until_the_parent_says(self) -> None:
        state = state_of(task="build", after=["a"])
        assert [] == run(state, TaskDue())
        assert "waiting" == state.phase
        with pytest.raises(Forbidden):
            run(state, DepsAnswered(None, 99))
        effects = run(state, DepsAnswered(None, PARENT_PID))
        assert ["build"] == [e.work.text for e in of(RunTurn, effects)]

    def test_a_skipped_task_never_runs(self) -> None:
        state = state_of(task="build", after=["a"])
        run(state, TaskDue())
        effects = run(state, DepsAnswered("'a' errored", PARENT_PID))
        assert ([], None, "idle") == (of(RunTurn, effects), state.turns.work, state.phase)

    def test_a_task_waiting_when_the_parent_dies_is_skipped_and_told_to_the_adopter(
        self,
    ) -> None:
        # Only the parent watched the siblings: nobody would ever release the task.
        state = state_of(task="build", after=["a"])
        run(state, TaskDue(), WaitAsked(WAITER))
        effects = run(state, ParentDied())
        reason = "its parent 'up' died before its prerequisites finished"
        assert [
            Log(f"task skipped: {reason}"),
            ReplyTo(WAITER, {"last_turn": None}),
            FindAdopter("up", reason),
        ] == effects
        assert (None, "idle") == (state.turns.work, state.phase)
        # The parent's deps, had it come, changes nothing now.
        assert [Reply({"ok": True})] == run(state, DepsAnswered(None, PARENT_PID))

    def test_the_death_of_a_parent_it_has_left_changes_nothing(self) -> None:
        # Back with the pod that spawned it (rejoin), the watch of the adopter runs on.
        state = state_of(task="build", after=["a"])
        run(state, TaskDue())
        assert [] == run(state, ParentDied(PARENT_PID + 1))
        assert "waiting" == state.phase
        assert [FindAdopter] == [type(e) for e in run(state, ParentDied(PARENT_PID))][-1:]

    @pytest.mark.parametrize("task", [None, "build"])
    def test_a_parent_death_leaves_other_work_alone(self, task: str | None) -> None:
        state = state_of(task=task)
        run(state, TaskDue())
        before = state.turns.work
        assert [FindAdopter("up", None)] == run(state, ParentDied())
        assert before is state.turns.work


class TestStop:
    """A stop goes through its phases once; its outcome answers every requester."""

    def test_stop_phases_in_order_with_a_child_and_a_turn(self) -> None:
        state = state_of(child("a", 11))
        run(state, send())
        effects = run(state, StopAsked(ShutdownParams(timeout=10), "stopped", WAITER))
        assert [Log, StopChildren] == [type(e) for e in effects]
        assert ("stopping", "stopped") == (state.phase, state.stop.reason)
        assert [StopTurn] == [type(e) for e in run(state, ChildrenStopped(("clean",)))]
        effects = run(state, TurnStopped("force_killed"))
        assert [PostEvent(ShutDown(ME, reason="stopped")), FlushOutbox(2.0)] == effects
        effects = run(state, OutboxFlushed())
        assert [Reclaim, FinishStop] == [type(e) for e in effects]
        assert FinishStop("force_killed", (WAITER,)) == effects[-1]

    def test_a_second_stop_only_adds_its_requester(self) -> None:
        state = state_of()
        run(state, StopAsked(ShutdownParams(), "stopped", WAITER))
        assert [] == run(state, StopAsked(ShutdownParams(), "received SIGTERM", ("c2", 2)))
        assert ("stopped", [WAITER, ("c2", 2)]) == (state.stop.reason, state.stop.requesters)

    def test_spawns_in_flight_are_waited_for_first(self) -> None:
        state = state_of()
        state.children.pending["kid"] = []
        effects = run(state, StopAsked(ShutdownParams(timeout=5), "stopped"))
        assert [WaitSpawns(NOW + 5)] == of(WaitSpawns, effects)
        assert [StopChildren] == [type(e) for e in run(state, SpawnsSettled())]

    def test_a_timeout_gives_the_stop_up_and_answers(self) -> None:
        state = state_of()
        run(state, send(), StopAsked(ShutdownParams(kill=False), "stopped", WAITER))
        effects = run(state, TurnStopped("timeout"))
        assert [ReplyTo(WAITER, {"outcome": "timeout", "pid": 10})] == effects
        assert (False, None, []) == (
            state.stop.stopping,
            state.stop.plan,
            state.stop.requesters,
        )

    def test_drain_drops_the_queue_and_answers_its_waiters(self) -> None:
        state = state_of()
        run(state, send(), send("later", queue=True, waiter=WAITER))
        run(state, StopAsked(ShutdownParams(drain=True), "stopped"))
        effects = run(state, ChildrenStopped(()))
        dropped = {"turn": None, "outcome": "errored", "cause": "dropped by stop"}
        assert [ReplyTo(WAITER, dropped)] == of(ReplyTo, effects)
        assert (0, [StopTurn]) == (
            len(state.turns.queue),
            [type(e) for e in effects if isinstance(e, StopTurn)],
        )
        effects = run(state, TurnStopped("clean"), OutboxFlushed())
        assert FinishStop("drained_with_discards", ()) == effects[-1]

    def test_late_phase_inputs_after_a_given_up_stop_do_nothing(self) -> None:
        state = state_of()
        assert [] == run(state, SpawnsSettled(), ChildrenStopped(()), OutboxFlushed())


class TestChildren:
    """A direct child's death is reclaimed and may be restarted by its policy."""

    def test_a_dead_child_is_reclaimed_and_restarted_on_failure(self) -> None:
        state = state_of(child("a", 11))
        spec = PodSpec(name="a", root="/run/podd", cwd="/work", scope=[], restart="on-failure")
        state.children.specs["a"] = spec
        effects = run(state, ChildExited("a", 11, -9))
        assert [Reclaim, RestartLater] == [type(e) for e in effects]
        assert "killed by SIGKILL" == of(Reclaim, effects)[0].cause
        assert spec == of(RestartLater, effects)[0].spec
        assert ({}, {}) == (state.children.specs, state.children.restart_specs)

    def test_a_late_exit_of_an_old_process_leaves_the_new_ones_spec(self) -> None:
        state = state_of(child("a", 12))
        spec = PodSpec(name="a", root="/run/podd", cwd="/work", scope=[], restart="always")
        state.children.specs["a"] = spec
        assert [] == run(state, ChildExited("a", 11, 0))
        assert ({"a": spec}, {}) == (state.children.specs, state.children.restart_specs)

    def test_the_exit_of_a_pod_that_said_shut_down_is_nothing(self) -> None:
        state = state_of()
        assert [] == run(state, ChildExited("a", 11, 0))

    def test_a_reclaimed_pod_is_removed_buried_and_named_in_a_notification(self) -> None:
        record = child("a", 11, incarnation=2, last_seq=4)
        state = state_of(record)
        effects = run(state, Reclaimed(record, "exited with status 3", clean=False))
        gone = Errored("a", "pod died: exited with status 3")
        assert [PersistRegistry, Journal, Publish] == [type(e) for e in effects]
        assert [gone] == [e.event for e in of(Publish, effects)]
        assert (None, Tombstone(11, 2, 4)) == (
            state.registry.get("a"),
            state.tombstones.get("a"),
        )

    def test_a_clean_reclaim_says_shut_down(self) -> None:
        record = child("a", 11)
        state = state_of(record)
        effects = run(state, Reclaimed(record, "stopped", clean=True))
        assert [ShutDown("a", reason="pod stopped")] == [e.event for e in of(Publish, effects)]


class TestSpawning:
    """A spawn reserves its name and scope until it settles; a ready child is
    registered, watched, reported upward and answered once the registry is on disk."""

    def kid(self, **fields: Any) -> PodSpec:
        rule = ScopeRule("/work/kid", "write")
        return PodSpec(name="kid", root="/run/podd", cwd="/work", scope=[rule], **fields)

    def test_a_spawn_reserves_and_starts_the_child_under_this_pod(self) -> None:
        state = state_of(child("a", 11), ancestors=[Ancestor("top", "/run/podd/top/sock")])
        effects = run(state, SpawnAsked(self.kid(after=["a"], task="t"), WAITER))
        (start,) = of(StartChild, effects)
        assert (ME, state.pid, ["up", "top"]) == (
            start.spec.parent,
            start.spec.parent_pid,
            [a.name for a in start.spec.ancestors],
        )
        assert ({"kid": [ScopeRule("/work/kid", "write")]}, {"kid": {"a"}}) == (
            state.children.pending,
            state.children.prerequisites,
        )

    def test_a_ready_child_is_registered_reported_and_answered(self) -> None:
        state = state_of()
        spec = self.kid()
        run(state, SpawnAsked(spec, WAITER), ChildStarted(spec, 42))
        assert "kid" not in state.registry  # starting: its events are accepted, not listed
        effects = run(state, ChildReady(spec, 42, "/run/podd/kid/sock", 5.5, WAITER))
        assert [PersistRegistry, WatchChild, PostEvent, ReplyWhenPersisted] == [
            type(e) for e in effects
        ]
        report = of(PostEvent, effects)[0].event
        assert (ME, "kid", 42) == (report.parent_pod, report.sub_pod, report.sub_pid)
        result = {"name": "kid", "pid": 42, "socket": "/run/podd/kid/sock", "incarnation": 1}
        assert ReplyWhenPersisted(WAITER, result) == effects[-1]
        record = state.registry.get("kid")
        assert ({}, 42, spec) == (
            state.children.pending,
            record and record.pid,
            state.children.specs["kid"],
        )

    def test_a_failed_spawn_gives_everything_back_and_answers_the_error(self) -> None:
        state = state_of(child("a", 11))
        spec = self.kid(after=["a"], task="t")
        run(state, SpawnAsked(spec, WAITER), ChildStarted(spec, 42))
        error = SpawnFailed("no such agent")
        effects = run(state, ChildFailedToStart(spec, error, WAITER))
        assert [ReplyError(WAITER, error)] == effects
        assert ({}, {}, None) == (
            state.children.pending,
            state.children.prerequisites,
            state.registry.get("kid"),
        )

    @pytest.mark.parametrize(
        ("spec", "error"),
        [
            (
                {"name": ME},
                PodExists(f"a pod named {ME!r} already exists"),
            ),
            (
                {"name": "a"},
                PodExists("a pod named 'a' already exists"),
            ),
            (
                {"scope": [ScopeRule("/etc", "read")]},
                ScopeNotSubset("scope read:/etc is outside the parent's scope (write:/work)"),
            ),
            (
                {"scope": [ScopeRule("/work/a/x", "write")]},
                WriteConflict("write on /work/a/x overlaps write on /work/a held by pod 'a'"),
            ),
            (
                {"after": ["b", "nobody"], "task": "t"},
                PodNotFound("--after names no child of 'me': 'nobody'"),
            ),
            (
                {"after": ["g"], "task": "t"},
                PodNotFound("--after names no child of 'me': 'g'"),
            ),
        ],
        ids=[
            "own-name",
            "held-here",
            "not-covered",
            "write-conflict",
            "after-no-child",
            "after-a-grandchild",
        ],
    )
    def test_what_the_books_forbid_is_answered_and_nothing_reserved(
        self, spec: dict[str, Any], error: Exception
    ) -> None:
        state = state_of(child("a", 11), child("b", 12), child("g", 13, parent="a"))
        fields = {"name": "kid", **spec}
        name = fields.pop("name")
        rules = fields.pop("scope", [ScopeRule("/work/kid", "write")])
        asked = PodSpec(name=name, root="/run/podd", cwd="/work", scope=rules, **fields)
        (reply,) = run(state, SpawnAsked(asked, WAITER))
        assert isinstance(reply, ReplyError)
        assert (WAITER, type(error), str(error), {}) == (
            reply.waiter,
            type(reply.error),
            str(reply.error),
            state.children.pending,
        )

    def test_after_keeps_only_the_siblings_not_finished_yet(self) -> None:
        state = state_of(child("a", 11), child("b", 12))
        state.children.finished.add("a")
        (start,) = run(state, SpawnAsked(self.kid(after=["a", "b"], task="t"), WAITER))
        assert isinstance(start, StartChild)
        assert (["b"], {"kid": {"b"}}) == (start.spec.after, state.children.prerequisites)

    def test_after_without_a_task_waits_for_nothing(self) -> None:
        state = state_of(child("a", 11))
        (start,) = run(state, SpawnAsked(self.kid(after=["a"]), WAITER))
        assert isinstance(start, StartChild)
        assert ([], {}) == (start.spec.after, state.children.prerequisites)

    def test_a_restart_by_policy_the_books_forbid_is_a_notification(self) -> None:
        state = state_of(child("kid", 11))
        effects = run(state, SpawnAsked(self.kid(restore=True, incarnation=2), None))
        refused = Errored("kid", "restart refused: a pod named 'kid' already exists")
        assert ([Journal], [Notification.of(refused)], {}) == (
            [type(e) for e in effects],
            state.notifications.peek(),
            state.children.pending,
        )

    def test_a_restart_may_take_back_the_writes_of_what_it_spawned(self) -> None:
        """Adopted here while ``kid`` was dead, its child and grandchild still hold write
        inside its scope: delegations of its own, no conflict for its restart; a
        sibling's write there still is one."""
        below = [
            writing(child("c", 21, spawned_by="kid"), "/work/kid/c"),
            writing(child("g", 22, parent="c", spawned_by="c"), "/work/kid/c/g"),
        ]
        state = state_of(*below)
        (start,) = of(StartChild, run(state, SpawnAsked(self.kid(restore=True), None)))
        assert "kid" == start.spec.name
        state = state_of(*below, writing(child("o", 23), "/work/kid/o"))
        (reply,) = run(state, SpawnAsked(self.kid(restore=True), WAITER))
        assert isinstance(reply, ReplyError)
        assert "held by pod 'o'" in str(reply.error)

    def test_a_new_pod_of_the_name_gets_no_such_pass(self) -> None:
        """Only a restart (``restore``) takes its old delegations back."""
        state = state_of(writing(child("c", 21, spawned_by="kid"), "/work/kid/c"))
        (reply,) = run(state, SpawnAsked(self.kid(), WAITER))
        assert isinstance(reply, ReplyError)
        assert "held by pod 'c'" in str(reply.error)

    def test_a_failed_restart_by_policy_counts_as_a_failure(self) -> None:
        state = state_of()
        spec = self.kid(restart="always", restore=True)
        run(state, SpawnAsked(spec, None))
        effects = run(state, ChildFailedToStart(spec, SpawnFailed("gone"), None))
        assert [RestartLater] == [type(e) for e in effects if not isinstance(e, Journal)]
        failed = Errored("kid", "restart failed: gone")
        assert [Notification.of(failed)] == state.notifications.peek()

    def test_a_stop_waiting_for_spawns_goes_on_when_the_last_settles(self) -> None:
        state = state_of()
        spec = self.kid()
        run(state, SpawnAsked(spec, WAITER), StopAsked(ShutdownParams(), "stopped"))
        assert "spawns" == (state.stop.plan.phase if state.stop.plan else None)
        effects = run(state, ChildReady(spec, 42, "/run/podd/kid/sock", 5.5, WAITER))
        assert [StopChildren] == [type(e) for e in of(StopChildren, effects)]
        assert [] == run(state, SpawnsSettled())  # the deadline, after the fact


class TestLineage:
    def test_adoption_makes_the_adopter_the_parent(self) -> None:
        top = Ancestor("top", "/run/podd/top/sock")
        state = state_of(ancestors=[Ancestor("mid", "/run/podd/mid/sock"), top])
        run(state, AdoptedBy(top, 3))
        assert ("top", 3, ()) == (
            state.lineage.parent,
            state.lineage.parent_pid,
            state.lineage.ancestors,
        )


def test_every_input_type_is_handled() -> None:
    """``handle`` knows every kind of input (a new one without a rule is a TypeError)."""
    state = state_of()
    with pytest.raises(TypeError):
        handle(state, object(), NOW)  # type: ignore[arg-type]
    assert (0, None) == (state.turns.count, state.stop.plan)
