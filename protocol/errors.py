"""Errors of the wire protocol.

Every error a pod can answer with has a wire code (a short snake_case string) and
exactly one exception class here. The table ``ERROR_CLASSES`` maps codes to classes;
``error_from_wire`` and ``WireError.code`` map them back.

    ProtocolError                 the root: anything wrong on the wire
    ├── FramingError              bytes that are not a frame
    │   ├── FrameTooLarge         frame_too_large: a line over the limit
    │   └── InvalidJson           invalid_json: not UTF-8 JSON, or not an object
    ├── UnknownMethod             unknown_method
    ├── InvalidParams             invalid_params: params do not fit the method
    └── WireError                 an error a pod answered for a well-formed request
        ├── Forbidden             forbidden
        ├── InvalidName           invalid_name
        ├── PodNotFound           not_found
        ├── PodExists             already_exists
        ├── AlreadyRunning        already_running
        ├── NoAgent               no_agent
        ├── ScopeNotSubset        scope_not_subset
        ├── WriteConflict         write_conflict
        ├── SpawnFailed           spawn_failed
        ├── ShuttingDown          shutting_down
        └── InternalError         internal
"""

from __future__ import annotations

__all__ = [
    "ERROR_CLASSES",
    "AlreadyRunning",
    "Forbidden",
    "FrameTooLarge",
    "FramingError",
    "InternalError",
    "InvalidJson",
    "InvalidName",
    "InvalidParams",
    "NoAgent",
    "PodExists",
    "PodNotFound",
    "ProtocolError",
    "ScopeNotSubset",
    "ShuttingDown",
    "SpawnFailed",
    "UnknownMethod",
    "WireError",
    "WriteConflict",
    "error_from_wire",
]


class ProtocolError(Exception):
    """Something on the wire is wrong. ``code`` is the wire error code."""

    code = "protocol_error"

    def __init__(self, message: str, *, request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class FramingError(ProtocolError):
    """The bytes do not form a frame."""


class FrameTooLarge(FramingError):
    code = "frame_too_large"


class InvalidJson(FramingError):
    code = "invalid_json"


class UnknownMethod(ProtocolError):
    code = "unknown_method"


class InvalidParams(ProtocolError):
    code = "invalid_params"


class WireError(ProtocolError):
    """An error a pod answered for a well-formed request."""

    code = "error"


class Forbidden(WireError):
    code = "forbidden"


class InvalidName(WireError):
    code = "invalid_name"


class PodNotFound(WireError):
    code = "not_found"


class PodExists(WireError):
    code = "already_exists"


class AlreadyRunning(WireError):
    code = "already_running"


class NoAgent(WireError):
    code = "no_agent"


class ScopeNotSubset(WireError):
    code = "scope_not_subset"


class WriteConflict(WireError):
    code = "write_conflict"


class SpawnFailed(WireError):
    code = "spawn_failed"


class ShuttingDown(WireError):
    code = "shutting_down"


class InternalError(WireError):
    code = "internal"


class QueueFull(WireError):
    code = "queue_full"


ERROR_CLASSES: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (
        FrameTooLarge,
        InvalidJson,
        UnknownMethod,
        InvalidParams,
        Forbidden,
        InvalidName,
        PodNotFound,
        PodExists,
        AlreadyRunning,
        NoAgent,
        ScopeNotSubset,
        WriteConflict,
        SpawnFailed,
        ShuttingDown,
        InternalError,
        QueueFull,
    )
}


def error_from_wire(code: str, message: str) -> ProtocolError:
    """Return the exception for an error frame; an unknown code gives a ``WireError``."""
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        exc = WireError(message)
        exc.code = code
        return exc
    return cls(message)
