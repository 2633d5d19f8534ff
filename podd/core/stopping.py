"""Stopping a pod: children first, then the turn, then ``shut_down`` upward.

A stop goes through phases, each ended by what the runtime reports back:

    spawns    the spawns in progress settle (or the deadline passes)
    children  every direct child is asked to stop its subtree, all at once, and is gone
    turn      the in-flight turn is let finish (``drain``) or cancelled; queued work
              (a pending wake-on-notify turn) is dropped with ``drain``
    upward    ``shut_down`` is sent and the outbox flushed
    ending    the children are reclaimed as stopped, the requesters answered, the pod ends

The outcome is the worst of the children's and the turn's: ``clean`` <
``drained_with_discards`` < ``force_killed`` < ``timeout``. On ``timeout`` (something
outlived the deadline with ``kill`` false) the stop is given up: the requesters are
answered and the pod keeps running. Pure: the runtime does the waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

from podd.core.effects import (
    AbortStop,
    DropQueuedWork,
    Effect,
    FinishStop,
    FlushOutbox,
    PostEvent,
    Reclaim,
    StopChildren,
    StopTurn,
    WaitSpawns,
)
from podd.core.registry import Registry
from protocol import ShutDown, ShutdownParams

__all__ = [
    "OUTCOME_RANK",
    "Stop",
    "begin_stop",
    "on_children_stopped",
    "on_outbox_flushed",
    "on_spawns_settled",
    "on_turn_stopped",
    "worst",
]

OUTCOME_RANK = {"clean": 0, "drained_with_discards": 1, "force_killed": 2, "timeout": 3}

Phase = Literal["spawns", "children", "turn", "upward", "ending"]


def worst(outcomes: Iterable[str]) -> str:
    """The worst of ``outcomes``; ``clean`` for none."""
    return max(outcomes, key=OUTCOME_RANK.__getitem__, default="clean")


@attrs.define
class Stop:
    """A stop in progress."""

    params: ShutdownParams
    reason: str
    deadline: float
    phase: Phase
    outcomes: list[str] = attrs.field(factory=list)
    discarded: bool = False
    """Queued work was dropped (``drain``): a clean turn makes ``drained_with_discards``."""


def begin_stop(
    params: ShutdownParams,
    reason: str,
    now: float,
    *,
    spawns_pending: bool,
    registry: Registry,
    self_name: str,
) -> tuple[Stop, list[Effect]]:
    """Start stopping: wait for the spawns in progress, or stop the children at once."""
    stop = Stop(params, reason, now + params.timeout, "spawns")
    if spawns_pending:
        return stop, [WaitSpawns(stop.deadline)]
    return stop, on_spawns_settled(stop, registry, self_name)


def on_spawns_settled(stop: Stop, registry: Registry, self_name: str) -> list[Effect]:
    """Stop every direct child (each stops its own subtree); a child that has to be
    killed takes what is registered below it along."""
    stop.phase = "children"
    children = [
        (
            record,
            tuple(r for n in registry.descendants_of(record.pod_name) if (r := registry.get(n))),
        )
        for record in registry.children_of(self_name)
    ]
    return [StopChildren(tuple(children), stop.params, stop.deadline)]


def on_children_stopped(
    stop: Stop,
    outcomes: Iterable[str],
    *,
    turn_running: bool,
    queued_work: bool,
    self_name: str,
    now: float,
) -> list[Effect]:
    """The children are gone: now the turn. With ``drain``, queued work is dropped."""
    stop.phase = "turn"
    stop.outcomes.extend(outcomes)
    effects: list[Effect] = []
    if stop.params.drain and queued_work:
        stop.discarded = True
        effects.append(DropQueuedWork())
    if turn_running:
        return [*effects, StopTurn(stop.params, stop.deadline)]
    return [*effects, *on_turn_stopped(stop, "clean", self_name, now)]


def on_turn_stopped(stop: Stop, outcome: str, self_name: str, now: float) -> list[Effect]:
    """The turn is over (or was left running): give up on ``timeout``; else send
    ``shut_down`` and flush the outbox (for at most 2 s, at least 0.5 s)."""
    if outcome == "clean" and stop.discarded:
        outcome = "drained_with_discards"
    stop.outcomes.append(outcome)
    if worst(stop.outcomes) == "timeout":
        return [AbortStop("timeout")]
    stop.phase = "upward"
    return [
        PostEvent(ShutDown(self_name, reason=stop.reason)),
        FlushOutbox(max(0.5, min(2.0, stop.deadline - now))),
    ]


def on_outbox_flushed(stop: Stop, registry: Registry, self_name: str) -> list[Effect]:
    """``shut_down`` went upward: reclaim the children as stopped, answer, end."""
    stop.phase = "ending"
    reclaims: list[Effect] = [
        Reclaim(record, "stopped with its parent", clean=True)
        for record in registry.children_of(self_name)
    ]
    return [*reclaims, FinishStop(worst(stop.outcomes))]
