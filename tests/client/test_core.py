"""The clients' sans-I/O core: request frames, reply matching, failures translated once;
and the two faces driving it over real sockets."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from podd.client.asynchronous import async_call
from podd.client.core import Backoff, Exchange, encode_request, unreachable, wire_params
from podd.client.sync import call, call_each
from podd.errors import PodFailed, PodUnreachable
from protocol import (
    AlreadyRunning,
    FrameTooLarge,
    InvalidJson,
    NotificationsParams,
    PodNotFound,
    SendParams,
    TurnEnded,
    WireError,
)
from protocol.framing import MAX_FRAME


def reply(request_id: Any, **body: Any) -> bytes:
    return json.dumps({"id": request_id, **body}).encode() + b"\n"


class TestRequestFrame:
    """A request is one line of JSON: method, params as an object, and the id if any."""

    def test_dict_params_are_sent_as_they_are(self) -> None:
        frame = encode_request("send", {"text": "héllo", "wait": True}, 7)
        assert frame.endswith(b"\n") and frame.count(b"\n") == 1
        expected = {"method": "send", "params": {"text": "héllo", "wait": True}, "id": 7}
        assert expected == json.loads(frame)

    def test_no_params_is_an_empty_object(self) -> None:
        assert {"method": "ping", "params": {}, "id": "a"} == json.loads(
            encode_request("ping", None, "a")
        )

    def test_without_an_id_it_is_a_notification(self) -> None:
        assert {"method": "ping", "params": {}} == json.loads(encode_request("ping"))

    def test_wire_types_are_unstructured(self) -> None:
        assert {"text": "x", "wait": False, "queue": False} == {
            k: wire_params("send", SendParams("x"))[k] for k in ("text", "wait", "queue")
        }
        assert {"peek": True} == wire_params("notifications", NotificationsParams(peek=True))

    def test_a_pod_event_keeps_its_kind(self) -> None:
        body = wire_params("pod_event", TurnEnded("child", turn=2))
        assert {"kind": "turn_ended", "pod_name": "child", "turn": 2} == {
            k: body[k] for k in ("kind", "pod_name", "turn")
        }

    def test_each_exchange_has_its_own_id(self) -> None:
        first, second = Exchange("/s", "ping"), Exchange("/s", "ping")
        assert first.id != second.id
        assert first.id == json.loads(first.request)["id"]


class TestReplyMatching:
    """The reply is the first frame with the request's id, however the bytes arrive."""

    def test_result_of_the_matching_reply(self) -> None:
        exchange = Exchange("/s", "ping", request_id=5)
        assert exchange.feed(reply(5, result={"pong": True}))
        assert {"pong": True} == exchange.result

    def test_other_ids_are_skipped(self) -> None:
        exchange = Exchange("/s", "ping", request_id=5)
        assert not exchange.feed(reply(4, result=1) + reply(None, error={"code": "x"}))
        assert exchange.feed(reply(5, result=2))
        assert 2 == exchange.result

    def test_a_reply_split_across_reads(self) -> None:
        exchange = Exchange("/s", "ping", request_id=5)
        data = reply(5, result=[1, 2, 3])
        assert [False, False] == [exchange.feed(data[:3]), exchange.feed(data[3:-1])]
        assert exchange.feed(data[-1:])
        assert [1, 2, 3] == exchange.result

    def test_a_null_result_is_a_result(self) -> None:
        exchange = Exchange("/s", "ping", request_id=5)
        assert exchange.feed(reply(5, result=None))
        assert None is exchange.result


class TestFailures:
    """An error frame is PodFailed wrapping its protocol error; no answer is PodUnreachable."""

    @pytest.mark.parametrize(
        ("code", "cls"), [("already_running", AlreadyRunning), ("not_found", PodNotFound)]
    )
    def test_error_frame_raises_the_class_of_its_code(
        self, code: str, cls: type[Exception]
    ) -> None:
        exchange = Exchange("/s", "send", request_id=1)
        with pytest.raises(PodFailed) as caught:
            exchange.feed(reply(1, error={"code": code, "message": "busy"}))
        assert (cls, code, "busy") == (
            type(caught.value.error),
            caught.value.code,
            caught.value.error.message,
        )

    def test_an_unknown_code_is_a_wire_error_with_that_code(self) -> None:
        exchange = Exchange("/s", "send", request_id=1)
        with pytest.raises(PodFailed) as caught:
            exchange.feed(reply(1, error={"code": "from_the_future", "message": "m"}))
        assert (WireError, "from_the_future") == (type(caught.value.error), caught.value.code)

    @pytest.mark.parametrize(
        "line", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"id": 1, "error": "text"}']
    )
    def test_a_frame_that_is_no_reply_is_invalid_json(self, line: bytes) -> None:
        exchange = Exchange("/s", "ping", request_id=1)
        with pytest.raises(PodFailed) as caught:
            exchange.feed(line + b"\n")
        assert InvalidJson is type(caught.value.error)

    def test_an_oversized_frame_is_frame_too_large(self) -> None:
        exchange = Exchange("/s", "ping", request_id=1)
        with pytest.raises(PodFailed) as caught:
            exchange.feed(b"x" * (MAX_FRAME + 1))
        assert FrameTooLarge is type(caught.value.error)

    def test_end_of_stream_is_unreachable(self) -> None:
        exchange = Exchange("/p/sock", "ping", request_id=1)
        with pytest.raises(PodUnreachable, match="the pod at /p/sock closed the connection"):
            exchange.feed(b"")

    def test_messages_name_the_socket_and_the_method(self) -> None:
        exchange = Exchange("/p/sock", "status")
        assert [
            "lost the pod at /p/sock: Connection reset by peer",
            "the pod at /p/sock did not answer status in time",
            "the pod at /p/sock did not answer status within 0.5 s",
            "no pod answers at /p/sock: No such file or directory",
        ] == [
            str(exchange.lost(ConnectionResetError(104, "Connection reset by peer"))),
            str(exchange.timed_out()),
            str(exchange.timed_out(0.5)),
            str(unreachable("/p/sock", FileNotFoundError(2, "No such file or directory"))),
        ]

    def test_backoff_doubles_up_to_50_ms(self) -> None:
        backoff = Backoff()
        assert [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.05, 0.05] == [
            backoff.next() for _ in range(8)
        ]


@pytest.fixture
def sockdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="podd-c", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def serve(path: str, answer: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """A stand-in pod: each connection gets ``answer(request)`` as its reply frame."""
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(path)
    listener.listen(16)
    listeners = [trio.SocketListener(listener)]

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while not data.endswith(b"\n"):
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            await stream.send_all(answer(json.loads(data)))

    await trio.serve_listeners(handle, listeners, task_status=task_status)


def pong(request: dict[str, Any]) -> bytes:
    return reply(request["id"], result={"pong": True, "echo": request["params"]})


def refuse(request: dict[str, Any]) -> bytes:
    return reply(request["id"], error={"code": "already_running", "message": "busy"})


class TestFaces:
    """The blocking and the trio face give the same answers for the same pod."""

    async def test_both_faces_get_the_result(self, sockdir: str) -> None:
        path = os.path.join(sockdir, "sock")
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, path, pong)
                by_trio = await async_call(path, "ping", {"a": 1})
                blocking = await trio.to_thread.run_sync(call, path, "ping", {"a": 1})
                nursery.cancel_scope.cancel()
        assert {"pong": True, "echo": {"a": 1}} == by_trio == blocking

    async def test_both_faces_raise_the_error_reply(self, sockdir: str) -> None:
        path = os.path.join(sockdir, "sock")
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, path, refuse)
                with pytest.raises(PodFailed) as by_trio:
                    await async_call(path, "send", {"text": "x"})
                with pytest.raises(PodFailed) as blocking:
                    await trio.to_thread.run_sync(call, path, "send", {"text": "x"})
                nursery.cancel_scope.cancel()
        assert "already_running" == by_trio.value.code == blocking.value.code

    async def test_both_faces_find_nobody_listening(self, sockdir: str) -> None:
        path = os.path.join(sockdir, "sock")
        with trio.fail_after(30):
            with pytest.raises(PodUnreachable) as by_trio:
                await async_call(path, "ping")
            with pytest.raises(PodUnreachable) as blocking:
                await trio.to_thread.run_sync(call, path, "ping")
        assert str(by_trio.value) == str(blocking.value)


class TestCallEach:
    """call_each asks every socket at once and answers in order, errors as values."""

    async def test_answers_in_order(self, sockdir: str) -> None:
        answering = os.path.join(sockdir, "a")
        refusing = os.path.join(sockdir, "r")
        missing = os.path.join(sockdir, "m")
        silent = os.path.join(sockdir, "s")
        # A socket that listens but never accepts: the connect succeeds, no reply comes.
        quiet = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        quiet.bind(silent)
        quiet.listen(4)
        try:
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    await nursery.start(serve, answering, pong)
                    await nursery.start(serve, refusing, refuse)
                    answers = await trio.to_thread.run_sync(
                        lambda: call_each(
                            [answering, missing, silent, refusing, answering],
                            "ping",
                            {"n": 1},
                            timeout=0.3,
                        )
                    )
                    nursery.cancel_scope.cancel()
        finally:
            quiet.close()
        ok = {"pong": True, "echo": {"n": 1}}
        assert ok == answers[0] == answers[4]
        assert [PodUnreachable, PodUnreachable, PodFailed] == [type(a) for a in answers[1:4]]
        assert "No such file or directory" in str(answers[1])
        assert f"the pod at {silent} did not answer ping in time" == str(answers[2])
        assert "already_running" == answers[3].code

    def test_nothing_to_ask(self) -> None:
        assert [] == call_each([], "ping")
