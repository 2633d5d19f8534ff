"""What a pod measures about itself: the dispatch loop's lag, and a test hook's trace."""

from __future__ import annotations

import os
import time
from typing import Any

import attrs

__all__ = ["EventTrace", "LagStats"]


@attrs.define
class LagStats:
    """How long jobs waited for the loop and held it (``status``'s ``lag``)."""

    last: float = 0.0
    max: float = 0.0
    total: float = 0.0
    count: int = 0
    longest_handler: float = 0.0
    longest_handler_name: str = ""

    def record(self, lag: float, held: float, name: str) -> None:
        self.last = lag
        self.max = max(self.max, lag)
        self.total += lag
        self.count += 1
        if held > self.longest_handler:
            self.longest_handler = held
            self.longest_handler_name = name

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "max": self.max,
            "mean": self.total / self.count if self.count else 0.0,
            "jobs": self.count,
            "longest_handler": {"seconds": self.longest_handler, "job": self.longest_handler_name},
        }


class EventTrace:
    """Test hook (``PODD_TRACE_EVENTS=DIR``): one line per event applied here, with
    ``time.monotonic()``, in ``DIR/<pod>.trace``."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1 << 16)  # noqa: SIM115

    @classmethod
    def from_env(cls, name: str) -> EventTrace | None:
        directory = os.environ.get("PODD_TRACE_EVENTS")
        return cls(os.path.join(directory, f"{name}.trace")) if directory else None

    def write(self, what: str) -> None:
        self._file.write(f"{what} {time.monotonic():.6f}\n")

    def close(self) -> None:
        self._file.close()
