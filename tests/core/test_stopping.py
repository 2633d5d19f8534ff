"""Table tests of the stop machine (``podd.core.stopping``): children first, then the
turn, then ``shut_down`` upward; the outcome is the worst of them all."""

from __future__ import annotations

import pytest

from podd.core.effects import (
    AbortStop,
    DropQueuedWork,
    FinishStop,
    FlushOutbox,
    PostEvent,
    Reclaim,
    StopChildren,
    StopTurn,
    WaitSpawns,
)
from podd.core.registry import ChildRecord, Registry
from podd.core.stopping import (
    Stop,
    begin_stop,
    on_children_stopped,
    on_outbox_flushed,
    on_spawns_settled,
    on_turn_stopped,
    worst,
)
from protocol import ShutDown, ShutdownParams
from tests.core.test_events import ME, child, registry_of

NOW = 100.0


def tree() -> Registry:
    """Two children of ME; b has a child of its own, c below it."""
    return registry_of(child("a", 11), child("b", 12), child("c", 13, parent="b"))


def rec(registry: Registry, name: str) -> ChildRecord:
    record = registry.get(name)
    assert record is not None
    return record


def started(params: ShutdownParams, registry: Registry | None = None) -> Stop:
    stop, _ = begin_stop(
        params, "stopped", NOW, spawns_pending=False, registry=registry or tree(), self_name=ME
    )
    return stop


class TestPhases:
    """Spawns settle, then every direct child stops (with what is below it), then the
    turn, then shut_down goes upward and the pod ends."""

    def test_waits_for_spawns_in_progress_first(self) -> None:
        stop, effects = begin_stop(
            ShutdownParams(timeout=10),
            "stopped",
            NOW,
            spawns_pending=True,
            registry=tree(),
            self_name=ME,
        )
        assert ("spawns", [WaitSpawns(NOW + 10)]) == (stop.phase, effects)

    def test_direct_children_are_stopped_with_their_subtrees(self) -> None:
        registry = tree()
        stop, effects = begin_stop(
            ShutdownParams(timeout=10),
            "stopped",
            NOW,
            spawns_pending=False,
            registry=registry,
            self_name=ME,
        )
        a, b, c = (rec(registry, n) for n in "abc")
        assert (
            "children",
            [StopChildren(((a, ()), (b, (c,))), ShutdownParams(timeout=10), NOW + 10)],
        ) == (
            stop.phase,
            effects,
        )
        assert effects == on_spawns_settled(stop, registry, ME)

    def test_turn_is_stopped_after_the_children(self) -> None:
        stop = started(ShutdownParams(timeout=10))
        effects = on_children_stopped(
            stop, ["clean", "clean"], turn_running=True, queued_work=False, self_name=ME, now=NOW
        )
        assert ("turn", [StopTurn(ShutdownParams(timeout=10), NOW + 10)]) == (stop.phase, effects)

    def test_then_shut_down_goes_upward_and_the_pod_ends(self) -> None:
        registry = tree()
        stop = started(ShutdownParams(timeout=10), registry)
        on_children_stopped(stop, [], turn_running=True, queued_work=False, self_name=ME, now=NOW)
        assert [PostEvent(ShutDown(ME, reason="stopped")), FlushOutbox(2.0)] == on_turn_stopped(
            stop, "clean", ME, NOW + 1
        )
        a, b = rec(registry, "a"), rec(registry, "b")
        assert [
            Reclaim(a, "stopped with its parent", clean=True),
            Reclaim(b, "stopped with its parent", clean=True),
            FinishStop("clean"),
        ] == on_outbox_flushed(stop, registry, ME)

    @pytest.mark.parametrize(("now", "flush"), [(NOW, 2.0), (NOW + 9, 1.0), (NOW + 9.9, 0.5)])
    def test_outbox_flush_is_bounded(self, now: float, flush: float) -> None:
        stop = started(ShutdownParams(timeout=10))
        effects = on_children_stopped(
            stop, [], turn_running=False, queued_work=False, self_name=ME, now=now
        )
        assert FlushOutbox(pytest.approx(flush)) == effects[-1]


class TestOutcomes:
    """The outcome is the worst of the children's and the turn's; a timeout gives the
    stop up; drain drops queued work and says so."""

    @pytest.mark.parametrize(
        ("children", "turn", "expected"),
        [
            ([], "clean", "clean"),
            (["clean", "force_killed"], "clean", "force_killed"),
            (["drained_with_discards"], "clean", "drained_with_discards"),
            (["clean"], "force_killed", "force_killed"),
        ],
    )
    def test_worst_outcome_wins(self, children: list[str], turn: str, expected: str) -> None:
        stop = started(ShutdownParams(timeout=10))
        on_children_stopped(
            stop, children, turn_running=True, queued_work=False, self_name=ME, now=NOW
        )
        on_turn_stopped(stop, turn, ME, NOW)
        assert FinishStop(expected) == on_outbox_flushed(stop, Registry(), ME)[-1]

    @pytest.mark.parametrize(("children", "turn"), [(["timeout"], "clean"), ([], "timeout")])
    def test_timeout_gives_the_stop_up(self, children: list[str], turn: str) -> None:
        stop = started(ShutdownParams(timeout=10, kill=False))
        on_children_stopped(
            stop, children, turn_running=True, queued_work=False, self_name=ME, now=NOW
        )
        assert [AbortStop("timeout")] == on_turn_stopped(stop, turn, ME, NOW)

    def test_drain_drops_queued_work_and_says_so(self) -> None:
        stop = started(ShutdownParams(timeout=10, drain=True))
        effects = on_children_stopped(
            stop, [], turn_running=True, queued_work=True, self_name=ME, now=NOW
        )
        assert [
            DropQueuedWork(),
            StopTurn(ShutdownParams(timeout=10, drain=True), NOW + 10),
        ] == effects
        on_turn_stopped(stop, "clean", ME, NOW)
        assert FinishStop("drained_with_discards") == on_outbox_flushed(stop, Registry(), ME)[-1]

    def test_drain_with_nothing_queued_and_no_turn_is_clean(self) -> None:
        stop = started(ShutdownParams(timeout=10, drain=True))
        effects = on_children_stopped(
            stop, [], turn_running=False, queued_work=False, self_name=ME, now=NOW
        )
        assert DropQueuedWork() not in effects
        assert FinishStop("clean") == on_outbox_flushed(stop, Registry(), ME)[-1]

    def test_worst_of_nothing_is_clean(self) -> None:
        assert "clean" == worst([])
