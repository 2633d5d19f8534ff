"""Events from below, as the pod runs them: the rules are pure (``podd.core.events``,
through ``podd.core.machine``); this mixin hands them each request with its peer."""

from __future__ import annotations

from typing import Any

import trio

from podd.core.inputs import EventReceived, FlushAsked
from podd.core.machine import handle
from podd.runtime.event_feed import applied
from podd.runtime.loop import PodCore
from podd.runtime.server import Connection
from protocol import FlushEventsParams, Request

__all__ = ["EventsMixin"]


class EventsMixin(PodCore):
    """``pod_event`` and ``flush_events``."""

    def _on_pod_event(self, conn: Connection, request: Request) -> Any:
        event = EventReceived(request.params, conn.peer_pid)
        effects = handle(self.state, event, trio.current_time())
        if applied(effects):
            # In the feed before anything it leads to (a notification, a woken turn).
            self.feed.record(self.name, request.params)
        return self.run_effects(effects)

    def _on_flush_events(self, conn: Connection, request: Request) -> Any:
        params: FlushEventsParams = request.params
        return self.apply(FlushAsked(params.pod_name, conn.peer_pid))
