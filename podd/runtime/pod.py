"""The pod: the dispatch-loop core and its concerns, put together.

See ``loop`` for the loop and who owns what, and ``docs/architecture.md``.
"""

from __future__ import annotations

from podd.core.spec import PodSpec
from podd.runtime.children import ChildrenMixin
from podd.runtime.events import EventsMixin
from podd.runtime.liveness import LivenessMixin
from podd.runtime.loop import LoopReentryError
from podd.runtime.stop import StopMixin
from podd.runtime.turns import TurnsMixin
from podd.store.journal import PodState

__all__ = ["LoopReentryError", "Pod"]


class Pod(EventsMixin, ChildrenMixin, TurnsMixin, LivenessMixin, StopMixin):
    def __init__(self, spec: PodSpec, start_time: float, restored: PodState | None = None) -> None:
        super().__init__(spec, start_time, restored)
        self._handlers.update(
            pod_event=self._on_pod_event,
            flush_events=self._on_flush_events,
            spawn=self._on_spawn,
            send=self._on_send,
            shutdown=self._on_shutdown,
            list_pods=self._on_list_pods,
            reclaim_stale=self._on_reclaim_stale,
            adopt=self._on_adopt,
            restart_child=self._on_restart_child,
            wait=self._on_wait,
            deps=self._on_deps,
            slot=self._on_slot,
        )
