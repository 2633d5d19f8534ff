"""Events from below, as the pod runs them: the rules are pure (``podd.core.events``,
through ``podd.core.machine``); this part hands them each request with its peer."""

from __future__ import annotations

from typing import Any

import trio

from podd.core.inputs import EventReceived, FlushAsked
from podd.core.machine import handle
from podd.runtime.event_feed import applied
from podd.runtime.loop import PodCore
from podd.runtime.server import Connection
from protocol import FlushEventsParams, Request

__all__ = ["Events"]


class Events:
    """``pod_event`` and ``flush_events``."""

    def __init__(self, pod: PodCore) -> None:
        self.pod = pod

    def on_pod_event(self, conn: Connection, request: Request) -> Any:
        event = EventReceived(request.params, conn.peer_pid)
        effects = handle(self.pod.state, event, trio.current_time())
        if applied(effects):
            # In the feed before anything it leads to (a notification, a woken turn).
            self.pod.feed.record(self.pod.name, request.params)
        return self.pod.run_effects(effects)

    def on_flush_events(self, conn: Connection, request: Request) -> Any:
        params: FlushEventsParams = request.params
        return self.pod.apply(FlushAsked(params.pod_name, conn.peer_pid))
