"""Table tests of the adoption rules (``podd.core.liveness``): who may be adopted, what
an adoption changes, and what a pod does when its parent dies."""

from __future__ import annotations

import attrs
import pytest

from podd.core.effects import (
    AskToRejoin,
    BeginStop,
    FindAdopter,
    Log,
    Notify,
    PersistRegistry,
    PostEvent,
    Reclaim,
    Reply,
    RetargetOutbox,
    WatchAdopted,
    WatchParent,
    WriteInfo,
)
from podd.core.events import apply_event
from podd.core.liveness import (
    ORPHAN_STOP_TIMEOUT,
    Lineage,
    on_adopt,
    on_adopted,
    on_adopted_exited,
    on_child_rejoined,
    on_children_elsewhere,
    on_orphaned,
    on_parent_died,
    on_rejoin,
)
from podd.core.notifications import Notification
from podd.core.spec import Ancestor
from protocol import Adopted, AdoptParams, Forbidden, PodNotFound, ShutdownParams, ShuttingDown
from protocol.messages import RejoinParams, ScopeSubDelegated, TaskSkipped
from tests.core.test_events import ME, MY_SOCKET, child, registry_of

TOP = Ancestor("top", "/run/podd/top/sock")
MID = Ancestor("mid", "/run/podd/mid/sock")
LINEAGE = Lineage("parent", "/run/podd/parent/sock", 7, (MID, TOP))


class TestOnAdopt:
    """A known pod below, asking from its own process, is taken over; nobody else."""

    def test_adoption_takes_the_record_over(self) -> None:
        registry = registry_of(child("b", 12, parent="a"))
        params = AdoptParams("b", previous_parent="a", socket="/run/podd/b/sock2")
        effects = on_adopt(registry, ME, 5, MY_SOCKET, LINEAGE, False, params, 12)
        record = registry.get("b")
        assert record is not None
        assert (ME, MY_SOCKET, "/run/podd/b/sock2") == (
            record.parent_pod,
            record.callback_address,
            record.socket_path,
        )
        upward = [
            {"name": "parent", "socket": "/run/podd/parent/sock"},
            {"name": "mid", "socket": MID.socket},
            {"name": "top", "socket": TOP.socket},
        ]
        assert [
            PersistRegistry(),
            Notify(Notification.of(Adopted("b", "a"))),
            WatchAdopted("b", 12, record.start_time),
            Reply({"name": ME, "pid": 5, "socket": MY_SOCKET, "ancestors": upward}),
        ] == effects

    def test_a_task_the_asker_skipped_is_told_after_its_adoption(self) -> None:
        registry = registry_of(child("b", 12, parent="a"))
        reason = "its parent 'a' died before its prerequisites finished"
        params = AdoptParams("b", previous_parent="a", socket="/s", skipped_task=reason)
        effects = on_adopt(registry, ME, 5, MY_SOCKET, LINEAGE, False, params, 12)
        notes = [e.notification for e in effects if isinstance(e, Notify)]
        assert [Adopted("b", "a"), TaskSkipped("b", reason)] == [n.event for n in notes]
        assert (
            "pod 'b' skipped its task: its parent 'a' died before its prerequisites finished"
            == notes[1].text
        )

    @pytest.mark.parametrize(
        ("name", "peer", "stopping", "error"),
        [
            ("b", 99, False, Forbidden),
            ("nobody", 12, False, PodNotFound),
            ("b", 12, True, ShuttingDown),
        ],
    )
    def test_refusals_change_nothing(
        self, name: str, peer: int, stopping: bool, error: type[Exception]
    ) -> None:
        registry = registry_of(child("b", 12, parent="a"))
        params = AdoptParams(name, previous_parent="a", socket="/s")
        with pytest.raises(error):
            on_adopt(registry, ME, 5, MY_SOCKET, LINEAGE, stopping, params, peer)
        record = registry.get("b")
        assert record is not None and "a" == record.parent_pod


class TestParentDeath:
    """A dead parent sends the pod looking for an adopter; an adoption retargets it;
    with no adopter it stops its subtree."""

    def test_parent_died_looks_for_an_adopter(self) -> None:
        assert [FindAdopter("parent")] == on_parent_died(LINEAGE, stopping=False)
        assert [FindAdopter("parent", "why")] == on_parent_died(LINEAGE, False, "why")

    def test_parent_died_while_stopping_only_stops_sending(self) -> None:
        assert [RetargetOutbox(None)] == on_parent_died(LINEAGE, stopping=True)

    @pytest.mark.parametrize(
        ("adopter", "rest"), [(MID, (TOP,)), (TOP, ())], ids=["nearest", "further"]
    )
    def test_adopted_by_an_ancestor(self, adopter: Ancestor, rest: tuple[Ancestor, ...]) -> None:
        lineage, effects = on_adopted(LINEAGE, adopter, 42)
        assert Lineage(adopter.name, adopter.socket, 42, rest) == lineage
        assert [RetargetOutbox(adopter.socket), WriteInfo(), WatchParent(42)] == effects

    def test_orphan_stops_itself(self) -> None:
        assert [
            RetargetOutbox(None),
            BeginStop(ShutdownParams(timeout=ORPHAN_STOP_TIMEOUT), "orphaned: no live ancestor"),
        ] == on_orphaned()


class TestAdoptedExited:
    """An adopted pod whose process is gone is reclaimed, unless its record moved on."""

    def test_reclaimed(self) -> None:
        registry = registry_of(child("b", 12))
        record = registry.get("b")
        assert record is not None
        assert [Reclaim(record, "process gone")] == on_adopted_exited(registry, "b", 12)

    @pytest.mark.parametrize(("name", "pid"), [("b", 13), ("gone", 12)])
    def test_moved_on(self, name: str, pid: int) -> None:
        assert [] == on_adopted_exited(registry_of(child("b", 12)), name, pid)


class TestRejoin:
    """A restarted pod asks back the children adopted elsewhere meanwhile; a child goes
    back only to the live pod that spawned it; the adopter moves it back under it."""

    PARAMS = RejoinParams("parent", "/run/podd/parent/sock2")
    ADOPTED = Lineage("mid", MID.socket, 8, (TOP,))

    def test_a_child_goes_back_to_the_pod_that_spawned_it(self) -> None:
        lineage, effects = on_rejoin(self.ADOPTED, "parent", False, self.PARAMS, 70, 70)
        assert Lineage("parent", "/run/podd/parent/sock2", 70, (MID, TOP)) == lineage
        assert [
            RetargetOutbox("/run/podd/parent/sock2"),
            WriteInfo(),
            WatchParent(70),
            Reply({"ok": True}),
        ] == [e for e in effects if not isinstance(e, Log)]

    def test_asked_again_it_changes_nothing(self) -> None:
        back = Lineage("parent", "/run/podd/parent/sock2", 70, (MID, TOP))
        assert (back, [Reply({"ok": True})]) == on_rejoin(
            back, "parent", False, self.PARAMS, 70, 70
        )

    @pytest.mark.parametrize(
        ("spawned_by", "peer", "live", "stopping", "error"),
        [
            ("someone", 70, 70, False, Forbidden),  # not the pod that spawned it
            ("parent", 71, 70, False, Forbidden),  # not that pod's process
            ("parent", 70, None, False, Forbidden),  # that pod is not alive
            ("parent", 70, 70, True, ShuttingDown),
        ],
    )
    def test_refusals(
        self,
        spawned_by: str,
        peer: int,
        live: int | None,
        stopping: bool,
        error: type[Exception],
    ) -> None:
        with pytest.raises(error):
            on_rejoin(self.ADOPTED, spawned_by, stopping, self.PARAMS, peer, live)

    def test_the_restarted_pod_asks_back_its_children_found_elsewhere(self) -> None:
        registry = registry_of(child("b", 12), child("c", 13), child("g", 14, parent="b"))
        assert [AskToRejoin("b", "/run/podd/b/sock")] == on_children_elsewhere(
            registry, ME, ("b", "g")
        )

    def test_a_child_back_is_watched_and_reported_up(self) -> None:
        registry = registry_of(child("b", 12))
        effects = on_child_rejoined(registry, ME, "b")
        record = registry.get("b")
        assert record is not None
        assert [
            WatchAdopted("b", 12, record.start_time),
            PostEvent(
                ScopeSubDelegated(
                    parent_pod=ME,
                    sub_pod="b",
                    sub_socket="/run/podd/b/sock",
                    scope=list(record.scope_delegated),
                    sub_pid=12,
                    sub_start_time=record.start_time,
                    sub_parent=ME,
                    rejoined=True,
                )
            ),
        ] == [e for e in effects if not isinstance(e, Log)]
        assert [] == on_child_rejoined(registry, ME, "nobody")

    def test_the_adopter_moves_it_back_under_the_pod_that_spawned_it(self) -> None:
        # The adopter's books: b adopted (reported by it now), g below b, a restarted.
        a = child("a", 11)
        b = child("b", 12, spawned_by="a")
        g = child("g", 14, parent="b", spawned_by="b")
        registry = registry_of(a, b, g)
        back = ScopeSubDelegated(
            parent_pod="a",
            sub_pod="b",
            sub_socket=b.socket_path,
            scope=[],
            sub_pid=12,
            sub_parent="a",
            rejoined=True,
        )
        applied = apply_event(registry, a, back, ME)
        assert (True, None) == (applied.registry_changed, applied.forward)
        assert [("a", ME), ("b", "a"), ("g", "b")] == sorted(
            (r.pod_name, r.parent_pod) for r in registry
        )
        assert a.socket_path == b.callback_address  # as if a had reported it
        # Another pod cannot take it, nor a process that is not b's, nor an event of the
        # dead spawner's that comes late (not ``rejoined``).
        for reporter, pid, rejoined in (("c", 12, True), ("a", 99, True), ("a", 12, False)):
            registry = registry_of(a, child("b", 12, spawned_by="a"))
            wrong = attrs.evolve(back, parent_pod=reporter, sub_pid=pid, rejoined=rejoined)
            apply_event(registry, a, wrong, ME)
            record = registry.get("b")
            assert record is not None and ME == record.parent_pod
