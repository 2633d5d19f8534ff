"""Table tests mirroring ``tests/e2e/test_mcp.py``: the rules it sees the product keep."""

from __future__ import annotations

import pytest

from podd.core.effects import (
    Journal,
    Reply,
    ReplyTo,
)
from podd.core.inputs import (
    EventReceived,
    TaskDue,
    TurnDone,
    WaitAsked,
)
from podd.core.turn_flow import drain_notifications
from protocol import (
    AlreadyRunning,
    Errored,
)
from tests.core.e2e_rules.support import (
    ended,
    events_up,
)
from tests.core.test_events import ME, child
from tests.core.test_machine import WAITER, of, run, send, state_of


class TestMcp:
    """What the tools show of a pod's turns: reading notifications drains them, ``send
    --wait`` and ``wait`` are answered with the record, a busy pod queues or refuses."""

    def test_reading_the_notifications_drains_them(self) -> None:
        state = state_of(child("worker", 11))
        run(state, EventReceived(ended("worker", 1, seq=1), 11))
        items, effects = drain_notifications(state)
        assert (["pod 'worker' finished turn 1"], [Journal({"op": "drain"})]) == (
            [n.text for n in items],
            effects,
        )
        assert ([], []) == drain_notifications(state)

    def test_send_wait_is_answered_with_the_record_of_an_errored_turn(self) -> None:
        state = state_of()
        run(state, send(waiter=WAITER))
        message = "turn 1 errored: exit status 3"
        record = {
            "turn": 1,
            "outcome": "errored",
            "cause": "exit status 3",
            "exit_code": 3,
            "message": message,
        }
        effects = run(state, TurnDone(record))
        assert ([ReplyTo(WAITER, record)], [Errored(ME, message, turn=1)]) == (
            of(ReplyTo, effects),
            events_up(effects),
        )
        assert record == state.turns.last_record

    def test_wait_during_the_task_is_answered_with_its_record(self) -> None:
        state = state_of(task="go")
        run(state, TaskDue())
        assert [] == run(state, WaitAsked(WAITER))
        record = {"turn": 1, "outcome": "finished", "cause": None, "result": "done\n"}
        assert [ReplyTo(WAITER, {"last_turn": record})] == of(ReplyTo, run(state, TurnDone(record)))

    def test_a_busy_pod_refuses_a_plain_send_and_queues_one_that_asks(self) -> None:
        state = state_of()
        assert Reply({"turn": 1, "queued": False}) == run(state, send("first"))[-1]
        with pytest.raises(AlreadyRunning):
            run(state, send("second"))
        queued = run(state, send("third", queue=True, priority=2))[-1]
        assert (Reply({"turn": None, "queued": True, "position": 1}), [2]) == (
            queued,
            [w.priority for w in state.turns.queue.items()],
        )
        assert [] == run(state, WaitAsked(("conn", 2)))
