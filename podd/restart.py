"""``podd restart``: bring a dead pod back under its name (see the journal issue)."""

from __future__ import annotations

from typing import Any

__all__ = ["RestartError", "restart"]


class RestartError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def restart(root: str, name: str) -> dict[str, Any]:
    raise RestartError(1, "restart is not implemented in this version")
