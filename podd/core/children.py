"""What a pod does when a child's process ends, and its restart policy.

A direct child's exit is learned at once (the pod is its OS parent). Unless the child
had already said ``shut_down`` (its record is gone, or belongs to a newer process), the
child is reclaimed with a notification naming the cause, and its restart policy
decides what follows: ``never``; ``on-failure`` (a non-zero exit or a signal);
``always``; each with backoff and an intensity limit (``podd.core.restart_policy``). Pure:
the runtime reclaims, waits and respawns.
"""

from __future__ import annotations

import signal

from podd.core.effects import Effect, Notify, Reclaim, RestartLater
from podd.core.notifications import Notification
from podd.core.registry import Registry
from podd.core.restart_policy import RestartTracker
from protocol import RestartGaveUp
from protocol.messages import RestartPolicy

__all__ = ["exit_cause", "on_child_exited", "restart_effects"]


def exit_cause(code: int) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with status {code}"


def restart_effects(
    name: str,
    policy: RestartPolicy,
    *,
    failed: bool,
    stopping: bool,
    tracker: RestartTracker,
    now: float,
) -> list[Effect]:
    """Apply a child's restart policy after it died (or a restart of it failed)."""
    if stopping or policy == "never" or (policy == "on-failure" and not failed):
        return []
    delay = tracker.next_delay(now)
    if delay is None:
        return [Notify(Notification.of(RestartGaveUp(name, tracker.describe_limit())))]
    return [RestartLater(name, delay)]


def on_child_exited(
    registry: Registry,
    name: str,
    pid: int,
    code: int,
    *,
    policy: RestartPolicy | None,
    stopping: bool,
    tracker: RestartTracker,
    now: float,
) -> list[Effect]:
    """A direct child's process ended with ``code``. ``policy`` is None when the pod no
    longer holds the child's spec (nothing to restart)."""
    record = registry.get(name)
    if record is None or record.pid != pid:
        return []  # it said shut_down first: nothing left to reclaim
    effects: list[Effect] = [Reclaim(record, exit_cause(code), clean=code == 0)]
    if policy is not None:
        effects += restart_effects(
            name, policy, failed=code != 0, stopping=stopping, tracker=tracker, now=now
        )
    return effects
