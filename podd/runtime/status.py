"""The replies of ``ping`` and ``status``: what a pod says about itself.

``ping`` is small and answered from the state as it is. ``status`` is asked in floods
(operators' scripts, live views polling), so what only the spec, the last turn and the
registry change is built again only when one of them has.
"""

from __future__ import annotations

import operator
from typing import Any

import attrs

from podd import sandbox
from podd.core import scope
from podd.core.registry import ChildRecord
from podd.core.state import PodState
from podd.store import kept

__all__ = ["StatusView", "ping_reply"]

_RECORD_FIELDS = operator.attrgetter(*(field.name for field in attrs.fields(ChildRecord)))
"""A registry record's fields as a tuple: what ``status`` shows of it."""


def ping_reply(state: PodState) -> dict[str, Any]:
    return {
        "pong": True,
        "name": state.name,
        "pid": state.pid,
        "state": state.phase,
        "incarnation": state.spec.incarnation,
        "parent": state.lineage.parent,
        "cost_usd": state.turns.cost_usd,
        "waiting_on": state.turns.waiting_on,
    }


class StatusView:
    """``status`` replies for one pod, with the slowly changing part cached."""

    def __init__(self) -> None:
        self._key: Any = None
        """What the cached part was built from."""
        self._parts: Any = None

    def reply(
        self,
        state: PodState,
        start_time: float,
        *,
        lag: dict[str, Any],
        outbox: dict[str, Any],
        slots: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The ``status`` of the pod of ``state``, with what only the runtime measures:
        the loop's ``lag``, the ``outbox``'s figures, the ``slots`` pool (if any)."""
        spec, turns = state.spec, state.turns
        # Records are compared field by field (events change them in place); the key
        # keeps copies of the rule lists, so that a list changed in place is seen too.
        # The cached values are shared by the replies, which only encode them.
        held = state.held()
        records = [_RECORD_FIELDS(r) for r in state.registry]
        if (spec, turns.last_record, held, records) != self._key:
            self._key = (
                spec,
                turns.last_record,
                {name: list(rules) for name, rules in held.items()},
                [tuple(list(v) if isinstance(v, list) else v for v in r) for r in records],
            )
            self._parts = (
                spec.socket,
                turns.last_record,
                scope.effective_rules(spec.scope, held),
                [attrs.asdict(r) for r in state.registry],
            )
        socket, last, effective_scope, children = self._parts
        return {
            "name": state.name,
            "state": state.phase,
            "pid": state.pid,
            "parent": state.lineage.parent,
            "parent_socket": state.lineage.parent_socket,
            "incarnation": spec.incarnation,
            "socket": socket,
            "cwd": spec.cwd,
            "agent": spec.agent,
            "started_at": start_time,
            "turns": turns.count,
            "last_turn": last,
            "current_turn": turns.count if turns.running else None,
            "waiting_on": turns.waiting_on,
            "driver": spec.driver,
            "session_id": turns.session,
            "cost_usd": turns.cost_usd,
            "usage": dict(turns.usage),
            "queue": [{"priority": w.priority, "text": w.text[:80]} for w in turns.queue.items()],
            "slots": slots,
            "state_dir": kept.state_dir(spec.root, state.name),
            "wake_on_notify": spec.wake_on_notify,
            "turn_timeout": spec.turn_timeout,
            "scope": spec.scope,
            "effective_scope": effective_scope,
            "nested_sandbox": spec.nested_sandbox,
            "enforcement": sandbox.enforcement_mode(spec.nested_sandbox),
            "enforcement_detail": sandbox.enforcement_detail(spec.nested_sandbox),
            "children": children,
            "notifications_pending": len(state.notifications),
            "notifications_dropped": state.notifications.dropped,
            "lag": lag,
            "outbox": outbox,
        }
