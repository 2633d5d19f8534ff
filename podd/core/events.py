"""What a pod does with a PodEvent from below: pure functions over the registry.

``authorize`` decides whether the connection's peer may speak for the event;
``apply_event`` changes the registry and says what follows (a notification, an event
to pass upward). Both are idempotent and tolerate any order: a duplicate or an event
about a pod already gone changes nothing. ``on_pod_event`` and ``on_flush_events`` are
the handlers of the two methods of the event plane: they add the tombstones of removed
pods and return the effects (``podd.core.effects``).
"""

from __future__ import annotations

import attrs

from podd.core import scope
from podd.core.effects import Effect, Notify, PersistRegistry, PostEvent, Reply, Trace
from podd.core.names import is_valid_name
from podd.core.notifications import Notification
from podd.core.registry import ChildRecord, Registry
from podd.core.tombstones import Tombstone, Tombstones
from protocol import (
    Errored,
    Forbidden,
    PodEvent,
    ScopeSubDelegated,
    ShutDown,
    TurnEnded,
    UnknownEvent,
)
from protocol.values import Value

__all__ = ["Applied", "apply_event", "authorize", "on_flush_events", "on_pod_event", "sender_of"]


@attrs.frozen(repr=False, eq=False)
class Applied(Value):
    """The consequences of one event for the pod that applied it."""

    notification: Notification | None = None
    forward: PodEvent | None = None
    """An event to send to this pod's own parent."""
    removed: tuple[str, ...] = ()
    """Records removed (the pod and everything reported through it)."""
    registry_changed: bool = False
    duplicate: bool = False


_STALE = Applied(duplicate=True)


def sender_of(event: PodEvent) -> str | None:
    """The pod an event speaks for: ``parent_pod`` of a sub-delegation, else ``pod_name``."""
    if isinstance(event, ScopeSubDelegated):
        return event.parent_pod
    if isinstance(event, UnknownEvent):
        name = event.raw.get("pod_name")
        return name if isinstance(name, str) else None
    return getattr(event, "pod_name", None)


_FROM_THE_WIRE = (TurnEnded, Errored, ShutDown, ScopeSubDelegated, UnknownEvent)
"""The event classes a pod accepts from below (a tuple: ``isinstance`` of a union made
anew on every event was about half of ``authorize``)."""


def authorize(registry: Registry, event: PodEvent, peer_pid: int | None) -> ChildRecord:
    """Return the record of the event's sender, or raise ``Forbidden``.

    The sender must be in the registry and ``peer_pid`` (the connection's peer
    credentials) must be that pod's process. A sub-delegation must stay inside the
    scope delegated to its sender and name a valid pod.
    """
    if isinstance(event, _FROM_THE_WIRE):
        name = sender_of(event)
    else:
        raise Forbidden(f"{event.kind} events are local and not accepted from the wire")
    record = registry.get(name) if name else None
    if record is None:
        raise Forbidden(f"pod {name!r} is not registered here")
    if peer_pid is None or peer_pid != record.pid:
        raise Forbidden(
            f"only the process of pod {name!r} (pid {record.pid}) may send its events; "
            f"this connection is from pid {peer_pid}"
        )
    if isinstance(event, ScopeSubDelegated):
        if not is_valid_name(event.sub_pod):
            raise Forbidden(f"sub-delegation to an invalid pod name {event.sub_pod!r}")
        for rule in event.scope:
            if not any(scope.rule_covers(own, rule) for own in record.scope_delegated):
                raise Forbidden(
                    f"pod {name!r} cannot delegate {scope.format_rule(rule)}: "
                    "it is outside the scope delegated to it"
                )
    return record


def _is_stale(record: ChildRecord, event: PodEvent) -> bool:
    """Whether ``event`` is older than or equal to what was applied from ``record``."""
    incarnation = getattr(event, "incarnation", 0)
    seq = getattr(event, "seq", 0)
    if not incarnation:
        return False
    if incarnation < record.incarnation:
        return True
    return incarnation == record.incarnation and 0 < seq <= record.last_seq


def apply_event(
    registry: Registry,
    sender: ChildRecord,
    event: PodEvent,
    self_name: str,
    tombstones: Tombstones | None = None,
) -> Applied:
    """Apply an authorized ``event`` from ``sender`` to ``registry``.

    - ``turn_ended`` / ``errored`` become a notification.
    - ``shut_down`` removes the sender and every record reported through it, and
      becomes a notification; the scope they held is free again.
    - ``scope_sub_delegated`` registers the sub-pod once (callback: the sender's socket)
      and is passed upward with ``parent_pod`` = this pod; no notification. A late
      report of a process this pod removed already (its tombstone names that pid)
      registers nothing.
    - An unknown kind becomes a notification, so nothing from below is silently lost.
    """
    if _is_stale(sender, event):
        return _STALE
    incarnation = getattr(event, "incarnation", 0)
    if incarnation:
        if incarnation != sender.incarnation:
            sender.last_seq = 0
        sender.incarnation = incarnation
        seq = getattr(event, "seq", 0)
        if seq > sender.last_seq:
            sender.last_seq = seq

    if isinstance(event, ShutDown):
        removed = [event.pod_name, *registry.descendants_of(event.pod_name)]
        for name in removed:
            registry.remove(name)
        return Applied(
            notification=Notification.of(event), removed=tuple(removed), registry_changed=True
        )
    if isinstance(event, ScopeSubDelegated):
        existing = registry.get(event.sub_pod)
        if existing is not None:
            restarted = (
                event.sub_pid
                and event.sub_pid != existing.pid
                and existing.parent_pod == event.parent_pod
            )
            if _back_with_spawner(existing, event):
                # Adopted here when the pod that spawned it died; that pod, restarted,
                # has it back: it is reported through it again, with what is below it.
                existing.parent_pod = event.parent_pod
                existing.callback_address = sender.socket_path
                return Applied(registry_changed=True)
            if not restarted:
                return Applied()  # registered once, however often it arrives
            # The same sub-pod, reported by the same pod, in a new process (it was
            # restarted): the record follows it, and so do the ancestors'.
            registry.remove(event.sub_pod)
        elif tombstones is not None:
            tomb = tombstones.get(event.sub_pod)
            if tomb is not None and tomb.pid and tomb.pid == event.sub_pid:
                return Applied()  # that process is gone from here already
        # The first pod to pass it up is the one that spawned it, if no one said.
        spawned_by = event.sub_parent or event.parent_pod
        registry.add(
            ChildRecord(
                pod_name=event.sub_pod,
                socket_path=event.sub_socket,
                scope_delegated=list(event.scope),
                callback_address=sender.socket_path,
                pid=event.sub_pid,
                start_time=event.sub_start_time,
                parent_pod=event.parent_pod,
                spawned_by=spawned_by,
            )
        )
        forward = attrs.evolve(
            event, parent_pod=self_name, sub_parent=spawned_by, incarnation=0, seq=0
        )
        return Applied(forward=forward, registry_changed=True)
    return Applied(Notification.of(event))  # positional: cheaper, and it runs for every event


def _back_with_spawner(existing: ChildRecord, event: ScopeSubDelegated) -> bool:
    """Whether ``event`` says that a pod this pod holds as its own (adopted) is back,
    the same process, under the pod that spawned it (restarted, and asked it back)."""
    return bool(
        event.rejoined
        and existing.parent_pod != event.parent_pod
        and existing.spawned_by == event.parent_pod
        and (not event.sub_pid or event.sub_pid == existing.pid)
    )


NO_LONGER_REGISTERED = {"applied": False, "reason": "the pod is no longer registered here"}

_APPLIED = Reply({"applied": True})
_DUPLICATE = Reply({"applied": False})
"""The two replies to an event applied or not, made once (nothing changes a reply)."""


def on_pod_event(
    registry: Registry,
    tombstones: Tombstones,
    self_name: str,
    event: PodEvent,
    peer_pid: int | None,
) -> list[Effect]:
    """Handle a ``pod_event`` from the process ``peer_pid``.

    An event from a removed pod's own process is ignored (its tombstone answers it);
    anything else the peer may not send raises ``Forbidden`` and changes nothing. The
    pods an event removes get tombstones. The reply says whether it was applied (not
    a duplicate).
    """
    try:
        sender = authorize(registry, event, peer_pid)
    except Forbidden:
        tomb = tombstones.get(sender_of(event) or "")
        if tomb is not None and tomb.pid == peer_pid:
            return [Reply(NO_LONGER_REGISTERED)]
        raise
    applied = apply_event(registry, sender, event, self_name, tombstones)
    effects: list[Effect] = [Trace(f"apply {sender.pod_name} {getattr(event, 'turn', 0)}")]
    for name in applied.removed:
        pid = sender.pid if name == sender.pod_name else 0
        tombstones.bury(name, Tombstone(pid, sender.incarnation, sender.last_seq))
    if applied.registry_changed:
        effects.append(PersistRegistry())
    if applied.forward is not None:
        effects.append(PostEvent(applied.forward))
    if applied.notification is not None:
        effects.append(Notify(applied.notification))
    effects.append(_DUPLICATE if applied.duplicate else _APPLIED)
    return effects


def on_flush_events(
    registry: Registry, tombstones: Tombstones, pod_name: str, peer_pid: int | None
) -> list[Effect]:
    """Handle ``flush_events``: acknowledge the newest stamp applied from ``pod_name``.

    Only that pod's own process may ask (a removed pod's, from its tombstone); anyone
    else gets ``Forbidden``.
    """
    record = registry.get(pod_name)
    if record is not None and record.pid == peer_pid:
        return [Reply({"incarnation": record.incarnation, "seq": record.last_seq})]
    tomb = tombstones.get(pod_name)
    if tomb is not None and tomb.pid == peer_pid:
        return [Reply({"incarnation": tomb.incarnation, "seq": tomb.last_seq})]
    raise Forbidden(f"pod {pod_name!r} is not registered here")
