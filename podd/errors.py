"""Runtime errors of podd.

    PoddError                 the root of every error the runtime raises itself
    ├── UsageError            bad usage: exit status 2 (an invalid name, a bad flag value)
    ├── PodUnreachable        the pod's socket does not answer: exit status 3
    ├── RootError             the runtime root or a pod directory is unsafe or unusable
    └── PodFailed             a request failed; wraps the pod's wire error (exit 1)

Wire errors (``protocol.WireError`` subclasses) are translated into ``PodFailed`` or
``UsageError`` once, in the client.
"""

from __future__ import annotations

from protocol.errors import ProtocolError

__all__ = ["PodFailed", "PodUnreachable", "PoddError", "RootError", "UsageError"]


class PoddError(Exception):
    """The root of podd's runtime errors."""


class UsageError(PoddError):
    """The caller asked for something malformed (exit status 2)."""


class PodUnreachable(PoddError):
    """Nothing answers on the pod's socket (exit status 3)."""


class RootError(PoddError):
    """The runtime root or a pod directory cannot be used safely."""


class PodFailed(PoddError):
    """A pod answered a request with an error; ``error`` is the wire error."""

    def __init__(self, error: ProtocolError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error

    @property
    def code(self) -> str:
        return self.error.code
