"""What a probe concludes of a pod: ``alive``, ``unresponsive`` or ``dead``.

A probe looks at the pod's process (its pid and start time, so that a reused pid is not
taken for the pod) and asks its socket for a ``ping``. The pods (``podd.runtime.probe``,
trio) and the command line (``podd.cli.inventory``, blocking sockets) probe each in
their own way and conclude here, by the same rule.
"""

from __future__ import annotations

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Literal

    Liveness = Literal["alive", "unresponsive", "dead"]

__all__ = ["PROBE_TIMEOUT", "verdict"]

PROBE_TIMEOUT = 0.5
"""Seconds a pod's socket may stay silent before the pod counts as unresponsive."""


def verdict(answered: bool, still_running: Callable[[], bool]) -> Liveness:
    """``alive`` if the pod answered the ping. Otherwise ``unresponsive`` if its process
    is still there, else ``dead`` (it died while it was asked): ``still_running`` is
    asked only then, after the ping has failed."""
    if answered:
        return "alive"
    return "unresponsive" if still_running() else "dead"
