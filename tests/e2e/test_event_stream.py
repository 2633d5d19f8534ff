"""Live views end to end: a pod's event feed, ``podd events`` and ``podd top``.

Real pods, real sockets: a subscriber of a busy parent gets every event it applied,
in order, also from a child spawned after it subscribed; a subscriber that never reads
is dropped and told so while the pod goes on answering; ``podd events`` lists and
follows a whole tree; ``podd top`` draws it in a real terminal (tmux).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from podd.cli.follower import Update
from podd.cli.top import layout, render
from podd.cli.top_model import Model
from tests.conftest import Podd
from tests.e2e import test_events as injection
from tests.e2e.support import RawConnection, raw_call, result_of, wait_for


@pytest.fixture
def inject(podd: Podd) -> Iterator[injection.Injector]:
    """Pods that can send frames as themselves for the test (see ``test_events``)."""
    directory = tempfile.mkdtemp(prefix="podd-shim", dir="/tmp")
    with open(os.path.join(directory, "sitecustomize.py"), "w") as f:
        f.write(injection.SHIM)
    podd.env["PYTHONPATH"] = directory
    podd.env["PODD_TEST_INJECT"] = directory
    try:
        yield injection.Injector(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def spawn(podd: Podd, *args: str) -> None:
    result = await podd("spawn", *args)
    assert (0, "") == (result.code, result.stderr), result


async def stop(podd: Podd, name: str) -> None:
    assert 0 == (await podd("stop", name)).code


async def turns(podd: Podd, name: str, count: int) -> None:
    for _ in range(count):
        result = await result_of(podd.sock(name), "send", {"text": "go", "wait": True})
        assert result["outcome"] == "finished" if "outcome" in result else result["finished"]


def applied_turns(records: list[dict[str, Any]], pod: str) -> dict[str, list[int]]:
    """The ``turn_ended`` events that ``pod`` recorded about others, turns per child."""
    found: dict[str, list[int]] = {}
    for r in records:
        event = r["event"]
        if r["pod"] == pod and event["kind"] == "turn_ended" and event["pod_name"] != pod:
            found.setdefault(event["pod_name"], []).append(event["turn"])
    return found


class Subscription:
    """A raw ``events`` subscription, its frames read into a list as they come."""

    def __init__(self, conn: RawConnection) -> None:
        self.conn = conn
        self.reply: Any = None
        self.frames: list[Any] = []
        self.changed = trio.Event()
        self.ended = False

    async def read(self) -> None:
        try:
            while True:
                self.frames.append(await self.conn.receive())
                self.changed.set()
        except (EOFError, trio.ClosedResourceError):
            self.ended = True
            self.changed.set()

    async def until(self, done: Any) -> None:
        while not done(self):
            self.changed = trio.Event()
            await self.changed.wait()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [f["params"] for f in self.frames if f.get("method") == "event"]


class TestFeed:
    """The ``events`` method on real pods."""

    async def test_a_subscriber_gets_every_event_the_parent_applied_in_order(
        self, podd: Podd
    ) -> None:
        with trio.fail_after(120):
            await spawn(podd, "lead")
            for child in ("c1", "c2"):
                await spawn(podd, child, "--parent", "lead", "--agent", "echo hi")
            try:
                conn = await RawConnection.open(podd.sock("lead"))
                sub = Subscription(conn)
                reply = await conn.request("events", {"follow": True})
                start = reply["result"]["last_seq"]
                assert (True, "lead") == (reply["result"]["following"], reply["result"]["pod"])
                expected = {"c1": list(range(1, 13)), "c2": list(range(1, 13))}
                expected["c3"] = list(range(1, 7))
                async with trio.open_nursery() as reading:
                    reading.start_soon(sub.read)
                    async with trio.open_nursery() as busy:
                        busy.start_soon(turns, podd, "c1", 12)
                        busy.start_soon(turns, podd, "c2", 12)
                        # A child spawned once the subscription runs: its events come too.
                        await spawn(podd, "c3", "--parent", "lead", "--agent", "echo hi")
                        busy.start_soon(turns, podd, "c3", 6)
                    await sub.until(lambda s: applied_turns(s.records, "lead") == expected)
                    reading.cancel_scope.cancel()
                records = sub.records
                assert list(range(start + 1, start + 1 + len(records))) == [
                    r["seq"] for r in records
                ]
                assert {"lead"} == {r["pod"] for r in records}
                assert all(f.get("id") is None for f in sub.frames)
                # The sub-delegation of the late child: this root pod emits it itself.
                assert any(
                    r["event"]["kind"] == "scope_sub_delegated" and r["event"]["sub_pod"] == "c3"
                    for r in records
                )
                # Exactly what the pod applied, in the order it applied it.
                notes = (await result_of(podd.sock("lead"), "notifications", {"peek": True}))[
                    "notifications"
                ]
                applied = [
                    (n["event"]["pod_name"], n["event"]["turn"])
                    for n in notes
                    if n["event"]["kind"] == "turn_ended"
                ]
                streamed = [
                    (r["event"]["pod_name"], r["event"]["turn"])
                    for r in records
                    if r["event"]["kind"] == "turn_ended"
                ]
                assert applied == streamed
                await conn.stream.aclose()
            finally:
                await stop(podd, "lead")

    async def test_a_subscriber_that_never_reads_is_dropped_and_the_pod_answers(
        self, podd: Podd, inject: injection.Injector
    ) -> None:
        with trio.fail_after(120):
            await spawn(podd, "lead")
            await spawn(podd, "c1", "--parent", "lead")
            try:
                stuck = await RawConnection.open(podd.sock("lead"))
                reply = await stuck.request("events", {"follow": True})
                start = reply["result"]["last_seq"]
                # Far more events than the subscriber's queue and socket buffer hold,
                # sent by the child's own process (unstamped: each one is applied).
                count = 20_000
                frames: list[Any] = [
                    {"method": "pod_event", "params": {"kind": "turn_ended", "pod_name": "c1"}}
                ] * count
                sending = trio.Event()

                async def send() -> None:
                    await inject.send_as(podd.pid("c1"), podd.sock("lead"), frames)
                    sending.set()

                async with trio.open_nursery() as n:
                    n.start_soon(send)

                    async def dropped() -> bool:
                        # The pod answers all along; the feed says when it let go.
                        assert (await result_of(podd.sock("lead"), "ping"))["pong"]
                        feed = await result_of(podd.sock("lead"), "events", {"follow": False})
                        return bool(feed["subscribers"] == 0 and feed["last_seq"] >= start + count)

                    await wait_for(dropped)
                got = []
                while True:
                    try:
                        got.append(await stuck.receive())
                    except EOFError:
                        break
                events, end = got[:-1], got[-1]
                seqs = [f["params"]["seq"] for f in events]
                assert list(range(start + 1, start + 1 + len(seqs))) == seqs
                assert len(seqs) < count
                assert "events_end" == end["method"]
                assert ("lagging", seqs[-1]) == (end["params"]["reason"], end["params"]["last_seq"])
                assert "fell behind" in end["params"]["message"]
                assert (await result_of(podd.sock("lead"), "ping"))["pong"]
                await stuck.stream.aclose()
            finally:
                await stop(podd, "lead")

    async def test_without_follow_the_reply_is_the_recent_events(self, podd: Podd) -> None:
        with trio.fail_after(60):
            await spawn(podd, "lead")
            try:
                await spawn(podd, "c1", "--parent", "lead", "--agent", "echo hi")
                await turns(podd, "c1", 3)

                async def three() -> Any:
                    # The child's last event may still be on its way when its turn ends.
                    reply = await raw_call(podd.sock("lead"), "events", {"follow": False})
                    result = reply["result"]
                    done = applied_turns(result["events"], "lead") == {"c1": [1, 2, 3]}
                    return result if done else None

                result = await wait_for(three)
                assert ({"c1": [1, 2, 3]}, False, 0) == (
                    applied_turns(result["events"], "lead"),
                    result["following"],
                    result["subscribers"],
                )
                bad = await raw_call(podd.sock("lead"), "events", {"follow": "yes"})
                assert "invalid_params" == bad["error"]["code"]
            finally:
                await stop(podd, "lead")


class EventsCommand:
    """``podd events --follow --json`` as a process, its lines read as they come."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.changed = trio.Event()

    async def read(self) -> None:
        assert self.proc.stdout is not None
        buffer = b""
        while data := await self.proc.stdout.receive_some():
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self.raw.append(line)
                self.lines.append(json.loads(line))
            self.changed.set()

    async def until(self, done: Any) -> None:
        while not done(self.lines):
            self.changed = trio.Event()
            await self.changed.wait()


async def start_events(podd: Podd, *args: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        podd.argv("events", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=podd.env,
        cwd=podd.root,
    )


def saw_turn(lines: list[dict[str, Any]], pod: str, about: str) -> bool:
    return any(
        line["pod"] == pod
        and line["event"]["kind"] == "turn_ended"
        and line["event"]["pod_name"] == about
        for line in lines
    )


class TestEventsCommand:
    """``podd events`` lists and follows the events of a whole tree."""

    async def test_lists_recent_events_by_time(self, podd: Podd) -> None:
        with trio.fail_after(60):
            await spawn(podd, "lead", "--agent", "echo lead")
            try:
                await spawn(podd, "c1", "--parent", "lead", "--agent", "echo hi")
                await spawn(podd, "g1", "--parent", "c1", "--agent", "echo hi")
                await turns(podd, "g1", 1)
                await turns(podd, "c1", 2)
                await turns(podd, "lead", 1)

                expected = [("lead", "lead"), ("lead", "c1"), ("c1", "c1"), ("c1", "g1")]
                expected.append(("g1", "g1"))

                async def listed() -> list[dict[str, Any]]:
                    # Events still on their way up when the turns ended come in later.
                    result = await podd("events", "--json")
                    assert 0 == result.code, result
                    lines = [json.loads(line) for line in result.stdout.splitlines()]
                    return lines if all(saw_turn(lines, p, a) for p, a in expected) else []

                lines = await wait_for(listed)
                assert all({"at", "pod", "event"} == set(line) for line in lines)
                assert sorted(line["at"] for line in lines) == [line["at"] for line in lines]
                # NAME: that pod and the pods below it.
                subtree = await podd("events", "c1", "--json")
                assert 0 == subtree.code
                pods = {json.loads(line)["pod"] for line in subtree.stdout.splitlines()}
                assert {"c1", "g1"} == pods
                human = await podd("events", "g1")
                assert 0 == human.code
                assert "pod 'g1' finished turn 1" in human.stdout
                missing = await podd("events", "nope")
                assert (3, "") == (missing.code, missing.stdout)
                bad = await podd("events", "No")
                assert 2 == bad.code
            finally:
                await stop(podd, "lead")

    async def test_follows_a_tree_of_13_pods_with_late_spawns(self, podd: Podd) -> None:
        with trio.fail_after(180):
            parents = {"root": None, "a": "root", "b": "root", "c": "root"}
            await spawn(podd, "root", "--agent", "echo hi")
            proc: trio.Process | None = None
            try:
                for child in ("a", "b", "c"):
                    await spawn(podd, child, "--parent", "root", "--agent", "echo hi")
                proc = await start_events(podd, "--follow", "--json")
                command = EventsCommand(proc)
                async with trio.open_nursery() as n:
                    n.start_soon(command.read)
                    # It is following once the root's recent events are out.
                    await command.until(lambda lines: any(x["pod"] == "root" for x in lines))
                    for child in ("a", "b", "c"):
                        for i in (1, 2, 3):
                            name = f"{child}{i}"
                            parents[name] = child
                            await spawn(podd, name, "--parent", child, "--agent", "echo hi")
                    assert 13 == len(parents)
                    async with trio.open_nursery() as busy:
                        for name in parents:
                            busy.start_soon(turns, podd, name, 1)

                    def complete(lines: list[dict[str, Any]]) -> bool:
                        return all(
                            saw_turn(lines, name, name)
                            and (parent is None or saw_turn(lines, parent, name))
                            for name, parent in parents.items()
                        )

                    await command.until(complete)
                    proc.send_signal(signal.SIGINT)
                    assert 0 == await proc.wait()
                assert len(command.raw) == len(set(command.raw)), "a line was printed twice"
                assert set(parents) == {line["pod"] for line in command.lines}
            finally:
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                await stop(podd, "root")

    async def test_following_a_pod_ends_when_it_is_gone(self, podd: Podd) -> None:
        with trio.fail_after(60):
            await spawn(podd, "lead")
            proc: trio.Process | None = None
            try:
                await spawn(podd, "c1", "--parent", "lead", "--agent", "echo hi")
                proc = await start_events(podd, "c1", "--follow", "--json")
                command = EventsCommand(proc)
                async with trio.open_nursery() as n:
                    n.start_soon(command.read)
                    await turns(podd, "c1", 1)
                    await command.until(lambda lines: saw_turn(lines, "c1", "c1"))
                    await stop(podd, "c1")
                    assert 0 == await proc.wait()
                kinds = [line["event"]["kind"] for line in command.lines]
                assert "shut_down" == kinds[-1]
                assert {"c1"} == {line["pod"] for line in command.lines}
            finally:
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                await stop(podd, "lead")


class Tmux:
    """A private tmux server (its socket in a directory of its own) with one session;
    ``kill`` ends both and removes the directory."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="podd-tmux", dir="/tmp")
        self.base = ["tmux", "-S", os.path.join(self.directory, "sock")]
        self.session = "top"

    async def run(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        result = await trio.run_process(
            [*self.base, *args], capture_stdout=True, capture_stderr=True, check=False, env=env
        )
        return str(result.stdout.decode())

    async def screen(self) -> str:
        return await self.run("capture-pane", "-p", "-t", self.session)

    async def until_screen(self, *texts: str) -> str:
        async def shown() -> str:
            screen = await self.screen()
            return screen if all(t in screen for t in texts) else ""

        return await wait_for(shown, interval=0.05)

    async def kill(self) -> None:
        await self.run("kill-server")
        shutil.rmtree(self.directory, ignore_errors=True)


def row(screen: str, name: str) -> str:
    """The screen line of pod ``name`` (after any tree drawing)."""
    for line in screen.splitlines():
        words = line.replace("├─", " ").replace("└─", " ").replace("│", " ").split()
        if words and words[0] == name:
            return line
    return ""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
class TestTop:
    """``podd top`` in a real 80x24 terminal."""

    async def test_shows_the_tree_updates_and_quits_on_q(self, podd: Podd) -> None:
        with trio.fail_after(90):
            await spawn(podd, "lead")
            tmux = Tmux()
            try:
                await spawn(podd, "w1", "--parent", "lead", "--agent", "echo done by w1")
                await spawn(podd, "w2", "--parent", "lead", "--agent", "sleep 600")
                await spawn(podd, "g1", "--parent", "w1", "--agent", "echo hi")
                await result_of(podd.sock("w2"), "send", {"text": "go"})
                # After it: its exit status and the terminal's line discipline flags.
                after = (
                    "s=$?; flags=$(stty -a | tr ' ;' '\\n\\n'"
                    " | grep -x -e -icanon -e icanon -e -echo -e echo);"
                    ' echo "podd-top-exit=$s" $flags; sleep 600'
                )
                command = [f"PODD_ROOT={podd.root}", *podd.argv("top")]
                top = "env " + " ".join(map(shlex.quote, command)) + "; " + after
                await tmux.run("new-session", "-d", "-s", tmux.session, "-x", "80", "-y", "24", top)
                screen = await tmux.until_screen("NAME", "STATE", "LAST EVENT", "g1", "running")
                assert "idle" in row(screen, "w1") and "running" in row(screen, "w2")
                assert row(screen, "lead") and row(screen, "g1")
                assert all(len(line) <= 80 for line in screen.splitlines())
                await turns(podd, "w1", 1)

                async def updated() -> str:
                    # w1's own row, and its parent's, whose last event is w1's turn.
                    screen = await tmux.screen()
                    own, parent = row(screen, "w1"), row(screen, "lead")
                    done = "finished turn 1" in own and " 1 " in own
                    return screen if done and "'w1' finished turn 1" in parent else ""

                await wait_for(updated, interval=0.05)
                # A smaller terminal: rows are cut, never wrapped.
                await tmux.run("resize-window", "-t", tmux.session, "-x", "50", "-y", "12")

                async def narrow() -> str:
                    screen = await tmux.screen()
                    lines = screen.splitlines()
                    fits = lines and max(len(line) for line in lines) <= 50
                    return screen if fits and row(screen, "g1") else ""

                screen = await wait_for(narrow, interval=0.05)
                assert 1 == sum(1 for line in screen.splitlines() if row(line, "w2"))
                await tmux.run("send-keys", "-t", tmux.session, "q")
                screen = await tmux.until_screen("podd-top-exit=")
                # The terminal is restored: canonical mode and echo are on again.
                assert "podd-top-exit=0 icanon echo" in screen
            finally:
                await tmux.kill()
                await stop(podd, "lead")


def test_top_refuses_without_a_terminal(podd: Podd) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "podd", "top"],
        capture_output=True,
        env=podd.env,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert 2 == result.returncode
    assert b"needs a terminal" in result.stderr


class TestTopModel:
    """What ``podd top`` makes of events and status replies, without a terminal."""

    def record(self, pod: str, at: float, **event: Any) -> Update:
        return Update("event", pod, {"seq": 1, "at": at, "pod": pod, "event": event})

    def test_own_turns_move_state_turn_and_cost_and_applied_events_notify(self) -> None:
        model = Model()
        parents: dict[str, str | None] = {"lead": None, "w1": "lead"}
        model.apply(Update("added", "lead", []), parents, 0.0)
        model.apply(
            Update(
                "status", "lead", {"state": "idle", "cost_usd": 1.5, "notifications_pending": 0}
            ),
            parents,
            0.0,
        )
        model.apply(
            self.record("lead", 10.0, kind="turn_started", pod_name="lead", turn=4), parents, 10.0
        )
        row = model.rows["lead"]
        assert ("running", 4, 10.0) == (row.state, row.turn, row.turn_started)
        refresh = model.apply(
            self.record("lead", 12.0, kind="turn_ended", pod_name="w1", turn=2, summary="ok"),
            parents,
            12.0,
        )
        assert (True, 1, "pod 'w1' finished turn 2: ok") == (refresh, row.notifs, row.last_event)
        model.apply(
            self.record("lead", 13.0, kind="turn_ended", pod_name="lead", turn=4, cost_usd=0.25),
            parents,
            13.0,
        )
        assert ("idle", 4, 1.75, "finished turn 4 ($0.2500)") == (
            row.state,
            row.turn,
            row.cost,
            row.last_event,
        )

    def test_the_tree_is_drawn_under_the_parents(self) -> None:
        model = Model()
        for name, parent in [("lead", None), ("b", "lead"), ("a", "lead"), ("a1", "a")]:
            model.row(name, parent)
        assert [("", "lead"), ("├─ ", "a"), ("│  └─ ", "a1"), ("└─ ", "b")] == [
            (prefix, row.name) for prefix, row in model.tree()
        ]

    @pytest.mark.parametrize(
        ("width", "names", "columns"),
        [
            (80, 12, ["TURN", "ELAPSED", "COST", "NOTIFS"]),
            (50, 12, ["TURN"]),
            (30, 8, []),
        ],
    )
    def test_narrow_terminals_keep_name_state_and_last_event(
        self, width: int, names: int, columns: list[str]
    ) -> None:
        name_width, middle = layout(12, width)
        assert (names, columns) == (name_width, [c[0] for c in middle])

    def test_a_screen_never_wraps(self) -> None:
        from rich.console import Console

        model = Model()
        model.row("lead").last_event = "x " * 200
        model.row("a-very-long-pod-name-indeed", "lead").last_event = "y" * 300
        console = Console(width=80, height=24, record=True, file=io.StringIO())
        console.print(render(model, "/r", 80, 24, 0.0))
        lines = console.export_text().splitlines()
        assert 4 == len(lines)
        assert all(len(line) <= 80 for line in lines)
