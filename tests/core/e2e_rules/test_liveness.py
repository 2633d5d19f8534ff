"""Table tests mirroring ``tests/e2e/test_liveness.py``: the rules it sees the product keep."""

from __future__ import annotations

import pytest

from podd.core.effects import (
    FindAdopter,
    Log,
    Reclaim,
    Reply,
    RetargetOutbox,
    StopChildren,
    WatchAdopted,
    WatchParent,
    WriteInfo,
)
from podd.core.inputs import (
    AdoptAsked,
    AdoptedBy,
    ChildExited,
    EventReceived,
    Orphaned,
    ParentDied,
    Reclaimed,
)
from podd.core.liveness import ORPHAN_STOP_TIMEOUT
from podd.core.scope import check_delegation
from podd.core.spec import Ancestor
from podd.core.tombstones import Tombstone
from protocol import (
    AdoptParams,
    ScopeRule,
    ShutdownParams,
)
from protocol.errors import WriteConflict
from tests.core.e2e_rules.support import (
    ROOT,
    ended,
    names,
    noted,
    record_of,
    spawn_child,
)
from tests.core.test_events import ME, MY_SOCKET, child
from tests.core.test_machine import NOW, of, run, state_of


class TestLiveness:
    """A dead pod leaves the books at once with a notification naming the cause; an
    orphan is adopted by an ancestor, or stops its subtree when none is left."""

    def test_a_killed_child_is_reclaimed_named_by_its_signal_and_gives_its_scope_back(
        self,
    ) -> None:
        shared = [ScopeRule("/work/shared", "write")]
        state = state_of(scope=[ScopeRule("/work", "write")])
        for index in range(4):
            name, pid = f"c{index}", 20 + index
            check_delegation(state.spec.scope, state.held(), shared)
            spawn_child(state, name, pid, scope=shared)
            with pytest.raises(WriteConflict, match=f"held by pod {name!r}"):
                check_delegation(state.spec.scope, state.held(), shared)
            record = record_of(state, name)
            effects = run(state, ChildExited(name, pid, -9))
            assert [Reclaim(record, "killed by SIGKILL", clean=False)] == effects
            run(state, Reclaimed(record, "killed by SIGKILL", clean=False))
            assert [f"pod {name!r} errored: pod died: killed by SIGKILL"] == [
                t for t in noted(state) if repr(name) in t
            ]
        spawn_child(state, "last", 30, scope=shared)
        assert (["last"], {"last": shared}) == (names(state), state.held())

    def test_a_grandchild_whose_parent_died_is_adopted_and_reports_here(self) -> None:
        a, b = child("a", 11), child("b", 12, parent="a")
        state = state_of(a, b)
        assert [Reclaim(a, "killed by SIGKILL", clean=False)] == run(
            state, ChildExited("a", 11, -9)
        )
        run(state, Reclaimed(a, "killed by SIGKILL", clean=False))
        params = AdoptParams("b", previous_parent="a", socket=f"{ROOT}/b/sock")
        effects = run(state, AdoptAsked(params, 12))
        upward = [{"name": "up", "socket": f"{ROOT}/up/sock"}]
        answer = {"name": ME, "pid": 10, "socket": MY_SOCKET, "ancestors": upward}
        assert [Reply(answer)] == of(Reply, effects)
        assert [WatchAdopted("b", 12, b.start_time)] == of(WatchAdopted, effects)
        assert (["b"], (ME, MY_SOCKET, f"{ROOT}/b/sock", 12)) == (
            names(state),
            (b.parent_pod, b.callback_address, b.socket_path, b.pid),
        )
        run(state, EventReceived(ended("b", 1, seq=1), 12))
        assert [
            "pod 'a' errored: pod died: killed by SIGKILL",
            "pod 'b' adopted: its parent 'a' died and it now reports here",
            "pod 'b' finished turn 1",
        ] == noted(state)

    def test_a_pod_whose_parent_died_asks_its_ancestors_and_reports_to_its_adopter(
        self,
    ) -> None:
        top = Ancestor("root", f"{ROOT}/root/sock")
        state = state_of(parent="a", parent_socket=f"{ROOT}/a/sock", parent_pid=11, ancestors=[top])
        assert [FindAdopter("a")] == run(state, ParentDied())
        effects = run(state, AdoptedBy(top, 3))
        assert [RetargetOutbox(top.socket), WriteInfo(), WatchParent(3)] == [
            e for e in effects if not isinstance(e, Log)
        ]
        assert ("root", top.socket, 3, ()) == (
            state.lineage.parent,
            state.lineage.parent_socket,
            state.lineage.parent_pid,
            state.lineage.ancestors,
        )

    def test_an_orphan_no_ancestor_adopts_stops_its_subtree(self) -> None:
        state = state_of(child("t00", 21), child("t01", 22))
        assert [FindAdopter("up")] == run(state, ParentDied())
        effects = run(state, Orphaned())
        params = ShutdownParams(timeout=ORPHAN_STOP_TIMEOUT)
        kids = tuple((record_of(state, n), ()) for n in ("t00", "t01"))
        assert (
            [RetargetOutbox(None)],
            [StopChildren(kids, params, NOW + ORPHAN_STOP_TIMEOUT)],
        ) == (
            of(RetargetOutbox, effects),
            of(StopChildren, effects),
        )
        assert ("stopping", "orphaned: no live ancestor") == (state.phase, state.stop.reason)

    def test_a_dead_grandchild_is_reclaimed_alone_and_noted_as_an_error(self) -> None:
        a, b = child("a", 11), child("b", 12, parent="a")
        state = state_of(a, b)
        run(state, Reclaimed(b, "process gone (reclaim_stale)", clean=False))
        assert (
            ["a"],
            ["pod 'b' errored: pod died: process gone (reclaim_stale)"],
            Tombstone(12, 0, 0),
        ) == (names(state), noted(state), state.tombstones.get("b"))
