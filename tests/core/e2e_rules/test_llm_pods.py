"""Table tests mirroring ``tests/e2e/test_llm_pods.py``: the rules it sees the product keep."""

from __future__ import annotations

from typing import Any

import pytest

from podd.core.effects import (
    Journal,
    Reply,
    RunTurn,
)
from podd.core.inputs import (
    EventReceived,
    TurnDone,
    WaitAsked,
)
from podd.core.turns import summarize
from protocol import (
    InvalidParams,
)
from tests.core.e2e_rules.support import (
    ended,
    noted,
)
from tests.core.test_events import child
from tests.core.test_machine import WAITER, finished, of, run, send, state_of


class TestLlmPods:
    """An LLM pod keeps the session its turns report and adds up their cost and usage;
    a child's turn reaches its parent as one line that the parent's next turn reads;
    an empty input is refused."""

    LONG = "Child done.\n\n" + "word " * 120

    def test_the_session_a_turn_reports_is_kept_and_a_send_may_ask_for_a_new_one(
        self,
    ) -> None:
        state = state_of(agent="claude", driver="claude")
        sessions = []
        for text, session, fresh in (
            ("one", "s1", False),
            ("two", "s1", False),
            ("over", "s2", True),
        ):
            (turn,) = of(RunTurn, run(state, send(text, new_session=fresh)))
            effects = run(state, finished(turn.turn, session_id=session))
            journaled = [j.record for j in of(Journal, effects) if j.record["op"] == "session"]
            sessions.append((turn.work.new_session, journaled, state.turns.session))
        assert [
            (False, [{"op": "session", "session": "s1"}], "s1"),
            (False, [], "s1"),
            (True, [{"op": "session", "session": "s2"}], "s2"),
        ] == sessions

    def test_costs_and_usage_add_up_and_wait_answers_the_last_record(self) -> None:
        state = state_of(agent="claude", driver="claude")
        usage = {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        run(state, send("one"), finished(1, cost_usd=0.25, usage=usage), send("two"))
        two = {"turn": 2, "outcome": "finished", "cause": None, "cost_usd": 0.5}
        two["usage"] = {**usage, "input_tokens": 7}
        run(state, TurnDone(two))
        total = {
            "input_tokens": 17,
            "output_tokens": 10,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        assert (0.75, total, two) == (
            state.turns.cost_usd,
            state.turns.usage,
            state.turns.last_record,
        )
        assert [Reply({"last_turn": two})] == run(state, WaitAsked(WAITER))

    @pytest.mark.parametrize(
        ("fields", "line"),
        [
            (
                {"summary": summarize(LONG), "cost_usd": 0.25, "denied": 1},
                f"pod 'kid' finished turn 1: {' '.join(LONG.split())[:299]}… (1 tool calls "
                "denied) (cost $0.2500)",
            ),
            ({"summary": "done"}, "pod 'kid' finished turn 1: done"),
        ],
        ids=["claude", "codex"],
    )
    def test_a_childs_turn_is_one_line_read_by_the_parents_next_turn(
        self, fields: dict[str, Any], line: str
    ) -> None:
        state = state_of(child("kid", 11), agent="claude", driver="claude")
        run(state, EventReceived(ended("kid", 1, seq=1, **fields), 11))
        assert [line] == noted(state)
        (turn,) = of(RunTurn, run(state, send("Merge.")))
        assert ((line,), "Merge.", 0) == (turn.notes, turn.work.text, len(state.notifications))

    def test_a_summary_is_the_first_500_characters_of_the_result_on_one_line(self) -> None:
        assert " ".join(self.LONG.split())[:500] == summarize(self.LONG)

    @pytest.mark.parametrize("driver", ["claude", "codex"])
    @pytest.mark.parametrize("text", ["", "  \n"], ids=["empty", "blank"])
    @pytest.mark.parametrize("waiter", [None, WAITER], ids=["send", "send-wait"])
    def test_an_empty_input_is_refused_for_an_llm_agent(
        self, driver: str, text: str, waiter: Any
    ) -> None:
        state = state_of(agent=driver, driver=driver)
        with pytest.raises(InvalidParams, match="the input is empty"):
            run(state, send(text, waiter=waiter))
        assert (0, None, "idle") == (state.turns.count, state.turns.work, state.phase)
