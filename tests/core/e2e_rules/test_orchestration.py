"""Table tests mirroring ``tests/e2e/test_orchestration.py``: the rules it sees the product keep."""

from __future__ import annotations

from typing import Any

import pytest

from podd.core.effects import (
    Journal,
    Reply,
    ReplyTo,
    RunTurn,
    StopTurn,
    TakeSlots,
    TellPrerequisites,
)
from podd.core.inputs import (
    ChildrenStopped,
    DepsAnswered,
    EventReceived,
    SlotsGranted,
    StopAsked,
    TaskDue,
    TurnDone,
    WaitAsked,
)
from podd.core.spec import Ancestor, PodSpec, slot_holders_below
from podd.core.state import PodState
from podd.core.turns import Work, empty_usage, loop_verdict
from protocol import (
    Errored,
    Forbidden,
    ShutDown,
    ShutdownParams,
    TurnEnded,
)
from protocol.errors import QueueFull
from tests.core.e2e_rules.support import (
    OTHER_PROCESS,
    ROOT,
    ended,
    events_up,
    noted,
    spawn_child,
    spec_of,
)
from tests.core.test_events import ME
from tests.core.test_machine import PARENT_PID, WAITER, finished, of, run, send, state_of


class TestOrchestration:
    """The queue runs by priority then arrival and survives a stop without ``--drain``;
    a loop is one work item with one event upward; ``--after`` holds a task until its
    parent releases or skips it; a limited subtree takes slots; ``wait`` answers the
    last record; the counts a completion record shows are kept."""

    def test_queued_sends_run_by_priority_then_arrival_and_an_idle_pod_runs_one_at_once(
        self,
    ) -> None:
        long_text = "long " + "x" * 95
        queued = [
            ("low-a", 0, 1),
            ("high-a", 5, 1),
            ("low-b", 0, 3),
            ("high-b", 5, 2),
            ("negative", -1, 5),
            (long_text, 1, 3),
        ]
        state = state_of()
        run(state, send("first"))
        replies = [
            run(state, send(text, queue=True, priority=priority))[-1]
            for text, priority, _ in queued
        ]
        assert [
            Reply({"turn": None, "queued": True, "position": p}) for _, _, p in queued
        ] == replies
        ran = ["first"]
        while state.turns.work is not None:
            ran += [t.work.text for t in of(RunTurn, run(state, finished(state.turns.count)))]
        assert ["first", "high-a", "high-b", long_text, "low-a", "low-b", "negative"] == ran
        assert Reply({"turn": 8, "queued": False}) == run(state, send("now", queue=True))[-1]

    def test_the_queue_takes_1000_sends_in_positions_1_to_1000_and_refuses_more(self) -> None:
        state = state_of()
        run(state, send("first"))
        positions = [run(state, send("q", queue=True))[-1] for _ in range(1000)]
        assert [Reply({"turn": None, "queued": True, "position": p}) for p in range(1, 1001)] == (
            positions
        )
        with pytest.raises(QueueFull, match="1000"):
            run(state, send("one too many", queue=True))
        assert 1000 == len(state.turns.queue)

    def stopped_with_a_queue(self) -> PodState:
        """A pod stopped without ``--drain`` while turn 1 ran and two sends waited in its
        queue, as its next incarnation restores it."""
        state = state_of()
        run(state, send("first"), send("q-low", queue=True), send("q-high", queue=True, priority=2))
        run(state, StopAsked(ShutdownParams(), "stopped"))
        assert [StopTurn] == [type(e) for e in run(state, ChildrenStopped(()))]
        cancelled = {"turn": 1, "outcome": "errored", "cause": "cancelled"}
        assert [] == of(RunTurn, run(state, TurnDone(cancelled)))
        restored = state_of(restore=True)
        restored.turns.count = state.turns.count
        for work in state.turns.queue.items():
            restored.turns.queue.push(Work.from_journal(work.to_journal()))
        return restored

    def test_a_restored_pod_begins_its_highest_queued_item_when_due(self) -> None:
        state = self.stopped_with_a_queue()
        (turn,) = of(RunTurn, run(state, TaskDue()))
        assert (("q-high", 2), ["q-low"], "running") == (
            (turn.work.text, turn.turn),
            [w.text for w in state.turns.queue.items()],
            state.phase,
        )

    def test_a_restored_queue_runs_in_order_and_its_turn_numbers_go_on(self) -> None:
        state = self.stopped_with_a_queue()
        ran = [(t.work.text, t.turn) for t in of(RunTurn, run(state, TaskDue()))]
        ran += [(t.work.text, t.turn) for t in of(RunTurn, run(state, finished(2)))]
        assert [] == run(state, WaitAsked(WAITER))
        last = finished(3)
        assert ([("q-high", 2), ("q-low", 3)], [ReplyTo(WAITER, {"last_turn": last.record})]) == (
            ran,
            of(ReplyTo, run(state, last)),
        )

    def test_a_loop_task_is_one_work_item_with_one_event_upward(self) -> None:
        state = state_of(task="the task", until="DONE")
        (turn,) = of(RunTurn, run(state, TaskDue()))
        results = ["not yet 1\n", "not yet 2\n", "DONE at 3\n"]
        assert [None, None, "finished"] == [
            loop_verdict(result, i, turn.work) for i, result in enumerate(results, 1)
        ]
        record = {
            "turn": 1,
            "outcome": "finished",
            "cause": None,
            "iterations": 3,
            "gate": "passed",
            "summary": "DONE at 3",
        }
        effects = run(state, TurnDone(record))
        assert ([TurnEnded(ME, turn=1, summary="DONE at 3")], 1, record) == (
            events_up(effects),
            state.turns.count,
            state.turns.last_record,
        )

    @pytest.mark.parametrize(
        ("params", "limit"),
        [({}, 10), ({"max_iterations": 4}, 4), ({"max_iterations": 1000, "budget": 1.0}, 1000)],
        ids=["default", "explicit", "budget"],
    )
    def test_a_loop_stops_at_its_iteration_limit_or_when_blocked(
        self, params: dict[str, Any], limit: int
    ) -> None:
        state = state_of()
        (turn,) = of(RunTurn, run(state, send("work", until="DONE", **params)))
        work = turn.work
        assert (limit, params.get("budget"), "DONE") == (
            work.max_iterations,
            work.budget,
            work.until,
        )
        assert [None, "max_iterations", "blocked"] == [
            loop_verdict("not yet", limit - 1, work),
            loop_verdict("not yet", limit, work),
            loop_verdict("BLOCKED: no way", 1, work),
        ]

    @pytest.mark.parametrize(
        ("cause", "message"),
        [
            ("blocked", "turn 1 blocked: the result of iteration 2 says BLOCKED"),
            ("max_iterations", "turn 1 gave up (max_iterations): 4 iterations without 'DONE'"),
            ("budget", "turn 1 ran out of its budget of 1 s after 5 iterations (budget)"),
            ("gate failed: exit 4", "turn 1 errored: gate failed: exit 4"),
        ],
    )
    def test_an_errored_work_item_goes_upward_once_with_its_message(
        self, cause: str, message: str
    ) -> None:
        state = state_of()
        run(state, send("work", until="DONE", waiter=WAITER))
        record = {"turn": 1, "outcome": "errored", "cause": cause, "message": message}
        effects = run(state, TurnDone(record))
        assert ([Errored(ME, message, turn=1)], [ReplyTo(WAITER, record)]) == (
            events_up(effects),
            of(ReplyTo, effects),
        )

    def test_a_siblings_task_is_released_once_every_prerequisite_finished_a_turn(
        self,
    ) -> None:
        state = state_of()
        spawn_child(state, "a", 11, task="x")
        spawn_child(state, "b", 12, task="y")
        spawn_child(state, "c", 13, task="go", after=["a", "b"])
        told = []
        for event, pid in ((ended("a", 1, seq=1), 11), (ended("a", 2, seq=2), 11)):
            told += of(TellPrerequisites, run(state, EventReceived(event, pid)))
        assert ([], {"c": {"b"}}) == (told, state.children.prerequisites)
        effects = run(state, EventReceived(ended("b", 1, seq=1), 12))
        assert ([TellPrerequisites("c", None)], {}, {"a", "b"}) == (
            of(TellPrerequisites, effects),
            state.children.prerequisites,
            state.children.finished,
        )

    def test_a_task_after_siblings_waits_for_its_parent_and_wait_gets_its_record(
        self,
    ) -> None:
        state = state_of(task="go", after=["a", "b"])
        assert [] == run(state, TaskDue())
        assert ("waiting", 0, "prerequisites: a, b") == (
            state.phase,
            state.turns.count,
            state.turns.waiting_on,
        )
        assert [] == run(state, WaitAsked(WAITER))
        (turn,) = of(RunTurn, run(state, DepsAnswered(None, PARENT_PID)))
        assert ("go", 1, "running") == (turn.work.text, turn.turn, state.phase)
        record = finished(1).record
        assert [ReplyTo(WAITER, {"last_turn": record})] == of(ReplyTo, run(state, TurnDone(record)))
        assert "idle" == state.phase

    def test_deps_has_no_say_over_a_task_waiting_for_a_slot(self) -> None:
        state = state_of(task="y", slot_holders=[Ancestor("p", f"{ROOT}/p/sock")])
        (take,) = of(TakeSlots, run(state, TaskDue()))
        waiting = ("waiting", 1, "a slot (--max-running)")
        with pytest.raises(Forbidden):
            run(state, DepsAnswered(None, OTHER_PROCESS))
        assert [Reply({"ok": True})] == run(state, DepsAnswered(None, PARENT_PID))
        assert waiting == (state.phase, state.turns.count, state.turns.waiting_on)
        (turn,) = of(RunTurn, run(state, SlotsGranted(take.work, ("lease",))))
        assert (("lease",), "y", "running") == (turn.leases, turn.work.text, state.phase)

    def test_a_prerequisite_ending_before_a_turn_skips_the_task_and_says_so(self) -> None:
        state = state_of()
        spawn_child(state, "e", 11)
        spawn_child(state, "d", 12, task="go", after=["e"])
        effects = run(state, EventReceived(ShutDown("e", incarnation=1, seq=1), 11))
        reason = "'e' ended before finishing a turn"
        assert [TellPrerequisites("d", reason)] == of(TellPrerequisites, effects)
        assert ["pod 'e' shut down: stopped", f"pod 'd' skipped its task: {reason}"] == noted(state)

    def test_a_pod_below_a_limit_takes_a_slot_from_the_holder_above_before_each_turn(
        self,
    ) -> None:
        limited = PodSpec(name="p", root=ROOT, cwd="/work", scope=[], max_running=1)
        c1 = spec_of("c1", slot_holders=slot_holders_below(limited))
        holders = [Ancestor("p", f"{ROOT}/p/sock")]
        assert (holders, holders) == (c1.slot_holders, slot_holders_below(c1))
        state = state_of(slot_holders=holders)
        granted = []
        for turn in (1, 2):
            (take,) = of(TakeSlots, run(state, send("x")))
            waiting = (state.phase, state.turns.waiting_on)
            (started,) = of(RunTurn, run(state, SlotsGranted(take.work, (f"lease {turn}",))))
            granted.append((take.turn, waiting, started.leases))
            run(state, finished(turn))
        assert [
            (1, ("waiting", "a slot (--max-running)"), ("lease 1",)),
            (2, ("waiting", "a slot (--max-running)"), ("lease 2",)),
        ] == granted

    @pytest.mark.parametrize("outcome", ["finished", "errored"])
    def test_wait_on_an_idle_pod_answers_its_last_record(self, outcome: str) -> None:
        state = state_of()
        run(state, send("x"))
        record = {"turn": 1, "outcome": outcome, "cause": None, "result": "fine\n"}
        run(state, TurnDone(record))
        assert [Reply({"last_turn": record})] == run(state, WaitAsked(WAITER))

    def test_wait_on_a_running_pod_waits(self) -> None:
        state = state_of()
        run(state, send("x"))
        assert ([], [WAITER], "running") == (
            run(state, WaitAsked(WAITER)),
            state.turns.idle_waiters,
            state.phase,
        )

    def test_the_count_last_record_and_cost_of_the_completion_record_are_kept(self) -> None:
        state = state_of()
        for turn in (1, 2):
            run(state, send("x"), finished(turn, result="out\n"))
        erring = state_of()
        record = {"turn": 1, "outcome": "errored", "cause": "exit status 2"}
        run(erring, send("x"), TurnDone(record))
        assert [(2, None, finished(2, result="out\n").record), (1, None, record)] == [
            (s.turns.count, s.turns.cost_usd, s.turns.last_record) for s in (state, erring)
        ]

    def test_each_turn_journals_the_count_the_last_record_and_the_totals(self) -> None:
        state = state_of()
        for turn in (1, 2, 3):
            run(state, send("x"))
            effects = run(state, finished(turn))
        assert [
            {
                "op": "turn",
                "turns": 3,
                "last_turn": finished(3).record,
                "session": None,
                "cost_usd": None,
                "usage": empty_usage(),
            }
        ] == [j.record for j in of(Journal, effects) if j.record["op"] == "turn"]
