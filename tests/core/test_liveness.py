"""Table tests of the adoption rules (``podd.core.liveness``): who may be adopted, what
an adoption changes, and what a pod does when its parent dies."""

from __future__ import annotations

import pytest

from podd.core.effects import (
    BeginStop,
    FindAdopter,
    Notify,
    PersistRegistry,
    Reclaim,
    Reply,
    RetargetOutbox,
    WatchAdopted,
    WatchParent,
    WriteInfo,
)
from podd.core.liveness import (
    ORPHAN_STOP_TIMEOUT,
    Lineage,
    on_adopt,
    on_adopted,
    on_adopted_exited,
    on_orphaned,
    on_parent_died,
)
from podd.core.notifications import Notification
from podd.core.spec import Ancestor
from protocol import Adopted, AdoptParams, Forbidden, PodNotFound, ShutdownParams, ShuttingDown
from protocol.messages import TaskSkipped
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
