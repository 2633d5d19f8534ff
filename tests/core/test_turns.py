"""The pure rules of turns: the queue's order and bound, loop verdicts, summaries."""

from __future__ import annotations

import pytest

from podd.core.notifications import render
from podd.core.turns import (
    QUEUE_LIMIT,
    Queue,
    QueueFull,
    Work,
    add_usage,
    empty_usage,
    loop_verdict,
    new_record,
    summarize,
)
from protocol import TurnEnded
from protocol.messages import TaskSkipped


class TestQueue:
    def test_higher_priority_first_fifo_within(self) -> None:
        queue = Queue()
        for text, priority in [("a", 1), ("b", 5), ("c", 3), ("d", 5), ("e", 1)]:
            queue.push(Work(text=text, priority=priority))
        order = []
        while (work := queue.pop()) is not None:
            order.append(work.text)
        assert ["b", "d", "c", "a", "e"] == order

    def test_items_are_in_running_order_and_positions_count_from_one(self) -> None:
        queue = Queue()
        positions = [queue.push(Work(text=t, priority=p)) for t, p in [("a", 0), ("b", 2)]]
        positions.append(queue.push(Work(text="c", priority=1)))
        assert ([1, 1, 2], ["b", "c", "a"]) == (positions, [w.text for w in queue.items()])

    def test_full_at_the_limit(self) -> None:
        queue = Queue()
        for i in range(QUEUE_LIMIT):
            queue.push(Work(text=str(i)))
        with pytest.raises(QueueFull):
            queue.push(Work(text="one too many"))
        assert QUEUE_LIMIT == len(queue)

    def test_clear_gives_what_was_queued(self) -> None:
        queue = Queue()
        queue.push(Work(text="a"))
        queue.push(Work(text="b", priority=1))
        assert (["b", "a"], 0) == ([w.text for w in queue.clear()], len(queue))

    def test_journal_round_trip(self) -> None:
        work = Work(text="t", priority=2, until="DONE", max_iterations=4, budget=9.5, task=True)
        again = Work.from_journal(work.to_journal())
        assert work.to_journal() == again.to_journal()


class TestLoopVerdict:
    @pytest.mark.parametrize(
        ("result", "iteration", "verdict"),
        [
            ("all DONE now", 1, "finished"),
            ("DONE and BLOCKED", 1, "finished"),
            ("BLOCKED: need a key", 1, "blocked"),
            ("working", 1, None),
            ("working", 3, "max_iterations"),
            (None, 3, "max_iterations"),
            (None, 2, None),
        ],
    )
    def test_verdicts(self, result: str | None, iteration: int, verdict: str | None) -> None:
        assert verdict == loop_verdict(
            result, iteration, Work(text="x", until="DONE", max_iterations=3)
        )


class TestRecords:
    def test_summary_collapses_whitespace_and_cuts(self) -> None:
        assert "a b c" == summarize("  a\n\n b\t c ")
        assert 500 == len(summarize("x " * 1000) or "")
        assert summarize(None) is None

    def test_usage_adds_what_is_reported(self) -> None:
        total = empty_usage()
        add_usage(total, {"input_tokens": 3, "output_tokens": None})
        add_usage(total, {"input_tokens": 4})
        add_usage(total, None)
        assert {
            "input_tokens": 7,
            "output_tokens": None,
            "cache_read_input_tokens": None,
            "cache_creation_input_tokens": None,
        } == total

    def test_a_new_record_has_every_field(self) -> None:
        record = new_record(3, 100.0, "claude")
        assert {
            "turn", "outcome", "cause", "exit_code", "signal", "started_at", "duration_s",
            "result", "session_id", "cost_usd", "usage", "num_turns", "permission_denials",
        } <= set(record)  # fmt: skip


class TestNotificationText:
    def test_finished_with_summary_denials_and_cost(self) -> None:
        event = TurnEnded("w", turn=2, summary="fixed   the\nbug", cost_usd=0.0123, denied=2)
        assert "pod 'w' finished turn 2: fixed the bug (2 tool calls denied) (cost $0.0123)" == (
            render(event)
        )

    def test_a_long_summary_is_cut_at_300_characters(self) -> None:
        text = render(TurnEnded("w", turn=1, summary="y" * 400))
        head = "pod 'w' finished turn 1: "
        assert (True, 300, True) == (
            text.startswith(head),
            len(text) - len(head),
            text.endswith("…"),
        )

    def test_without_a_summary_as_before(self) -> None:
        assert "pod 'w' finished turn 4" == render(TurnEnded("w", turn=4))

    def test_skipped_task(self) -> None:
        assert "pod 'b' skipped its task: 'a' errored" == render(TaskSkipped("b", "'a' errored"))
