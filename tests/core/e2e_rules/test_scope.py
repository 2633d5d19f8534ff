"""Table tests mirroring ``tests/e2e/test_scope.py``: the rules it sees the product keep."""

from __future__ import annotations

from typing import ClassVar

from podd.core.effects import (
    StartChild,
)
from podd.core.inputs import (
    ChildReady,
    ChildStarted,
    EventReceived,
    SpawnAsked,
)
from podd.core.scope import check_delegation, confinement_paths, effective_permission_at
from protocol import (
    ScopeRule,
    ShutDown,
)
from protocol.errors import WriteConflict
from tests.core.e2e_rules.support import (
    ROOT,
    events_up,
    record_of,
    spawn_child,
    spec_of,
)
from tests.core.test_machine import WAITER, of, run, state_of


class TestScope:
    """A child holds the scope delegated to it from its spawn to its end: a write it
    holds conflicts with an overlapping one and is read only for its parent's turns
    until it is gone."""

    OWN: ClassVar[list[ScopeRule]] = [ScopeRule("/work", "write")]
    PART: ClassVar[list[ScopeRule]] = [ScopeRule("/work/part", "write")]

    def test_a_childs_write_conflicts_with_an_overlapping_one_until_it_shuts_down(
        self,
    ) -> None:
        state = state_of(scope=self.OWN)
        inner = [ScopeRule("/work/part/inner", "write")]
        conflicts: list[str | None] = []
        (start,) = of(StartChild, run(state, SpawnAsked(spec_of("w1", scope=self.PART), WAITER)))
        for step in (
            ChildStarted(start.spec, 11),
            ChildReady(start.spec, 11, f"{ROOT}/w1/sock", 1011.0, WAITER),
            EventReceived(ShutDown("w1", incarnation=1, seq=1), 11),
        ):
            try:
                check_delegation(state.spec.scope, state.held(), inner)
            except WriteConflict as exc:
                conflicts.append(exc.message)
            else:
                conflicts.append(None)
            run(state, step)
        check_delegation(state.spec.scope, state.held(), inner)
        spawn_child(state, "w2", 12, scope=inner)
        held = "write on /work/part/inner overlaps write on /work/part held by pod 'w1'"
        assert ([held] * 3, {"w2": inner}) == (conflicts, state.held())

    def test_a_ready_child_is_recorded_with_the_scope_delegated_to_it(self) -> None:
        state = state_of(scope=self.OWN)
        effects = spawn_child(state, "c", 11, scope=self.PART)
        (report,) = events_up(effects)
        assert (self.OWN, self.PART, self.PART, {"c": self.PART}) == (
            state.spec.scope,
            record_of(state, "c").scope_delegated,
            report.scope,
            state.held(),
        )

    def test_the_parents_turns_only_read_what_a_child_holds_for_write_until_it_is_gone(
        self,
    ) -> None:
        state = state_of(scope=self.OWN)
        spawn_child(state, "c", 11, scope=self.PART)
        target = "/work/part/from-parent"
        held = (
            confinement_paths(state.spec.scope, state.held()),
            effective_permission_at(state.spec.scope, state.held(), target),
        )
        run(state, EventReceived(ShutDown("c", incarnation=1, seq=1), 11))
        free = (
            confinement_paths(state.spec.scope, state.held()),
            effective_permission_at(state.spec.scope, state.held(), target),
        )
        assert [((["/work"], ["/work/part"]), "read"), ((["/work"], []), "write")] == [held, free]
