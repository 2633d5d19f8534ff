"""Table tests mirroring ``tests/e2e/test_trust.py``: the rules it sees the product keep."""

from __future__ import annotations

import re

import pytest

from podd.core.inputs import (
    AdoptAsked,
    EventReceived,
    FlushAsked,
    Input,
)
from podd.core.names import NAME_RULE, check_name
from podd.core.scope import check_delegation
from podd.core.state import PodState
from podd.errors import UsageError
from protocol import (
    AdoptParams,
    Errored,
    Forbidden,
    PodEvent,
    PodNotFound,
    ScopeRule,
    ScopeSubDelegated,
    ShutDown,
    TurnEnded,
    UnknownEvent,
)
from protocol.errors import WriteConflict
from tests.core.e2e_rules.support import (
    BAD_NAMES,
    OTHER_PROCESS,
    ROOT,
    books,
    ended,
    noted,
    record_of,
)
from tests.core.test_events import ME, child
from tests.core.test_machine import run, state_of


class TestTrust:
    """Only a pod's own process speaks for it: events, acknowledgements and adoptions
    from any other process are forbidden and change nothing; names follow one rule."""

    def forged(self, peer: int) -> list[Input]:
        """What a process ``peer`` forges as the child ``c`` of the pod ``ME``."""
        events: list[PodEvent] = [
            TurnEnded("c"),
            TurnEnded("c", turn=7, incarnation=1, seq=10**6),
            Errored("c", "forged"),
            ShutDown("c"),
            ShutDown("c", incarnation=99, seq=1),
            ScopeSubDelegated("c", "evil", "/tmp/evil", [ScopeRule("/", "write")], sub_pid=1),
            UnknownEvent("future_kind", {"kind": "future_kind", "pod_name": "c"}),
            TurnEnded(ME),
            ShutDown("nobody"),
        ]
        return [
            *(EventReceived(e, peer) for e in events),
            FlushAsked("c", peer),
            AdoptAsked(AdoptParams("c", previous_parent=ME, socket="/tmp/evil"), peer),
        ]

    def tree(self) -> PodState:
        """``ME`` (write on /work) with a child ``c`` that holds write on /work/c."""
        return state_of(child("c", 11), scope=[ScopeRule("/work", "write")])

    @pytest.mark.parametrize(
        "peer", [OTHER_PROCESS, 4242], ids=["another-process", "the-childs-agent"]
    )
    def test_forged_events_acks_and_adoptions_are_forbidden_and_change_nothing(
        self, peer: int
    ) -> None:
        state = self.tree()
        before = books(state)
        forgeries = self.forged(peer)
        refused = []
        for forged in forgeries:
            with pytest.raises(Forbidden) as info:
                run(state, forged)
            refused.append(info.value.code)
        assert (["forbidden"] * len(forgeries), before) == (refused, books(state))
        with pytest.raises(WriteConflict, match="held by pod 'c'"):
            check_delegation(state.spec.scope, state.held(), [ScopeRule("/work/c", "write")])

    def test_only_the_genuine_event_of_the_childs_process_is_noted(self) -> None:
        state = self.tree()
        for forged in self.forged(4242):
            with pytest.raises(Forbidden):
                run(state, forged)
        run(state, EventReceived(ended("c", 1, seq=1), 11))
        c = record_of(state, "c")
        assert (["pod 'c' finished turn 1"], ("c", 11, 1011.0, f"{ROOT}/c/sock")) == (
            noted(state),
            (c.pod_name, c.pid, c.start_time, c.socket_path),
        )

    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_a_name_breaking_the_rule_is_refused_naming_the_rule(self, name: str) -> None:
        with pytest.raises(UsageError, match=re.escape(NAME_RULE)):
            check_name(name)

    @pytest.mark.parametrize("name", ["a", "0", "a" * 63, "a_b.c-9"])
    def test_a_name_the_rule_allows_is_accepted(self, name: str) -> None:
        assert name == check_name(name)

    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_acks_and_adoptions_naming_a_pod_not_registered_here_are_refused(
        self, name: str
    ) -> None:
        state = self.tree()
        before = books(state)
        adopt_it = AdoptParams(name, previous_parent=ME, socket="/x")
        adopt_me = AdoptParams(ME, previous_parent=name, socket=name)
        with pytest.raises(Forbidden):
            run(state, FlushAsked(name, OTHER_PROCESS))
        for params in (adopt_it, adopt_me):
            with pytest.raises(PodNotFound):
                run(state, AdoptAsked(params, OTHER_PROCESS))
        assert before == books(state)
