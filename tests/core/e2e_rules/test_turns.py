"""Table tests mirroring ``tests/e2e/test_turns.py``: the rules it sees the product keep."""

from __future__ import annotations

from typing import Any

import pytest

from podd.core.effects import (
    Reply,
    ReplyTo,
    RunTurn,
)
from podd.core.inputs import (
    EventReceived,
)
from podd.core.turn_flow import drain_notifications
from protocol import (
    AlreadyRunning,
    NoAgent,
    ScopeRule,
)
from tests.core.e2e_rules.support import (
    ended,
    record_of,
    spawn_child,
)
from tests.core.test_events import ME, MY_SOCKET, child
from tests.core.test_machine import WAITER, finished, of, run, send, state_of


class TestTurns:
    """A send runs one turn or is refused; what is pending goes before the next input
    and is drained by it; every turn of many is recorded."""

    def test_a_second_send_during_a_turn_is_already_running(self) -> None:
        state = state_of()
        assert Reply({"turn": 1, "queued": False}) == run(state, send("x"))[-1]
        for waiter in (None, WAITER):
            with pytest.raises(AlreadyRunning, match="already running turn 1"):
                run(state, send("y", waiter=waiter))
        work = state.turns.work
        assert ("running", 1, []) == (state.phase, state.turns.count, work and work.waiters)

    @pytest.mark.parametrize("waiter", [None, WAITER], ids=["send", "send-wait"])
    def test_a_pod_without_agent_answers_no_agent(self, waiter: Any) -> None:
        state = state_of(agent=None)
        with pytest.raises(NoAgent, match="has no agent"):
            run(state, send("x", waiter=waiter))
        assert (0, None) == (state.turns.count, state.turns.work)

    def test_a_childs_turn_goes_before_the_next_input_and_is_drained_by_it(self) -> None:
        state = state_of(child("k", 11))
        run(state, EventReceived(ended("k", 1, seq=1), 11))
        assert 1 == len(state.notifications)
        (turn,) = of(RunTurn, run(state, send("X", waiter=WAITER)))
        assert (("pod 'k' finished turn 1",), "X", ([], [])) == (
            turn.notes,
            turn.work.text,
            drain_notifications(state),
        )

    def test_a_child_spawned_during_a_turn_is_registered_and_its_turn_drained(self) -> None:
        state = state_of()
        run(state, send("spawn"))
        scope = [ScopeRule("/work", "read")]
        spawn_child(state, "kid", 11, scope=scope, agent="true")
        kid = record_of(state, "kid")
        assert (MY_SOCKET, scope, ME) == (kid.callback_address, kid.scope_delegated, kid.parent_pod)
        run(state, finished(1), send("wait"))
        run(state, EventReceived(ended("kid", 1, seq=1), 11))
        items, _ = drain_notifications(state)
        assert (["pod 'kid' finished turn 1"], 0) == (
            [n.text for n in items],
            len(state.notifications),
        )

    def test_200_turns_are_all_answered_and_recorded(self) -> None:
        state = state_of(agent="true")
        answers = []
        for turn in range(1, 201):
            (started,) = of(RunTurn, run(state, send("x", waiter=("conn", turn))))
            done = run(state, finished(started.turn))
            answers += [(r.waiter, r.result["turn"]) for r in of(ReplyTo, done)]
        assert [(("conn", t), t) for t in range(1, 201)] == answers
        last = state.turns.last_record
        assert (200, 200, "idle") == (state.turns.count, last and last["turn"], state.phase)
