"""Builders shared by the table tests that mirror the end-to-end suite."""

from __future__ import annotations

from typing import Any

import attrs

from podd.core.effects import (
    Effect,
    PostEvent,
    Reply,
    StartChild,
)
from podd.core.inputs import (
    ChildExited,
    ChildReady,
    ChildStarted,
    EventReceived,
    SpawnAsked,
)
from podd.core.machine import handle
from podd.core.registry import ChildRecord
from podd.core.spec import PodSpec
from podd.core.state import PodState
from protocol import (
    ScopeRule,
    ShutDown,
    TurnEnded,
)
from tests.core.test_machine import NOW, WAITER, of

ROOT = "/run/podd"


OTHER_PROCESS = 999
"""The pid of a process that is no pod of the tree (a test, a forger)."""


def spec_of(name: str, **fields: Any) -> PodSpec:
    """The spec of a child ``name``: write on ``/work/<name>`` unless ``scope`` says."""
    scope = fields.pop("scope", [ScopeRule(f"/work/{name}", "write")])
    return PodSpec(name=name, root=ROOT, cwd="/work", scope=scope, **fields)


def spawn_child(state: PodState, name: str, pid: int, **fields: Any) -> list[Effect]:
    """Spawn the child ``name`` through the pod's inputs, up to ready; the effects of its
    readiness."""
    (start,) = of(StartChild, handle(state, SpawnAsked(spec_of(name, **fields), WAITER), NOW))
    handle(state, ChildStarted(start.spec, pid), NOW)
    ready = ChildReady(start.spec, pid, f"{ROOT}/{name}/sock", 1000.0 + pid, WAITER)
    return handle(state, ready, NOW)


def record_of(state: PodState, name: str) -> ChildRecord:
    record = state.registry.get(name)
    assert record is not None, name
    return record


def names(state: PodState) -> list[str]:
    return [r.pod_name for r in state.registry]


def noted(state: PodState) -> list[str]:
    """The texts of the pod's pending notifications, oldest first."""
    return [n.text for n in state.notifications.peek()]


def applied(effects: list[Effect]) -> Any:
    """What the reply to a ``pod_event`` says: whether it was applied."""
    (reply,) = of(Reply, effects)
    return reply.result["applied"]


def events_up(effects: list[Effect]) -> list[Any]:
    return [e.event for e in of(PostEvent, effects)]


def ended(name: str, turn: int, seq: int, incarnation: int = 1, **fields: Any) -> TurnEnded:
    return TurnEnded(name, turn=turn, incarnation=incarnation, seq=seq, **fields)


def books(state: PodState) -> tuple[Any, ...]:
    """What an event could change: the registry, the notifications, the tombstones, the
    scope held below."""
    return (
        [attrs.asdict(r) for r in state.registry],
        [n.to_dict() for n in state.notifications.peek()],
        len(state.tombstones),
        state.held(),
    )


def stopped_cleanly(state: PodState, name: str, pid: int, seq: int = 1) -> None:
    """The child ``name`` stops: its ``shut_down`` arrives, then its process exits."""
    handle(state, EventReceived(ShutDown(name, incarnation=1, seq=seq), pid), NOW)
    assert [] == handle(state, ChildExited(name, pid, 0), NOW)


BAD_NAMES = [
    "a/b",
    "..",
    "../../esc",
    "x" * 300,
    "/",
    "../esc",
    "a/../../esc",
    "ok/",
    "a\x00b",
    "\x00",
    "ok\x00/../..",
    ".",
    "",
    "Abc",
    "a" * 64,
    "a b",
    "a\n",
    "-x",
    "é",
]
"""Names with ``/``, ``..``, NUL, 300 characters or what else the rule refuses."""
