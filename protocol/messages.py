"""Wire types: scope rules, PodEvents, and the params of every method.

All types are frozen attrs classes; ``protocol.codec`` turns them into JSON and back.
Fields with defaults may be missing on the wire, and unknown keys are ignored, so an
older pod reads a newer pod's frames.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import attrs

from protocol.values import Value

__all__ = [
    "EVENT_KINDS",
    "LOCAL_EVENT_KINDS",
    "AdoptParams",
    "Adopted",
    "DepsParams",
    "Errored",
    "EventsParams",
    "FlushEventsParams",
    "ListPodsParams",
    "NoParams",
    "NotificationsDropped",
    "NotificationsParams",
    "Permission",
    "PodEvent",
    "ReclaimStaleParams",
    "RestartChildParams",
    "RestartGaveUp",
    "ScopeRule",
    "ScopeSubDelegated",
    "SendParams",
    "ShutDown",
    "ShutdownParams",
    "SlotParams",
    "SpawnParams",
    "TaskSkipped",
    "TurnEnded",
    "UnknownEvent",
    "WaitParams",
]

Permission = Literal["read", "write"]
RestartPolicy = Literal["never", "on-failure", "always"]


@attrs.frozen(repr=False, eq=False)
class ScopeRule(Value):
    """One path a pod may read, or read and write."""

    target: str
    permission: Permission = "read"
    recursive: bool = True


# --- PodEvents -------------------------------------------------------------------
#
# ``incarnation`` and ``seq`` are optional on the wire. A pod stamps every event it
# sends with both so that the receiver drops duplicates (seq at or below the last one
# applied) and events of an older incarnation. Zero means "not stamped": such events
# are applied as they come.


@attrs.frozen(repr=False, eq=False)
class TurnEnded(Value):
    kind: ClassVar[str] = "turn_ended"
    pod_name: str
    turn: int = 0
    incarnation: int = 0
    seq: int = 0
    summary: str | None = None
    """The turn's result: its first 500 characters, whitespace collapsed."""
    cost_usd: float | None = None
    denied: int = 0
    """Tool calls the agent was denied during the turn."""


@attrs.frozen(repr=False, eq=False)
class Errored(Value):
    kind: ClassVar[str] = "errored"
    pod_name: str
    message: str
    turn: int = 0
    incarnation: int = 0
    seq: int = 0


@attrs.frozen(repr=False, eq=False)
class ShutDown(Value):
    kind: ClassVar[str] = "shut_down"
    pod_name: str
    reason: str = "stopped"
    incarnation: int = 0
    seq: int = 0


@attrs.frozen(repr=False, eq=False)
class ScopeSubDelegated(Value):
    kind: ClassVar[str] = "scope_sub_delegated"
    parent_pod: str
    sub_pod: str
    sub_socket: str
    scope: list[ScopeRule]
    sub_pid: int = 0
    sub_start_time: float = 0.0
    incarnation: int = 0
    seq: int = 0
    sub_parent: str = ""
    """The pod that spawned ``sub_pod``, kept as the event is passed up (``parent_pod``
    is whoever passes it); empty from a pod that does not say."""
    rejoined: bool = False
    """From a pod restarted with its registry, for a child it spawned and asked back
    (``rejoin``) after that child was adopted: the adopter moves it back under it."""


@attrs.frozen(repr=False, eq=False)
class Adopted(Value):
    """Local only: this pod took over ``pod_name`` after ``previous_parent`` died."""

    kind: ClassVar[str] = "adopted"
    pod_name: str
    previous_parent: str


@attrs.frozen(repr=False, eq=False)
class RestartGaveUp(Value):
    """Local only: the restart policy stopped restarting ``pod_name``."""

    kind: ClassVar[str] = "restart_gave_up"
    pod_name: str
    message: str


@attrs.frozen(repr=False, eq=False)
class TaskSkipped(Value):
    """Local only: child ``pod_name`` did not run its task, because ``reason``."""

    kind: ClassVar[str] = "task_skipped"
    pod_name: str
    reason: str


@attrs.frozen(repr=False, eq=False)
class NotificationsDropped(Value):
    """Local only: the notification buffer overflowed and lost ``count`` older entries."""

    kind: ClassVar[str] = "notifications_dropped"
    count: int


@attrs.frozen(repr=False, eq=False)
class UnknownEvent(Value):
    """An event of a kind this version does not know; ``raw`` keeps every field."""

    kind: str
    raw: dict[str, Any]


PodEvent = (
    TurnEnded
    | Errored
    | ShutDown
    | ScopeSubDelegated
    | Adopted
    | RestartGaveUp
    | NotificationsDropped
    | TaskSkipped
    | UnknownEvent
)

EVENT_KINDS: dict[str, type[Any]] = {
    cls.kind: cls for cls in (TurnEnded, Errored, ShutDown, ScopeSubDelegated)
}
"""The kinds that travel upward between pods."""

LOCAL_EVENT_KINDS: dict[str, type[Any]] = {
    cls.kind: cls for cls in (Adopted, RestartGaveUp, NotificationsDropped, TaskSkipped)
}
"""Kinds a pod makes for its own notifications; never accepted from the wire."""


# --- Method params ----------------------------------------------------------------

_positive = attrs.validators.gt(0.0)
"""Durations on the wire must be positive (and finite: JSON has no infinity)."""
_optional_positive = attrs.validators.optional(attrs.validators.gt(0))


@attrs.frozen(repr=False, eq=False)
class NoParams(Value):
    """Params of methods that take none (``ping``, ``status``, ``list_pods`` ...)."""


@attrs.frozen(repr=False, eq=False)
class SpawnParams(Value):
    name: str
    scope: list[ScopeRule] | None = None
    agent: str | None = None
    cwd: str | None = None
    task: str | None = None
    turn_timeout: float = attrs.field(default=1800.0, validator=_positive)
    wake_on_notify: bool = False
    restart: RestartPolicy = "never"
    nested_sandbox: bool = False
    """Confine the child's turns by mounts alone, so that a sandbox its agent starts
    (bubblewrap) can run; not inherited from the parent."""
    driver: str = "auto"
    env: dict[str, str] = attrs.field(factory=dict)
    mcp: bool = False
    until: str | None = None
    max_iterations: int | None = attrs.field(default=None, validator=_optional_positive)
    budget: float | None = attrs.field(default=None, validator=_optional_positive)
    gate: str | None = None
    gate_timeout: float = attrs.field(default=60.0, validator=_positive)
    after: list[str] = attrs.field(factory=list)
    max_running: int | None = attrs.field(default=None, validator=_optional_positive)


@attrs.frozen(repr=False, eq=False)
class SendParams(Value):
    text: str
    wait: bool = False
    queue: bool = False
    priority: int = 0
    new_session: bool = False
    until: str | None = None
    max_iterations: int | None = attrs.field(default=None, validator=_optional_positive)
    budget: float | None = attrs.field(default=None, validator=_optional_positive)


@attrs.frozen(repr=False, eq=False)
class WaitParams(Value):
    """Answered once the pod has nothing running, queued or waiting."""


@attrs.frozen(repr=False, eq=False)
class DepsParams(Value):
    """From a parent: the children a pod's task waits for have all finished a turn
    (``failed`` None), or one of them failed to (``failed`` says how)."""

    failed: str | None = None


@attrs.frozen(repr=False, eq=False)
class SlotParams(Value):
    """A turn below asks this pod for one of its ``--max-running`` slots; it holds the
    slot as long as it keeps this connection open."""

    pod_name: str
    turn: int = 0
    held: bool = False
    """The asker's turn already runs on a slot of this pod's that ended with its
    previous connection (this pod restarted): it is counted at once, over the limit if
    need be, until that turn ends."""


@attrs.frozen(repr=False, eq=False)
class NotificationsParams(Value):
    peek: bool = False


@attrs.frozen(repr=False, eq=False)
class ShutdownParams(Value):
    timeout: float = attrs.field(default=10.0, validator=_positive)
    drain: bool = False
    kill: bool = True


@attrs.frozen(repr=False, eq=False)
class ListPodsParams(Value):
    probe_timeout: float = attrs.field(default=0.5, validator=_positive)


@attrs.frozen(repr=False, eq=False)
class ReclaimStaleParams(Value):
    probe_timeout: float = attrs.field(default=0.5, validator=_positive)


@attrs.frozen(repr=False, eq=False)
class AdoptParams(Value):
    """A pod whose parent died asks an ancestor to take it over."""

    pod_name: str
    previous_parent: str
    socket: str
    skipped_task: str | None = None
    """Set when the asker dropped its task, which waited for prerequisites that only
    the dead parent was watching: why. The adopter keeps a ``task_skipped``
    notification with it."""


@attrs.frozen(repr=False, eq=False)
class RejoinParams(Value):
    """The pod that spawned the receiver, restarted after it died (the receiver was
    adopted meanwhile), asks it to report there again."""

    parent: str
    socket: str


@attrs.frozen(repr=False, eq=False)
class RestartChildParams(Value):
    """Asks a parent to bring back a stopped or dead child under its name."""

    name: str


@attrs.frozen(repr=False, eq=False)
class FlushEventsParams(Value):
    """Asks which of the sender's events have been applied (a cumulative ack)."""

    pod_name: str


@attrs.frozen(repr=False, eq=False)
class EventsParams(Value):
    """Asks for a pod's recent events; with ``follow``, for every later one too."""

    follow: bool = False
