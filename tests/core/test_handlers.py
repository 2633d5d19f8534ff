"""Table tests of the event plane's handlers (``podd.core.events``): each input, on a
given registry and tombstones, gives exactly these effects. No event loop, no sockets."""

from __future__ import annotations

import pytest

from podd.core.effects import Notify, PersistRegistry, PostEvent, Reply, Trace
from podd.core.events import NO_LONGER_REGISTERED, on_flush_events, on_pod_event
from podd.core.notifications import Notification
from podd.core.tombstones import Tombstone, Tombstones
from protocol import Errored, Forbidden, ScopeSubDelegated, ShutDown, TurnEnded
from tests.core.test_events import ME, child, registry_of, sub_delegated


class TestOnPodEvent:
    """A pod_event from its pod's own process is applied once; anything else is
    refused, except a removed pod's late events, which its tombstone answers."""

    def test_turn_ended_notifies_and_replies_applied(self) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        event = TurnEnded("a", turn=1, incarnation=1, seq=1)
        assert [
            Trace("apply a 1"),
            Notify(Notification.of(event)),
            Reply({"applied": True}),
        ] == on_pod_event(registry, tombs, ME, event, 11)

    def test_duplicate_replies_not_applied_and_notifies_nothing(self) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        event = TurnEnded("a", turn=1, incarnation=1, seq=1)
        on_pod_event(registry, tombs, ME, event, 11)
        assert [Trace("apply a 1"), Reply({"applied": False})] == on_pod_event(
            registry, tombs, ME, event, 11
        )

    def test_shut_down_removes_the_subtree_and_leaves_tombstones(self) -> None:
        registry = registry_of(child("a", 11), child("b", 12, parent="a"))
        tombs = Tombstones()
        event = ShutDown("a", incarnation=1, seq=3)
        effects = on_pod_event(registry, tombs, ME, event, 11)
        assert [
            Trace("apply a 0"),
            PersistRegistry(),
            Notify(Notification.of(event)),
            Reply({"applied": True}),
        ] == effects
        assert ([], Tombstone(11, 1, 3), Tombstone(0, 1, 3)) == (
            [r.pod_name for r in registry],
            tombs.get("a"),
            tombs.get("b"),
        )

    def test_sub_delegation_registers_once_and_goes_upward_as_ours(self) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        event = sub_delegated("a", "b", pid=12, incarnation=1, seq=1)
        effects = on_pod_event(registry, tombs, ME, event, 11)
        forwarded = [e.event for e in effects if isinstance(e, PostEvent)]
        assert [ScopeSubDelegated] == [type(e) for e in forwarded]
        assert isinstance(forwarded[0], ScopeSubDelegated)
        assert (ME, "b", 0) == (forwarded[0].parent_pod, forwarded[0].sub_pod, forwarded[0].seq)
        assert [PersistRegistry(), Reply({"applied": True})] == [
            e for e in effects if isinstance(e, PersistRegistry | Reply)
        ]
        again = sub_delegated("a", "b", pid=12, incarnation=1, seq=2)
        assert [Trace("apply a 0"), Reply({"applied": True})] == on_pod_event(
            registry, tombs, ME, again, 11
        )

    @pytest.mark.parametrize("peer", [None, 99])
    def test_event_from_another_process_is_forbidden_and_changes_nothing(
        self, peer: int | None
    ) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        with pytest.raises(Forbidden):
            on_pod_event(registry, tombs, ME, ShutDown("a"), peer)
        assert (["a"], 0) == ([r.pod_name for r in registry], len(tombs))

    def test_late_event_of_a_removed_pod_is_answered_by_its_tombstone(self) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        on_pod_event(registry, tombs, ME, ShutDown("a", incarnation=1, seq=1), 11)
        late = TurnEnded("a", turn=2, incarnation=1, seq=2)
        assert [Reply(NO_LONGER_REGISTERED)] == on_pod_event(registry, tombs, ME, late, 11)
        assert [] == list(registry)
        with pytest.raises(Forbidden):  # the tombstone speaks for a's process only
            on_pod_event(registry, tombs, ME, Errored("a", "x"), 12)


class TestOnFlushEvents:
    """The acknowledgement names the newest stamp applied, for the pod's own process."""

    def test_ack_from_the_record(self) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        on_pod_event(registry, tombs, ME, TurnEnded("a", turn=1, incarnation=2, seq=7), 11)
        assert [Reply({"incarnation": 2, "seq": 7})] == on_flush_events(registry, tombs, "a", 11)

    def test_ack_from_the_tombstone_after_removal(self) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        on_pod_event(registry, tombs, ME, ShutDown("a", incarnation=1, seq=4), 11)
        assert [Reply({"incarnation": 1, "seq": 4})] == on_flush_events(registry, tombs, "a", 11)

    @pytest.mark.parametrize(("name", "peer"), [("a", 12), ("nobody", 11)])
    def test_anyone_else_is_forbidden(self, name: str, peer: int) -> None:
        registry, tombs = registry_of(child("a", 11)), Tombstones()
        with pytest.raises(Forbidden):
            on_flush_events(registry, tombs, name, peer)


class TestTombstones:
    """At most LIMIT are kept, the oldest forgotten first; burying again refreshes one."""

    def test_bounded_oldest_first(self) -> None:
        tombs = Tombstones()
        for index in range(Tombstones.LIMIT + 5):
            tombs.bury(f"p{index}", Tombstone(index, 1, 1))
        assert (Tombstones.LIMIT, None, Tombstone(5, 1, 1)) == (
            len(tombs),
            tombs.get("p4"),
            tombs.get("p5"),
        )

    def test_forget(self) -> None:
        tombs = Tombstones()
        tombs.bury("a", Tombstone(1, 1, 1))
        tombs.forget("a")
        tombs.forget("never")
        assert (0, None) == (len(tombs), tombs.get("a"))
