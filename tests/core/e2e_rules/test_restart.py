"""Table tests mirroring ``tests/e2e/test_restart.py``: the rules it sees the product keep."""

from __future__ import annotations

import attrs

from podd.core.effects import (
    Publish,
    Reclaim,
    Reply,
    ReplyWhenPersisted,
    RestartLater,
    StartChild,
    Trace,
)
from podd.core.inputs import (
    ChildExited,
    ChildReady,
    ChildStarted,
    EventReceived,
    Reclaimed,
    SpawnAsked,
)
from protocol import (
    RestartGaveUp,
    ShutDown,
)
from tests.core.e2e_rules.support import (
    ROOT,
    applied,
    ended,
    names,
    noted,
    record_of,
    spawn_child,
)
from tests.core.test_events import child
from tests.core.test_machine import WAITER, of, run, state_of


class TestRestart:
    """A child comes back as its next incarnation and is heard again; events of an
    older incarnation change nothing; a crashing child is restarted with growing delays
    until the intensity limit, a ``never`` child is not."""

    def test_a_child_restarted_as_its_next_incarnation_is_registered_and_heard_again(
        self,
    ) -> None:
        state = state_of()
        spawn_child(state, "x", 11)
        (reclaim,) = run(state, ChildExited("x", 11, -9))
        assert isinstance(reclaim, Reclaim)
        run(state, Reclaimed(reclaim.record, reclaim.cause, reclaim.clean))
        effects = spawn_child(state, "x", 21, incarnation=2, restore=True)
        result = {"name": "x", "pid": 21, "socket": f"{ROOT}/x/sock", "incarnation": 2}
        x = record_of(state, "x")
        assert ([ReplyWhenPersisted(WAITER, result)], (21, 2), None) == (
            of(ReplyWhenPersisted, effects),
            (x.pid, x.incarnation),
            state.tombstones.get("x"),
        )
        run(state, EventReceived(ended("x", 1, seq=1, incarnation=2), 21))
        assert "pod 'x' finished turn 1" == noted(state)[-1]

    def test_a_turn_ended_of_an_older_incarnation_is_not_applied(self) -> None:
        state = state_of(child("c", 1234, incarnation=2, last_seq=3))
        effects = run(state, EventReceived(ended("c", 9, seq=50), 1234))
        c = record_of(state, "c")
        assert ([Trace("apply c 9"), Reply({"applied": False})], (2, 3), []) == (
            effects,
            (c.incarnation, c.last_seq),
            noted(state),
        )

    def test_a_shut_down_of_an_older_incarnation_removes_nothing(self) -> None:
        state = state_of(child("c", 1234, incarnation=2, last_seq=3))
        effects = run(state, EventReceived(ShutDown("c", incarnation=1, seq=50), 1234))
        assert ([Trace("apply c 0"), Reply({"applied": False})], ["c"], 0) == (
            effects,
            names(state),
            len(state.tombstones),
        )

    def test_the_current_and_a_newer_incarnation_are_applied(self) -> None:
        state = state_of(child("c", 1234, incarnation=2, last_seq=3))
        events = [ended("c", 4, seq=4, incarnation=2)] * 2 + [ended("c", 1, seq=1, incarnation=3)]
        replies = [applied(run(state, EventReceived(e, 1234))) for e in events]
        c = record_of(state, "c")
        assert ([True, False, True], (3, 1)) == (replies, (c.incarnation, c.last_seq))
        assert ["pod 'c' finished turn 4", "pod 'c' finished turn 1"] == noted(state)

    def test_a_crashing_on_failure_child_is_restarted_with_growing_delays_then_given_up(
        self,
    ) -> None:
        state = state_of()
        pid = 30
        spawn_child(state, "c", pid, restart="on-failure")
        delays = []
        for _ in range(5):
            effects = run(state, ChildExited("c", pid, 70))
            assert [Reclaim, RestartLater] == [type(e) for e in effects]
            reclaim, later = effects
            assert isinstance(reclaim, Reclaim) and isinstance(later, RestartLater)
            assert later.spec is not None
            run(state, Reclaimed(reclaim.record, reclaim.cause, reclaim.clean))
            delays.append(later.delay)
            pid += 1
            again = attrs.evolve(later.spec, incarnation=later.spec.incarnation + 1, restore=True)
            (start,) = of(StartChild, run(state, SpawnAsked(again, None)))
            run(state, ChildStarted(start.spec, pid))
            run(state, ChildReady(start.spec, pid, f"{ROOT}/c/sock", 1000.0 + pid, None))
        effects = run(state, ChildExited("c", pid, 70))
        (reclaim,) = of(Reclaim, effects)
        run(state, Reclaimed(reclaim.record, reclaim.cause, reclaim.clean))
        limit = "gave up after 5 restarts in 60 s (restart intensity limit)"
        assert ([], [Publish(RestartGaveUp("c", limit))]) == (
            of(RestartLater, effects),
            of(Publish, effects),
        )
        assert (sorted(delays), True, True) == (delays, 0.1 <= delays[0] <= 0.2, delays[-1] >= 1.0)
        texts = noted(state)
        assert (6, [f"pod 'c' not restarted: {limit}"], []) == (
            texts.count("pod 'c' errored: pod died: exited with status 70"),
            [t for t in texts if "not restarted" in t],
            names(state),
        )

    def test_a_never_child_is_reclaimed_and_not_restarted(self) -> None:
        state = state_of()
        spawn_child(state, "n", 40, restart="never")
        n = record_of(state, "n")
        assert [Reclaim(n, "exited with status 70", clean=False)] == run(
            state, ChildExited("n", 40, 70)
        )
        run(state, Reclaimed(n, "exited with status 70", clean=False))
        assert (["pod 'n' errored: pod died: exited with status 70"], []) == (
            noted(state),
            names(state),
        )
