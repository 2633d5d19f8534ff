"""Trust boundaries (issue 9): who may speak for a pod, what a name may be, and which
directories podd agrees to use.

- A ``pod_event`` (or ``flush_events``/``adopt``) is accepted only from the process of
  the pod it speaks for: the test process, another process and the pod's own agent get
  ``forbidden``, and nothing changes (registry file bytes, notifications, held scope).
- A name with ``/``, ``..``, NUL or 300 characters, wherever the CLI or the wire takes a
  name, is refused and nothing is created outside the root.
- A root or pod directory that others may read is refused at start-up, with a message
  naming its mode; sockets are 0600.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import orjson
import pytest
import trio

from tests.conftest import Podd, kill_everything, pod_processes
from tests.e2e.support import RawConnection, raw_call, result_of, wait_for

NAME_RULE = "^[a-z0-9][a-z0-9_.-]{0,62}$"


def error_code(frame: Any) -> Any:
    error = frame.get("error") if isinstance(frame, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def snapshot(directory: str, skip: str | None = None) -> list[tuple[str, int]]:
    """Every path under ``directory`` (``skip`` and what it holds left out), with its
    mode: what a test compares before and after."""
    found = []
    for parent, dirs, files in os.walk(directory):
        if skip is not None:
            dirs[:] = [d for d in dirs if os.path.join(parent, d) != skip]
        for entry in dirs + files:
            path = os.path.join(parent, entry)
            found.append((os.path.relpath(path, directory), os.lstat(path).st_mode))
    return sorted(found)


# --- Forged events ------------------------------------------------------------------

FORGE_SCRIPT = """\
import json, os, socket, sys

def forged(me):
    return [
        {"kind": "turn_ended", "pod_name": me},
        {"kind": "turn_ended", "pod_name": me, "turn": 7, "incarnation": 1, "seq": 10**6},
        {"kind": "errored", "pod_name": me, "message": "forged"},
        {"kind": "shut_down", "pod_name": me},
        {"kind": "shut_down", "pod_name": me, "incarnation": 99, "seq": 1},
        {"kind": "scope_sub_delegated", "parent_pod": me, "sub_pod": "evil",
         "sub_socket": "/tmp/evil", "sub_pid": 1,
         "scope": [{"target": "/", "permission": "write", "recursive": True}]},
        {"kind": "future_kind", "pod_name": me},
    ]

def frames(me, parent):
    out = [{"method": "pod_event", "params": e, "id": i} for i, e in enumerate(forged(me))]
    out += [{"method": "pod_event", "params": e} for e in forged(me)]  # notifications
    out += [
        {"method": "pod_event", "params": {"kind": "turn_ended", "pod_name": parent}, "id": 20},
        {"method": "pod_event", "params": {"kind": "shut_down", "pod_name": "nobody"}, "id": 21},
        {"method": "flush_events", "params": {"pod_name": me}, "id": 22},
        {"method": "adopt", "id": 23,
         "params": {"pod_name": me, "previous_parent": parent, "socket": "/tmp/evil"}},
        {"method": "ping", "id": 99},
    ]
    return out

def forge(sock_path, me, parent):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(sock_path)
    sock.sendall(b"".join(json.dumps(f).encode() + b"\\n" for f in frames(me, parent)))
    data = b""
    while b'"id":99' not in data.replace(b" ", b""):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return [json.loads(line) for line in data.splitlines()]

if __name__ == "__main__":
    if len(sys.argv) > 1:
        replies = forge(*sys.argv[1:4])
    else:  # an agent's turn: forge for the pod the agent runs in
        parent = os.environ["POD_PARENT"]
        sock_path = os.path.join(os.environ["PODD_ROOT"], parent, "sock")
        replies = forge(sock_path, os.environ["POD_NAME"], parent)
    print("REPLIES " + json.dumps(replies))
"""


def forged_verdicts(replies: list[Any]) -> list[Any]:
    """The replies to the forged frames, in a comparable form: ``(id, code)``."""
    return [(r.get("id"), error_code(r) or "result") for r in replies]


EXPECTED_VERDICTS = (
    [(i, "forbidden") for i in range(7)]
    # Frames without an id get an error frame too, with a null id.
    + [(None, "forbidden")] * 7
    + [(20, "forbidden"), (21, "forbidden"), (22, "forbidden"), (23, "forbidden")]
    + [(99, "result")]
)
"""Everything forged is refused; the closing ``ping`` is answered."""


@attrs.frozen
class Tree:
    """The module's tree: the CLI for its root, the work directory, the forger."""

    podd: Podd
    root: str
    workdir: str
    script: str


@pytest.fixture(scope="module")
def tree() -> Iterator[Tree]:
    """``p`` (write on a work directory) with a child ``c`` that holds write on a part of
    it and whose agent forges events as ``c``; stopped cleanly at the end."""
    base = tempfile.mkdtemp(prefix="podd-s", dir="/tmp")
    os.chmod(base, 0o700)
    root, workdir = os.path.join(base, "r"), os.path.join(base, "w")
    os.mkdir(root, 0o700)
    os.makedirs(os.path.join(workdir, "sub"))
    script = os.path.join(workdir, "forge.py")
    with open(script, "w") as f:
        f.write(FORGE_SCRIPT)
    podd = Podd(root)
    try:
        spawned = podd.run_sync("spawn", "p", "--scope", f"{workdir}:write", "--cwd", workdir)
        assert 0 == spawned.code, spawned
        child = podd.run_sync(
            "spawn", "c", "--parent", "p", "--scope", f"{workdir}/sub:write",
            "--agent", f"{sys.executable} {script}", "--cwd", workdir,
        )  # fmt: skip
        assert 0 == child.code, child
        yield Tree(podd, root, workdir, script)
        stopped = podd.run_sync("stop", "p")
        assert (0, "clean\n") == (stopped.code, stopped.stdout), stopped
    finally:
        leftovers = kill_everything(root)
        shutil.rmtree(base, ignore_errors=True)
    assert [] == leftovers


def read_or_none(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


async def parent_state(tree: Tree) -> tuple[bytes | None, Any, Any]:
    """What a forged event could change: ``p``'s registry file (its bytes), its
    notifications (peeked) and its children as ``status`` reports them."""
    registry = read_or_none(os.path.join(tree.root, "p", "spawned_pods.json"))
    sock = tree.podd.sock("p")
    notifications = (await result_of(sock, "notifications", {"peek": True}))["notifications"]
    return registry, notifications, (await result_of(sock, "status"))["children"]


async def assert_c_still_holds_its_write_scope(tree: Tree) -> None:
    """A spawn that wants ``c``'s write scope is refused: ``c`` is still registered."""
    params = {"name": "d", "scope": [{"target": f"{tree.workdir}/sub", "permission": "write"}]}
    reply = await raw_call(tree.podd.sock("p"), "spawn", params)
    assert "write_conflict" == error_code(reply), reply


class TestForgedEventsFromTheTestProcess:
    """Events and acks forged by a process that is no pod get ``forbidden`` and change
    nothing."""

    async def test_refused_and_nothing_changes(self, tree: Tree) -> None:
        namespace: dict[str, Any] = {"__name__": "forge"}
        exec(compile(FORGE_SCRIPT, "forge.py", "exec"), namespace)
        before = await parent_state(tree)
        with trio.fail_after(20):
            async with await RawConnection.open(tree.podd.sock("p")) as conn:
                frames = namespace["frames"]("c", "p")
                await conn.stream.send_all(b"".join(orjson.dumps(f) + b"\n" for f in frames))
                replies = [await conn.receive() for _ in EXPECTED_VERDICTS]
            await assert_c_still_holds_its_write_scope(tree)
        assert EXPECTED_VERDICTS == forged_verdicts(replies)
        assert before == await parent_state(tree)


class TestForgedEventsFromAnotherProcess:
    """Events forged by a separate process (not a pod) get ``forbidden`` and change
    nothing."""

    async def test_refused_and_nothing_changes(self, tree: Tree) -> None:
        before = await parent_state(tree)
        with trio.fail_after(20):
            forger = await trio.run_process(
                [sys.executable, tree.script, tree.podd.sock("p"), "c", "p"],
                capture_stdout=True,
            )
            await assert_c_still_holds_its_write_scope(tree)
        replies = orjson.loads(forger.stdout.decode().removeprefix("REPLIES "))
        assert EXPECTED_VERDICTS == forged_verdicts(replies)
        assert before == await parent_state(tree)


class TestForgedEventsFromTheChildsAgent:
    """A child's own agent, forging events as its pod, gets ``forbidden``: only the
    pod's process speaks for the pod, and the parent sees just the genuine end of the
    turn."""

    async def test_refused_and_only_the_genuine_event_arrives(self, tree: Tree) -> None:
        sock = tree.podd.sock("p")
        with trio.fail_after(30):
            await result_of(sock, "notifications")  # drained: what follows is this test's
            registry_before = (await parent_state(tree))[2]
            turn = await tree.podd("send", "c", "forge", "--wait")
            assert 0 == turn.code, turn

            async def genuine() -> Any:
                found = (await result_of(sock, "notifications", {"peek": True}))["notifications"]
                return found if found else None

            notifications = await wait_for(genuine)
            output = await tree.podd("output", "c")
            await assert_c_still_holds_its_write_scope(tree)
            children = (await parent_state(tree))[2]
        line = next(x for x in output.stdout.splitlines() if x.startswith("REPLIES "))
        assert EXPECTED_VERDICTS == forged_verdicts(orjson.loads(line.removeprefix("REPLIES ")))
        assert [("turn_ended", "c")] == [
            (n["event"]["kind"], n["event"]["pod_name"]) for n in notifications
        ]
        stable = ("pod_name", "pid", "start_time", "scope_delegated", "socket_path")
        assert [[r[k] for k in stable] for r in registry_before] == [
            [r[k] for k in stable] for r in children
        ]


# --- Names --------------------------------------------------------------------------

ESCAPE = f"esc-{os.getpid()}"
"""A name no other test uses: what a path escape would create, two levels up."""


def escaped() -> bool:
    """Whether anything appeared where ``../../ESCAPE`` points from a root under /tmp."""
    return os.path.lexists(os.path.join("/tmp", ESCAPE))


CLI_NAMES = ["a/b", "..", f"../../{ESCAPE}", "x" * 300]
"""Bad names a shell can pass (argv cannot hold NUL: that is tested on the wire)."""

WIRE_NAMES = [*CLI_NAMES, "/", "../esc", "a/../../esc", "ok/", "a\x00b", "\x00", "ok\x00/../.."]

CLI_COMMANDS = {
    "spawn": ("spawn", "{}"),
    "spawn --parent": ("spawn", "ok", "--parent", "{}"),
    "status": ("status", "{}"),
    "send": ("send", "{}", "hello"),
    "stop": ("stop", "{}"),
    "notifications": ("notifications", "{}"),
    "output": ("output", "{}"),
    "reclaim": ("reclaim", "{}"),
    "restart": ("restart", "{}"),
}
"""Every place the CLI takes a pod name; ``{}`` stands for the name."""


@attrs.frozen
class Sandbox:
    """A runtime root inside a private directory, with a live pod ``p``."""

    podd: Podd
    base: str
    root: str

    def outside(self) -> list[tuple[str, int]]:
        return snapshot(self.base, skip=self.root)

    def inside(self) -> list[str]:
        return sorted(os.listdir(self.root))


@pytest.fixture
async def sandbox(root: str) -> AsyncIterator[Sandbox]:
    """``root`` is the private directory; the runtime root is ``root/r``."""
    runtime = os.path.join(root, "r")
    os.mkdir(runtime, 0o700)
    podd = Podd(runtime)
    try:
        with trio.fail_after(30):
            assert 0 == (await podd("spawn", "p")).code
        yield Sandbox(podd, root, runtime)
        with trio.fail_after(30):
            assert 0 == (await podd("stop", "p")).code
    finally:
        kill_everything(runtime)


def fill(template: tuple[str, ...], name: str) -> list[str]:
    position = template.index("{}")
    return [*template[:position], name, *template[position + 1 :]]


class TestBadNamesOnTheCommandLine:
    """Every command refuses a name with ``/``, ``..`` or 300 characters with exit
    status 2 and the rule, and creates nothing, inside the root or out of it."""

    async def test_every_command(self, sandbox: Sandbox) -> None:
        outside, inside = sandbox.outside(), sandbox.inside()
        commands = [
            (command, name, fill(template, name))
            for command, template in CLI_COMMANDS.items()
            for name in CLI_NAMES
        ]
        results: dict[int, Any] = {}
        limiter = trio.CapacityLimiter(6)

        async def run(index: int, argv: list[str]) -> None:
            async with limiter:
                results[index] = await sandbox.podd("--root", sandbox.root, *argv)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for index, (_, _, argv) in enumerate(commands):
                    nursery.start_soon(run, index, argv)
        wrong = [
            (command, name, results[i])
            for i, (command, name, _) in enumerate(commands)
            if (results[i].code, NAME_RULE in results[i].stderr) != (2, True)
        ]
        assert [] == wrong
        assert (outside, inside) == (sandbox.outside(), sandbox.inside())
        assert not escaped()


class TestBadNamesOnTheWire:
    """Every method that takes a pod name refuses a bad one with an error (never
    ``internal``), and nothing is created, inside the root or out of it; the pod's
    registry stays as it was."""

    async def refused(
        self, sandbox: Sandbox, method: str, params_for: Any
    ) -> list[tuple[str, Any, Any]]:
        """``(name, code, message)`` of each reply, after checking nothing changed."""
        outside, inside = sandbox.outside(), sandbox.inside()
        registry = os.path.join(sandbox.root, "p", "spawned_pods.json")
        before = read_or_none(registry)
        replies = []
        with trio.fail_after(30):
            async with await RawConnection.open(sandbox.podd.sock("p")) as conn:
                for name in WIRE_NAMES:
                    reply = await conn.request(method, params_for(name))
                    error = reply.get("error") or {}
                    replies.append((name, error.get("code"), error.get("message", "")))
        after = read_or_none(registry)
        assert (outside, inside, before) == (sandbox.outside(), sandbox.inside(), after)
        assert not escaped()
        return replies

    async def test_spawn(self, sandbox: Sandbox) -> None:
        replies = await self.refused(sandbox, "spawn", lambda name: {"name": name})
        assert [(n, "invalid_name", True) for n in WIRE_NAMES] == [
            (n, code, NAME_RULE in message) for n, code, message in replies
        ]

    @pytest.mark.parametrize(
        ("method", "params_for"),
        [
            ("flush_events", lambda name: {"pod_name": name}),
            ("adopt", lambda name: {"pod_name": name, "previous_parent": "p", "socket": "/x"}),
            ("adopt", lambda name: {"pod_name": "p", "previous_parent": name, "socket": name}),
        ],
        ids=["flush_events", "adopt", "adopt-previous_parent"],
    )
    async def test_names_of_other_pods(
        self, sandbox: Sandbox, method: str, params_for: Any
    ) -> None:
        replies = await self.refused(sandbox, method, params_for)
        assert [] == [r for r in replies if r[1] is None or r[1] == "internal"]

    async def test_restart_child(self, sandbox: Sandbox) -> None:
        replies = await self.refused(sandbox, "restart_child", lambda name: {"name": name})
        assert [(n, "invalid_name", True) for n in WIRE_NAMES] == [
            (n, code, NAME_RULE in message) for n, code, message in replies
        ]


# --- Private directories --------------------------------------------------------------


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


class TestOpenDirectoriesAreRefused:
    """A root or pod directory that others may read is refused at spawn (exit 1, the
    message names its mode) and left exactly as it was, with no process started."""

    @pytest.mark.parametrize("mode", [0o750, 0o755])
    async def test_root(self, podd: Podd, root: str, mode: int) -> None:
        runtime = os.path.join(root, "r")
        os.mkdir(runtime)
        os.chmod(runtime, mode)
        with trio.fail_after(30):
            result = await podd("--root", runtime, "spawn", "x")
        assert (1, True) == (result.code, f"{mode:o}" in result.stderr), result
        assert ([], mode) == (os.listdir(runtime), mode_of(runtime))
        assert [] == pod_processes(runtime)

    async def test_pod_directory_of_a_root_pod(self, podd: Podd, root: str) -> None:
        directory = os.path.join(root, "x")
        os.mkdir(directory)
        os.chmod(directory, 0o750)
        os.close(os.open(os.path.join(directory, "keep"), os.O_CREAT | os.O_WRONLY, 0o600))
        before = snapshot(root)
        with trio.fail_after(30):
            result = await podd("spawn", "x")
        assert (1, True) == (result.code, "750" in result.stderr), result
        assert before == [e for e in snapshot(root) if e[0] != ".forkserver.sock"]
        assert [] == pod_processes(root)

    async def test_pod_directory_of_a_child(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            assert 0 == (await podd("spawn", "p")).code
            directory = os.path.join(root, "c")
            os.mkdir(directory)
            os.chmod(directory, 0o750)
            registry = await result_of(podd.sock("p"), "status")
            result = await podd("spawn", "c", "--parent", "p")
            after = await result_of(podd.sock("p"), "status")
            assert (1, True) == (result.code, "750" in result.stderr), result
            assert (registry["children"], [], 0o750) == (
                after["children"],
                os.listdir(directory),
                mode_of(directory),
            )
            assert 0 == (await podd("stop", "p")).code

    async def test_restart_into_a_directory_opened_meanwhile(self, podd: Podd, root: str) -> None:
        with trio.fail_after(30):
            spawned = await podd("spawn", "x", "--json")
            assert 0 == spawned.code, spawned
            pid = spawned.json()["pid"]
            os.kill(pid, signal.SIGKILL)

            async def gone() -> bool:
                return not pod_processes(root)

            await wait_for(gone)
            directory = os.path.join(root, "x")
            os.chmod(directory, 0o750)
            before = snapshot(directory)
            result = await podd("restart", "x")
        assert (1, True) == (result.code, "750" in result.stderr), result
        assert (before, 0o750) == (snapshot(directory), mode_of(directory))
        assert [] == pod_processes(root)


class TestModes:
    """Whatever the umask, the root and pod directories are 0700 and sockets 0600."""

    async def test_root_and_child(self, podd: Podd, root: str) -> None:
        runtime = os.path.join(root, "r")
        old_umask = os.umask(0)
        try:
            with trio.fail_after(30):
                assert 0 == (await podd("--root", runtime, "spawn", "p")).code
                assert 0 == (await podd("--root", runtime, "spawn", "c", "--parent", "p")).code
                os.umask(old_umask)
                modes = [mode_of(os.path.join(runtime, p)) for p in ("", "p", "c")]
                socket_modes = [mode_of(os.path.join(runtime, p, "sock")) for p in ("p", "c")]
                assert 0 == (await podd("--root", runtime, "stop", "p")).code
        finally:
            os.umask(old_umask)
            kill_everything(runtime)
        assert ([0o700] * 3, [0o600] * 2) == (modes, socket_modes)

    async def test_every_file_a_pod_writes_is_private(self, podd: Podd, root: str) -> None:
        # With umask 0, a file created with a default mode would be world-writable.
        runtime = os.path.join(root, "r")

        def loose() -> dict[str, str]:
            found = {}
            for top, _, files in os.walk(runtime):
                for name in files:
                    path = os.path.join(top, name)
                    if mode_of(path) & 0o077:
                        found[os.path.relpath(path, runtime)] = oct(mode_of(path))
            return found

        async def turn_started() -> bool:
            return await trio.Path(runtime, "p", "turn.pid").exists()

        old_umask = os.umask(0)
        try:
            with trio.fail_after(30):
                agent = ("--agent", "cat; echo err >&2; sleep 30", "--task", "x")
                assert 0 == (await podd("--root", runtime, "spawn", "p", *agent)).code
                await wait_for(turn_started)
                running = loose()
                assert 0 == (await podd("--root", runtime, "stop", "p")).code
                stopped = loose()
        finally:
            os.umask(old_umask)
            kill_everything(runtime)
        assert ({}, {}) == (running, stopped)
