"""The event plane end to end: children report, parents know (issue 4).

Some tests must write frames *as a child pod's process* (a duplicate, events out of
order): peer credentials make that impossible from the test process, which is the point
of ``forbidden``. For those, the pods run with a ``sitecustomize`` shim on
``PYTHONPATH`` (only when ``PODD_TEST_INJECT`` is set): a thread in every pod process
(started at start-up, or right after the fork for pods a fork server starts) waits for
``<dir>/<its pid>.in``, sends the frames it lists to the socket it names from that
process, and writes the replies to ``<dir>/<its pid>.out``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import trio

from tests.conftest import Podd
from tests.e2e.support import RawConnection, result_of, wait_for

PODD = f"{shlex.quote(sys.executable)} -m podd"

SHIM = r"""
import json, os, socket, sys, threading, time

def _send(job):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(job["socket"])
    frames = job["frames"]
    sock.sendall(b"".join(json.dumps(f).encode() + b"\n" for f in frames))
    expected = job["replies"]
    data, replies = b"", []
    try:
        while len(replies) < expected:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            while b"\n" in data:
                line, data = data.split(b"\n", 1)
                replies.append(json.loads(line))
    finally:
        sock.close()
    return replies

def _serve(directory):
    me = os.getpid()
    inbox = os.path.join(directory, f"{me}.in")
    while True:
        if os.path.exists(inbox):
            with open(inbox) as f:
                job = json.load(f)
            os.unlink(inbox)
            try:
                result = {"replies": _send(job)}
            except Exception as exc:
                result = {"exception": repr(exc)}
            tmp = os.path.join(directory, f"{me}.out.tmp")
            with open(tmp, "w") as f:
                json.dump(result, f)
            os.rename(tmp, os.path.join(directory, f"{me}.out"))
        time.sleep(0.01)

def _start():
    threading.Thread(target=_serve, args=(os.environ["PODD_TEST_INJECT"],), daemon=True).start()

if os.environ.get("PODD_TEST_INJECT"):
    _argv = " ".join(getattr(sys, "orig_argv", []))
    if "podd.runtime.main" in _argv:
        _start()  # a pod started with exec
    elif "podd._forkserver_main" in _argv:
        # Its forks are pods; the fork server itself keeps to one thread.
        os.register_at_fork(after_in_child=_start)
"""


class Injector:
    """Has a pod process send frames for the test (see the module docstring)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    async def send_as(self, pid: int, socket: str, frames: list[Any]) -> list[Any]:
        """Send ``frames`` from process ``pid`` to ``socket``; the replies, in order."""
        replies = sum(1 for f in frames if "id" in f)
        job = {"socket": socket, "frames": frames, "replies": replies}
        tmp = os.path.join(self.directory, f"{pid}.in.tmp")
        with open(tmp, "w") as f:  # noqa: ASYNC230
            json.dump(job, f)
        os.rename(tmp, os.path.join(self.directory, f"{pid}.in"))
        out = os.path.join(self.directory, f"{pid}.out")

        async def answered() -> bool:
            return os.path.exists(out)  # noqa: ASYNC240

        await wait_for(answered)
        with open(out) as f:  # noqa: ASYNC230
            result = json.load(f)
        os.unlink(out)
        assert "exception" not in result, result
        replies_: list[Any] = result["replies"]
        return replies_


@pytest.fixture
def inject(podd: Podd) -> Iterator[Injector]:
    directory = tempfile.mkdtemp(prefix="podd-shim", dir="/tmp")
    with open(os.path.join(directory, "sitecustomize.py"), "w") as f:
        f.write(SHIM)
    podd.env["PYTHONPATH"] = directory
    podd.env["PODD_TEST_INJECT"] = directory
    try:
        yield Injector(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def spawn(podd: Podd, *args: str) -> None:
    result = await podd("spawn", *args)
    assert (0, "") == (result.code, result.stderr), result


async def status(podd: Podd, name: str) -> Any:
    return await result_of(podd.sock(name), "status")


async def peek(podd: Podd, name: str) -> list[Any]:
    """The pod's notifications, left in place."""
    result = await result_of(podd.sock(name), "notifications", {"peek": True})
    items: list[Any] = result["notifications"]
    return items


async def children(podd: Podd, name: str) -> dict[str, Any]:
    return {r["pod_name"]: r for r in (await status(podd, name))["children"]}


def registry_file(root: str, name: str) -> dict[str, Any]:
    with open(os.path.join(root, name, "spawned_pods.json"), "rb") as f:
        return {r["pod_name"]: r for r in json.loads(f.read())["pods"]}


async def until_notified(podd: Podd, name: str, count: int) -> list[Any]:
    async def check() -> list[Any]:
        items = await peek(podd, name)
        return items if len(items) >= count else []

    return await wait_for(check)


async def three_levels(podd: Podd, *root_args: str) -> None:
    """root → a → b, with b spawned by a's agent from its own shell."""
    await spawn(podd, "root", *root_args)
    await spawn(podd, "a", "--parent", "root", "--agent", f"{PODD} spawn b --agent true")
    assert 0 == (await podd("send", "a", "go", "--wait")).code

    async def root_knows_b() -> bool:
        return "b" in await children(podd, "root")

    await wait_for(root_knows_b)


class TestThreeLevels:
    """A grandchild spawned from a child's agent shell is known to the root through
    re-emission, and reports to its own parent."""

    async def test_root_registers_the_grandchild_silently(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            await three_levels(podd)
            b_pid = podd.pid("b")
            expected = ("a", podd.sock("a"), podd.sock("b"), b_pid)
            for records in (await children(podd, "root"), registry_file(root, "root")):
                b = records["b"]
                actual = (b["parent_pod"], b["callback_address"], b["socket_path"], b["pid"])
                assert expected == actual
            assert ["a", "b"] == sorted(registry_file(root, "root"))
            assert ["b"] == sorted(registry_file(root, "a"))
            # a's own turn_ended reaches root; the sub-delegation does not notify.
            notified = await until_notified(podd, "root", 1)
            assert [("turn_ended", "a")] == [
                (n["event"]["kind"], n["event"]["pod_name"]) for n in notified
            ]
            assert not any("'b'" in n["text"] for n in notified)
            assert 0 == (await podd("stop", "root")).code

    async def test_parent_hears_of_the_grandchild_turn_and_stop(
        self, podd: Podd, root: str
    ) -> None:
        with trio.fail_after(30):
            await three_levels(podd)
            assert [] == await peek(podd, "a")
            assert 0 == (await podd("send", "b", "x", "--wait")).code
            notified = await until_notified(podd, "a", 1)
            assert [("turn_ended", "b", "pod 'b' finished turn 1")] == [
                (n["event"]["kind"], n["event"]["pod_name"], n["text"]) for n in notified
            ]
            stop = await podd("stop", "b")
            assert (0, "clean\n") == (stop.code, stop.stdout)

            async def a_forgot_b() -> bool:
                return "b" not in await children(podd, "a")

            await wait_for(a_forgot_b)
            assert {} == registry_file(root, "a")
            notified = await until_notified(podd, "a", 2)
            assert ["turn_ended", "shut_down"] == [n["event"]["kind"] for n in notified]
            assert notified[1]["text"].startswith("pod 'b' shut down")
            assert 0 == (await podd("stop", "root")).code

    async def test_root_forgets_a_stopped_grandchild_without_an_error(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await three_levels(podd, "--reclaim-interval", "0.2")
            before = await peek(podd, "root")
            assert 0 == (await podd("stop", "b")).code
            try:

                async def root_forgot_b() -> bool:
                    return "b" not in await children(podd, "root")

                with trio.fail_after(3):
                    await wait_for(root_forgot_b)
                after = await peek(podd, "root")
                assert [] == [n["text"] for n in after[len(before) :] if "error" in n["text"]]
            finally:
                assert 0 == (await podd("stop", "root")).code


class TestForgedEvents:
    """A pod_event that does not come from the process of the pod it speaks for gets
    ``forbidden`` and changes nothing."""

    def forgeries(self) -> list[dict[str, Any]]:
        """Events about the real child b, or sub-delegations by it."""
        return [
            {"kind": "turn_ended", "pod_name": "b"},
            {"kind": "turn_ended", "pod_name": "b", "turn": 1, "incarnation": 1, "seq": 99},
            {"kind": "errored", "pod_name": "b", "message": "forged"},
            {"kind": "shut_down", "pod_name": "b"},
            {
                "kind": "scope_sub_delegated",
                "parent_pod": "b",
                "sub_pod": "evil",
                "sub_socket": "/tmp/evil/sock",
                "scope": [{"target": "/", "permission": "write", "recursive": True}],
            },
            {"kind": "turn_ended", "pod_name": "nobody"},
            {"kind": "something_new", "pod_name": "b"},
            {"kind": "adopted", "pod_name": "b", "previous_parent": "x"},
        ]

    async def state(self, podd: Podd, root: str) -> Any:
        return (
            await children(podd, "a"),
            registry_file(root, "a"),
            await peek(podd, "a"),
            (await status(podd, "a"))["notifications_pending"],
        )

    async def test_from_the_test_process(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            await spawn(podd, "a")
            await spawn(podd, "b", "--parent", "a", "--agent", "true")
            before = await self.state(podd, root)
            async with await RawConnection.open(podd.sock("a")) as conn:
                codes = []
                for index, event in enumerate(self.forgeries()):
                    # With an id, then as a notification frame (no id).
                    codes.append(await conn.request("pod_event", event, index))
                    await conn.send({"method": "pod_event", "params": event})
                    codes.append(await conn.receive())
            assert [(i // 2 if i % 2 == 0 else None, "forbidden") for i in range(len(codes))] == [
                (r["id"], r.get("error", {}).get("code")) for r in codes
            ]
            assert before == await self.state(podd, root)
            assert 0 == (await podd("stop", "a")).code

    async def test_from_a_sibling_pod(self, podd: Podd, root: str, inject: Injector) -> None:
        with trio.fail_after(30):
            await spawn(podd, "a")
            await spawn(podd, "b", "--parent", "a", "--agent", "true")
            await spawn(podd, "c", "--parent", "a")
            before = await self.state(podd, root)
            frames = [
                {"method": "pod_event", "params": event, "id": index}
                for index, event in enumerate(self.forgeries())
            ]
            replies = await inject.send_as(podd.pid("c"), podd.sock("a"), frames)
            assert ["forbidden"] * len(frames) == [r.get("error", {}).get("code") for r in replies]
            assert before == await self.state(podd, root)
            assert 0 == (await podd("stop", "a")).code


class TestReplays:
    """Events from the right process delivered twice or out of order leave the state
    they leave once and in order."""

    async def test_duplicates_apply_once(self, podd: Podd, root: str, inject: Injector) -> None:
        with trio.fail_after(30):
            await spawn(podd, "r", "--reclaim-interval", "60")
            await spawn(podd, "a", "--parent", "r")
            await spawn(podd, "b", "--parent", "a", "--agent", "true")
            assert 0 == (await podd("send", "b", "x", "--wait")).code
            (heard,) = await until_notified(podd, "a", 1)
            event = heard["event"]
            assert ("turn_ended", 1) == (event["kind"], event["incarnation"])
            sub = {
                "kind": "scope_sub_delegated",
                "parent_pod": "b",
                "sub_pod": "g",
                "sub_socket": os.path.join(root, "g", "sock"),
                "scope": [{"target": root, "permission": "read", "recursive": True}],
            }
            stamped = {**sub, "incarnation": 1, "seq": event["seq"] + 1}
            frames = [
                {"method": "pod_event", "params": p, "id": i}
                for i, p in enumerate([event, event, stamped, stamped, sub, sub])
            ]
            replies = await inject.send_as(podd.pid("b"), podd.sock("a"), frames)
            assert [False, False, True, False] == [r["result"]["applied"] for r in replies[:4]]
            assert [heard] == await peek(podd, "a")
            assert ["b", "g"] == sorted(registry_file(root, "a"))
            g = (await children(podd, "a"))["g"]
            assert ("b", podd.sock("b")) == (g["parent_pod"], g["callback_address"])

            async def r_knows_g() -> Any:
                return (await children(podd, "r")).get("g")

            g = await wait_for(r_knows_g)
            assert ("a", podd.sock("a")) == (g["parent_pod"], g["callback_address"])
            assert ["a", "b", "g"] == sorted(registry_file(root, "r"))
            assert not any("'g'" in n["text"] for n in await peek(podd, "r"))
            assert 0 == (await podd("stop", "r")).code

    async def test_late_events_after_shut_down_resurrect_nothing(
        self, podd: Podd, root: str, inject: Injector
    ) -> None:
        with trio.fail_after(30):
            await spawn(podd, "a")
            await spawn(podd, "b", "--parent", "a", "--agent", "true")
            assert 0 == (await podd("send", "b", "x", "--wait")).code
            (heard,) = await until_notified(podd, "a", 1)
            seq = heard["event"]["seq"]
            stamp = {"incarnation": 1}
            events = [
                {"kind": "shut_down", "pod_name": "b", "seq": seq + 2, **stamp},
                {"kind": "turn_ended", "pod_name": "b", "turn": 2, "seq": seq + 1, **stamp},
                {"kind": "turn_ended", "pod_name": "b", "turn": 3, "seq": seq + 3, **stamp},
                {"kind": "shut_down", "pod_name": "b", "seq": seq + 2, **stamp},
            ]
            frames = [{"method": "pod_event", "params": e, "id": i} for i, e in enumerate(events)]
            replies = await inject.send_as(podd.pid("b"), podd.sock("a"), frames)
            assert [True, False, False, False] == [r["result"]["applied"] for r in replies]
            assert {} == await children(podd, "a")
            assert {} == registry_file(root, "a")
            notified = await peek(podd, "a")
            assert ["turn_ended", "shut_down"] == [n["event"]["kind"] for n in notified]
            # b is still running, unregistered: its own stop changes nothing more at a.
            assert 0 == (await podd("stop", "b")).code
            assert notified == await peek(podd, "a")
            assert {} == await children(podd, "a")
            assert 0 == (await podd("stop", "a")).code


class TestStoppedParent:
    """A parent stopped with SIGSTOP while its children finish turns receives every
    turn_ended once it continues."""

    async def test_sigstopped_parent_loses_nothing(self, podd: Podd) -> None:
        turns = 25
        with trio.fail_after(40):
            await spawn(podd, "p")
            for child in ("c1", "c2"):
                await spawn(podd, child, "--parent", "p", "--agent", "true")
            pid = podd.pid("p")

            async def drive(child: str) -> None:
                async with await RawConnection.open(podd.sock(child)) as conn:
                    for turn in range(1, turns + 1):
                        reply = await conn.request("send", {"text": "x", "wait": True}, turn)
                        assert (turn, True) == (
                            reply["result"]["turn"],
                            (reply["result"]["outcome"] == "finished"),
                        )

            os.kill(pid, signal.SIGSTOP)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(drive, "c1")
                    nursery.start_soon(drive, "c2")
                # Every turn ended, and its event was posted, while the parent was stopped:
                # the children's outboxes hold them, nothing waits on the parent.
                assert psutil.STATUS_STOPPED == psutil.Process(pid).status()
            finally:
                os.kill(pid, signal.SIGCONT)

            async def all_arrived() -> bool:
                return (await status(podd, "p"))["notifications_pending"] >= 2 * turns

            await wait_for(all_arrived)
            result = await podd("notifications", "p", "--json")
            events = [n["event"] for n in result.json()["notifications"]]
            heard = sorted((e["kind"], e["pod_name"], e["turn"]) for e in events)
            expected = sorted(
                ("turn_ended", child, turn)
                for child in ("c1", "c2")
                for turn in range(1, turns + 1)
            )
            assert expected == heard
            assert 0 == (await podd("stop", "p")).code
