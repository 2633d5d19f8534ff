"""JSON codec: frames (one line each) to typed messages and back.

A request is ``{"method": str, "params": {...}, "id": int|str}``; without ``id`` it is a
notification. A reply is ``{"id": ..., "result": ...}`` or
``{"id": ..., "error": {"code": str, "message": str}}``. Decoding raises a
``ProtocolError`` subclass whose ``request_id`` is the frame's id when it could be read,
so the caller can answer the right request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_origin

import attrs
import cattrs
import orjson
from cattrs.cols import list_structure_factory

from protocol.errors import (
    InvalidJson,
    InvalidParams,
    ProtocolError,
    UnknownMethod,
    error_from_wire,
)
from protocol.messages import (
    EVENT_KINDS,
    LOCAL_EVENT_KINDS,
    AdoptParams,
    DepsParams,
    EventsParams,
    FlushEventsParams,
    ListPodsParams,
    NoParams,
    NotificationsParams,
    PodEvent,
    ReclaimStaleParams,
    RejoinParams,
    RestartChildParams,
    SendParams,
    ShutdownParams,
    SlotParams,
    SpawnParams,
    UnknownEvent,
    WaitParams,
)
from protocol.values import Value

__all__ = [
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
]

RequestId = int | str | None


@attrs.frozen(repr=False, eq=False)
class Request(Value):
    method: str
    params: Any
    id: RequestId = None


@attrs.frozen(repr=False, eq=False)
class Reply(Value):
    id: RequestId
    result: Any = None
    error: ProtocolError | None = None


# --- The converter ----------------------------------------------------------------
#
# cattrs coerces by default (``str(5)`` is "5", ``int("5")`` is 5). Wire input must
# not be coerced: a wrong type is ``invalid_params``, so the primitives are strict.


def _strict(kind: type[Any], name: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is kind:
            return value  # the common case, at the cost of one comparison
        if type(value) is bool and kind is not bool:
            raise TypeError(f"expected {name}, got a boolean")
        if not isinstance(value, kind):
            raise TypeError(f"expected {name}, got {type(value).__name__}")
        return value

    return structure


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is bool or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _is_list(type_: Any) -> bool:
    origin: Any = get_origin(type_)
    return origin is list


def _strict_list(list_type: Any, conv: cattrs.BaseConverter) -> Any:
    # cattrs structures any iterable as a list, so "" or {} would pass as [].
    items = list_structure_factory(list_type, conv)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return items(value, list_type)

    return structure


converter = cattrs.Converter(forbid_extra_keys=False)
converter.register_structure_hook_factory(_is_list, _strict_list)
converter.register_structure_hook(str, _strict(str, "a string"))
converter.register_structure_hook(int, _strict(int, "an integer"))
converter.register_structure_hook(bool, _strict(bool, "a boolean"))
converter.register_structure_hook(float, _structure_float)


# orjson reads 1024 levels of nesting but writes only 254. An unknown event is kept raw
# and sent on inside other frames (replies, journals), so its depth is bounded well
# below that: whatever decodes must encode again.
_MAX_UNKNOWN_EVENT_DEPTH = 64


def _nests_deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


_structure_event: dict[type[Any], Callable[[Any, Any], Any]] = {}
"""The converter's structure hook of each event class, looked up once (on first use)."""

_unstructure_event: dict[type[Any], Callable[[Any], Any]] = {}
"""The converter's unstructure hook of each event class, looked up once."""


def event_from_dict(raw: Any) -> PodEvent:
    """Structure a PodEvent. An unknown ``kind`` gives an ``UnknownEvent`` with the raw
    data; a known kind with bad fields raises ``InvalidParams``. Local-only kinds
    (``adopted`` ...) are accepted here, so that stored notifications read back."""
    if not isinstance(raw, dict):
        raise InvalidParams("a pod event must be an object")
    kind = raw.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InvalidParams("a pod event needs a string 'kind'")
    cls = EVENT_KINDS.get(kind) or LOCAL_EVENT_KINDS.get(kind)
    if cls is None:
        if _nests_deeper_than(raw, _MAX_UNKNOWN_EVENT_DEPTH):
            raise InvalidParams(f"{kind} event nests deeper than {_MAX_UNKNOWN_EVENT_DEPTH} levels")
        return UnknownEvent(kind=kind, raw=dict(raw))
    structure = _structure_event.get(cls)
    if structure is None:
        structure = _structure_event[cls] = converter.get_structure_hook(cls)
    try:
        event: PodEvent = structure(raw, cls)
    except Exception as exc:
        raise InvalidParams(f"bad {kind} event: {_describe(exc)}") from exc
    return event


def event_to_dict(event: PodEvent) -> dict[str, Any]:
    """Unstructure a PodEvent, ``kind`` first; an ``UnknownEvent`` gives its raw data back."""
    unstructure = _unstructure_event.get(type(event))
    if unstructure is None:
        if isinstance(event, UnknownEvent):
            return dict(event.raw)  # never cached: it has no hook
        unstructure = _unstructure_event[type(event)] = converter.get_unstructure_hook(type(event))
    body: dict[str, Any] = unstructure(event)
    return {"kind": event.kind, **body}


METHODS: dict[str, type[Any] | None] = {
    "ping": NoParams,
    "status": NoParams,
    "spawn": SpawnParams,
    "send": SendParams,
    "notifications": NotificationsParams,
    "shutdown": ShutdownParams,
    "list_pods": ListPodsParams,
    "reclaim_stale": ReclaimStaleParams,
    "adopt": AdoptParams,
    "rejoin": RejoinParams,
    "flush_events": FlushEventsParams,
    "restart_child": RestartChildParams,
    "wait": WaitParams,
    "deps": DepsParams,
    "slot": SlotParams,
    "pod_event": None,  # params are a PodEvent: see event_from_dict
    "events": EventsParams,
}
"""Every method a pod serves and the type of its params."""


def _format_exception(exc: BaseException, type_: Any) -> str:
    # A field validator's own message names the field and the rule ("'timeout' must
    # be > 0.0: -1"); cattrs would only say "invalid value".
    if type(exc) is ValueError and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, format_exception=_format_exception))
    if isinstance(exc, KeyError):
        return f"missing or unknown key {exc}"
    return str(exc) or type(exc).__name__


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"not valid UTF-8 JSON: {exc}") from exc


def decode_request(line: bytes) -> Request:
    """Decode one frame into a ``Request`` with typed params, or raise a ProtocolError."""
    data = _loads(line)
    if not isinstance(data, dict):
        raise InvalidJson("a frame must be a JSON object")
    request_id = data.get("id")
    if request_id is not None and (
        type(request_id) is bool or not isinstance(request_id, int | str)
    ):
        raise InvalidParams("'id' must be an integer or a string")
    method = data.get("method")
    if not isinstance(method, str):
        raise InvalidParams("a request needs a string 'method'", request_id=request_id)
    if method not in METHODS:
        raise UnknownMethod(f"unknown method {method!r}", request_id=request_id)
    raw_params = data.get("params", {})
    if raw_params is None:
        raw_params = {}
    if not isinstance(raw_params, dict):
        raise InvalidParams("'params' must be an object", request_id=request_id)
    params_type = METHODS[method]
    try:
        if params_type is None:
            # Local-only kinds decode here; the receiving pod refuses them as forbidden,
            # like any event that does not come from the pod it speaks for.
            params = event_from_dict(raw_params)
        else:
            params = converter.structure(raw_params, params_type)
    except ProtocolError as exc:
        exc.request_id = request_id
        raise
    except Exception as exc:
        raise InvalidParams(
            f"bad params for {method}: {_describe(exc)}", request_id=request_id
        ) from exc
    return Request(method, params, request_id)  # positional: cheaper, and it runs for every frame


def encode_request(method: str, params: Any = None, request_id: RequestId = None) -> bytes:
    """Encode a request frame (newline included); ``params`` may be attrs or a dict."""
    if params is None:
        body: Any = {}
    elif method == "pod_event":
        body = event_to_dict(params)
    else:
        body = converter.unstructure(params)
    frame: dict[str, Any] = {"method": method, "params": body}
    if request_id is not None:
        frame["id"] = request_id
    return orjson.dumps(frame) + b"\n"


def encode_result(request_id: RequestId, result: Any) -> bytes:
    """Encode a success reply frame; ``result`` may hold attrs instances."""
    return orjson.dumps({"id": request_id, "result": converter.unstructure(result)}) + b"\n"


def encode_error(request_id: RequestId, exc: ProtocolError) -> bytes:
    """Encode an error reply frame from a ProtocolError."""
    error = {"code": exc.code, "message": exc.message}
    return orjson.dumps({"id": request_id, "error": error}) + b"\n"


def decode_reply(line: bytes) -> Reply:
    """Decode a reply frame; an error reply carries the matching exception (not raised)."""
    data = _loads(line)
    if not isinstance(data, dict):
        raise InvalidJson("a reply must be a JSON object")
    error = data.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise InvalidJson("'error' must be an object")
        code = str(error.get("code", "error"))
        message = str(error.get("message", ""))
        return Reply(id=data.get("id"), error=error_from_wire(code, message))
    return Reply(id=data.get("id"), result=data.get("result"))
