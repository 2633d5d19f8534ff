"""Table tests mirroring ``tests/e2e/test_event_stream.py``: the rules it sees the product keep."""

from __future__ import annotations

from podd.core.effects import (
    Journal,
)
from podd.core.inputs import (
    EventReceived,
)
from tests.core.e2e_rules.support import (
    applied,
    ended,
    noted,
)
from tests.core.test_events import child
from tests.core.test_machine import of, run, state_of


class TestEventStream:
    """Every event a pod applies is noted once, in the order it was applied; a
    duplicate is neither noted nor journaled (what the event feed records follows)."""

    def test_events_of_two_children_are_noted_once_each_in_the_order_applied(self) -> None:
        state = state_of(child("c1", 11), child("c2", 12))
        arrivals = [("c1", 11, 1), ("c2", 12, 1), ("c2", 12, 2), ("c1", 11, 2), ("c1", 11, 2)]
        journaled = []
        for name, pid, turn in arrivals:
            effects = run(state, EventReceived(ended(name, turn, seq=turn), pid))
            notes = [j for j in of(Journal, effects) if j.record["op"] == "notify"]
            journaled.append((applied(effects), len(notes)))
        assert [(True, 1), (True, 1), (True, 1), (True, 1), (False, 0)] == journaled
        assert [
            "pod 'c1' finished turn 1",
            "pod 'c2' finished turn 1",
            "pod 'c2' finished turn 2",
            "pod 'c1' finished turn 2",
        ] == noted(state)
