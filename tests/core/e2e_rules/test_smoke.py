"""Table tests mirroring ``tests/e2e/test_smoke.py``: the rules it sees the product keep."""

from __future__ import annotations

from podd.core.effects import (
    FinishStop,
    FlushOutbox,
    PostEvent,
    StopChildren,
)
from podd.core.inputs import (
    ChildrenStopped,
    EventReceived,
    OutboxFlushed,
    StopAsked,
)
from protocol import (
    ShutDown,
    ShutdownParams,
)
from tests.core.e2e_rules.support import (
    names,
    record_of,
    spawn_child,
    stopped_cleanly,
)
from tests.core.test_events import ME, sub_delegated
from tests.core.test_machine import NOW, WAITER, of, run, state_of


class TestSmoke:
    """An idle tree whose children stop cleanly stops ``clean``, with nothing left
    registered."""

    def test_an_idle_tree_stops_clean_once_its_children_said_shut_down(self) -> None:
        state = state_of()
        spawn_child(state, "a", 11)
        run(state, EventReceived(sub_delegated("a", "c", pid=13), 11))
        a, c = record_of(state, "a"), record_of(state, "c")
        effects = run(state, StopAsked(ShutdownParams(timeout=10), "stopped", WAITER))
        assert [StopChildren(((a, (c,)),), ShutdownParams(timeout=10), NOW + 10)] == of(
            StopChildren, effects
        )
        stopped_cleanly(state, "a", 11)
        assert [PostEvent(ShutDown(ME, reason="stopped")), FlushOutbox(2.0)] == run(
            state, ChildrenStopped(("clean",))
        )
        assert ([FinishStop("clean", (WAITER,))], []) == (
            run(state, OutboxFlushed()),
            names(state),
        )
