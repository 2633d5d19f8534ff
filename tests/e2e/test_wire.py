"""The wire protocol seen by a raw client: a plain Unix socket to a running pod.

Every bad frame gets its documented error frame, and the pod goes on answering
``ping`` (PRODUCT.md section 7, issue 2).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import AsyncIterator

import pytest
import trio

from tests.conftest import Podd, kill_everything
from tests.e2e.support import RawConnection, raw_call


@pytest.fixture
async def pod(podd: Podd) -> AsyncIterator[str]:
    """A running root pod without agent; its socket path. Stopped afterwards."""
    with trio.fail_after(30):
        assert 0 == (await podd("spawn", "p")).code
    yield podd.sock("p")
    with trio.fail_after(30):
        assert 0 == (await podd("stop", "p")).code


async def ping_works(sock: str) -> bool:
    reply = await raw_call(sock, "ping")
    return bool(reply["result"]["pong"])


def error_code(reply: dict[str, object]) -> object:
    error = reply.get("error")
    return error.get("code") if isinstance(error, dict) else None


BAD_PARAMS = [
    ("ping", []),
    ("ping", "x"),
    ("status", 5),
    ("spawn", {}),
    ("spawn", {"name": 5}),
    ("spawn", {"name": "x", "agent": 5}),
    ("spawn", {"name": "x", "scope": "/tmp"}),
    ("spawn", {"name": "x", "scope": [{"target": 5}]}),
    ("spawn", {"name": "x", "scope": [{"target": "/tmp", "permission": "all"}]}),
    ("spawn", {"name": "x", "turn_timeout": "1"}),
    ("spawn", {"name": "x", "wake_on_notify": "yes"}),
    ("spawn", {"name": "x", "restart": "sometimes"}),
    ("send", {}),
    ("send", {"text": 5}),
    ("send", {"text": "hi", "wait": 1}),
    ("notifications", {"peek": "yes"}),
    ("shutdown", {"timeout": "soon"}),
    ("shutdown", {"drain": 1}),
    ("shutdown", {"kill": "no"}),
    ("list_pods", {"probe_timeout": "1"}),
    ("reclaim_stale", {"probe_timeout": [1]}),
    ("adopt", {"pod_name": "x"}),
    ("adopt", {"pod_name": 1, "previous_parent": "y", "socket": "/s"}),
    ("flush_events", {}),
    ("flush_events", {"pod_name": None}),
    ("pod_event", {}),
    ("pod_event", {"kind": 5}),
    ("pod_event", {"kind": "turn_ended"}),
    ("pod_event", {"kind": "turn_ended", "pod_name": 5}),
    ("pod_event", {"kind": "errored", "pod_name": "c"}),
    ("pod_event", {"kind": "shut_down", "pod_name": ["c"]}),
    ("pod_event", {"kind": "scope_sub_delegated", "parent_pod": "c", "sub_pod": "d"}),
]
"""Params of the wrong shape or type, for every method."""


class TestPing:
    """``ping`` answers ``{"pong": true, ...}`` to any client of the same user."""

    async def test_ping(self, pod: str) -> None:
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                reply = await conn.request("ping", request_id="abc")
            assert ("abc", True, "p") == (
                reply["id"],
                reply["result"]["pong"],
                reply["result"]["name"],
            )

    async def test_many_requests_on_one_connection_are_answered_in_turn(self, pod: str) -> None:
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                for request_id in range(20):
                    await conn.send({"method": "ping", "id": request_id})
                replies = [await conn.receive() for _ in range(20)]
            assert list(range(20)) == [r["id"] for r in replies]

    async def test_reply_reaches_a_client_that_half_closed(self, pod: str) -> None:
        """As ``echo ... | socat - UNIX-CONNECT:sock`` does: request, EOF, read."""
        answered = 0
        with trio.fail_after(20):
            for _ in range(50):
                async with await RawConnection.open(pod) as conn:
                    await conn.send({"method": "ping", "id": 1})
                    await conn.stream.send_eof()
                    with contextlib.suppress(EOFError):
                        answered += (await conn.receive())["result"]["pong"]
        assert 50 == answered

    @pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
    async def test_socat_is_a_usable_client(self, pod: str) -> None:
        with trio.fail_after(10):
            proc = await trio.run_process(
                ["socat", "-", f"UNIX-CONNECT:{pod}"],
                stdin=b'{"method": "ping", "id": 1}\n',
                capture_stdout=True,
            )
        assert b'"pong":true' in proc.stdout.replace(b" ", b"")


class TestBadInput:
    """Each kind of bad input gets its error frame and the pod keeps serving."""

    async def test_invalid_json(self, pod: str) -> None:
        lines = [b"garbage", b"{", b'{"method": "ping"', b"\xff\xfe", b"[1, 2]", b"42", b'"ping"']
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                codes = []
                for line in lines:
                    await conn.send_line(line)
                    codes.append(error_code(await conn.receive()))
                assert ["invalid_json"] * len(lines) == codes
                # The same connection still serves.
                assert (await conn.request("ping"))["result"]["pong"]

    async def test_unknown_method(self, pod: str) -> None:
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                reply = await conn.request("launch_missiles", {}, request_id=7)
                assert (7, "unknown_method") == (reply["id"], error_code(reply))
                assert (await conn.request("ping"))["result"]["pong"]

    async def test_bad_params_for_every_method(self, pod: str) -> None:
        with trio.fail_after(20):
            async with await RawConnection.open(pod) as conn:
                replies = []
                for index, (method, params) in enumerate(BAD_PARAMS):
                    replies.append(await conn.request(method, params, request_id=index))
                codes = [(r["id"], error_code(r)) for r in replies]
                assert [(i, "invalid_params") for i in range(len(BAD_PARAMS))] == codes
                assert (await conn.request("ping"))["result"]["pong"]
            status = (await raw_call(pod, "status"))["result"]
            assert ("idle", [], 0) == (
                status["state"],
                status["children"],
                status["notifications_pending"],
            )

    async def test_bad_request_id(self, pod: str) -> None:
        bad_ids = [True, 1.5, [1], {"a": 1}]
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                codes = []
                for request_id in bad_ids:
                    await conn.send({"method": "ping", "id": request_id})
                    codes.append(error_code(await conn.receive()))
                assert ["invalid_params"] * len(bad_ids) == codes
                assert (await conn.request("ping"))["result"]["pong"]

    async def test_a_frame_of_2_mib(self, pod: str) -> None:
        frame = b'{"method": "ping", "id": 1, "params": {"pad": "' + b"x" * (2 << 20) + b'"}}'
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                replies = []

                async def send() -> None:
                    # The pod may close the connection before it has read everything.
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await conn.send_line(frame)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send)
                    replies.append(await conn.receive())
                assert "frame_too_large" == error_code(replies[0])
            assert await ping_works(pod)

    async def test_a_frame_just_under_1_mib_is_served(self, pod: str) -> None:
        prefix = b'{"method": "ping", "id": 1, "params": {"pad": "'
        suffix = b'"}}'
        frame = prefix + b"x" * ((1 << 20) - len(prefix) - len(suffix)) + suffix
        assert 1 << 20 == len(frame)
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                await conn.send_line(frame)
                assert (await conn.receive())["result"]["pong"]


class TestNotificationFrames:
    """A frame without ``id`` is a notification: no reply on success."""

    async def test_no_reply_without_id(self, pod: str) -> None:
        with trio.fail_after(10):
            async with await RawConnection.open(pod) as conn:
                await conn.send({"method": "ping"})
                await conn.send({"method": "status", "params": {}})
                reply = await conn.request("ping", request_id=99)
            assert 99 == reply["id"]


class TestPermissions:
    """The root and pod directories are 0700 and the socket 0600, owned by the user,
    whatever the umask."""

    async def test_modes(self, podd: Podd, root: str) -> None:
        fresh = os.path.join(root, "fresh")
        old_umask = os.umask(0)
        try:
            with trio.fail_after(30):
                spawned = await podd("--root", fresh, "spawn", "p")
                os.umask(old_umask)
                assert 0 == spawned.code, spawned
                child = await podd("--root", fresh, "spawn", "c", "--parent", "p")
                assert 0 == child.code, child
                paths = [fresh, *(os.path.join(fresh, n) for n in ("p", "p/sock", "c", "c/sock"))]
                modes = [
                    (stat.S_IMODE(st.st_mode), st.st_uid, stat.S_IFMT(st.st_mode))
                    for st in map(os.lstat, paths)
                ]
                assert 0 == (await podd("--root", fresh, "stop", "p")).code
        finally:
            os.umask(old_umask)
            kill_everything(fresh)
        directory, sock = (0o700, os.getuid(), stat.S_IFDIR), (0o600, os.getuid(), stat.S_IFSOCK)
        assert [directory, directory, sock, directory, sock] == modes
