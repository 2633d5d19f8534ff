"""Agents and turns end to end: real agent commands in real pods (issue 3).

A turn runs ``/bin/sh -c CMD`` with the pending notifications and the input on its
stdin; it ends once, as finished or errored, and nothing of it outlives it.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import psutil
import trio

from tests.conftest import Podd
from tests.e2e.support import RawConnection, result_of, wait_for

PODD = f"{shlex.quote(sys.executable)} -m podd"
"""The CLI as an agent calls it (the venv's bin directory need not be on PATH)."""


async def spawn(podd: Podd, *args: str) -> None:
    result = await podd("spawn", *args)
    assert (0, "") == (result.code, result.stderr), result


async def status(podd: Podd, name: str) -> Any:
    return await result_of(podd.sock(name), "status")


async def output(podd: Podd, name: str) -> str:
    result = await podd("output", name)
    assert 0 == result.code, result
    return result.stdout


async def pending(podd: Podd, name: str) -> int:
    return int((await status(podd, name))["notifications_pending"])


async def turn_over(podd: Podd, name: str, turns: int) -> Any:
    """``status`` of ``name`` once it has ended turn ``turns`` and is idle."""

    async def check() -> Any:
        doc = await status(podd, name)
        last = doc["last_turn"]
        return doc if doc["state"] == "idle" and last and last["turn"] == turns else None

    return await wait_for(check)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def in_group(pgid: int) -> list[int]:
    """Pids of the live processes in process group ``pgid``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return found


def sleepers(root: str) -> list[int]:
    """Pids of live ``sleep 600`` processes started by a turn of a pod under ``root``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if (
                proc.info["cmdline"] == ["sleep", "600"]
                and proc.info["status"] != psutil.STATUS_ZOMBIE
                and proc.environ().get("PODD_ROOT") == root
            ):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


class TestSend:
    """``send`` runs one turn; ``--wait`` exits 0 if it finished and 1 if it errored."""

    async def test_cat_gets_the_input(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "w", "--agent", "cat")
            sent = await podd("send", "w", "hello", "--wait")
            assert 0 == sent.code, sent
            assert "hello\n" == await output(podd, "w")
            last = (await status(podd, "w"))["last_turn"]
            assert (1, True, 0) == (
                last["turn"],
                (last["outcome"] == "finished"),
                last["exit_code"],
            )
            assert 0 == (await podd("stop", "w")).code

    async def test_exit_status_3_is_an_error(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "e", "--agent", "exit 3")
            sent = await podd("send", "e", "x", "--wait")
            assert 1 == sent.code, sent
            doc = await status(podd, "e")
            last = doc["last_turn"]
            assert (1, False, 3) == (
                last["turn"],
                (last["outcome"] == "finished"),
                last["exit_code"],
            )
            assert "status 3" in last["message"]
            assert 1 == doc["turns"]
            status_cli = await podd("status", "e")
            assert "status 3" in status_cli.stdout
            assert 0 == (await podd("stop", "e")).code

    async def test_turn_timeout_kills_the_whole_group(self, podd: Podd, root: str) -> None:
        with trio.fail_after(90):
            # The agent would sleep ten minutes: the turn ends long before only because
            # its one-second timeout killed the whole group.
            await spawn(podd, "s", "--agent", "sleep 600 & sleep 600", "--turn-timeout", "1")
            results = []

            async def send() -> None:
                started = trio.current_time()
                results.append(await podd("send", "s", "x", "--wait"))
                results.append(trio.current_time() - started)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                marker = os.path.join(root, "s", "turn.pid")

                async def group() -> list[int]:
                    try:
                        with open(marker) as f:  # noqa: ASYNC230
                            pgid = int(f.read().split()[0])
                    except (OSError, ValueError, IndexError):
                        return []
                    members = in_group(pgid)
                    return [pgid, *members] if len(sleepers(root)) == 2 else []

                pgid, *members = await wait_for(group)
            sent, elapsed = results
            assert 1 == sent.code, sent
            assert elapsed < 60, elapsed
            last = (await status(podd, "s"))["last_turn"]
            assert (False, True) == (
                (last["outcome"] == "finished"),
                "timed out" in last["message"],
            )
            assert ([], [], []) == (
                [p for p in members if alive(p)],
                in_group(pgid),
                sleepers(root),
            )
            assert 0 == (await podd("stop", "s")).code

    async def test_second_send_during_a_turn_is_already_running(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "s", "--agent", "sleep 60")
            first = await podd("send", "s", "x")
            assert (0, "s: turn 1 started\n") == (first.code, first.stdout)
            second = await podd("send", "s", "y")
            assert (1, True) == (second.code, "already_running" in second.stderr), second
            waiting = await podd("send", "s", "y", "--wait")
            assert (1, True) == (waiting.code, "already_running" in waiting.stderr)
            doc = await status(podd, "s")
            assert ("running", 1, 1) == (doc["state"], doc["turns"], doc["current_turn"])
            assert 0 == (await podd("stop", "s")).code

    async def test_pod_without_agent_answers_no_agent(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "sup")
            for args in (("send", "sup", "x"), ("send", "sup", "x", "--wait")):
                sent = await podd(*args)
                assert (1, True) == (sent.code, "no_agent" in sent.stderr), sent
            assert 0 == (await status(podd, "sup"))["turns"]
            assert 0 == (await podd("stop", "sup")).code


class TestNotificationsInTurns:
    """Pending notifications go, one line each, before the input of the next turn, and
    are drained by it."""

    async def test_notifications_precede_the_input(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "p", "--agent", "cat")
            await spawn(podd, "k", "--parent", "p", "--agent", "true")
            assert 0 == (await podd("send", "k", "x", "--wait")).code

            async def notified() -> bool:
                return await pending(podd, "p") == 1

            await wait_for(notified)
            assert 0 == (await podd("send", "p", "X", "--wait")).code
            assert "pod 'k' finished turn 1\nX\n" == await output(podd, "p")
            left = await podd("notifications", "p", "--json")
            assert (0, {"notifications": []}) == (left.code, left.json())
            assert 0 == (await podd("stop", "p")).code

    async def test_spawn_and_notifications_from_inside_a_turn(
        self, podd: Podd, workdir: str
    ) -> None:
        agent = (
            'read cmd; case "$cmd" in '
            f"spawn) {PODD} spawn kid --agent true --scope {shlex.quote(workdir)}:read ;; "
            f"wait) {PODD} send kid hi --wait && "
            f"for i in $(seq 200); do {PODD} notifications --peek | grep -q kid && break; "
            f"sleep 0.05; done; {PODD} notifications ;; "
            "esac"
        )
        with trio.fail_after(40):
            await spawn(podd, "p", "--agent", agent, "--cwd", workdir)
            assert 0 == (await podd("send", "p", "spawn", "--wait")).code
            pods = {p["name"]: p["parent"] for p in (await podd("ls", "--json")).json()["pods"]}
            assert {"p": None, "kid": "p"} == pods
            children = (await status(podd, "p"))["children"]
            expected = [("kid", podd.sock("p"), [{"target": workdir, "permission": "read"}])]
            actual = [
                (
                    r["pod_name"],
                    r["callback_address"],
                    [{k: s[k] for k in ("target", "permission")} for s in r["scope_delegated"]],
                )
                for r in children
            ]
            assert expected == actual

            assert 0 == (await podd("send", "p", "wait", "--wait")).code
            lines = (await output(podd, "p")).splitlines()
            assert "pod 'kid' finished turn 1" == lines[-1], lines
            left = await podd("notifications", "p", "--json")
            assert {"notifications": []} == left.json()
            assert 0 == (await podd("stop", "p")).code

    async def test_turn_environment(self, podd: Podd, root: str) -> None:
        agent = "env | grep -E '^(POD_|PODD_ROOT=)' | LC_ALL=C sort"
        with trio.fail_after(30):
            await spawn(podd, "p", "--agent", agent)
            await spawn(podd, "k", "--parent", "p", "--agent", agent)
            assert 0 == (await podd("send", "p", "x", "--wait")).code
            for _ in range(2):
                assert 0 == (await podd("send", "k", "x", "--wait")).code

            def block(name: str, turn: int, parent: str | None) -> str:
                env = {
                    "POD_NAME": name,
                    "POD_SOCKET": podd.sock(name),
                    "PODD_ROOT": root,
                    "POD_TURN": str(turn),
                }
                if parent:
                    env["POD_PARENT"] = parent
                return "".join(f"{k}={v}\n" for k, v in sorted(env.items()))

            assert block("p", 1, None) == await output(podd, "p")
            assert block("k", 1, "p") + block("k", 2, "p") == await output(podd, "k")
            assert 0 == (await podd("stop", "p")).code


class TestStartAndWake:
    """``--task`` runs a first turn at start; ``--wake-on-notify`` runs a turn when a
    notification arrives, with the notifications as its input."""

    async def test_task_runs_a_first_turn(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "w", "--agent", "cat", "--task", "first task")
            doc = await turn_over(podd, "w", 1)
            assert (1, True) == (doc["turns"], (doc["last_turn"]["outcome"] == "finished"))
            assert "first task\n" == await output(podd, "w")
            assert 0 == (await podd("stop", "w")).code

    async def test_wake_on_notify(self, podd: Podd) -> None:
        with trio.fail_after(30):
            await spawn(podd, "p", "--agent", "cat", "--wake-on-notify")
            await spawn(podd, "k", "--parent", "p", "--agent", "true")
            assert 0 == (await status(podd, "p"))["turns"]
            assert 0 == (await podd("send", "k", "x", "--wait")).code
            doc = await turn_over(podd, "p", 1)
            assert (1, 0) == (doc["turns"], doc["notifications_pending"])
            assert "pod 'k' finished turn 1\n" == await output(podd, "p")
            assert 0 == (await podd("stop", "p")).code


class TestManyTurns:
    """200 back-to-back turns are all recorded and leak neither processes nor
    descriptors."""

    async def test_200_turns(self, podd: Podd) -> None:
        with trio.fail_after(60):
            await spawn(podd, "t", "--agent", "true")
            pid = podd.pid("t")
            fds = {}
            async with await RawConnection.open(podd.sock("t")) as conn:
                for turn in range(1, 201):
                    reply = await conn.request("send", {"text": "x", "wait": True}, turn)
                    assert (turn, True) == (
                        reply["result"]["turn"],
                        (reply["result"]["outcome"] == "finished"),
                    )
                    if turn in (20, 200):
                        fds[turn] = len(os.listdir(f"/proc/{pid}/fd"))
            doc = await status(podd, "t")
            assert (200, 200, True) == (
                doc["turns"],
                doc["last_turn"]["turn"],
                (doc["last_turn"]["outcome"] == "finished"),
            )
            assert [] == psutil.Process(pid).children(recursive=True)
            assert fds[200] <= fds[20], fds
            assert 0 == (await podd("stop", "t")).code


class TestShellPrograms:
    """Any POSIX shell program is an agent; spawn refuses only what surely cannot run,
    and a refused spawn leaves nothing behind."""

    async def test_compound_commands_run_as_agents(
        self, podd: Podd, root: str, workdir: str
    ) -> None:
        agents = {
            "group": '{ echo "=== turn $POD_TURN"; cat; } >> log.group',
            "subshell": "( echo sub; cat ) >> log.subshell",
            "branch": 'if [ -n "$POD_NAME" ]; then cat >> log.branch; fi',
            "loop": "for i in 1 2; do echo $i; done > log.loop",
            "redirect-first": ">> log.redirect-first cat",
            "function": "f() { cat; }; f >> log.function",
        }
        with trio.fail_after(60):
            for name, agent in agents.items():
                await spawn(podd, name, "--cwd", workdir, "--agent", agent)
                sent = await podd("send", name, "hello", "--wait")
                assert 0 == sent.code, (name, sent)
            logs = {}
            for name in agents:
                with open(os.path.join(workdir, f"log.{name}")) as f:  # noqa: ASYNC230
                    logs[name] = f.read()
                assert 0 == (await podd("stop", name)).code
        assert {
            "group": "=== turn 1\nhello\n",
            "subshell": "sub\nhello\n",
            "branch": "hello\n",
            "loop": "1\n2\n",
            "redirect-first": "hello\n",
            "function": "hello\n",
        } == logs

    async def test_what_cannot_run_is_refused_and_leaves_nothing(
        self, podd: Podd, root: str
    ) -> None:
        with trio.fail_after(60):
            await spawn(podd, "boss")
            for args in (
                ("bad1", "--agent", "if true; then cat"),
                ("bad2", "--agent", "no-such-agent-command --flag"),
                ("bad3", "--parent", "boss", "--agent", "{ cat;"),
                ("bad4", "--parent", "boss", "--agent", "FOO=1 no-such-agent-command"),
            ):
                refused = await podd("spawn", *args)
                assert 1 == refused.code, refused
                assert ("syntax error" in refused.stderr) or (
                    "not found on PATH" in refused.stderr
                ), refused
            assert ["boss"] == sorted(n for n in os.listdir(root) if not n.startswith("."))
            assert [] == (await status(podd, "boss"))["children"]
            assert 0 == (await podd("stop", "boss")).code
