"""Table tests mirroring ``tests/e2e/test_events.py``: the rules it sees the product keep."""

from __future__ import annotations

import attrs
import pytest

from podd.core.effects import (
    PersistRegistry,
    Reply,
)
from podd.core.events import NO_LONGER_REGISTERED
from podd.core.inputs import (
    ChildExited,
    EventReceived,
    Reclaimed,
)
from protocol import (
    Adopted,
    Errored,
    Forbidden,
    PodEvent,
    ScopeRule,
    ScopeSubDelegated,
    ShutDown,
    TurnEnded,
    UnknownEvent,
)
from tests.core.e2e_rules.support import (
    OTHER_PROCESS,
    ROOT,
    applied,
    books,
    ended,
    events_up,
    names,
    noted,
    record_of,
    spawn_child,
)
from tests.core.test_events import ME, child, sub_delegated
from tests.core.test_machine import of, run, state_of


class TestEvents:
    """Children report and parents know: a sub-delegation registers its pod once and
    silently, turns and stops are noted, and only the pod's own process speaks for it,
    once per event, never after its ``shut_down``."""

    FORGED = (
        TurnEnded("b"),
        TurnEnded("b", turn=1, incarnation=1, seq=99),
        Errored("b", "forged"),
        ShutDown("b"),
        ScopeSubDelegated("b", "evil", "/tmp/evil/sock", [ScopeRule("/", "write")]),
        TurnEnded("nobody"),
        UnknownEvent("something_new", {"kind": "something_new", "pod_name": "b"}),
        Adopted("b", "x"),
    )

    def test_a_sub_delegation_registers_the_grandchild_under_its_reporter_silently(
        self,
    ) -> None:
        state = state_of()
        spawn_child(state, "a", 11)
        event = sub_delegated("a", "b", pid=12, incarnation=1, seq=1)
        effects = run(state, EventReceived(event, 11))
        b = record_of(state, "b")
        assert ("a", f"{ROOT}/a/sock", f"{ROOT}/b/sock", 12) == (
            b.parent_pod,
            b.callback_address,
            b.socket_path,
            b.pid,
        )
        forward = attrs.evolve(event, parent_pod=ME, sub_parent="a", incarnation=0, seq=0)
        assert [forward] == events_up(effects)
        run(state, EventReceived(ended("a", 1, seq=2), 11))
        assert ["pod 'a' finished turn 1"] == noted(state)

    def test_a_childs_turn_and_shut_down_are_noted_and_the_shut_down_forgets_it(self) -> None:
        state = state_of()
        spawn_child(state, "b", 12)
        run(state, EventReceived(ended("b", 1, seq=1), 12))
        effects = run(state, EventReceived(ShutDown("b", incarnation=1, seq=2), 12))
        assert ([PersistRegistry()], None, {}) == (
            of(PersistRegistry, effects),
            state.registry.get("b"),
            state.held(),
        )
        assert [] == run(state, ChildExited("b", 12, 0))
        assert ["pod 'b' finished turn 1", "pod 'b' shut down: stopped"] == noted(state)

    def test_a_grandchild_reclaimed_as_stopped_is_noted_as_shut_down_not_as_an_error(
        self,
    ) -> None:
        a, b = child("a", 11), child("b", 12, parent="a")
        state = state_of(a, b)
        run(state, Reclaimed(b, "stopped", clean=True))
        assert (["a"], ["pod 'b' shut down: pod stopped"]) == (names(state), noted(state))

    @pytest.mark.parametrize("peer", [OTHER_PROCESS, 13], ids=["another-process", "a-sibling"])
    def test_an_event_not_from_its_pods_process_is_forbidden_and_changes_nothing(
        self, peer: int
    ) -> None:
        state = state_of(child("b", 12), child("c", 13))
        before = books(state)
        refused = []
        for event in self.FORGED:
            with pytest.raises(Forbidden) as info:
                run(state, EventReceived(event, peer))
            refused.append(info.value.code)
        assert (["forbidden"] * len(self.FORGED), before) == (refused, books(state))

    def test_a_replayed_event_is_applied_once_and_a_sub_delegation_registers_once(
        self,
    ) -> None:
        state = state_of(child("b", 12))
        heard = ended("b", 1, seq=1)
        run(state, EventReceived(heard, 12))
        sub = sub_delegated("b", "g")
        stamped = attrs.evolve(sub, incarnation=1, seq=2)
        replies, forwarded = [], []
        for event in (heard, heard, stamped, stamped, sub, sub):
            effects = run(state, EventReceived(event, 12))
            replies.append(applied(effects))
            forwarded += events_up(effects)
        g = record_of(state, "g")
        assert [False, False, True, False] == replies[:4]
        assert (["pod 'b' finished turn 1"], ["b", "g"], ("b", f"{ROOT}/b/sock")) == (
            noted(state),
            sorted(names(state)),
            (g.parent_pod, g.callback_address),
        )
        forward = attrs.evolve(stamped, parent_pod=ME, sub_parent="b", incarnation=0, seq=0)
        assert [forward] == forwarded

    def test_events_after_a_shut_down_are_acknowledged_unapplied_and_resurrect_nothing(
        self,
    ) -> None:
        state = state_of(child("b", 12))
        run(state, EventReceived(ended("b", 1, seq=1), 12))
        late: list[PodEvent] = [
            ShutDown("b", incarnation=1, seq=3),
            ended("b", 2, seq=2),
            ended("b", 3, seq=4),
            ShutDown("b", incarnation=1, seq=3),
        ]
        assert [True, False, False, False] == [
            applied(run(state, EventReceived(e, 12))) for e in late
        ]
        notes = ["pod 'b' finished turn 1", "pod 'b' shut down: stopped"]
        assert ([], notes) == (names(state), noted(state))
        # b, still running and unregistered, stops: its own shut_down changes nothing.
        effects = run(state, EventReceived(ShutDown("b", incarnation=1, seq=5), 12))
        assert ([Reply(NO_LONGER_REGISTERED)], [], notes) == (effects, names(state), noted(state))
        assert [] == run(state, ChildExited("b", 12, 0))

    def test_every_turn_of_two_children_is_noted_once_however_often_it_is_resent(
        self,
    ) -> None:
        state = state_of(child("c1", 11), child("c2", 12))
        sent = [
            (ended(name, turn, seq=turn), pid)
            for turn in range(1, 26)
            for name, pid in (("c1", 11), ("c2", 12))
        ]
        for event, pid in sent + sent[::3] + sent[-5:]:
            run(state, EventReceived(event, pid))
        expected = [f"pod {c!r} finished turn {t}" for c in ("c1", "c2") for t in range(1, 26)]
        assert sorted(expected) == sorted(noted(state))
