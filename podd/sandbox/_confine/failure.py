"""How the wrapper fails: ``ConfinementFailed``, and the exit status it then ends with.

Every step raises ``ConfinementFailed`` with what it was doing and an errno; ``main``
turns it into one line, ``podd: confinement failed: WHAT (STRERROR)``, on stderr and on
the status pipe, and exits with ``EXIT_FAILED``.
"""

from __future__ import annotations

import os

__all__ = ["EXIT_FAILED", "ConfinementFailed"]

EXIT_FAILED = 126
"""The exit status when confinement fails (the shell's "found but cannot run")."""


class ConfinementFailed(Exception):
    """A step of the confinement failed; the agent must not run."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(what, code)
        self.what = what
        self.code = code

    def __str__(self) -> str:
        return f"podd: confinement failed: {self.what} ({os.strerror(self.code)})"
