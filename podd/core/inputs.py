"""What happens to a pod, as values: the inputs of ``podd.core.machine.handle``.

Requests carry the parsed params and the peer's pid (from the socket's credentials);
the rest are what the runtime saw happen (a child's process ended, a stop phase is
over, a turn is done) or decided to do (a timer fired). ``Waiter`` tokens stand for
whoever waits for a reply; the rules pass them back in ``ReplyTo`` effects.
"""

from __future__ import annotations

from typing import Any

import attrs

from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import Ancestor, PodSpec
from podd.core.state import Waiter
from podd.core.turns import Work
from protocol import AdoptParams, PodEvent, ProtocolError, SendParams, ShutdownParams
from protocol.messages import RejoinParams
from protocol.values import Value

__all__ = [
    "AdoptAsked",
    "AdoptedBy",
    "AdoptedExited",
    "ChildExited",
    "ChildFailedToStart",
    "ChildReady",
    "ChildRejoined",
    "ChildStarted",
    "ChildrenElsewhere",
    "ChildrenStopped",
    "DepsAnswered",
    "EventReceived",
    "FlushAsked",
    "Input",
    "NotificationArrived",
    "Orphaned",
    "OutboxFlushed",
    "ParentDied",
    "Reclaimed",
    "RejoinAsked",
    "SendAsked",
    "SessionSeen",
    "SlotsGranted",
    "SpawnAsked",
    "SpawnsSettled",
    "StopAsked",
    "TaskDue",
    "TurnDone",
    "TurnStopped",
    "WaitAsked",
]

# --- Requests ------------------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class EventReceived(Value):
    """``pod_event``: a child (or a pod below) reports."""

    event: PodEvent
    peer_pid: int | None


@attrs.frozen(repr=False, eq=False)
class FlushAsked(Value):
    """``flush_events``: a pod below asks which of its events were applied."""

    pod_name: str
    peer_pid: int | None


@attrs.frozen(repr=False, eq=False)
class AdoptAsked(Value):
    """``adopt``: a pod below whose parent died asks this pod to take it over."""

    params: AdoptParams
    peer_pid: int | None


@attrs.frozen(repr=False, eq=False)
class SendAsked(Value):
    """``send``: a turn is asked for; ``waiter`` is answered with its record (``--wait``)."""

    params: SendParams
    waiter: Waiter | None


@attrs.frozen(repr=False, eq=False)
class WaitAsked(Value):
    """``wait``: answered once nothing runs, waits or is queued."""

    waiter: Waiter | None


@attrs.frozen(repr=False, eq=False)
class DepsAnswered(Value):
    """``deps``: the parent says the siblings this pod's task waits for finished
    (``failed`` None) or one of them did not."""

    failed: str | None
    peer_pid: int | None


@attrs.frozen(repr=False, eq=False)
class StopAsked(Value):
    """``shutdown``, a signal, or an orphan with no ancestor left."""

    params: ShutdownParams
    reason: str
    requester: Waiter | None = None


# --- What the runtime saw ------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class SpawnAsked(Value):
    """A child of ``spec`` is to be started (``spawn``, ``restart_child``, a restart by
    policy: ``waiter`` None); the runtime has checked what only the system can tell."""

    spec: PodSpec
    waiter: Waiter | None


@attrs.frozen(repr=False, eq=False)
class ChildStarted(Value):
    """The child's process exists; it is not ready yet."""

    spec: PodSpec
    pid: int


@attrs.frozen(repr=False, eq=False)
class ChildReady(Value):
    """The child's socket accepts connections."""

    spec: PodSpec
    pid: int
    socket: str
    start_time: float
    waiter: Waiter | None


@attrs.frozen(repr=False, eq=False)
class ChildFailedToStart(Value):
    spec: PodSpec
    error: ProtocolError
    waiter: Waiter | None


@attrs.frozen(repr=False, eq=False)
class ChildExited(Value):
    """A direct child's process ended with ``code`` (negative: killed by that signal)."""

    name: str
    pid: int
    code: int


@attrs.frozen(repr=False, eq=False)
class AdoptedExited(Value):
    """The process of a pod this one adopted is gone."""

    name: str
    pid: int


@attrs.frozen(repr=False, eq=False)
class Reclaimed(Value):
    """The runtime removed a dead pod's leftovers; ``cause`` is what it found."""

    record: ChildRecord
    cause: str
    clean: bool


@attrs.frozen(repr=False, eq=False)
class NotificationArrived(Value):
    """A notification made outside the rules (a failed restart, a refused one)."""

    notification: Notification


@attrs.frozen(repr=False, eq=False)
class ParentDied(Value):
    """The parent's process (``pid``; None: whichever is the parent now) is gone."""

    pid: int | None = None


@attrs.frozen(repr=False, eq=False)
class RejoinAsked(Value):
    """``rejoin``: the pod that spawned this one, restarted, asks it back.
    ``parent_pid``: the live process of the pod named in the params (None if none)."""

    params: RejoinParams
    peer_pid: int | None
    parent_pid: int | None


@attrs.frozen(repr=False, eq=False)
class ChildrenElsewhere(Value):
    """A restarted pod's children that live on under another parent (adopted while it
    was gone), as their ``pod.json`` say."""

    names: tuple[str, ...]


@attrs.frozen(repr=False, eq=False)
class ChildRejoined(Value):
    """A child asked back (``AskToRejoin``) reports here again."""

    name: str


@attrs.frozen(repr=False, eq=False)
class AdoptedBy(Value):
    """An ancestor adopted this pod."""

    ancestor: Ancestor
    pid: int


@attrs.frozen(repr=False, eq=False)
class Orphaned(Value):
    """No ancestor would adopt this pod."""


@attrs.frozen(repr=False, eq=False)
class SpawnsSettled(Value):
    """Stop phase ``spawns`` is over: the spawns in flight settled, or the deadline passed."""


@attrs.frozen(repr=False, eq=False)
class ChildrenStopped(Value):
    """Stop phase ``children`` is over, with each child's outcome."""

    outcomes: tuple[str, ...]


@attrs.frozen(repr=False, eq=False)
class TurnStopped(Value):
    """Stop phase ``turn`` is over."""

    outcome: str


@attrs.frozen(repr=False, eq=False)
class OutboxFlushed(Value):
    """Stop phase ``upward`` is over: ``shut_down`` went up, or the flush timed out."""


@attrs.frozen(repr=False, eq=False)
class TaskDue(Value):
    """The pod is up: its task (or what a restart brought back in the queue) may start."""


@attrs.frozen(repr=False, eq=False)
class SlotsGranted(Value):
    """The concurrency slots ``work`` waited for are held (``leases``, opaque here)."""

    work: Work
    leases: tuple[Any, ...]


@attrs.frozen(repr=False, eq=False)
class SessionSeen(Value):
    """The running turn's agent reported its session (LLM drivers)."""

    session: str


@attrs.frozen(repr=False, eq=False)
class TurnDone(Value):
    """The current work item's last process ended; ``record`` is its turn record."""

    record: dict[str, Any]


Input = (
    SpawnAsked
    | ChildStarted
    | ChildReady
    | ChildFailedToStart
    | EventReceived
    | FlushAsked
    | AdoptAsked
    | SendAsked
    | WaitAsked
    | DepsAnswered
    | StopAsked
    | ChildExited
    | AdoptedExited
    | Reclaimed
    | NotificationArrived
    | ParentDied
    | RejoinAsked
    | ChildrenElsewhere
    | ChildRejoined
    | AdoptedBy
    | Orphaned
    | SpawnsSettled
    | ChildrenStopped
    | TurnStopped
    | OutboxFlushed
    | TaskDue
    | SlotsGranted
    | SessionSeen
    | TurnDone
)
