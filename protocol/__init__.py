"""The podd wire protocol, sans I/O: message types, codec, framing and errors.

Nothing here performs I/O or imports an event loop; ``podd`` drives it over sockets.

The names below are loaded on first use (PEP 562), each from its own module, so that
``import protocol.errors`` or ``protocol.framing`` costs those modules alone: the codec
(cattrs, orjson) and the message types (attrs) are imported only by whoever uses them.
"""

from __future__ import annotations

# Type checkers take this as true. The typing module itself is not imported: it would
# add milliseconds to every command-line call, which imports this package.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from protocol.codec import (
        METHODS,
        Reply,
        Request,
        converter,
        decode_reply,
        decode_request,
        encode_error,
        encode_request,
        encode_result,
        event_from_dict,
        event_to_dict,
    )
    from protocol.errors import (
        ERROR_CLASSES,
        AlreadyRunning,
        Forbidden,
        FrameTooLarge,
        FramingError,
        InternalError,
        InvalidJson,
        InvalidName,
        InvalidParams,
        NoAgent,
        PodExists,
        PodNotFound,
        ProtocolError,
        ScopeNotSubset,
        ShuttingDown,
        SpawnFailed,
        UnknownMethod,
        WireError,
        WriteConflict,
        error_from_wire,
    )
    from protocol.framing import MAX_FRAME, FrameBuffer, encode_frame
    from protocol.messages import (
        EVENT_KINDS,
        LOCAL_EVENT_KINDS,
        Adopted,
        AdoptParams,
        Errored,
        FlushEventsParams,
        ListPodsParams,
        NoParams,
        NotificationsDropped,
        NotificationsParams,
        Permission,
        PodEvent,
        ReclaimStaleParams,
        RestartChildParams,
        RestartGaveUp,
        ScopeRule,
        ScopeSubDelegated,
        SendParams,
        ShutDown,
        ShutdownParams,
        SpawnParams,
        TurnEnded,
        UnknownEvent,
    )

__all__ = [
    "ERROR_CLASSES",
    "EVENT_KINDS",
    "LOCAL_EVENT_KINDS",
    "MAX_FRAME",
    "METHODS",
    "AdoptParams",
    "Adopted",
    "AlreadyRunning",
    "Errored",
    "FlushEventsParams",
    "Forbidden",
    "FrameBuffer",
    "FrameTooLarge",
    "FramingError",
    "InternalError",
    "InvalidJson",
    "InvalidName",
    "InvalidParams",
    "ListPodsParams",
    "NoAgent",
    "NoParams",
    "NotificationsDropped",
    "NotificationsParams",
    "Permission",
    "PodEvent",
    "PodExists",
    "PodNotFound",
    "ProtocolError",
    "ReclaimStaleParams",
    "Reply",
    "Request",
    "RestartChildParams",
    "RestartGaveUp",
    "ScopeNotSubset",
    "ScopeRule",
    "ScopeSubDelegated",
    "SendParams",
    "ShutDown",
    "ShutdownParams",
    "ShuttingDown",
    "SpawnFailed",
    "SpawnParams",
    "TurnEnded",
    "UnknownEvent",
    "UnknownMethod",
    "WireError",
    "WriteConflict",
    "converter",
    "decode_reply",
    "decode_request",
    "encode_error",
    "encode_frame",
    "encode_request",
    "encode_result",
    "error_from_wire",
    "event_from_dict",
    "event_to_dict",
]

_MODULE_OF: dict[str, str] = {
    **dict.fromkeys(
        (
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
        ),
        "protocol.errors",
    ),
    **dict.fromkeys(
        (
            "MAX_FRAME",
            "FrameBuffer",
            "encode_frame",
        ),
        "protocol.framing",
    ),
    **dict.fromkeys(
        (
            "EVENT_KINDS",
            "LOCAL_EVENT_KINDS",
            "Adopted",
            "AdoptParams",
            "Errored",
            "FlushEventsParams",
            "ListPodsParams",
            "NoParams",
            "NotificationsDropped",
            "NotificationsParams",
            "Permission",
            "PodEvent",
            "ReclaimStaleParams",
            "RestartChildParams",
            "RestartGaveUp",
            "ScopeRule",
            "ScopeSubDelegated",
            "SendParams",
            "ShutDown",
            "ShutdownParams",
            "SpawnParams",
            "TurnEnded",
            "UnknownEvent",
        ),
        "protocol.messages",
    ),
    **dict.fromkeys(
        (
            "METHODS",
            "Reply",
            "Request",
            "converter",
            "decode_reply",
            "decode_request",
            "encode_error",
            "encode_request",
            "encode_result",
            "event_from_dict",
            "event_to_dict",
        ),
        "protocol.codec",
    ),
}
"""The module each public name lives in."""


def __getattr__(name: str) -> Any:
    module_name = _MODULE_OF.get(name)
    if module_name is None:
        raise AttributeError(f"module 'protocol' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
