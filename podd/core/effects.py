"""What a handler of ``podd.core`` asks the runtime to do, in order.

Effects are values: a handler returns them and the runtime (``podd.runtime``) carries
them out after the handler has returned, so a handler never waits and never fails
half-way through an effect.
"""

from __future__ import annotations

from typing import Any

import attrs

from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import PodSpec
from podd.core.turns import Work
from protocol import PodEvent, ProtocolError, ShutdownParams
from protocol.values import Value

__all__ = [
    "AbortStop",
    "AskToRejoin",
    "BeginStop",
    "DropQueuedWork",
    "Effect",
    "FindAdopter",
    "FinishStop",
    "FlushOutbox",
    "Journal",
    "Log",
    "Notify",
    "PersistRegistry",
    "PostEvent",
    "Publish",
    "Reclaim",
    "ReleaseLeases",
    "Reply",
    "ReplyError",
    "ReplyTo",
    "ReplyWhenPersisted",
    "RestartLater",
    "RetargetOutbox",
    "RunTurn",
    "StartChild",
    "StopChildren",
    "StopTurn",
    "TakeSlots",
    "TellPrerequisites",
    "Trace",
    "TurnOver",
    "WaitSpawns",
    "WatchAdopted",
    "WatchChild",
    "WatchParent",
    "WriteInfo",
]


@attrs.frozen(repr=False, eq=False)
class Reply(Value):
    """Answer the request being handled with ``result``."""

    result: Any


@attrs.frozen(repr=False, eq=False)
class PostEvent(Value):
    """Send ``event`` to this pod's parent; the outbox stamps and delivers it."""

    event: PodEvent


@attrs.frozen(repr=False, eq=False)
class Notify(Value):
    """Buffer ``notification`` for this pod's agent (which may wake it)."""

    notification: Notification


@attrs.frozen(repr=False, eq=False)
class PersistRegistry(Value):
    """The registry changed: journal it and replace its file."""


@attrs.frozen(repr=False, eq=False)
class Trace(Value):
    """A line for the test hook ``PODD_TRACE_EVENTS`` (see ``podd.runtime.loop.EventTrace``)."""

    text: str


@attrs.frozen(repr=False, eq=False)
class Reclaim(Value):
    """Remove the dead pod of ``record``: its registry entry, scope and leftovers, with a
    notification naming ``cause`` (``shut_down`` if ``clean``, else ``errored``)."""

    record: ChildRecord
    cause: str
    clean: bool = False


@attrs.frozen(repr=False, eq=False)
class RestartLater(Value):
    """Start the child ``name`` again, from its last state, in ``delay`` seconds
    (``spec``: its last spec, filled in by ``podd.core.machine``)."""

    name: str
    delay: float
    spec: PodSpec | None = None


@attrs.frozen(repr=False, eq=False)
class AskToRejoin(Value):
    """Ask child ``name`` (at ``socket``), adopted elsewhere while this pod was gone, to
    report here again (``rejoin``); ``child_rejoined`` follows if it does."""

    name: str
    socket: str


@attrs.frozen(repr=False, eq=False)
class WatchAdopted(Value):
    """Watch the adopted pod's process; when it is gone, an ``adopted_exited`` follows."""

    name: str
    pid: int
    start_time: float


@attrs.frozen(repr=False, eq=False)
class WatchParent(Value):
    """Watch the (new) parent's process; when it is gone, a ``parent_died`` follows."""

    pid: int


@attrs.frozen(repr=False, eq=False)
class FindAdopter(Value):
    """Ask the ancestors, nearest first, to adopt this pod; ``adopted`` or ``orphaned``
    follows."""

    previous_parent: str
    skipped_task: str | None = None
    """Why this pod dropped a task that waited for its prerequisites, if it did."""


@attrs.frozen(repr=False, eq=False)
class RetargetOutbox(Value):
    """Send this pod's events (those not yet acknowledged too) to ``target`` from now on;
    None drops them."""

    target: str | None


@attrs.frozen(repr=False, eq=False)
class WriteInfo(Value):
    """Rewrite ``pod.json`` (the lineage changed)."""


@attrs.frozen(repr=False, eq=False)
class BeginStop(Value):
    """Stop this pod and its subtree, as a ``shutdown`` with ``params`` would."""

    params: ShutdownParams
    reason: str


@attrs.frozen(repr=False, eq=False)
class WaitSpawns(Value):
    """Wait until the spawns in progress have settled, or ``deadline``; then
    ``spawns_settled``."""

    deadline: float


@attrs.frozen(repr=False, eq=False)
class StopChildren(Value):
    """Ask every child of ``children`` to stop its subtree and wait until each process
    is gone; one that outlives the deadline is killed with what is registered below it
    (the records beside it). Then ``children_stopped`` with their outcomes."""

    children: tuple[tuple[ChildRecord, tuple[ChildRecord, ...]], ...]
    params: ShutdownParams
    deadline: float


@attrs.frozen(repr=False, eq=False)
class DropQueuedWork(Value):
    """Drop work queued for the agent (a pending wake-on-notify turn)."""


@attrs.frozen(repr=False, eq=False)
class StopTurn(Value):
    """Let the in-flight turn finish (``drain``) or cancel it, as ``params`` say, by
    ``deadline``; then ``turn_stopped`` with the outcome."""

    params: ShutdownParams
    deadline: float


@attrs.frozen(repr=False, eq=False)
class FlushOutbox(Value):
    """Wait up to ``timeout`` seconds for the parent to acknowledge every event; then
    ``outbox_flushed``."""

    timeout: float


@attrs.frozen(repr=False, eq=False)
class AbortStop(Value):
    """Give the stop up (something was left running): answer the requesters with
    ``outcome`` and go on running."""

    outcome: str


@attrs.frozen(repr=False, eq=False)
class FinishStop(Value):
    """Answer the requesters with ``outcome``, flush, and end the pod."""

    outcome: str
    requesters: tuple[Any, ...] = ()


@attrs.frozen(repr=False, eq=False)
class ReplyTo(Value):
    """Answer ``waiter`` (a request whose reply was deferred) with ``result``."""

    waiter: Any
    result: Any


@attrs.frozen(repr=False, eq=False)
class Journal(Value):
    """Append ``record`` to the pod's journal (flushed before the loop next waits)."""

    record: dict[str, Any]


@attrs.frozen(repr=False, eq=False)
class Publish(Value):
    """Record ``event`` (a PodEvent or a wire dict) in this pod's event feed as its own;
    it is not sent upward."""

    event: Any


@attrs.frozen(repr=False, eq=False)
class Log(Value):
    """A line for the pod's log."""

    text: str
    warning: bool = False


@attrs.frozen(repr=False, eq=False)
class TakeSlots(Value):
    """Acquire the concurrency slots ``work`` needs (this pod's pool, then each holder
    above); ``SlotsGranted`` follows."""

    work: Work
    turn: int


@attrs.frozen(repr=False, eq=False)
class RunTurn(Value):
    """Run ``work`` as turn ``turn``, its input preceded by ``notes`` (the drained
    notifications), holding ``leases``; ``TurnDone`` follows, exactly once."""

    work: Work
    turn: int
    notes: tuple[str, ...]
    leases: tuple[Any, ...] = ()


@attrs.frozen(repr=False, eq=False)
class ReleaseLeases(Value):
    """Give back slots that were granted to work that no longer runs."""

    leases: tuple[Any, ...]


@attrs.frozen(repr=False, eq=False)
class TurnOver(Value):
    """The running turn is over: whoever waits for it (a stop) may go on."""


@attrs.frozen(repr=False, eq=False)
class StartChild(Value):
    """Start the child pod of ``spec`` (its name and scope are reserved); ``ChildStarted``,
    then ``ChildReady`` or ``ChildFailedToStart`` follow."""

    spec: PodSpec
    waiter: Any


@attrs.frozen(repr=False, eq=False)
class WatchChild(Value):
    """Watch the started child's process; ``ChildExited`` follows when it ends."""

    name: str


@attrs.frozen(repr=False, eq=False)
class ReplyWhenPersisted(Value):
    """Answer ``waiter`` with ``result`` once the registry file holds what it holds now."""

    waiter: Any
    result: Any


@attrs.frozen(repr=False, eq=False)
class ReplyError(Value):
    """Answer ``waiter`` with the error ``error``."""

    waiter: Any
    error: ProtocolError


@attrs.frozen(repr=False, eq=False)
class TellPrerequisites(Value):
    """Tell the child ``waiter`` that the siblings its task waits for finished
    (``failed`` None), or why its task is skipped."""

    waiter: str
    failed: str | None


Effect = (
    Reply
    | PostEvent
    | Notify
    | PersistRegistry
    | Trace
    | Reclaim
    | RestartLater
    | WatchAdopted
    | AskToRejoin
    | WatchParent
    | FindAdopter
    | RetargetOutbox
    | WriteInfo
    | BeginStop
    | WaitSpawns
    | StopChildren
    | DropQueuedWork
    | StopTurn
    | FlushOutbox
    | AbortStop
    | FinishStop
    | ReplyTo
    | Journal
    | Publish
    | Log
    | TakeSlots
    | RunTurn
    | ReleaseLeases
    | TurnOver
    | TellPrerequisites
    | StartChild
    | WatchChild
    | ReplyWhenPersisted
    | ReplyError
)
