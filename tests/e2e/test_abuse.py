"""Live-socket abuse against a running pod (issue 9).

One pod, spawned with the CLI, takes every case of this module in turn; after each
case it must still be healthy: ``ping`` on a fresh connection is answered, and the
pod's memory (USS) has not grown by 50 MiB or more since it started (so the bound
holds over all the cases together). The tests assert what happens and in which order,
never how fast: latency figures are ``scripts/bench``'s (case ``flood_ping``). The
clients are plain trio sockets, connected to the socket path directly: the roots here
are short directories in /tmp, well within ``sun_path``.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import shutil
import tempfile
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, get_args, get_origin

import attrs
import orjson
import psutil
import pytest
import trio

from podd.client.sync import call
from protocol import EVENT_KINDS
from protocol.codec import METHODS
from tests.conftest import Podd, kill_everything
from tests.e2e.support import raw_call

HANG = 10
"""Seconds after which a ``ping`` that has not been answered counts as never answered:
a bound on a hang, far above the milliseconds a quiet machine needs."""

MEMORY_BUDGET = 50 << 20
"""How much the pod's memory may grow over all the cases."""

BAD_INPUT_CODES = {"invalid_json", "invalid_params", "unknown_method", "frame_too_large"}


@attrs.frozen
class Pod:
    """A running root pod (agent ``true``, one child) and its memory at the start."""

    sock: str
    pid: int
    baseline_uss: int


def uss(pid: int) -> int:
    """The pod's unique set size: the memory only it holds."""
    return int(psutil.Process(pid).memory_full_info().uss)


async def pong(sock: str) -> Any:
    """``pong`` of one ``ping`` on a fresh connection."""
    with trio.fail_after(HANG):
        reply = await raw_call(sock, "ping")
    return reply["result"]["pong"]


async def assert_healthy(pod: Pod) -> None:
    """``ping`` on a fresh connection is answered and memory stayed within budget."""
    answered = await pong(pod.sock)
    growth = uss(pod.pid) - pod.baseline_uss
    assert (True, True) == (answered, growth < MEMORY_BUDGET), (answered, growth)


@pytest.fixture(scope="module")
def pod() -> Iterator[Pod]:
    """One pod that takes every case of this module in turn (each case checks it is
    still healthy), under a root of its own; stopped cleanly at the end, and nothing
    of it may be left."""
    root = tempfile.mkdtemp(prefix="podd-a", dir="/tmp")
    os.chmod(root, 0o700)
    podd = Podd(root)
    try:
        spawned = podd.run_sync("spawn", "p", "--agent", "true", "--json")
        assert 0 == spawned.code, spawned
        assert 0 == podd.run_sync("spawn", "c", "--parent", "p").code
        sock = podd.sock("p")
        for _ in range(20):  # the code paths are warm before the baseline is taken
            call(sock, "status")
            call(sock, "list_pods")
        pid = spawned.json()["pid"]
        yield Pod(sock, pid, uss(pid))
        stopped = podd.run_sync("stop", "p")
        assert (0, "clean\n") == (stopped.code, stopped.stdout), stopped
    finally:
        leftovers = kill_everything(root)
        shutil.rmtree(root, ignore_errors=True)
    assert [] == leftovers


class LineStream:
    """A raw client stream: bytes out, decoded reply lines in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""

    @classmethod
    async def open(cls, sock: str) -> LineStream:
        return cls(await trio.open_unix_socket(sock))

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive(self) -> Any:
        """The next reply frame; ``EOFError`` when the pod closed the connection."""
        while b"\n" not in self._buffer:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                raise EOFError("closed by the pod")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return orjson.loads(line)

    async def receive_all(self) -> list[Any]:
        """Every reply frame up to the end of the stream."""
        frames = []
        with contextlib.suppress(EOFError, trio.BrokenResourceError):
            while True:
                frames.append(await self.receive())
        return frames


def error_code(frame: Any) -> Any:
    error = frame.get("error") if isinstance(frame, dict) else None
    return error.get("code") if isinstance(error, dict) else None


async def send_ignoring_close(stream: LineStream, data: bytes) -> None:
    """Send ``data``; the pod may close the connection before it has read it all."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send(data)


class TestRandomBytes:
    """Random bytes get only error frames and leave the pod healthy."""

    async def test_a_mebibyte_of_random_lines(self, pod: Pod) -> None:
        data = random.Random(9).randbytes(1 << 20)
        with trio.fail_after(30):
            stream = await LineStream.open(pod.sock)
            replies: list[Any] = []

            async def read() -> None:
                replies.extend(await stream.receive_all())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                await send_ignoring_close(stream, data)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.stream.send_eof()
            await stream.aclose()
        codes = {error_code(r) for r in replies}
        assert (True, set()) == (len(replies) > 0, codes - BAD_INPUT_CODES), codes
        await assert_healthy(pod)

    async def test_random_bytes_without_a_newline(self, pod: Pod) -> None:
        data = random.Random(10).randbytes(3 << 20).replace(b"\n", b" ")
        with trio.fail_after(30):
            stream = await LineStream.open(pod.sock)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_ignoring_close, stream, data)
                first = await stream.receive()
            await stream.aclose()
        assert "frame_too_large" == error_code(first)
        await assert_healthy(pod)


class TestBursts:
    """A client that reads its replies gets one for every line it sent, however many
    it sends at once."""

    # Before 9d1dc24 the pod closed such a client as "not reading" once 1,024 replies
    # were due at once, and the replies in flight were lost.

    async def burst(self, pod: Pod, line: bytes, count: int) -> list[Any]:
        with trio.fail_after(30):
            stream = await LineStream.open(pod.sock)
            replies: list[Any] = []

            async def read() -> None:
                replies.extend(await stream.receive_all())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                await send_ignoring_close(stream, line * count)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.stream.send_eof()
            await stream.aclose()
        return replies

    async def test_a_thousand_bad_lines(self, pod: Pod) -> None:
        replies = await self.burst(pod, b"garbage\n", 1000)
        assert ["invalid_json"] * 1000 == [error_code(r) for r in replies]
        await assert_healthy(pod)

    async def test_five_thousand_bad_lines(self, pod: Pod) -> None:
        replies = await self.burst(pod, b"garbage\n", 5000)
        assert ["invalid_json"] * 5000 == [error_code(r) for r in replies]
        await assert_healthy(pod)

    async def test_five_thousand_pipelined_pings(self, pod: Pod) -> None:
        replies = await self.burst(pod, b'{"method": "ping", "id": 1}\n', 5000)
        assert [(1, True)] * 5000 == [(r["id"], r["result"]["pong"]) for r in replies]
        await assert_healthy(pod)

    async def test_good_and_bad_lines_are_answered_in_order(self, pod: Pod) -> None:
        # Bad lines are answered without the pod's loop, the requests around them by it:
        # the replies still come in the order of the lines, across many batches.
        lines = b"".join(
            b"garbage\n" if i % 3 == 2 else b'{"method": "ping", "id": %d}\n' % i
            for i in range(3000)
        )
        replies = await self.burst(pod, lines, 1)
        expected = [(None, "invalid_json") if i % 3 == 2 else (i, None) for i in range(3000)]
        assert expected == [(r["id"], error_code(r)) for r in replies]
        await assert_healthy(pod)


INVALID_UTF8 = [
    b'{"method": "ping", "id": 1, "params": {"x": "\xff"}}',
    b'{"method": "pi\xc3ng", "id": 1}',
    b'{"method": "ping", "id": "\xc0\x80"}',  # overlong NUL
    b'{"method": "ping", "id": "\xed\xa0\x80"}',  # UTF-16 surrogate encoded in UTF-8
    b'{"method": "ping", "id": "\xf4\x90\x80\x80"}',  # past U+10FFFF
    b'{"method": "ping", "id": 1, "params": {"x": "\xe2\x82"}}',  # truncated sequence
    b'{"method": "ping", "id": "\\ud800"}',  # a lone surrogate escape
    b"\xfe\xff\x00{\x00}",
    b"\xef\xbb\xbf" + b'{"method": "ping", "id": 1}',  # a byte order mark
]


class TestInvalidUtf8:
    """Lines that are not UTF-8 (or not encodable as such) get ``invalid_json``, and the
    same connection keeps serving."""

    async def test_each_line_is_refused(self, pod: Pod) -> None:
        with trio.fail_after(20):
            stream = await LineStream.open(pod.sock)
            codes = []
            for line in INVALID_UTF8:
                await stream.send(line + b"\n")
                codes.append(error_code(await stream.receive()))
                await stream.send(b'{"method": "ping", "id": 2}\n')
                codes.append((await stream.receive())["result"]["pong"])
            await stream.aclose()
        assert ["invalid_json", True] * len(INVALID_UTF8) == codes
        await assert_healthy(pod)


class TestHugeLine:
    """A line of 10 MiB is answered with ``frame_too_large`` and costs no memory."""

    @pytest.mark.parametrize(
        "prefix", [b"", b'{"method": "ping", "id": 1, "params": {"pad": "'], ids=["raw", "json"]
    )
    async def test_ten_mebibytes(self, pod: Pod, prefix: bytes) -> None:
        line = prefix + b"x" * (10 << 20) + b"\n"
        with trio.fail_after(30):
            stream = await LineStream.open(pod.sock)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_ignoring_close, stream, line)
                first = await stream.receive()
            await stream.aclose()
        assert "frame_too_large" == error_code(first)
        await assert_healthy(pod)


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for a few thousand descriptors in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class TestManyConnections:
    """A thousand idle connections neither slow the pod down nor stop it serving them."""

    async def test_a_thousand_idle_connections(self, pod: Pod, many_files: None) -> None:
        streams: list[LineStream] = []
        with trio.fail_after(60):
            try:

                async def open_one() -> None:
                    streams.append(await LineStream.open(pod.sock))

                async with trio.open_nursery() as nursery:
                    for _ in range(1000):
                        nursery.start_soon(open_one)
                assert 1000 == len(streams)
                await assert_healthy(pod)
                # Every one of them is still served.
                pongs = []

                async def use(stream: LineStream, index: int) -> None:
                    await stream.send(b'{"method": "ping", "id": %d}\n' % index)
                    reply = await stream.receive()
                    pongs.append((reply["id"], reply["result"]["pong"]))

                async with trio.open_nursery() as nursery:
                    for index, stream in enumerate(streams):
                        nursery.start_soon(use, stream, index)
                assert [(i, True) for i in range(1000)] == sorted(pongs)
            finally:
                for stream in streams:
                    await stream.aclose()
        await assert_healthy(pod)


class TestSlowClients:
    """Clients that send their line a byte at a time hold nobody else up, and are
    answered once their line is complete."""

    SLOW_BYTES = 3

    async def test_lines_sent_a_byte_at_a_time(self, pod: Pod) -> None:
        frames = [b'{"method": "ping", "id": %d}\n' % index for index in range(50)]
        pongs = []
        with trio.fail_after(30):
            streams = [await LineStream.open(pod.sock) for _ in frames]
            for position in range(self.SLOW_BYTES):
                for stream, frame in zip(streams, frames, strict=True):
                    await stream.send(frame[position : position + 1])
                # Fifty unfinished lines are pending: others are still served.
                pongs.append(await pong(pod.sock))
            for stream, frame in zip(streams, frames, strict=True):
                await stream.send(frame[self.SLOW_BYTES :])
            replies = [await stream.receive() for stream in streams]
            for stream in streams:
                await stream.aclose()
        assert [True] * self.SLOW_BYTES == pongs
        assert [(i, True) for i in range(50)] == [(r["id"], r["result"]["pong"]) for r in replies]
        await assert_healthy(pod)


class TestNonReadingClients:
    """Clients that send thousands of requests and never read a reply do not stop the
    pod serving others, nor make it hold their replies without bound; once they read,
    they get one reply per request, in order, none left out."""

    PINGS = 5

    @pytest.mark.parametrize("method", ["ping", "status"])
    async def test_five_clients_that_never_read(self, pod: Pod, method: str) -> None:
        flood = b"".join(
            b'{"method": "%s", "id": %d}\n' % (method.encode(), index) for index in range(20000)
        )
        pongs = []
        with trio.fail_after(60):
            streams = [await LineStream.open(pod.sock) for _ in range(5)]
            async with trio.open_nursery() as nursery:
                for stream in streams:
                    nursery.start_soon(send_ignoring_close, stream, flood)
                for _ in range(self.PINGS):
                    pongs.append(await pong(pod.sock))
                nursery.cancel_scope.cancel()
            # What the pod sent them is well formed, and it ends.
            answered = []
            for stream in streams:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.stream.send_eof()
                replies = await stream.receive_all()
                answered.append([(r["id"], "result" in r) for r in replies])
                await stream.aclose()
        assert [True] * self.PINGS == pongs
        assert [[(i, True) for i in range(len(ids))] for ids in answered] == answered
        await assert_healthy(pod)


class TestFairness:
    """While five clients flood the pod, another client's pings are answered one after
    another, each before the flood has been handled."""

    FLOOD = 20000
    PINGS = 20

    async def test_pings_are_answered_while_five_clients_flood_status(self, pod: Pod) -> None:
        # The flood asks for no replies (no ids), so that backpressure cannot hold it
        # back: the pod has all 100,000 requests to handle. Only each flooder's last
        # request has an id; its reply says that the flooder's requests have all been
        # handled. A pod that let a flooder's requests run ahead of the others' in big
        # slices would handle the whole flood before the pings.
        flood = b'{"method": "status"}\n' * self.FLOOD + b'{"method": "status", "id": 2}\n'
        last_replies: list[Any] = []
        flooding_at_each_pong: list[bool] = []

        async def flooder(stream: LineStream) -> None:
            await stream.send(flood)
            last_replies.append(await stream.receive())

        with trio.fail_after(60):
            streams = [await LineStream.open(pod.sock) for _ in range(5)]
            probe = await LineStream.open(pod.sock)
            async with trio.open_nursery() as nursery:
                for stream in streams:
                    nursery.start_soon(flooder, stream)
                for index in range(self.PINGS):
                    await probe.send(b'{"method": "ping", "id": %d}\n' % index)
                    assert index == (await probe.receive())["id"]
                    flooding_at_each_pong.append(len(last_replies) < len(streams))
            for stream in [probe, *streams]:
                await stream.aclose()
        assert [True] * self.PINGS == flooding_at_each_pong
        assert [(2, True)] * 5 == [(r["id"], "result" in r) for r in last_replies]
        await assert_healthy(pod)


class TestHalfClosedConnections:
    """A client that sends a request and then shuts down its writing side still gets
    the reply, even one that comes later from a background task or a turn."""

    REQUESTS: typing.ClassVar = [
        ({"method": "ping", "id": 1}, "result"),
        ({"method": "status", "id": 2}, "result"),
        ({"method": "notifications", "params": {"peek": True}, "id": 3}, "result"),
        ({"method": "list_pods", "id": 4}, "result"),
        ({"method": "reclaim_stale", "id": 5}, "result"),
        ({"method": "send", "params": {"text": "hi", "wait": True}, "id": 6}, "result"),
        ({"method": "spawn", "params": {"name": ".."}, "id": 7}, "invalid_name"),
        ({"method": "launch", "id": 8}, "unknown_method"),
        ({"method": "ping", "params": [], "id": 9}, "invalid_params"),
    ]

    async def test_every_kind_of_reply_arrives(self, pod: Pod) -> None:
        outcomes = []
        with trio.fail_after(30):
            for frame, _ in self.REQUESTS:
                stream = await LineStream.open(pod.sock)
                await stream.send(orjson.dumps(frame) + b"\n")
                await stream.stream.send_eof()
                replies = await stream.receive_all()
                await stream.aclose()
                outcomes.append([(r["id"], error_code(r) or "result") for r in replies])
        assert [[(frame["id"], want)] for frame, want in self.REQUESTS] == outcomes
        await assert_healthy(pod)

    async def test_two_hundred_at_once(self, pod: Pod) -> None:
        answered: list[Any] = []

        async def half_close(index: int) -> None:
            stream = await LineStream.open(pod.sock)
            await stream.send(b'{"method": "ping", "id": %d}\n' % index)
            await stream.stream.send_eof()
            answered.extend(r["id"] for r in await stream.receive_all())
            await stream.aclose()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for index in range(200):
                    nursery.start_soon(half_close, index)
        assert list(range(200)) == sorted(answered)
        await assert_healthy(pod)


DEPTH = 100_000


class TestDeepNesting:
    """JSON nested 100,000 levels deep is refused as ``invalid_json`` without harm, and
    nesting the decoder accepts is bounded wherever it is kept."""

    LINES: typing.ClassVar = [
        b"[" * DEPTH + b"]" * DEPTH,
        b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
        b"[" * DEPTH,
        b'{"method": "ping", "id": 1, "params": ' + b'{"a":' * DEPTH + b"1" + b"}" * (DEPTH + 1),
        b'{"method": "pod_event", "id": 1, "params": {"kind": "x", "pod_name": "c", "d": '
        + b"[" * DEPTH
        + b"]" * DEPTH
        + b"}}",
    ]

    async def test_a_hundred_thousand_levels(self, pod: Pod) -> None:
        with trio.fail_after(20):
            stream = await LineStream.open(pod.sock)
            codes = []
            for line in self.LINES:
                await stream.send(line + b"\n")
                codes.append(error_code(await stream.receive()))
                await stream.send(b'{"method": "ping", "id": 2}\n')
                codes.append((await stream.receive())["result"]["pong"])
            await stream.aclose()
        assert ["invalid_json", True] * len(self.LINES) == codes
        await assert_healthy(pod)

    async def test_nesting_the_decoder_accepts(self, pod: Pod) -> None:
        deep = b"[" * 1000 + b"]" * 1000
        with trio.fail_after(20):
            stream = await LineStream.open(pod.sock)
            # Ignored by ping (unknown keys are), refused in an event kept as is.
            await stream.send(b'{"method": "ping", "id": 1, "params": {"x": ' + deep + b"}}\n")
            await stream.send(
                b'{"method": "pod_event", "id": 2, "params": {"kind": "x", "pod_name": "c", '
                b'"d": ' + deep + b"}}\n"
            )
            await stream.send(b'{"method": "spawn", "id": 3, "params": {"name": ' + deep + b"}}\n")
            replies = [await stream.receive() for _ in range(3)]
            await stream.aclose()
        # An error found while decoding is answered after the requests before it.
        assert [(1, None), (2, "invalid_params"), (3, "invalid_params")] == [
            (r["id"], error_code(r)) for r in replies
        ]
        await assert_healthy(pod)


# --- Wrong param types, generated from the wire types ------------------------------

SAMPLES: list[Any] = [None, True, 0, 1.5, "x", [], {}, [1], ["x"], {"a": 1}]
"""One value of each JSON shape; each field gets every one its type refuses."""


def fits(annotation: Any, value: Any) -> bool:
    """Whether ``value`` is a valid JSON value for a field annotated ``annotation``."""
    origin = get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return type(value) is bool
    if annotation is int:
        return type(value) is int
    if annotation is float:
        return type(value) in (int, float)
    if annotation is str:
        return type(value) is str
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return any(fits(a, value) for a in get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        return type(value) is list and all(fits(item, v) for v in value)
    if origin is dict:
        _, item = get_args(annotation)
        return type(value) is dict and all(fits(item, v) for v in value.values())
    if attrs.has(annotation):
        return type(value) is dict
    raise AssertionError(f"no rule for {annotation!r}")


def field_types(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in attrs.fields(cls)}


def valid_value(annotation: Any) -> Any:
    for sample in ["/tmp", "read", 1, *SAMPLES]:
        if fits(annotation, sample):
            return sample
    raise AssertionError(f"no sample fits {annotation!r}")


def required(cls: type[Any]) -> dict[str, Any]:
    """The smallest valid params of ``cls``: its fields without a default."""
    return {
        f.name: valid_value(field_types(cls)[f.name])
        for f in attrs.fields(cls)
        if f.default is attrs.NOTHING
    }


def wrong_fields(cls: type[Any]) -> list[dict[str, Any]]:
    """Params of ``cls`` with one field missing or of a type it refuses (one level
    into lists of records, such as scope rules)."""
    base = required(cls)
    cases = [{k: v for k, v in base.items() if k != name} for name in base]
    for name, annotation in field_types(cls).items():
        cases += [{**base, name: value} for value in SAMPLES if not fits(annotation, value)]
        records = [a for a in get_args(annotation) if get_origin(a) is list] + (
            [annotation] if get_origin(annotation) is list else []
        )
        for list_type in records:
            (item,) = get_args(list_type)
            if attrs.has(item):
                cases += [{**base, name: [bad]} for bad in wrong_fields(item)]
    return cases


def wrong_params() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for method, params_type in METHODS.items():
        cases += [(method, value) for value in [[], "x", 5, True, [{}]]]
        if params_type is not None:
            cases += [(method, params) for params in wrong_fields(params_type)]
    for kind, event_type in EVENT_KINDS.items():
        cases += [("pod_event", {"kind": kind, **p}) for p in wrong_fields(event_type)]
    return cases


WRONG_PARAMS = wrong_params()


class TestWrongParamTypes:
    """Every method, given params with a field missing or of the wrong type, answers
    ``invalid_params`` to that request and changes nothing."""

    def test_the_cases_cover_every_method_and_event_kind(self) -> None:
        methods = {m for m, _ in WRONG_PARAMS}
        kinds = {p["kind"] for m, p in WRONG_PARAMS if m == "pod_event" and isinstance(p, dict)}
        assert (set(METHODS), set(EVENT_KINDS)) == (methods, kinds)
        assert 200 < len(WRONG_PARAMS)

    async def test_every_method(self, pod: Pod) -> None:
        with trio.fail_after(30):
            before = (await raw_call(pod.sock, "status"))["result"]
            stream = await LineStream.open(pod.sock)
            frames = [
                orjson.dumps({"method": method, "params": params, "id": index}) + b"\n"
                for index, (method, params) in enumerate(WRONG_PARAMS)
            ]
            replies: list[Any] = []

            async def read() -> None:
                for _ in frames:
                    replies.append(await stream.receive())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                for frame in frames:
                    await stream.send(frame)
            await stream.aclose()
            after = (await raw_call(pod.sock, "status"))["result"]
        wrong = [
            (WRONG_PARAMS[r["id"]], r)
            for r in replies
            if error_code(r) != "invalid_params" or not isinstance(r["id"], int)
        ]
        assert ([], list(range(len(frames)))) == (wrong, [r["id"] for r in replies])
        keys = ("state", "turns", "children", "notifications_pending")
        assert [before[k] for k in keys] == [after[k] for k in keys]
        await assert_healthy(pod)


OUT_OF_RANGE = [
    ("list_pods", {"probe_timeout": -1}),
    ("reclaim_stale", {"probe_timeout": -1}),
    ("list_pods", {"probe_timeout": 1e308}),
    ("list_pods", {"probe_timeout": 0}),
    ("reclaim_stale", {"probe_timeout": 0}),
    ("spawn", {"name": "n1", "turn_timeout": -1}),
    ("spawn", {"name": "n2", "turn_timeout": 1e308}),
    ("spawn", {"name": "n3", "cwd": "/\u0000"}),
    ("spawn", {"name": "n4", "cwd": "relative"}),
    ("spawn", {"name": "n5", "scope": [{"target": "relative"}]}),
    ("spawn", {"name": "n6", "scope": [{"target": "/\u0000"}]}),
    ("spawn", {"name": "n7", "agent": "\u0000"}),
    ("send", {"text": "\u0000" * 1000, "wait": True}),
    ("notifications", {"peek": False}),
    ("ping", {}),
]
"""Right types, values out of any sensible range (the id is the largest an unsigned
64-bit integer holds). Before 9d1dc24 a negative ``probe_timeout`` was never answered
(and before the pod's background tasks were contained, it took the whole pod down)."""


async def ask(sock: str, method: str, params: Any, request_id: Any) -> Any:
    stream = await LineStream.open(sock)
    try:
        frame = {"method": method, "params": params, "id": request_id}
        await stream.send(orjson.dumps(frame) + b"\n")
        return await stream.receive()
    finally:
        await stream.aclose()


class TestOutOfRangeValues:
    """Values of the right type but out of any sensible range each get a reply (a
    result or an error other than ``internal``) and leave the pod and its registry
    intact."""

    async def test_the_pod_answers_and_survives(self, pod: Pod) -> None:
        replies = []
        with trio.fail_after(30):
            for method, params in OUT_OF_RANGE:
                reply = await ask(pod.sock, method, params, 2**64 - 1)
                replies.append((method, params, reply["id"], error_code(reply)))
            children = (await raw_call(pod.sock, "status"))["result"]["children"]
        wrong = [r for r in replies if r[2] != 2**64 - 1 or r[3] == "internal"]
        assert ([], True) == (wrong, "c" in [r["pod_name"] for r in children])
        await assert_healthy(pod)
