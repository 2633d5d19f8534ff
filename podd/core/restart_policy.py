"""When to restart a child that died: exponential backoff with jitter, and a limit.

As in OTP supervisors and systemd's ``StartLimitBurst``: at most ``limit`` restarts
within ``window`` seconds; past that the parent gives up (and says so). Delays grow
from ``initial`` (100 ms) by doubling, with jitter, up to ``cap`` (30 s); tenacity
computes them.
"""

from __future__ import annotations

import collections

import attrs

__all__ = ["RestartTracker"]


@attrs.define
class RestartTracker:
    limit: int = 5
    window: float = 60.0
    initial: float = 0.1
    cap: float = 30.0
    jitter: float = 0.05
    history: collections.deque[float] = attrs.field(factory=collections.deque)

    def next_delay(self, now: float) -> float | None:
        """The delay before the next restart, or None when the limit is reached.

        Each call that returns a delay counts as one restart at ``now``.
        """
        while self.history and self.history[0] <= now - self.window:
            self.history.popleft()
        if len(self.history) >= self.limit:
            return None
        self.history.append(now)
        import tenacity  # rarely needed: keep it off the pod's start-up

        wait = tenacity.wait_exponential_jitter(
            multiplier=self.initial, max=self.cap, jitter=self.jitter
        )
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = len(self.history)
        return float(wait(state))

    def describe_limit(self) -> str:
        return f"gave up after {self.limit} restarts in {self.window:g} s (restart intensity limit)"
