"""Tests for ``protocol.codec``: frames to typed messages and back."""

# House style writes asserts as `expected == actual`.

from __future__ import annotations

from typing import Any

import orjson
import pytest

from protocol import (
    ERROR_CLASSES,
    EVENT_KINDS,
    LOCAL_EVENT_KINDS,
    METHODS,
    Adopted,
    AdoptParams,
    Errored,
    FlushEventsParams,
    InvalidJson,
    InvalidParams,
    ListPodsParams,
    NoParams,
    NotificationsDropped,
    NotificationsParams,
    PodEvent,
    ProtocolError,
    ReclaimStaleParams,
    Reply,
    Request,
    RestartChildParams,
    RestartGaveUp,
    ScopeNotSubset,
    ScopeRule,
    ScopeSubDelegated,
    SendParams,
    ShutDown,
    ShutdownParams,
    SpawnParams,
    TurnEnded,
    UnknownEvent,
    UnknownMethod,
    WireError,
    decode_reply,
    decode_request,
    encode_error,
    encode_request,
    encode_result,
    event_from_dict,
    event_to_dict,
)
from protocol.messages import (
    DepsParams,
    EventsParams,
    RejoinParams,
    SlotParams,
    TaskSkipped,
    WaitParams,
)

RULES = [
    ScopeRule(target="/srv/data", permission="write", recursive=True),
    ScopeRule(target="/srv/docs/readme", permission="read", recursive=False),
]

# Every method with a params value that sets each field away from its default, and one
# that leaves every optional field out.
PARAMS_SAMPLES: list[tuple[str, Any]] = [
    ("ping", NoParams()),
    ("status", NoParams()),
    ("spawn", SpawnParams(name="child")),
    (
        "spawn",
        SpawnParams(
            name="child.2",
            scope=RULES,
            agent="claude -p",
            cwd="/srv/data",
            task="fix the bug",
            turn_timeout=12.5,
            wake_on_notify=True,
            restart="on-failure",
        ),
    ),
    ("spawn", SpawnParams(name="child", scope=[])),
    ("send", SendParams(text="hello\nworld ✓")),
    ("send", SendParams(text="", wait=True)),
    ("notifications", NotificationsParams()),
    ("notifications", NotificationsParams(peek=True)),
    ("shutdown", ShutdownParams()),
    ("shutdown", ShutdownParams(timeout=0.25, drain=True, kill=False)),
    ("list_pods", ListPodsParams()),
    ("list_pods", ListPodsParams(probe_timeout=2.0)),
    ("reclaim_stale", ReclaimStaleParams()),
    ("reclaim_stale", ReclaimStaleParams(probe_timeout=0.1)),
    ("adopt", AdoptParams(pod_name="orphan", previous_parent="dead", socket="/r/orphan/sock")),
    ("rejoin", RejoinParams(parent="lead", socket="/r/lead/sock")),
    ("flush_events", FlushEventsParams(pod_name="child")),
    ("restart_child", RestartChildParams(name="child")),
    ("wait", WaitParams()),
    ("events", EventsParams(follow=True)),
    ("events", EventsParams()),
    ("deps", DepsParams(failed="'a' errored")),
    ("deps", DepsParams()),
    ("slot", SlotParams(pod_name="child", turn=3)),
    (
        "send",
        SendParams(text="go", queue=True, priority=5, until="DONE", max_iterations=3, budget=60),
    ),
    (
        "spawn",
        SpawnParams(
            name="w",
            agent="claude",
            driver="claude",
            env={"A": "1"},
            until="DONE",
            gate="make test",
            after=["a", "b"],
            max_running=2,
        ),
    ),
]

WIRE_EVENT_SAMPLES: list[PodEvent] = [
    TurnEnded(pod_name="child"),
    TurnEnded(pod_name="child", turn=3, incarnation=2, seq=17),
    Errored(pod_name="child", message="exit status 3"),
    Errored(pod_name="child", message="killed by SIGKILL", turn=4, incarnation=1, seq=9),
    ShutDown(pod_name="child"),
    ShutDown(pod_name="child", reason="killed by SIGTERM", incarnation=5, seq=1),
    ScopeSubDelegated(parent_pod="mid", sub_pod="leaf", sub_socket="/r/leaf/sock", scope=[]),
    ScopeSubDelegated(
        parent_pod="mid",
        sub_pod="leaf",
        sub_socket="/r/leaf/sock",
        scope=RULES,
        sub_pid=4242,
        sub_start_time=1712345678.25,
        incarnation=1,
        seq=2,
    ),
]

LOCAL_EVENT_SAMPLES: list[PodEvent] = [
    Adopted(pod_name="orphan", previous_parent="dead"),
    RestartGaveUp(pod_name="flaky", message="gave up after 5 restarts in 60 s"),
    TaskSkipped(pod_name="b", reason="'a' errored"),
    NotificationsDropped(count=12),
]

# The four event frames exactly as PRODUCT.md section 4 writes them.
CONTRACT_EVENT_FRAMES: list[tuple[bytes, PodEvent]] = [
    (
        b'{"method":"pod_event","params":{"kind":"turn_ended","pod_name":"child"}}',
        TurnEnded(pod_name="child"),
    ),
    (
        b'{"method":"pod_event","params":{"kind":"errored","pod_name":"child",'
        b'"message":"exit status 1"}}',
        Errored(pod_name="child", message="exit status 1"),
    ),
    (
        b'{"method":"pod_event","params":{"kind":"shut_down","pod_name":"child"}}',
        ShutDown(pod_name="child"),
    ),
    (
        b'{"method":"pod_event","params":{"kind":"scope_sub_delegated","parent_pod":"child",'
        b'"sub_pod":"grandchild","sub_socket":"/run/podd/grandchild/sock","scope":'
        b'[{"target":"/srv/a","permission":"write","recursive":true},'
        b'{"target":"/srv/b","permission":"read","recursive":false}]}}',
        ScopeSubDelegated(
            parent_pod="child",
            sub_pod="grandchild",
            sub_socket="/run/podd/grandchild/sock",
            scope=[
                ScopeRule(target="/srv/a", permission="write", recursive=True),
                ScopeRule(target="/srv/b", permission="read", recursive=False),
            ],
        ),
    ),
]


# An event from a newer pod: a kind this version does not know.
UNKNOWN_RAW: dict[str, Any] = {
    "kind": "budget_exhausted",
    "pod_name": "child",
    "spent": {"usd": 12.5, "tokens": [1, 2, 3]},
    "final": True,
    "note": None,
}


def frame(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def decode_error(line: bytes) -> ProtocolError:
    """Decode a frame that must fail and return the error."""
    with pytest.raises(ProtocolError) as info:
        decode_request(line)
    return info.value


def error_facts(exc: ProtocolError | None) -> tuple[type[ProtocolError], str, str] | None:
    return None if exc is None else (type(exc), exc.code, exc.message)


class TestRequestRoundTrip:
    """Every method's params encode and decode back to an equal Request."""

    def test_every_method_has_a_sample(self) -> None:
        sampled = {method for method, _ in PARAMS_SAMPLES} | {"pod_event"}

        assert set(METHODS) == sampled

    @pytest.mark.parametrize(("method", "params"), PARAMS_SAMPLES)
    @pytest.mark.parametrize("request_id", [1, 0, -5, 2**63, "req-1", ""])
    def test_request_decodes_to_what_was_encoded(
        self, method: str, params: Any, request_id: int | str
    ) -> None:
        line = encode_request(method, params, request_id)

        assert Request(method, params, request_id) == decode_request(line)

    @pytest.mark.parametrize(("method", "params"), PARAMS_SAMPLES)
    def test_notification_without_id_decodes_with_id_none(self, method: str, params: Any) -> None:
        line = encode_request(method, params)

        assert "id" not in orjson.loads(line)
        assert Request(method, params, None) == decode_request(line)

    @pytest.mark.parametrize(
        ("method", "defaults"),
        [
            ("ping", NoParams()),
            ("status", NoParams()),
            ("notifications", NotificationsParams(peek=False)),
            ("shutdown", ShutdownParams(timeout=10.0, drain=False, kill=True)),
            ("list_pods", ListPodsParams(probe_timeout=0.5)),
            ("reclaim_stale", ReclaimStaleParams(probe_timeout=0.5)),
        ],
    )
    def test_request_without_params_gets_the_defaults(self, method: str, defaults: Any) -> None:
        assert Request(method, defaults, 3) == decode_request(encode_request(method, request_id=3))

    @pytest.mark.parametrize(
        "line", [b'{"method":"ping","id":1}', b'{"method":"ping","params":null,"id":1}']
    )
    def test_absent_or_null_params_mean_no_params(self, line: bytes) -> None:
        assert Request("ping", NoParams(), 1) == decode_request(line)

    def test_encoded_request_is_one_line_ending_in_a_newline(self) -> None:
        line = encode_request("send", SendParams(text="a\nb\nc"), 1)

        assert (1, True) == (line.count(b"\n"), line.endswith(b"\n"))

    def test_params_may_be_given_as_a_dict(self) -> None:
        line = encode_request("send", {"text": "hi", "wait": True}, 9)

        assert Request("send", SendParams(text="hi", wait=True), 9) == decode_request(line)

    def test_unknown_keys_are_ignored(self) -> None:
        line = frame(method="send", params={"text": "hi", "from_the_future": [1, 2]}, id=1)

        assert Request("send", SendParams(text="hi"), 1) == decode_request(line)

    def test_integer_is_accepted_where_a_number_is_expected(self) -> None:
        line = frame(method="shutdown", params={"timeout": 5}, id=1)
        params = decode_request(line).params

        assert (5.0, float) == (params.timeout, type(params.timeout))

    def test_scope_rule_defaults_to_recursive_read(self) -> None:
        line = frame(method="spawn", params={"name": "c", "scope": [{"target": "/srv"}]}, id=1)

        assert [ScopeRule(target="/srv", permission="read", recursive=True)] == (
            decode_request(line).params.scope
        )

    def test_line_may_end_with_surrounding_whitespace(self) -> None:
        assert Request("ping", NoParams(), 1) == decode_request(b' {"method":"ping","id":1}\r')


class TestEventRoundTrip:
    """Every PodEvent kind turns into a dict with its kind first, and back."""

    def test_every_kind_has_a_sample(self) -> None:
        sampled = {event.kind for event in WIRE_EVENT_SAMPLES + LOCAL_EVENT_SAMPLES}

        assert set(EVENT_KINDS) | set(LOCAL_EVENT_KINDS) == sampled

    @pytest.mark.parametrize("event", WIRE_EVENT_SAMPLES + LOCAL_EVENT_SAMPLES)
    def test_event_dict_reads_back_as_the_event(self, event: PodEvent) -> None:
        assert event == event_from_dict(event_to_dict(event))

    @pytest.mark.parametrize("event", WIRE_EVENT_SAMPLES + LOCAL_EVENT_SAMPLES)
    def test_event_dict_starts_with_its_kind(self, event: PodEvent) -> None:
        assert ("kind", event.kind) == next(iter(event_to_dict(event).items()))

    @pytest.mark.parametrize("event", WIRE_EVENT_SAMPLES)
    @pytest.mark.parametrize("request_id", [None, 7, "evt-7"])
    def test_wire_event_travels_as_pod_event(self, event: PodEvent, request_id: int | str) -> None:
        line = encode_request("pod_event", event, request_id)

        assert Request("pod_event", event, request_id) == decode_request(line)

    @pytest.mark.parametrize("event", WIRE_EVENT_SAMPLES + LOCAL_EVENT_SAMPLES)
    def test_event_dict_survives_json(self, event: PodEvent) -> None:
        assert event == event_from_dict(orjson.loads(orjson.dumps(event_to_dict(event))))


class TestContractEventShapes:
    """The event frames of the product contract decode to the right types and fields."""

    @pytest.mark.parametrize(("line", "expected"), CONTRACT_EVENT_FRAMES)
    def test_contract_frame_decodes_to_the_event(self, line: bytes, expected: PodEvent) -> None:
        assert Request("pod_event", expected, None) == decode_request(line)

    @pytest.mark.parametrize(("line", "expected"), CONTRACT_EVENT_FRAMES)
    def test_encoded_event_holds_every_contract_field(
        self, line: bytes, expected: PodEvent
    ) -> None:
        contract = orjson.loads(line)
        encoded = orjson.loads(encode_request("pod_event", expected))
        encoded_params = {key: encoded["params"][key] for key in contract["params"]}

        assert contract == {"method": encoded["method"], "params": encoded_params}

    def test_kinds_on_the_wire_are_the_four_of_the_contract(self) -> None:
        assert {"turn_ended", "errored", "shut_down", "scope_sub_delegated"} == set(EVENT_KINDS)


class TestUnknownEvent:
    """An event of an unknown kind is kept whole and sent on unchanged."""

    def test_unknown_kind_decodes_to_unknown_event_with_the_raw_data(self) -> None:
        line = frame(method="pod_event", params=UNKNOWN_RAW, id=4)

        assert Request("pod_event", UnknownEvent(kind="budget_exhausted", raw=UNKNOWN_RAW), 4) == (
            decode_request(line)
        )

    def test_unknown_event_reencodes_byte_for_byte(self) -> None:
        line = frame(method="pod_event", params=UNKNOWN_RAW, id=4) + b"\n"
        request = decode_request(line)

        assert line == encode_request(request.method, request.params, request.id)

    def test_unknown_event_dict_is_its_raw_data(self) -> None:
        assert UNKNOWN_RAW == event_to_dict(UnknownEvent(kind="budget_exhausted", raw=UNKNOWN_RAW))

    def test_unknown_event_copies_the_raw_data(self) -> None:
        raw = dict(UNKNOWN_RAW)
        event = event_from_dict(raw)
        raw["pod_name"] = "changed"

        assert "child" == event_to_dict(event)["pod_name"]

    def test_modestly_nested_unknown_event_is_kept(self) -> None:
        nested: Any = "leaf"
        for _ in range(30):
            nested = {"n": [nested]}
        raw = {"kind": "future", "data": nested}

        assert UnknownEvent(kind="future", raw=raw) == event_from_dict(raw)

    def test_unknown_event_too_deep_to_reencode_is_invalid_params(self) -> None:
        depth = 300
        line = b'{"method":"pod_event","id":5,"params":{"kind":"future","n":'
        line += b"[" * depth + b"]" * depth + b"}}"

        exc = decode_error(line)

        assert (InvalidParams, 5) == (type(exc), exc.request_id)


class TestLocalEvents:
    """Local-only kinds decode (the receiving pod, not the codec, refuses them)."""

    @pytest.mark.parametrize("event", LOCAL_EVENT_SAMPLES)
    def test_local_event_decodes_as_itself(self, event: PodEvent) -> None:
        line = frame(method="pod_event", params=event_to_dict(event), id="x")

        request = decode_request(line)

        assert ("pod_event", event, "x") == (request.method, request.params, request.id)

    def test_local_kinds_are_not_wire_kinds(self) -> None:
        assert set() == set(LOCAL_EVENT_KINDS) & set(EVENT_KINDS)


class TestInvalidJson:
    """Bytes that are not one UTF-8 JSON object are invalid_json, with no request id."""

    @pytest.mark.parametrize(
        "line",
        [
            b"",
            b"   ",
            b"hello",
            b'{"method":"ping"',
            b'{"method":"ping",}',
            b"{'method':'ping'}",
            b'{"method":"ping"}{"method":"ping"}',
            b'{"method":"ping","id":NaN}',
            b'{"method":"ping","id":1e400}',
            b'{"method":"\xff\xfe"}',
            b'{"method":"ping\xed\xa0\x80"}',
            b'{"method":"\\ud800"}',
            b'\xef\xbb\xbf{"method":"ping"}',
            b'{"method":"pi\x00ng"}',
            b"[" * 2000 + b"]" * 2000,
        ],
        ids=lambda line: repr(line[:40]),
    )
    def test_garbage_is_invalid_json(self, line: bytes) -> None:
        exc = decode_error(line)

        assert (InvalidJson, "invalid_json", None) == (type(exc), exc.code, exc.request_id)

    @pytest.mark.parametrize(
        "line", [b"[]", b'[{"method":"ping","id":1}]', b"1", b'"ping"', b"null", b"true"]
    )
    def test_json_that_is_not_an_object_is_invalid_json(self, line: bytes) -> None:
        exc = decode_error(line)

        assert (InvalidJson, None) == (type(exc), exc.request_id)

    @pytest.mark.parametrize("line", [b"", b"garbage", b"\xff", b"[]", b"42"])
    def test_garbage_reply_is_invalid_json(self, line: bytes) -> None:
        with pytest.raises(InvalidJson):
            decode_reply(line)


class TestUnknownMethod:
    """A well-formed request naming no known method is unknown_method, id kept."""

    @pytest.mark.parametrize("request_id", [1, "abc", None])
    def test_unknown_method_keeps_the_request_id(self, request_id: int | str | None) -> None:
        exc = decode_error(frame(method="fly", params={}, id=request_id))

        assert (UnknownMethod, "unknown_method", request_id) == (
            type(exc),
            exc.code,
            exc.request_id,
        )

    @pytest.mark.parametrize("method", ["PING", "ping ", "", "pod-event", "__init__"])
    def test_method_names_match_exactly(self, method: str) -> None:
        assert UnknownMethod is type(decode_error(frame(method=method, id=1)))

    def test_unknown_method_is_reported_before_its_params_are_read(self) -> None:
        exc = decode_error(frame(method="fly", params=[1, 2], id=2))

        assert UnknownMethod is type(exc)


class TestInvalidParams:
    """Params that do not fit the method are invalid_params, with the request id kept."""

    @pytest.mark.parametrize(
        ("method", "params"),
        [
            ("send", {"text": 5}),
            ("send", {"text": None}),
            ("send", {"text": ["hi"]}),
            ("send", {"text": "hi", "wait": 1}),
            ("send", {"text": "hi", "wait": "true"}),
            ("spawn", {"name": 5}),
            ("spawn", {"name": "c", "agent": 5}),
            ("spawn", {"name": "c", "turn_timeout": True}),
            ("spawn", {"name": "c", "turn_timeout": "10"}),
            ("spawn", {"name": "c", "wake_on_notify": 0}),
            ("spawn", {"name": "c", "scope": ""}),
            ("spawn", {"name": "c", "scope": {}}),
            ("spawn", {"name": "c", "scope": "/srv"}),
            ("spawn", {"name": "c", "scope": ["/srv"]}),
            ("spawn", {"name": "c", "scope": [{"target": 1}]}),
            ("spawn", {"name": "c", "scope": [{"target": "/srv", "recursive": "yes"}]}),
            ("spawn", {"name": "c", "scope": [{"target": "/srv", "recursive": 1}]}),
            ("shutdown", {"timeout": False}),
            ("shutdown", {"kill": None}),
            ("list_pods", {"probe_timeout": [0.5]}),
            ("adopt", {"pod_name": "o", "previous_parent": "d", "socket": 3}),
            ("pod_event", {"kind": "turn_ended", "pod_name": 1}),
            ("pod_event", {"kind": "turn_ended", "pod_name": "c", "turn": True}),
            ("pod_event", {"kind": "turn_ended", "pod_name": "c", "turn": 1.0}),
            ("pod_event", {"kind": "turn_ended", "pod_name": "c", "seq": "1"}),
            ("pod_event", {"kind": "errored", "pod_name": "c", "message": False}),
            ("pod_event", {"kind": "shut_down", "pod_name": "c", "incarnation": False}),
            (
                "pod_event",
                {"kind": "scope_sub_delegated", "parent_pod": "p", "sub_pod": "s"}
                | {"sub_socket": "/s", "scope": {}},
            ),
            (
                "pod_event",
                {"kind": "scope_sub_delegated", "parent_pod": "p", "sub_pod": "s"}
                | {"sub_socket": "/s", "scope": [], "sub_pid": True},
            ),
        ],
    )
    def test_wrong_type_is_invalid_params(self, method: str, params: dict[str, Any]) -> None:
        exc = decode_error(frame(method=method, params=params, id=42))

        assert (InvalidParams, "invalid_params", 42) == (type(exc), exc.code, exc.request_id)

    @pytest.mark.parametrize(
        ("method", "params"),
        [
            ("send", {}),
            ("send", {"wait": True}),
            ("spawn", {}),
            ("spawn", {"name": "c", "scope": [{"permission": "read"}]}),
            ("adopt", {"pod_name": "o", "previous_parent": "d"}),
            ("flush_events", {}),
            ("restart_child", {}),
            ("pod_event", {"kind": "turn_ended"}),
            ("pod_event", {"kind": "errored", "pod_name": "c"}),
            ("pod_event", {"kind": "shut_down"}),
            ("pod_event", {"kind": "scope_sub_delegated", "parent_pod": "p", "sub_pod": "s"}),
        ],
    )
    def test_missing_field_is_invalid_params(self, method: str, params: dict[str, Any]) -> None:
        exc = decode_error(frame(method=method, params=params, id="m"))

        assert (InvalidParams, "m") == (type(exc), exc.request_id)

    @pytest.mark.parametrize(
        ("method", "params"),
        [
            ("spawn", {"name": "c", "scope": [{"target": "/srv", "permission": "admin"}]}),
            ("spawn", {"name": "c", "scope": [{"target": "/srv", "permission": "READ"}]}),
            ("spawn", {"name": "c", "scope": [{"target": "/srv", "permission": None}]}),
            ("spawn", {"name": "c", "scope": [{"target": "/srv", "permission": ["read"]}]}),
            ("spawn", {"name": "c", "restart": "sometimes"}),
            ("spawn", {"name": "c", "restart": 1}),
            (
                "pod_event",
                {"kind": "scope_sub_delegated", "parent_pod": "p", "sub_pod": "s"}
                | {"sub_socket": "/s", "scope": [{"target": "/a", "permission": "execute"}]},
            ),
        ],
    )
    def test_value_outside_a_literal_is_invalid_params(
        self, method: str, params: dict[str, Any]
    ) -> None:
        exc = decode_error(frame(method=method, params=params, id=8))

        assert (InvalidParams, 8) == (type(exc), exc.request_id)

    @pytest.mark.parametrize("params", [[], [1], "text", 5, 1.5, True])
    @pytest.mark.parametrize("method", ["ping", "send", "pod_event"])
    def test_params_that_are_not_an_object_are_invalid_params(
        self, method: str, params: Any
    ) -> None:
        exc = decode_error(frame(method=method, params=params, id=3))

        assert (InvalidParams, 3) == (type(exc), exc.request_id)

    @pytest.mark.parametrize("method", [5, None, True, ["ping"], {"name": "ping"}])
    def test_method_that_is_not_a_string_is_invalid_params(self, method: Any) -> None:
        exc = decode_error(frame(method=method, id=11))

        assert (InvalidParams, 11) == (type(exc), exc.request_id)

    def test_missing_method_is_invalid_params(self) -> None:
        exc = decode_error(frame(params={}, id="no-method"))

        assert (InvalidParams, "no-method") == (type(exc), exc.request_id)

    @pytest.mark.parametrize("request_id", [True, False, 1.5, 1.0, [1], {"id": 1}])
    def test_unreadable_id_is_invalid_params_without_a_request_id(self, request_id: Any) -> None:
        exc = decode_error(frame(method="ping", id=request_id))

        assert (InvalidParams, None) == (type(exc), exc.request_id)

    @pytest.mark.parametrize(
        "params", [{}, {"kind": None}, {"kind": 5}, {"kind": ""}, {"kind": ["turn_ended"]}]
    )
    def test_pod_event_without_a_string_kind_is_invalid_params(
        self, params: dict[str, Any]
    ) -> None:
        exc = decode_error(frame(method="pod_event", params=params, id=6))

        assert (InvalidParams, 6) == (type(exc), exc.request_id)

    def test_message_names_the_bad_field(self) -> None:
        exc = decode_error(frame(method="send", params={"text": "hi", "wait": 1}, id=1))

        assert "wait" in exc.message

    @pytest.mark.parametrize("event", [{"kind": "turn_ended"}, {"kind": 5}, [], "turn_ended"])
    def test_event_from_dict_rejects_bad_events(self, event: Any) -> None:
        with pytest.raises(InvalidParams):
            event_from_dict(event)


class TestReplies:
    """Results and errors encode as reply frames and decode back."""

    @pytest.mark.parametrize(
        "result",
        [
            {"pong": True, "name": "root"},
            None,
            [1, "two", None],
            "text",
            {"pods": [{"name": "a", "pid": 12, "parent": None}]},
        ],
    )
    @pytest.mark.parametrize("request_id", [1, "r", None])
    def test_result_reply_decodes_to_what_was_encoded(
        self, result: Any, request_id: int | str | None
    ) -> None:
        assert Reply(id=request_id, result=result) == decode_reply(
            encode_result(request_id, result)
        )

    def test_attrs_values_in_a_result_are_unstructured(self) -> None:
        line = encode_result(1, {"scope": RULES})

        assert {
            "scope": [
                {"target": "/srv/data", "permission": "write", "recursive": True},
                {"target": "/srv/docs/readme", "permission": "read", "recursive": False},
            ]
        } == decode_reply(line).result

    def test_reply_frame_has_the_contract_shape(self) -> None:
        assert {"id": 5, "error": {"code": "forbidden", "message": "not yours"}} == orjson.loads(
            encode_error(5, ERROR_CLASSES["forbidden"]("not yours"))
        )

    @pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
    def test_error_reply_decodes_to_the_same_class_and_message(self, code: str) -> None:
        reply = decode_reply(encode_error("req", ERROR_CLASSES[code](f"{code} happened")))

        assert ("req", None) == (reply.id, reply.result)
        assert (ERROR_CLASSES[code], code, f"{code} happened") == error_facts(reply.error)

    def test_error_reply_of_an_unknown_code_keeps_the_code(self) -> None:
        reply = decode_reply(b'{"id":1,"error":{"code":"rate_limited","message":"later"}}')

        assert (WireError, "rate_limited", "later") == error_facts(reply.error)

    def test_error_of_a_failed_decode_answers_the_right_request(self) -> None:
        exc = decode_error(frame(method="send", params={"text": 1}, id="req-9"))

        reply = decode_reply(encode_error(exc.request_id, exc))

        assert ("req-9", InvalidParams) == (reply.id, type(reply.error))

    def test_error_without_code_or_message_is_a_generic_wire_error(self) -> None:
        reply = decode_reply(b'{"id":1,"error":{}}')

        assert (WireError, "error", "") == error_facts(reply.error)

    @pytest.mark.parametrize("error", [b'"boom"', b"[]", b"5", b"true"])
    def test_error_that_is_not_an_object_is_invalid_json(self, error: bytes) -> None:
        with pytest.raises(InvalidJson):
            decode_reply(b'{"id":1,"error":' + error + b"}")

    def test_null_error_means_success(self) -> None:
        assert Reply(id=1, result=3) == decode_reply(b'{"id":1,"result":3,"error":null}')

    def test_reply_without_result_has_result_none(self) -> None:
        assert Reply(id=2, result=None) == decode_reply(b'{"id":2}')

    def test_scope_not_subset_reply_is_not_a_framing_error(self) -> None:
        reply = decode_reply(encode_error(1, ScopeNotSubset("/etc not under /srv")))

        assert isinstance(reply.error, WireError)
