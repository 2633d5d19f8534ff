"""Property tests: no input, however malformed, makes the protocol layer fail otherwise
than with a ProtocolError, and whatever decodes encodes again to the same message.

Each test runs ``PODD_FUZZ_EXAMPLES`` examples (200 unless set); ``scripts/fuzz`` raises it.
"""

from __future__ import annotations

import itertools
import json
import os
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    ERROR_CLASSES,
    EVENT_KINDS,
    LOCAL_EVENT_KINDS,
    MAX_FRAME,
    METHODS,
    FrameBuffer,
    FrameTooLarge,
    InvalidJson,
    ProtocolError,
    Reply,
    Request,
    ScopeRule,
    UnknownEvent,
    converter,
    decode_reply,
    decode_request,
    encode_error,
    encode_request,
    encode_result,
    error_from_wire,
    event_from_dict,
    event_to_dict,
)

T = TypeVar("T")

settings.register_profile(
    "podd-fuzz",
    max_examples=int(os.environ.get("PODD_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
fuzz = settings.get_profile("podd-fuzz")

ORJSON_MAX_DEPTH = 1024
"""orjson reads JSON nested this deep and refuses anything deeper."""

# --- Strategies ---------------------------------------------------------------------

PARAMS_TYPES: dict[str, type[Any]] = {
    method: params_type for method, params_type in METHODS.items() if params_type is not None
}
EVENT_TYPES: list[type[Any]] = [*EVENT_KINDS.values(), *LOCAL_EVENT_KINDS.values()]
FIELD_NAMES = sorted(
    {field.name for cls in [*PARAMS_TYPES.values(), *EVENT_TYPES] for field in attrs.fields(cls)}
    | {field.name for field in attrs.fields(ScopeRule)}
    | {"kind", "method", "params", "id", "result", "error", "code", "message"}
)
WORDS = sorted(
    {*METHODS, *EVENT_KINDS, *LOCAL_EVENT_KINDS, *ERROR_CLASSES, "read", "write", "never"}
    | {"always", "on-failure", "future_kind"}
)

# Anything JSON can carry, including lone surrogates, which orjson refuses.
any_char = st.characters() | st.characters(categories=["Cs"]) | st.sampled_from('"\\\n\r\x00/')
json_text = st.text(any_char, max_size=12) | st.sampled_from(WORDS + FIELD_NAMES)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | json_text, children, max_size=5)
    ),
    max_leaves=24,
)
request_id = st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)

# Values that orjson writes and reads back exactly.
wire_text = st.text(max_size=20)
wire_int = st.integers(min_value=-(2**63), max_value=2**64 - 1)
wire_float = st.floats(allow_nan=False, allow_infinity=False)
# The validated fields of the params are durations and counts, which must be positive.
wire_duration = st.floats(min_value=1e-6, max_value=1e9)
wire_count = st.integers(min_value=1, max_value=10**6)


def positive(hint: Any) -> st.SearchStrategy[Any]:
    """Valid values of a validated field: positive, or None where it is optional."""
    args = set(typing.get_args(hint)) or {hint}
    values = wire_duration if float in args else wire_count
    return values | st.none() if type(None) in args else values


def typed(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for valid values of a wire type, attrs classes included."""
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        return st.builds(
            tp,
            **{
                field.name: positive(hints[field.name])
                if field.validator
                else typed(hints[field.name])
                for field in attrs.fields(tp)
            },
        )
    origin = typing.get_origin(tp)
    if origin is Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return st.lists(typed(item), max_size=3)
    if origin is dict:
        key, item = typing.get_args(tp)
        return st.dictionaries(typed(key), typed(item), max_size=3)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([typed(arg) for arg in typing.get_args(tp)])
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: wire_text,
        int: wire_int,
        float: wire_float,
        bool: st.booleans(),
        type(None): st.none(),
    }
    return simple[tp]


def orjson_safe(value: Any) -> Any:
    """``value`` with the strings orjson cannot write and ints it cannot read replaced."""
    if isinstance(value, dict):
        return {orjson_safe(key): orjson_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [orjson_safe(item) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else float(value)
    return value


def unknown_events() -> st.SearchStrategy[UnknownEvent]:
    bodies = st.dictionaries(st.sampled_from(FIELD_NAMES) | wire_text, json_value, max_size=4)
    kinds = wire_text.filter(lambda kind: kind and kind not in EVENT_KINDS | LOCAL_EVENT_KINDS)
    return st.builds(
        lambda kind, body: UnknownEvent(kind=kind, raw={**body, "kind": kind}),
        kinds,
        bodies.map(orjson_safe),
    )


valid_requests = st.one_of(
    *[
        st.builds(Request, st.just(method), typed(params_type), request_id)
        for method, params_type in PARAMS_TYPES.items()
    ],
    st.builds(
        Request,
        st.just("pod_event"),
        st.one_of([typed(cls) for cls in EVENT_KINDS.values()]) | unknown_events(),
        request_id,
    ),
)


@st.composite
def near_valid_frames(draw: st.DrawFn) -> Any:
    """A valid request as a dict, then bent by a few edits: a field dropped, given
    another value or a boolean, a field added, or params replaced whole."""
    request = draw(valid_requests)
    if request.method == "pod_event":
        params: Any = event_to_dict(request.params)
    else:
        params = converter.unstructure(request.params)
    frame: dict[str, Any] = {"method": request.method, "params": params, "id": request.id}
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from([frame, params, params]))
        edit = draw(st.sampled_from(["drop", "junk", "bool", "add", "kind", "params"]))
        key = draw(st.sampled_from(sorted(target))) if target else "kind"
        if edit == "drop":
            target.pop(key, None)
        elif edit == "junk":
            target[key] = draw(json_value)
        elif edit == "bool":
            target[key] = draw(st.booleans())
        elif edit == "add":
            target[draw(st.sampled_from(FIELD_NAMES))] = draw(json_value)
        elif edit == "kind":
            params["kind"] = draw(st.sampled_from(sorted(EVENT_KINDS | LOCAL_EVENT_KINDS)))
        else:
            frame["params"] = draw(st.sampled_from([None, [], "", 0, [params], {}]))
    return frame


def json_bytes(value: Any, ascii_only: bool) -> bytes:
    """JSON text of ``value`` as the stdlib writes it, lone surrogates and big ints kept."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    """JSON nested from a few levels up to past orjson's read limit of 1024."""
    depth = draw(st.integers(0, 1100) | st.sampled_from([63, 64, 65, 253, 254, 255, 1023, 1024]))
    shape = draw(st.sampled_from(["list", "dict", "mixed"]))
    openers = {"list": ["["], "dict": ['{"n":'], "mixed": ["[", '{"scope":']}[shape]
    closers = {"[": "]", '{"n":': "}", '{"scope":': "}"}
    opened = [openers[level % len(openers)] for level in range(depth)]
    leaf = draw(st.sampled_from(["1", '"x"', "null", "{}", "[]", '{"target":"/a"}']))
    return ("".join(opened) + leaf + "".join(closers[o] for o in reversed(opened))).encode()


@st.composite
def nested_frames(draw: st.DrawFn) -> bytes:
    """A frame with deeply nested JSON in a place that a decoder reads."""
    nested = draw(deeply_nested()).decode()
    kind = draw(st.sampled_from(["future_kind", "scope_sub_delegated", "turn_ended"]))
    templates = [
        "{nested}",
        '{{"method":"ping","id":{nested}}}',
        '{{"method":{nested},"id":1}}',
        '{{"method":"spawn","id":1,"params":{nested}}}',
        '{{"method":"spawn","id":1,"params":{{"name":"c","scope":{nested}}}}}',
        '{{"method":"pod_event","id":1,"params":{{"kind":"' + kind + '","scope":{nested}}}}}',
        '{{"method":"pod_event","id":1,"params":{{"kind":"' + kind + '","data":{nested}}}}}',
        '{{"id":1,"result":{nested}}}',
        '{{"id":1,"error":{nested}}}',
    ]
    return draw(st.sampled_from(templates)).format(nested=nested).encode()


def mutated(frame: bytes) -> st.SearchStrategy[bytes]:
    """``frame`` with a few bytes replaced, inserted or removed."""
    edits = st.lists(
        st.tuples(st.integers(0, len(frame)), st.binary(max_size=3), st.integers(0, 3)), max_size=4
    )

    def apply(changes: list[tuple[int, bytes, int]]) -> bytes:
        out = bytearray(frame)
        for position, inserted, removed in changes:
            out[position : position + removed] = inserted
        return bytes(out)

    return edits.map(apply)


frame_payloads = st.one_of(
    st.binary(max_size=64),
    near_valid_frames().map(lambda frame: json_bytes(frame, ascii_only=True)),
    near_valid_frames().map(lambda frame: json_bytes(frame, ascii_only=False)),
    json_value.map(lambda value: json_bytes(value, ascii_only=False)),
    nested_frames(),
    valid_requests.map(
        lambda request: encode_request(request.method, request.params, request.id)[:-1]
    ).flatmap(mutated),
)
streams = st.lists(frame_payloads, max_size=6).map(lambda frames: b"\n".join(frames)) | st.binary(
    max_size=300
)


def cut_points(data: st.DataObject, stream: bytes) -> list[bytes]:
    positions = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *positions, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


# --- Checks -------------------------------------------------------------------------


def outcome(decode: Callable[[bytes], T], line: bytes) -> T | ProtocolError:
    """What ``decode`` makes of ``line``: a message or the ProtocolError it raised.

    Any other exception escapes and fails the test.
    """
    try:
        return decode(line)
    except ProtocolError as exc:
        return exc


def check_request_line(line: bytes) -> None:
    """``line`` decodes to a Request that encodes back to itself, or to a ProtocolError
    that encodes as an error reply for the right request."""
    result = outcome(decode_request, line)
    if isinstance(result, ProtocolError):
        reply = decode_reply(encode_error(result.request_id, result))
        assert (result.request_id, type(result), result.message) == (
            reply.id,
            type(reply.error),
            reply.error.message if reply.error else None,
        )
        return
    assert isinstance(result, Request)
    assert result.method in METHODS
    reencoded = encode_request(result.method, result.params, result.id)
    assert result == decode_request(reencoded)


def check_reply_line(line: bytes) -> None:
    result = outcome(decode_reply, line)
    assert isinstance(result, Reply | ProtocolError)
    if isinstance(result, Reply) and result.error is not None:
        assert isinstance(result.error, ProtocolError)


def reference_split(stream: bytes, max_frame: int) -> list[bytes | None]:
    """Lines of ``stream``, None for one over the limit (an unfinished one too)."""
    *complete, unfinished = stream.split(b"\n")
    lines: list[bytes | None] = [None if len(line) > max_frame else line for line in complete]
    return [*lines, None] if len(unfinished) > max_frame else lines


# --- Properties ---------------------------------------------------------------------


class TestFramingProperties:
    """However a stream is cut into reads, the frame buffer gives the same lines."""

    @fuzz
    @given(stream=streams, max_frame=st.sampled_from([0, 1, 8, 64, MAX_FRAME]), data=st.data())
    def test_any_cut_of_any_stream_gives_the_reference_lines(
        self, stream: bytes, max_frame: int, data: st.DataObject
    ) -> None:
        buffer = FrameBuffer(max_frame=max_frame)
        lines: list[bytes | None] = []
        for chunk in cut_points(data, stream):
            lines += [
                None if isinstance(item, FrameTooLarge) else item for item in buffer.feed(chunk)
            ]
            assert buffer.pending <= max_frame

        assert reference_split(stream, max_frame) == lines


class TestDecodingProperties:
    """Decoding gives a message or a ProtocolError, never another exception."""

    @fuzz
    @given(stream=streams, max_frame=st.sampled_from([16, 256, MAX_FRAME]), data=st.data())
    def test_any_bytes_cut_anywhere_decode_to_messages_or_protocol_errors(
        self, stream: bytes, max_frame: int, data: st.DataObject
    ) -> None:
        buffer = FrameBuffer(max_frame=max_frame)
        for chunk in cut_points(data, stream):
            for item in buffer.feed(chunk):
                if isinstance(item, FrameTooLarge):
                    continue
                check_request_line(item)
                check_reply_line(item)

    @fuzz
    @given(frame=near_valid_frames(), ascii_only=st.booleans())
    def test_near_valid_frames_decode_to_requests_or_protocol_errors(
        self, frame: Any, ascii_only: bool
    ) -> None:
        check_request_line(json_bytes(frame, ascii_only))

    @fuzz
    @given(value=json_value)
    def test_any_json_value_decodes_to_a_request_or_a_protocol_error(self, value: Any) -> None:
        line = json_bytes(value, ascii_only=False)

        check_request_line(line)
        check_reply_line(line)

    @fuzz
    @given(line=nested_frames())
    def test_deeply_nested_json_decodes_to_messages_or_protocol_errors(self, line: bytes) -> None:
        check_request_line(line)
        check_reply_line(line)

    @fuzz
    @given(line=deeply_nested())
    def test_json_past_the_nesting_limit_is_invalid_json(self, line: bytes) -> None:
        depth = line.count(b"[") + line.count(b"{")

        if depth > ORJSON_MAX_DEPTH:
            assert InvalidJson is type(outcome(decode_request, line))
        else:
            check_request_line(line)


class TestRoundTripProperties:
    """Every valid message encodes, is split anywhere, and decodes to itself."""

    @fuzz
    @given(requests=st.lists(valid_requests, min_size=1, max_size=4), data=st.data())
    def test_valid_requests_survive_framing_and_decoding(
        self, requests: list[Request], data: st.DataObject
    ) -> None:
        stream = b"".join(encode_request(r.method, r.params, r.id) for r in requests)
        buffer = FrameBuffer()
        decoded: list[Request] = []
        for chunk in cut_points(data, stream):
            for line in buffer.feed(chunk):
                assert isinstance(line, bytes)
                decoded.append(decode_request(line))

        assert requests == decoded

    @fuzz
    @given(
        event=st.one_of([typed(cls) for cls in EVENT_TYPES]) | unknown_events(),
    )
    def test_every_event_kind_survives_its_dict(self, event: Any) -> None:
        assert event == event_from_dict(event_to_dict(event))

    @fuzz
    @given(
        request_id=request_id,
        code=st.sampled_from(sorted(ERROR_CLASSES)) | wire_text,
        message=wire_text,
    )
    def test_error_replies_keep_id_code_and_message(
        self, request_id: int | str | None, code: str, message: str
    ) -> None:
        reply = decode_reply(encode_error(request_id, error_from_wire(code, message)))

        assert reply.error is not None
        assert (request_id, code, message) == (reply.id, reply.error.code, reply.error.message)

    @fuzz
    @given(request_id=request_id, result=json_value.map(orjson_safe))
    def test_results_survive_encoding(self, request_id: int | str | None, result: Any) -> None:
        assert Reply(id=request_id, result=result) == decode_reply(
            encode_result(request_id, result)
        )
