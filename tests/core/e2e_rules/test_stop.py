"""Table tests mirroring ``tests/e2e/test_stop.py``: the rules it sees the product keep."""

from __future__ import annotations

from podd.core.effects import (
    FinishStop,
    FlushOutbox,
    Log,
    PostEvent,
    Reclaim,
    ReplyTo,
    RunTurn,
    StopChildren,
    StopTurn,
)
from podd.core.inputs import (
    ChildrenStopped,
    EventReceived,
    OutboxFlushed,
    StopAsked,
    TurnDone,
    TurnStopped,
)
from protocol import (
    ShutDown,
    ShutdownParams,
)
from tests.core.e2e_rules.support import (
    ended,
    names,
    noted,
    record_of,
    spawn_child,
    stopped_cleanly,
)
from tests.core.test_events import ME, sub_delegated
from tests.core.test_machine import NOW, WAITER, finished, of, run, send, state_of


class TestStop:
    """A stop stops the children first, then the turn, then says ``shut_down``; its
    outcome is ``clean``, ``drained_with_discards`` when ``--drain`` dropped queued work,
    ``force_killed`` when something was killed, or ``timeout``, which gives the stop up
    and leaves the pod running."""

    def test_children_stop_first_and_their_shut_down_is_noted_before_the_pod_ends(self) -> None:
        state = state_of()
        spawn_child(state, "a", 11)
        spawn_child(state, "c", 13)
        run(state, EventReceived(sub_delegated("a", "b", pid=12), 11))
        a, b, c = (record_of(state, n) for n in "abc")
        effects = run(state, StopAsked(ShutdownParams(timeout=10), "stopped", WAITER))
        assert [StopChildren(((a, (b,)), (c, ())), ShutdownParams(timeout=10), NOW + 10)] == (
            of(StopChildren, effects)
        )
        stopped_cleanly(state, "a", 11)
        stopped_cleanly(state, "c", 13)
        assert [PostEvent(ShutDown(ME, reason="stopped")), FlushOutbox(2.0)] == run(
            state, ChildrenStopped(("clean", "clean"))
        )
        assert [FinishStop("clean", (WAITER,))] == run(state, OutboxFlushed())
        assert ["pod 'a' shut down: stopped", "pod 'c' shut down: stopped"] == noted(state)

    def test_a_running_turn_is_stopped_after_the_children_and_its_cancel_is_clean(self) -> None:
        state = state_of()
        run(state, send("go"))
        params = ShutdownParams(timeout=5)
        effects = run(state, StopAsked(params, "stopped", WAITER))
        assert [StopChildren((), params, NOW + 5)] == of(StopChildren, effects)
        assert [StopTurn(params, NOW + 5)] == run(state, ChildrenStopped(()))
        cancelled = {"turn": 1, "outcome": "errored", "cause": "cancelled"}
        assert [] == of(RunTurn, run(state, TurnDone(cancelled)))
        run(state, TurnStopped("clean"))
        assert [FinishStop("clean", (WAITER,))] == run(state, OutboxFlushed())

    def test_drain_drops_a_pending_wake_up_and_ends_drained_with_discards(self) -> None:
        state = state_of(wake_on_notify=True)
        spawn_child(state, "c", 11)
        run(state, send("go"))
        run(state, EventReceived(ShutDown("c", incarnation=1, seq=1), 11))
        assert (True, 1) == (state.turns.wake_pending, state.turns.count)
        params = ShutdownParams(timeout=10, drain=True)
        run(state, StopAsked(params, "stopped", WAITER))
        assert [StopTurn(params, NOW + 10)] == run(state, ChildrenStopped(()))
        assert [] == of(RunTurn, run(state, finished(1)))
        run(state, TurnStopped("clean"))
        assert [FinishStop("drained_with_discards", (WAITER,))] == run(state, OutboxFlushed())
        assert (1, False) == (state.turns.count, state.turns.wake_pending)

    def test_a_wake_up_left_by_a_turn_ended_while_the_children_stop_is_discarded(
        self,
    ) -> None:
        state = state_of(wake_on_notify=True)
        spawn_child(state, "c", 11)
        spawn_child(state, "d", 12)
        run(state, send("go"))
        run(state, EventReceived(ended("d", 1, seq=1), 12))
        run(state, StopAsked(ShutdownParams(timeout=10, drain=True), "stopped", WAITER))
        assert [] == of(RunTurn, run(state, finished(1)))
        stopped_cleanly(state, "c", 11)
        stopped_cleanly(state, "d", 12, seq=2)
        effects = run(state, ChildrenStopped(("clean", "clean")))
        assert ([], [FinishStop("drained_with_discards", (WAITER,))]) == (
            of(StopTurn, effects),
            run(state, OutboxFlushed()),
        )

    def test_drain_with_nothing_queued_is_clean(self) -> None:
        state = state_of()
        run(state, send("go"))
        run(state, StopAsked(ShutdownParams(timeout=10, drain=True), "stopped", WAITER))
        run(state, ChildrenStopped(()), finished(1), TurnStopped("clean"))
        assert [FinishStop("clean", (WAITER,))] == run(state, OutboxFlushed())

    def test_a_child_killed_at_the_deadline_makes_the_stop_force_killed(self) -> None:
        state = state_of()
        spawn_child(state, "c", 11)
        c = record_of(state, "c")
        run(state, StopAsked(ShutdownParams(timeout=1), "stopped", WAITER))
        assert [PostEvent(ShutDown(ME, reason="stopped")), FlushOutbox(1.0)] == run(
            state, ChildrenStopped(("force_killed",))
        )
        assert [
            Reclaim(c, "stopped with its parent", clean=True),
            FinishStop("force_killed", (WAITER,)),
        ] == run(state, OutboxFlushed())

    def test_after_a_stop_given_up_the_pod_runs_on_and_a_second_stop_ends_it(self) -> None:
        state = state_of()
        run(state, send("go"))
        no_kill = ShutdownParams(timeout=1, drain=True, kill=False)
        run(state, StopAsked(no_kill, "stopped", WAITER), ChildrenStopped(()))
        assert [ReplyTo(WAITER, {"outcome": "timeout", "pid": 10})] == run(
            state, TurnStopped("timeout")
        )
        assert ("running", 1, False) == (state.phase, state.turns.count, state.stop.stopping)
        again = ("conn", 2)
        assert [StopChildren] == [
            type(e)
            for e in run(state, StopAsked(ShutdownParams(), "stopped", again))
            if not isinstance(e, Log)
        ]
        run(state, ChildrenStopped(()), TurnStopped("clean"))
        assert [FinishStop("clean", (again,))] == run(state, OutboxFlushed())

    def test_a_child_outliving_a_no_kill_stop_gives_it_up_and_leaves_the_pod_idle(self) -> None:
        state = state_of()
        spawn_child(state, "c", 11)
        run(state, StopAsked(ShutdownParams(timeout=1, kill=False), "stopped", WAITER))
        assert [ReplyTo(WAITER, {"outcome": "timeout", "pid": 10})] == run(
            state, ChildrenStopped(("timeout",))
        )
        assert ("idle", ["c"], None) == (state.phase, names(state), state.stop.plan)
        again = ("conn", 2)
        (stop,) = of(StopChildren, run(state, StopAsked(ShutdownParams(), "stopped", again)))
        assert [record_of(state, "c")] == [record for record, _ in stop.children]
        stopped_cleanly(state, "c", 11)
        run(state, ChildrenStopped(("clean",)))
        assert [FinishStop("clean", (again,))] == run(state, OutboxFlushed())
