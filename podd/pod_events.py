"""Events from below: authorizing, de-duplicating and applying PodEvents, and the
cumulative acks (``flush_events``) their senders' outboxes wait for."""

from __future__ import annotations

from typing import Any

from podd.events import apply_event, authorize, sender_of
from podd.pod_core import PodCore, Tombstone
from podd.server import Connection
from protocol import FlushEventsParams, Forbidden, Request

__all__ = ["EventsMixin"]


class EventsMixin(PodCore):
    """``pod_event`` and ``flush_events``; the effects are pure (``podd.events``)."""

    def _on_pod_event(self, conn: Connection, request: Request) -> Any:
        event = request.params
        try:
            sender = authorize(self.registry, event, conn.peer_pid)
        except Forbidden:
            tomb = self._tombstones.get(sender_of(event) or "")
            if tomb is not None and tomb.pid == conn.peer_pid:
                return {"applied": False, "reason": "the pod is no longer registered here"}
            raise
        applied = apply_event(self.registry, sender, event, self.name)
        if self.trace is not None:
            self.trace.write(f"apply {sender.pod_name} {getattr(event, 'turn', 0)}")
        for name in applied.removed:
            self._tombstones[name] = Tombstone(
                sender.pid if name == sender.pod_name else 0, sender.incarnation, sender.last_seq
            )
        if applied.registry_changed:
            self.registry_changed()
        if applied.forward is not None:
            self.outbox.post(applied.forward)
        if applied.notification is not None:
            self._notify(applied.notification)
        return {"applied": not applied.duplicate}

    def _on_flush_events(self, conn: Connection, request: Request) -> Any:
        params: FlushEventsParams = request.params
        record = self.registry.get(params.pod_name)
        if record is not None and record.pid == conn.peer_pid:
            return {"incarnation": record.incarnation, "seq": record.last_seq}
        tomb = self._tombstones.get(params.pod_name)
        if tomb is not None and tomb.pid == conn.peer_pid:
            return {"incarnation": tomb.incarnation, "seq": tomb.last_seq}
        raise Forbidden(f"pod {params.pod_name!r} is not registered here")
