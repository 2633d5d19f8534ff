"""The event feed in isolation: a ring of the newest records, subscribers that get
every later one, and a subscriber that falls behind is dropped, told so, and
disconnected, without ever holding up the pod."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from podd.core.effects import Notify, PersistRegistry, PostEvent, Reply, Trace
from podd.core.notifications import Notification
from podd.runtime.event_feed import RECENT, EventFeed, applied
from podd.runtime.server import Connection
from protocol import Request, TurnEnded


class Client:
    """The subscriber's end of a socket pair: JSON frames in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""

    async def frame(self) -> Any:
        """The next frame; None at the end of the stream."""
        while b"\n" not in self._buffer:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    async def frames_until_eof(self) -> list[Any]:
        frames = []
        while (frame := await self.frame()) is not None:
            frames.append(frame)
        return frames


class Rig:
    def __init__(self, nursery: trio.Nursery, conn: Connection, client: Client) -> None:
        self.nursery = nursery
        self.conn = conn
        self.client = client


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A pod-side ``Connection`` with its writer running, and the client's end."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    server = trio.SocketStream(trio.socket.from_stdlib_socket(a))
    client = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    conn = Connection(server, peer_pid=4242, peer_uid=0)

    async def write() -> None:
        # As the server does: a connection closed under the writer ends the writer.
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await conn.write_replies()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        yield Rig(nursery, conn, Client(client))
        nursery.cancel_scope.cancel()
    await server.aclose()
    await client.aclose()


def events_request(follow: bool) -> Request:
    from protocol.messages import EventsParams

    return Request(method="events", params=EventsParams(follow=follow), id=1)


def turn(n: int, pod: str = "w1") -> TurnEnded:
    return TurnEnded(pod, turn=n)


class TestRing:
    """The feed keeps the newest records, oldest first, as wire dicts."""

    def test_keeps_the_newest_256(self) -> None:
        feed = EventFeed("lead", lambda *a: None)
        for n in range(1, 301):
            feed.record("lead", turn(n))
        recent = feed.recent()
        assert (RECENT, list(range(45, 301))) == (
            len(recent),
            [r["event"]["turn"] for r in recent],
        )
        assert list(range(45, 301)) == [r["seq"] for r in recent]

    def test_a_record_names_its_pod_time_and_event(self) -> None:
        feed = EventFeed("lead", lambda *a: None)
        feed.record("lead", turn(3))
        feed.record("lead", {"kind": "turn_started", "pod_name": "lead", "turn": 4})
        first, second = feed.recent()
        assert {"seq", "at", "pod", "event"} == set(first)
        assert isinstance(first["at"], float)
        expected = {"kind": "turn_ended", "pod_name": "w1", "turn": 3}
        assert ("lead", expected) == (first["pod"], {k: first["event"][k] for k in expected})
        assert {"kind": "turn_started", "pod_name": "lead", "turn": 4} == second["event"]

    def test_a_published_dict_is_copied(self) -> None:
        feed = EventFeed("lead", lambda *a: None)
        event = {"kind": "turn_started", "pod_name": "lead", "turn": 1}
        feed.record("lead", event)
        event["turn"] = 99
        assert 1 == feed.recent()[0]["event"]["turn"]

    def test_an_event_too_big_for_a_frame_is_cut_to_its_names(self) -> None:
        feed = EventFeed("lead", lambda *a: None)
        feed.record("lead", {"kind": "future", "pod_name": "w1", "blob": "x" * (1 << 20)})
        assert {"kind": "future", "pod_name": "w1", "truncated": True} == (
            feed.recent()[0]["event"]
        )

    def test_the_reply_without_follow_subscribes_nobody(self) -> None:
        feed = EventFeed("lead", lambda *a: pytest.fail("nothing is started"))
        feed.record("lead", turn(1))
        result = feed.on_events(None, events_request(follow=False))  # type: ignore[arg-type]
        assert ("lead", 1, False, 0) == (
            result["pod"],
            len(result["events"]),
            result["following"],
            feed.subscribers,
        )


class TestApplied:
    """Only events that changed something count as applied."""

    def test_a_notification_or_a_registry_change_is_applied(self) -> None:
        note = Notify(Notification.of(turn(1)))
        assert applied([Trace("x"), note, Reply({"applied": True})])
        assert applied([PersistRegistry(), PostEvent(turn(1)), Reply({"applied": True})])

    def test_a_duplicate_or_a_repeat_is_not(self) -> None:
        assert not applied([Trace("x"), Reply({"applied": False})])
        assert not applied([Reply({"applied": False, "reason": "no longer registered"})])


class TestSubscribers:
    """A subscriber gets every record from its subscription on, in order."""

    async def test_a_follower_gets_every_later_event_in_order(self, rig: Rig) -> None:
        with trio.fail_after(10):
            feed = EventFeed("lead", rig.nursery.start_soon)
            feed.record("lead", turn(1))
            result = feed.on_events(rig.conn, events_request(follow=True))
            assert ([1], True, 1) == (
                [r["event"]["turn"] for r in result["events"]],
                result["following"],
                feed.subscribers,
            )
            for n in range(2, 502):
                feed.record("lead", turn(n))
                if n % 50 == 0:
                    await trio.testing.wait_all_tasks_blocked()
            got = [await rig.client.frame() for _ in range(500)]
            assert {"event"} == {f["method"] for f in got}
            assert {None} == {f.get("id") for f in got}
            assert list(range(2, 502)) == [f["params"]["event"]["turn"] for f in got]
            assert list(range(2, 502)) == [f["params"]["seq"] for f in got]

    async def test_a_subscriber_that_leaves_is_forgotten(self, rig: Rig) -> None:
        with trio.fail_after(10):
            feed = EventFeed("lead", rig.nursery.start_soon)
            feed.subscribe(rig.conn)
            rig.conn.close()
            feed.record("lead", turn(1))
            await trio.testing.wait_all_tasks_blocked()
            assert 0 == feed.subscribers

    async def test_the_pods_own_shut_down_ends_the_subscription(self, rig: Rig) -> None:
        with trio.fail_after(10):
            feed = EventFeed("lead", rig.nursery.start_soon)
            feed.subscribe(rig.conn)
            feed.record("lead", turn(1))
            feed.record("lead", {"kind": "shut_down", "pod_name": "lead", "reason": "stopped"})
            frames = await rig.client.frames_until_eof()
            assert ["event", "event", "events_end"] == [f["method"] for f in frames]
            assert ("shut_down", 2, 0) == (
                frames[-1]["params"]["reason"],
                frames[-1]["params"]["last_seq"],
                frames[-1]["params"]["missed"],
            )
            assert 0 == feed.subscribers

    async def test_a_childs_shut_down_does_not_end_it(self, rig: Rig) -> None:
        with trio.fail_after(10):
            feed = EventFeed("lead", rig.nursery.start_soon)
            feed.subscribe(rig.conn)
            feed.record("lead", {"kind": "shut_down", "pod_name": "w1"})
            assert "event" == (await rig.client.frame())["method"]
            assert 1 == feed.subscribers


class TestSlowSubscriber:
    """A subscriber that does not read loses its subscription; the pod never waits."""

    async def test_it_is_dropped_told_and_disconnected(self, rig: Rig) -> None:
        with trio.fail_after(20):
            feed = EventFeed("lead", rig.nursery.start_soon, queue=8, grace=30.0)
            sub = feed.subscribe(rig.conn)
            big = "x" * 16384
            recorded = 0
            # Recording is synchronous: each call returns at once, whatever the
            # subscriber does. The socket buffer fills, then its queue, then it is out.
            while feed.subscribers:
                recorded += 1
                feed.record("lead", {"kind": "errored", "pod_name": "w1", "message": big})
                assert len(sub.frames) <= 8
                await trio.testing.wait_all_tasks_blocked()
            for _ in range(100):
                feed.record("lead", turn(1))  # nobody follows now: nothing is queued
            assert (1, 0, []) == (feed.dropped, feed.subscribers, sub.frames)
            frames = await rig.client.frames_until_eof()
            events, end = frames[:-1], frames[-1]
            seqs = [f["params"]["seq"] for f in events]
            assert list(range(1, len(seqs) + 1)) == seqs
            assert "events_end" == end["method"]
            assert ("lagging", seqs[-1], recorded - len(seqs)) == (
                end["params"]["reason"],
                end["params"]["last_seq"],
                end["params"]["missed"],
            )
            assert "fell behind" in end["params"]["message"]

    async def test_it_is_disconnected_after_the_grace_if_it_never_reads(self, rig: Rig) -> None:
        with trio.fail_after(20):
            feed = EventFeed("lead", rig.nursery.start_soon, queue=4, grace=0.05)
            feed.subscribe(rig.conn)
            while feed.subscribers:
                feed.record("lead", {"kind": "errored", "pod_name": "w1", "message": "y" * 65536})
                await trio.testing.wait_all_tasks_blocked()
            # The pod closes its end by itself: reading now finds the end of the stream.
            frames = await rig.client.frames_until_eof()
            seqs = [f["params"]["seq"] for f in frames if f["method"] == "event"]
            assert list(range(1, len(seqs) + 1)) == seqs
