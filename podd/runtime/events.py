"""Events from below, as the pod runs them: the rules are pure (``podd.core.events``);
this mixin hands them the pod's registry and tombstones and carries out the effects."""

from __future__ import annotations

from typing import Any

from podd.core.events import on_flush_events, on_pod_event
from podd.runtime.event_feed import applied
from podd.runtime.loop import PodCore
from podd.runtime.server import Connection
from protocol import FlushEventsParams, Request

__all__ = ["EventsMixin"]


class EventsMixin(PodCore):
    """``pod_event`` and ``flush_events``."""

    def _on_pod_event(self, conn: Connection, request: Request) -> Any:
        effects = on_pod_event(
            self.registry, self.tombstones, self.name, request.params, conn.peer_pid
        )
        if applied(effects):
            self.feed.record(self.name, request.params)
        return self.run_effects(effects)

    def _on_flush_events(self, conn: Connection, request: Request) -> Any:
        params: FlushEventsParams = request.params
        effects = on_flush_events(self.registry, self.tombstones, params.pod_name, conn.peer_pid)
        return self.run_effects(effects)
