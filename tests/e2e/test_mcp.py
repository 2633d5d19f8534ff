"""``podd mcp`` end to end: the SDK's own MCP client drives real pods through the
server's tools, over the stdio of a real ``python -m podd mcp`` process (§11).

Each tool runs the CLI, so what is checked here is the translation: typed parameters
in, the CLI's JSON document out, a refusal as a tool error that names the podd code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from podd.mcp_server import config_for
from podd.mcp_server.runner import Completed, command_env, failure_of
from tests.conftest import Podd, pod_processes
from tests.e2e.support import wait_for

TOOLS = {
    "spawn_pod",
    "send_to_pod",
    "wait_for_pod",
    "pod_result",
    "read_pod_output",
    "list_pods",
    "pod_status",
    "read_notifications",
    "stop_pod",
    "reclaim_pods",
}

BOUND = 120.0
"""Seconds a test may take: each holds a few dozen CLI runs of a fraction of a second."""


@asynccontextmanager
async def mcp_session(
    podd: Podd, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized client session with ``podd --root ROOT mcp ARGS...``."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "podd", "--root", podd.root, "mcp", *args],
        env=podd.env if env is None else env,
        cwd=podd.root,
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """The structured result of a tool call that must succeed."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def refusal(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The text of a tool call that must fail."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    return " ".join(getattr(item, "text", "") for item in result.content)


def completed(status: int | None, stdout: str = "", stderr: str = "") -> Completed:
    return Completed(command="spawn", status=status, stdout=stdout, stderr=stderr, bound=60.0)


class TestConfigFor:
    """``config_for`` writes the ``--mcp-config`` document of a pod's agent."""

    def test_names_the_server_acting_as_the_pod(self) -> None:
        expected = {
            "mcpServers": {
                "podd": {
                    "command": "/opt/py",
                    "args": ["-m", "podd", "--root", "/run/podd", "mcp", "--as", "lead"],
                }
            }
        }
        assert expected == config_for("/run/podd", "lead", "/opt/py")

    async def test_importing_it_imports_neither_mcp_nor_trio(self) -> None:
        code = "import sys, podd.mcp_server; print(sorted({'mcp', 'trio'} & set(sys.modules)))"
        with trio.fail_after(30):
            proc = await trio.run_process(
                [sys.executable, "-c", code], capture_stdout=True, check=True
            )
        assert "[]" == proc.stdout.decode().strip()


class TestFailures:
    """A failed CLI run becomes a podd error code and the CLI's message."""

    def test_a_bracketed_code_is_the_code(self) -> None:
        run = completed(
            1, stderr="podd: cannot spawn 'a': a pod named 'a' is running [already_exists]\n"
        )
        failure = failure_of(run)
        assert ("already_exists", "cannot spawn 'a': a pod named 'a' is running") == (
            failure.code,
            failure.message,
        )

    def test_usage_is_invalid_params(self) -> None:
        stderr = "usage: podd spawn [-h] name\npodd spawn: error: unrecognized arguments: --x\n"
        assert (
            "invalid_params: unrecognized arguments: --x"
            == failure_of(completed(2, stderr=stderr)).text()
        )

    def test_exit_3_is_not_found(self) -> None:
        run = completed(3, stderr="podd: no pod named 'ghost' under /r\n")
        assert "not_found: no pod named 'ghost' under /r" == failure_of(run).text()

    def test_a_crash_gives_its_last_line(self) -> None:
        stderr = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: no x\n"
        assert "failed: ModuleNotFoundError: no x" == failure_of(completed(1, stderr=stderr)).text()

    def test_an_errored_turn_in_human_output_gives_stdout(self) -> None:
        run = completed(1, stdout="a: turn 1 errored: exit status 3\n")
        assert "failed: a: turn 1 errored: exit status 3" == failure_of(run).text()

    def test_a_run_past_its_bound_is_a_timeout(self) -> None:
        assert "timeout" == failure_of(completed(None)).code


TURN_ENV = {"POD_NAME": "lead", "POD_SOCKET": "/r/lead/sock", "POD_TURN": "4", "HOME": "/h"}
"""The environment of a turn of pod "lead" under the root /r."""


class TestEnvironment:
    """Commands run as the pod the server acts as, or as no pod at all."""

    def test_for_root_pods_no_turn_variable_is_left(self) -> None:
        assert {"HOME": "/h", "PODD_ROOT": "/r"} == command_env(TURN_ENV, "/r", None)

    def test_acting_as_the_turns_own_pod_keeps_the_turn(self) -> None:
        assert {**TURN_ENV, "PODD_ROOT": "/r"} == command_env(TURN_ENV, "/r", "lead")

    def test_acting_as_another_pod_names_it(self) -> None:
        expected = {"HOME": "/h", "PODD_ROOT": "/r", "POD_NAME": "w", "POD_SOCKET": "/r/w/sock"}
        assert expected == command_env(TURN_ENV, "/r", "w")


class TestServer:
    """The server over stdio: its tools, and its end."""

    async def test_lists_the_ten_tools_with_input_schemas(self, podd: Podd) -> None:
        with trio.fail_after(BOUND):
            async with mcp_session(podd) as session:
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert TOOLS == set(tools)
        for tool in tools.values():
            assert "object" == tool.input_schema["type"]
            assert tool.description
        spawn = tools["spawn_pod"].input_schema
        assert ["name"] == spawn["required"]
        assert {"agent", "task", "scope", "cwd", "driver", "env", "after"} <= set(
            spawn["properties"]
        )
        assert ["name", "text"] == tools["send_to_pod"].input_schema["required"]
        assert "required" not in tools["list_pods"].input_schema

    async def test_ends_on_eof_with_a_call_in_flight_and_writes_only_frames(
        self, podd: Podd
    ) -> None:
        """stdin closing ends the server at once (a client kills it 2 s later), even
        while a tool waits for a turn; the turn goes on in its pod."""
        frames: list[Any] = []
        replied = {1: trio.Event(), 2: trio.Event()}
        with trio.fail_after(BOUND):
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "podd", "--root", podd.root, "mcp"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=podd.env,
                cwd=podd.root,
            )
            assert proc.stdin is not None and proc.stdout is not None
            stdout = proc.stdout

            async def read_frames() -> None:
                buffer = b""
                while data := await stdout.receive_some():
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        frame = json.loads(line)
                        frames.append(frame)
                        if frame.get("id") in replied:
                            replied[frame["id"]].set()
                assert b"" == buffer

            async def request(id: int, method: str, params: Any) -> None:
                frame = {"jsonrpc": "2.0", "id": id, "method": method, "params": params}
                await proc.stdin.send_all(json.dumps(frame).encode() + b"\n")

            async def running() -> bool:
                status = await podd("status", "slow", "--json")
                return status.code == 0 and status.json()["state"] == "running"

            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_frames)
                    hello = {"name": "test", "version": "0"}
                    init = {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": hello,
                    }
                    await request(1, "initialize", init)
                    await replied[1].wait()
                    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                    await proc.stdin.send_all(json.dumps(initialized).encode() + b"\n")
                    spawn = {"name": "slow", "agent": "sleep 600"}
                    await request(2, "tools/call", {"name": "spawn_pod", "arguments": spawn})
                    await replied[2].wait()
                    send = {"name": "slow", "text": "go", "wait": True}
                    await request(3, "tools/call", {"name": "send_to_pod", "arguments": send})
                    await wait_for(running)
                    await proc.stdin.aclose()
                    assert 0 == await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    with trio.CancelScope(shield=True):
                        await proc.wait()
            assert all("2.0" == frame["jsonrpc"] for frame in frames)
            assert [1, 2] == [frame.get("id") for frame in frames]
            assert not frames[1]["result"].get("isError"), frames[1]
            assert await running()
            stopped = await podd("stop", "slow", "--json")
        assert 0 == stopped.code, stopped
        assert [] == pod_processes(podd.root)


class TestTree:
    """A tree built, driven and stopped through the tools."""

    async def test_spawn_send_notify_refuse_stop(self, podd: Podd) -> None:
        with trio.fail_after(BOUND):
            async with mcp_session(podd) as admin, mcp_session(podd, "--as", "lead") as lead:
                spawned = await call(admin, "spawn_pod", name="lead", agent="cat")
                assert {"name", "pid", "socket"} == set(spawned)
                assert "lead" == spawned["name"]

                child = await call(lead, "spawn_pod", name="worker", agent="echo done")
                assert "worker" == child["name"]
                status = await call(admin, "pod_status", name="worker")
                assert "lead" == status["parent"]

                record = await call(admin, "send_to_pod", name="worker", text="go", wait=True)
                assert ("finished", 1) == (record["outcome"], record["turn"])
                notes = (await call(lead, "read_notifications"))["notifications"]
                assert ["turn_ended"] == [note["event"]["kind"] for note in notes]
                assert "pod 'worker' finished turn 1" in notes[0]["text"]
                assert [] == (await call(lead, "read_notifications"))["notifications"]

                output = await call(admin, "read_pod_output", name="worker")
                assert "done" in output["output"]
                assert not output["truncated"]
                cut = await call(admin, "read_pod_output", name="worker", max_chars=2)
                assert cut["truncated"] and len(cut["output"]) == 2

                pods = (await call(admin, "list_pods"))["pods"]
                assert {"lead", "worker"} == {pod["name"] for pod in pods}

                assert "already_exists" in await refusal(lead, "spawn_pod", name="worker")
                assert "already_exists" in await refusal(admin, "spawn_pod", name="lead")
                assert "not_found" in await refusal(admin, "send_to_pod", name="ghost", text="hi")
                assert "not_found" in await refusal(admin, "pod_status", name="ghost")
                assert "invalid_params" in await refusal(admin, "spawn_pod", name="Bad")
                text = await refusal(admin, "spawn_pod", name="shell", agent="cat", mcp=True)
                assert "invalid_params" in text
                text = await refusal(lead, "spawn_pod", name="w2", scope=["/:write"])
                assert "scope_not_subset" in text

                stopped = await call(admin, "stop_pod", name="lead")
                assert {"pod": "lead", "outcome": "clean"} == stopped
                assert "not_found" in await refusal(admin, "pod_status", name="worker")
                assert [] == (await call(admin, "list_pods"))["pods"]
                assert {"reclaimed": []} == await call(admin, "reclaim_pods")
        assert [] == pod_processes(podd.root)

    async def test_pod_name_from_the_environment_is_the_pod_acted_as(self, podd: Podd) -> None:
        with trio.fail_after(BOUND):
            async with mcp_session(podd) as admin:
                await call(admin, "spawn_pod", name="boss")
                async with mcp_session(podd, env={**podd.env, "POD_NAME": "boss"}) as boss:
                    await call(boss, "spawn_pod", name="helper")
                status = await call(admin, "pod_status", name="helper")
                assert "boss" == status["parent"]
                await call(admin, "stop_pod", name="boss")
        assert [] == pod_processes(podd.root)


class TestTurnRecords:
    """Turn records through send_to_pod, wait_for_pod and pod_result; the queue."""

    async def test_send_wait_returns_the_record_even_of_an_errored_turn(self, podd: Podd) -> None:
        with trio.fail_after(BOUND):
            async with mcp_session(podd) as session:
                await call(session, "spawn_pod", name="ok", agent="echo done")
                await call(session, "spawn_pod", name="bad", agent="echo no; exit 3")
                try:
                    record = await call(session, "send_to_pod", name="ok", text="go", wait=True)
                    assert ("finished", 1) == (record["outcome"], record["turn"])
                    assert "done" in record["result"]
                    record = await call(session, "send_to_pod", name="bad", text="go", wait=True)
                    assert ("errored", 3) == (record["outcome"], record["exit_code"])
                    record = await call(session, "pod_result", name="ok", turn=1)
                    assert "finished" == record["outcome"]
                    record = await call(session, "pod_result", name="bad")
                    assert ("errored", 1) == (record["outcome"], record["turn"])
                    output = await call(session, "read_pod_output", name="bad", turn=1)
                    assert "no\n" == output["output"]
                    record = await call(
                        session, "send_to_pod", name="ok", text="go", wait=True, until="done"
                    )
                    assert ("finished", 1) == (record["outcome"], record["iterations"])
                    assert "not_found" in await refusal(session, "pod_result", name="ok", turn=9)
                finally:
                    await call(session, "stop_pod", name="ok")
                    await call(session, "stop_pod", name="bad")
        assert [] == pod_processes(podd.root)

    async def test_wait_for_pod_returns_the_task_record(self, podd: Podd) -> None:
        with trio.fail_after(BOUND):
            async with mcp_session(podd) as session:
                await call(session, "spawn_pod", name="tasked", agent="echo done", task="go")
                try:
                    waited = await call(session, "wait_for_pod", name="tasked", timeout_s=60)
                    assert "tasked" == waited["pod"]
                    assert ("finished", 1) == (
                        waited["last_turn"]["outcome"],
                        waited["last_turn"]["turn"],
                    )
                    assert "not_found" in await refusal(session, "wait_for_pod", name="ghost")
                finally:
                    await call(session, "stop_pod", name="tasked")
        assert [] == pod_processes(podd.root)

    async def test_send_queue_queues_behind_a_running_turn(self, podd: Podd) -> None:
        with trio.fail_after(BOUND):
            async with mcp_session(podd) as session:
                await call(session, "spawn_pod", name="busy", agent="cat >/dev/null; sleep 600")
                try:
                    sent = await call(session, "send_to_pod", name="busy", text="first")
                    assert (1, False) == (sent["turn"], sent["queued"])
                    text = await refusal(session, "send_to_pod", name="busy", text="second")
                    assert "already_running" in text
                    sent = await call(
                        session, "send_to_pod", name="busy", text="third", queue=True, priority=2
                    )
                    assert (True, 1) == (sent["queued"], sent["position"])
                    status = await call(session, "pod_status", name="busy")
                    assert [2] == [item["priority"] for item in status["queue"]]
                    text = await refusal(session, "wait_for_pod", name="busy", timeout_s=0.1)
                    assert "still busy" in text
                finally:
                    await call(session, "stop_pod", name="busy")
        assert [] == pod_processes(podd.root)
