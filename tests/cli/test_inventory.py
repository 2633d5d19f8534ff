"""`podd ls` probes every live pod at once: the batch of requests behind it, and the
states it derives, against stand-in pods (real sockets, real processes' pids)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from podd.cli import inventory
from podd.client.sync import Batch
from podd.errors import PodUnreachable
from podd.proc.procfs import read_stat


@pytest.fixture
def sockdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="podd-i", dir="/tmp")
    os.chmod(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


Answer = Callable[[dict[str, Any]], Any]


class StandIn:
    """A stand-in pod on ``path``: each request gets ``answer(request)`` as its result,
    after ``delay`` seconds; when each answer was sent off, and when each connection
    was seen to close, is kept."""

    def __init__(self, path: str, answer: Answer, delay: float = 0.0, backlog: int = 16) -> None:
        self.path = path
        self.answer = answer
        self.delay = delay
        self.backlog = backlog
        self.answered_at: list[float] = []
        self.closed_at: list[float] = []
        self.accepting = trio.Event()
        self._changed = trio.Event()

    async def until(self, answered: int = 0, closed: int = 0) -> None:
        """Wait until this many answers were sent off and connections closed."""
        while len(self.answered_at) < answered or len(self.closed_at) < closed:
            await self._changed.wait()

    def _note(self, times: list[float]) -> None:
        times.append(trio.current_time())
        self._changed.set()
        self._changed = trio.Event()

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM) as listener:
            await listener.bind(self.path)
            listener.listen(self.backlog)
            task_status.started()
            await self.accepting.wait()
            async with trio.open_nursery() as nursery:
                while True:
                    sock, _ = await listener.accept()
                    nursery.start_soon(self._handle, trio.SocketStream(sock))

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while not data.endswith(b"\n"):
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            request = json.loads(data)
            await trio.sleep(self.delay)
            frame = {"id": request["id"], "result": self.answer(request)}
            self._note(self.answered_at)
            await stream.send_all(json.dumps(frame).encode() + b"\n")
            while await stream.receive_some(65536):
                pass
            self._note(self.closed_at)


def pong(request: dict[str, Any]) -> Any:
    return {"pong": True, "state": "idle"}


def silent_socket(path: str) -> socket.socket:
    """A socket that listens but never accepts: a connect succeeds, no answer comes."""
    quiet = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    quiet.bind(path)
    quiet.listen(4)
    return quiet


class TestBatch:
    """A batch sends each request as it is added and waits for all answers together."""

    async def test_answers_in_the_order_added(self, sockdir: str) -> None:
        fast = StandIn(os.path.join(sockdir, "f"), pong)
        slow = StandIn(os.path.join(sockdir, "s"), lambda r: {"n": r["params"]["n"]}, 0.05)
        missing = os.path.join(sockdir, "m")

        def ask() -> list[Any]:
            batch = Batch("ping", {"n": 7}, timeout=10.0)
            indexes = [batch.add(p) for p in (slow.path, missing, fast.path, slow.path)]
            assert [0, 1, 2, 3] == indexes
            return batch.answers()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for pod in (fast, slow):
                    await nursery.start(pod.serve)
                    pod.accepting.set()
                answers = await trio.to_thread.run_sync(ask)
                nursery.cancel_scope.cancel()
        assert {"n": 7} == answers[0] == answers[3]
        assert isinstance(answers[1], PodUnreachable)
        assert {"pong": True, "state": "idle"} == answers[2]

    async def test_connections_close_once_every_answer_is_in(self, sockdir: str) -> None:
        fast = StandIn(os.path.join(sockdir, "f"), pong)
        slow = StandIn(os.path.join(sockdir, "s"), pong, delay=0.2)

        def ask() -> list[Any]:
            batch = Batch("ping", timeout=10.0)
            batch.add(fast.path)
            batch.add(slow.path)
            return batch.answers()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for pod in (fast, slow):
                    await nursery.start(pod.serve)
                    pod.accepting.set()
                await trio.to_thread.run_sync(ask)
                await fast.until(closed=1)
                await slow.until(closed=1)
                nursery.cancel_scope.cancel()
        # The fast pod answered first, but its connection stayed open until the slow
        # one had answered too.
        assert fast.answered_at[0] <= slow.answered_at[0] <= fast.closed_at[0]

    async def test_each_request_has_its_own_time(self, sockdir: str) -> None:
        quiet = silent_socket(os.path.join(sockdir, "q"))
        late = StandIn(os.path.join(sockdir, "l"), pong)

        def ask() -> list[Any]:
            batch = Batch("ping", timeout=1.0)
            batch.add(os.path.join(sockdir, "q"))
            time.sleep(1.1)  # the first request's time is up before the second is sent
            batch.add(late.path)
            return batch.answers()

        try:
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    await nursery.start(late.serve)
                    late.accepting.set()
                    answers = await trio.to_thread.run_sync(ask)
                    nursery.cancel_scope.cancel()
        finally:
            quiet.close()
        assert isinstance(answers[0], PodUnreachable)
        assert "did not answer ping in time" in str(answers[0])
        assert {"pong": True, "state": "idle"} == answers[1]

    async def test_a_full_listen_backlog_is_tried_again(self, sockdir: str) -> None:
        # A backlog of 0 holds one connection: the others are refused with EAGAIN
        # until the pod starts accepting.
        busy = StandIn(os.path.join(sockdir, "b"), pong, backlog=0)
        sent, done = trio.Event(), trio.Event()
        answers: list[Any] = []

        def ask(token: trio.lowlevel.TrioToken) -> list[Any]:
            batch = Batch("ping", timeout=20.0)
            for _ in range(4):
                batch.add(busy.path)
            trio.from_thread.run_sync(sent.set, trio_token=token)
            return batch.answers()

        async def asking() -> None:
            answers.extend(await trio.to_thread.run_sync(ask, trio.lowlevel.current_trio_token()))
            done.set()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(busy.serve)
                nursery.start_soon(asking)
                await sent.wait()
                busy.accepting.set()
                await done.wait()
                nursery.cancel_scope.cancel()
        assert [{"pong": True, "state": "idle"}] * 4 == answers

    async def test_past_the_limit_answered_connections_close_at_once(self, sockdir: str) -> None:
        fast = StandIn(os.path.join(sockdir, "f"), pong)
        slow = StandIn(os.path.join(sockdir, "s"), pong, delay=0.5)

        def ask() -> list[Any]:
            batch = Batch("ping", timeout=10.0)
            batch.KEEP_OPEN = 0
            batch.add(fast.path)
            batch.add(slow.path)
            return batch.answers()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for pod in (fast, slow):
                    await nursery.start(pod.serve)
                    pod.accepting.set()
                await trio.to_thread.run_sync(ask)
                await fast.until(closed=1)
                await slow.until(closed=1)
                nursery.cancel_scope.cancel()
        assert fast.closed_at[0] <= slow.answered_at[0]

    async def test_more_requests_than_descriptors(self, sockdir: str) -> None:
        """With 40 descriptors, 100 requests still all get their answers: answered
        connections give theirs back, and the rest wait for one in flight."""
        pod = StandIn(os.path.join(sockdir, "p"), pong, delay=0.01)
        script = (
            "import json, resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit("
            "resource.RLIMIT_NOFILE)[1]))\n"
            "from podd.client.sync import Batch\n"
            "batch = Batch('ping', timeout=20.0)\n"
            "for _ in range(100):\n"
            "    batch.add(sys.argv[1])\n"
            "print(json.dumps([a if isinstance(a, dict) else repr(a) for a in batch.answers()]))\n"
        )
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(pod.serve)
                pod.accepting.set()
                done = await trio.run_process(
                    [sys.executable, "-c", script, pod.path], capture_stdout=True
                )
                nursery.cancel_scope.cancel()
        assert [{"pong": True, "state": "idle"}] * 100 == json.loads(done.stdout)

    def test_nothing_to_ask(self) -> None:
        assert [] == Batch("ping").answers()


def write_pod(root: str, name: str, pid: int, start_time: float, parent: str | None) -> str:
    directory = os.path.join(root, name)
    os.mkdir(directory, 0o700)
    record = {
        "pid": pid,
        "start_time": start_time,
        "spec": {"name": name, "parent": parent, "incarnation": 1},
    }
    with open(os.path.join(directory, "pod.json"), "w") as f:
        json.dump(record, f)
    return os.path.join(directory, "sock")


def write_registry(root: str, name: str, children: list[str]) -> None:
    pods = [{"pod_name": child, "parent_pod": name, "pid": 1} for child in children]
    with open(os.path.join(root, name, "spawned_pods.json"), "w") as f:
        json.dump({"pods": pods}, f)


def dead_pid() -> tuple[int, float]:
    """The pid and start time of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    stat = None
    while stat is None and proc.poll() is None:
        stat = read_stat(proc.pid)
    proc.wait()
    return proc.pid, stat.start_time if stat is not None else 1.0


class TestScan:
    """Each pod's state comes from its process and its answer to ping; the listing
    keeps its shape: one view per pod directory, sorted by name."""

    async def test_every_state(self, sockdir: str) -> None:
        me = read_stat(os.getpid())
        assert me is not None
        root = sockdir
        states = {"a-idle": "idle", "b-running": "running", "c-stopping": "stopping"}
        pods = [
            StandIn(write_pod(root, name, os.getpid(), me.start_time, "lead"), self.answer(s))
            for name, s in states.items()
        ]
        lead = StandIn(write_pod(root, "lead", os.getpid(), me.start_time, None), pong)
        write_registry(root, "lead", sorted(states))
        quiet = silent_socket(write_pod(root, "d-silent", os.getpid(), me.start_time, "lead"))
        pid, started = dead_pid()
        write_pod(root, "e-gone", pid, started, "lead")
        os.mkdir(os.path.join(root, "not-a-pod"))
        try:
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for pod in [*pods, lead]:
                        await nursery.start(pod.serve)
                        pod.accepting.set()
                    views = await trio.to_thread.run_sync(inventory.scan, root)
                    nursery.cancel_scope.cancel()
        finally:
            quiet.close()
        listed = [(v.name, v.state, v.parent) for v in views]
        assert [
            ("a-idle", "idle", "lead"),
            ("b-running", "running", "lead"),
            ("c-stopping", "stopping", "lead"),
            ("d-silent", "unresponsive", "lead"),
            ("e-gone", "stale", "lead"),
            ("lead", "idle", None),
        ] == listed
        by_name = {v.name: v.to_dict() for v in views}
        assert sorted(states) == by_name["lead"]["children"]
        assert {
            "name",
            "state",
            "pid",
            "parent",
            "socket",
            "incarnation",
            "started_at",
            "children",
            "age",
            "cost_usd",
            "waiting_on",
        } == set(by_name["a-idle"])
        assert os.path.join(root, "a-idle", "sock") == by_name["a-idle"]["socket"]

    @staticmethod
    def answer(state: str) -> Answer:
        return lambda request: {"pong": True, "state": state, "parent": "lead"}

    def test_an_empty_or_missing_root(self, sockdir: str) -> None:
        assert [] == inventory.scan(sockdir)
        assert [] == inventory.scan(os.path.join(sockdir, "nowhere"))
