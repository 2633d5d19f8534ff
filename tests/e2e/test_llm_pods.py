"""LLM pods end to end (§9): the test doubles of Claude Code and Codex in real pods.

The doubles (``tests/fakes/bin``) go first on the pods' ``PATH``. They keep sessions in
their config dir as the real CLIs do, and without a scenario answer ``fake reply to
user message N: <the prompt>``, N counting the session's prompts: a result says whether
a turn was given the turns before it, and what its stdin held. Where a test needs to
see the command line a turn ran, the agent is a small ``claude`` or ``codex`` script
that logs its arguments and then runs the double.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import stat
import uuid
from typing import Any

import pytest
import trio

from tests.conftest import CliResult, Podd
from tests.e2e.support import RawConnection, result_of, wait_for
from tests.fakes import FAKES_BIN, write_scenario

BOUND = 60.0
"""Seconds a test may take; each runs a few pods and a few dozen short CLI calls."""

RECORD_FIELDS = {
    "turn",
    "outcome",
    "cause",
    "exit_code",
    "signal",
    "started_at",
    "duration_s",
    "result",
    "session_id",
    "cost_usd",
    "usage",
    "num_turns",
    "permission_denials",
}
USAGE_KEYS = {
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
}
NO_USAGE = dict.fromkeys(USAGE_KEYS)
BYPASS = "--dangerously-bypass-approvals-and-sandbox"
# Variables of the test run that would reach the pods and change what the doubles do.
FOREIGN = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "PODD_FAKE_SCRIPT", "IS_SANDBOX")


def reply(number: int, prompt: str) -> str:
    """What the doubles answer the ``number``-th prompt of a session without a scenario."""
    return f"fake reply to user message {number}: {prompt.strip()}"


def encode_cwd(cwd: str) -> str:
    """The directory name Claude Code gives a project under ``projects/``."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


class World:
    """One test's pods: the CLI with the doubles on ``PATH``, a cwd, scripts, records."""

    def __init__(self, podd: Podd, workdir: str, scratch: pathlib.Path) -> None:
        self.podd = podd
        self.root = podd.root
        self.cwd = workdir
        self.scratch = scratch
        for variable in FOREIGN:
            podd.env.pop(variable, None)
        podd.env["PATH"] = f"{FAKES_BIN}{os.pathsep}{podd.env.get('PATH', '')}"
        podd.env["ANTHROPIC_API_KEY"] = "sk-ant-e2e"
        podd.env["OPENAI_API_KEY"] = "sk-e2e"

    async def cli(self, *args: str) -> CliResult:
        return await self.podd(*args)

    async def ok(self, *args: str) -> CliResult:
        done = await self.podd(*args)
        assert 0 == done.code, done
        return done

    async def spawn(self, name: str, *args: str, script: str | None = None) -> None:
        """Spawn ``name`` in the test's cwd; ``script``: its agent's scenario."""
        extra = ("--env", f"PODD_FAKE_SCRIPT={script}") if script is not None else ()
        done = await self.podd("spawn", name, "--cwd", self.cwd, *args, *extra)
        assert (0, "") == (done.code, done.stderr), done

    async def stop(self, name: str) -> None:
        done = await self.podd("stop", name)
        assert (0, "clean\n") == (done.code, done.stdout), done

    async def status(self, name: str) -> Any:
        return await result_of(self.podd.sock(name), "status")

    async def turn(self, name: str, text: str, **params: Any) -> dict[str, Any]:
        """Run one turn over the socket (``send`` with ``wait``) and return its record."""
        async with await RawConnection.open(self.podd.sock(name)) as conn:
            answer = await conn.request("send", {"text": text, "wait": True, **params})
        assert "error" not in answer, answer
        record: dict[str, Any] = answer["result"]
        return record

    async def pending(self, name: str, count: int) -> None:
        """Return once ``name`` holds ``count`` pending notifications."""

        async def check() -> bool:
            return bool((await self.status(name))["notifications_pending"] == count)

        await wait_for(check)

    def scenario(self, name: str, turns: list[dict[str, Any]]) -> str:
        """A scenario file for the doubles (``--env PODD_FAKE_SCRIPT=...``)."""
        return write_scenario(self.scratch / f"{name}.json", turns)

    def wrapper(self, cli: str, *, exit_zero: bool = False) -> str:
        """A ``claude`` or ``codex`` in the pods' cwd that logs its arguments (one run a
        line, to ``argv.log`` beside it), writes a line on stderr and runs the double;
        with ``exit_zero`` it exits 0 whatever the double did."""
        directory = pathlib.Path(self.cwd) / f"{cli}-wrapper"
        directory.mkdir(exist_ok=True)
        path = directory / cli
        run = shlex.quote(str(FAKES_BIN / cli))
        tail = f'{run} "$@"; exit 0' if exit_zero else f'exec {run} "$@"'
        path.write_text(
            "#!/bin/sh\n"
            'printf "%s\\n" "$*" >> "${0%/*}/argv.log"\n'
            f'echo "{cli} stderr of turn $POD_TURN" >&2\n'
            f"{tail}\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)

    def argv_log(self, cli: str) -> list[str]:
        path = pathlib.Path(self.cwd) / f"{cli}-wrapper" / "argv.log"
        return path.read_text().splitlines()

    def exists(self, *parts: str) -> bool:
        """Whether ``parts`` (joined) names something, from the root."""
        return os.path.lexists(os.path.join(self.root, *parts))

    def made(self, leaf: str) -> bool:
        """Whether the test's cwd holds ``leaf``."""
        return os.path.lexists(os.path.join(self.cwd, leaf))

    def read(self, *parts: str) -> str:
        """A file of the test's cwd."""
        return pathlib.Path(self.cwd, *parts).read_text()

    def state_dir(self, name: str) -> pathlib.Path:
        return pathlib.Path(self.root) / ".kept" / name / "agent"

    def transcript(self, name: str, session: str) -> pathlib.Path:
        """Where the claude double of pod ``name`` keeps session ``session``."""
        return self.state_dir(name) / "projects" / encode_cwd(self.cwd) / f"{session}.jsonl"

    def rollouts(self, name: str, thread: str) -> list[pathlib.Path]:
        return list(self.state_dir(name).glob(f"sessions/*/*/*/rollout-*-{thread}.jsonl"))


@pytest.fixture
def world(podd: Podd, workdir: str, tmp_path: pathlib.Path) -> World:
    return World(podd, workdir, tmp_path)


def prompts_of(transcript: pathlib.Path) -> list[str]:
    """The prompts a claude transcript holds, in order."""
    found = []
    for line in transcript.read_text().splitlines():
        record = json.loads(line)
        content = record.get("message", {}).get("content")
        if record.get("type") == "user" and isinstance(content, str):
            found.append(content.strip())
    return found


def is_uuid4(text: str) -> bool:
    try:
        return uuid.UUID(text).version == 4
    except ValueError:
        return False


class TestDriverChoice:
    """``--driver auto`` reads CMD's command word (after ``VAR=value``, by basename);
    ``--driver`` overrides it."""

    async def test_auto_detection_and_override(self, world: World) -> None:
        claude_path = str(FAKES_BIN / "claude")
        cases = [
            ("c1", ["--agent", "claude --allowedTools Bash"], "claude"),
            ("c2", ["--agent", f"IS_SANDBOX=1 {claude_path} --allowedTools Bash"], "claude"),
            ("x1", ["--agent", "codex exec --skip-git-repo-check"], "codex"),
            ("x2", ["--agent", "codex --skip-git-repo-check"], "codex"),
            ("s1", ["--agent", "echo claude"], "shell"),
            ("s2", ["--agent", "cd . && claude -p"], "shell"),
            ("s3", ["--driver", "shell", "--agent", "claude -p"], "shell"),
            ("c3", ["--driver", "claude", "--agent", "cd . && claude --allowedTools Bash"],
             "claude"),
        ]  # fmt: skip
        with trio.fail_after(BOUND):
            await world.spawn("lead")
            for name, args, _ in cases:
                await world.spawn(name, "--parent", "lead", *args)
            drivers = {name: (await world.status(name))["driver"] for name, _, _ in cases}
            assert {name: driver for name, _, driver in cases} == drivers
            # A forced driver runs what auto would not: claude through `cd . && ...`,
            # plain `claude -p` as a shell agent (its text output is the result).
            forced = await world.turn("c3", "hello")
            assert ("finished", reply(1, "hello")) == (forced["outcome"], forced["result"])
            assert is_uuid4(forced["session_id"])
            shell = await world.turn("s3", "hello")
            assert (reply(1, "hello") + "\n", None, None) == (
                shell["result"],
                shell["session_id"],
                shell["cost_usd"],
            )
            await world.stop("lead")

    async def test_a_cmd_the_forced_driver_cannot_run_is_refused(self, world: World) -> None:
        with trio.fail_after(BOUND):
            refused = await world.cli("spawn", "x", "--driver", "codex", "--agent", "claude -p")
            assert 1 == refused.code, refused
            assert "codex" in refused.stderr
            assert not world.exists("x")

    async def test_leading_assignments_reach_claude(self, world: World) -> None:
        """``IS_SANDBOX=1 /path/claude --dangerously-skip-permissions`` (what root runs)
        is the claude driver, and the assignment stays in the command: Bash writes."""
        scenario = world.scenario("w", [{"steps": [{"bash": "echo hi > written"}, {"text": "ok"}]}])
        agent = f"IS_SANDBOX=1 {FAKES_BIN / 'claude'} --dangerously-skip-permissions"
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", agent, script=scenario)
            record = await world.turn("a", "write it")
            assert ("finished", "ok", []) == (
                record["outcome"],
                record["result"],
                record["permission_denials"],
            )
            assert "hi\n" == world.read("written")
            await world.stop("a")


class TestClaudeSessions:
    """One conversation across turns: ``--session-id <uuid4>`` first, ``--resume``
    after, a new one on ``--new-session``, the same one after stop and restart."""

    async def test_turns_resume_one_session(self, world: World) -> None:
        agent = f"{world.wrapper('claude')} --allowedTools Bash"
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", agent)
            first = await world.turn("a", "first question")
            session = first["session_id"]
            assert is_uuid4(session), first
            second = await world.turn("a", "second question")
            assert (reply(2, "second question"), session) == (
                second["result"],
                second["session_id"],
            )
            assert ["first question", "second question"] == prompts_of(
                world.transcript("a", session)
            )
            fresh = await world.turn("a", "start over", new_session=True)
            new = fresh["session_id"]
            assert reply(1, "start over") == fresh["result"]
            assert is_uuid4(new) and new != session, fresh
            later = await world.turn("a", "and then")
            assert (reply(2, "and then"), new) == (later["result"], later["session_id"])
            assert new == (await world.status("a"))["session_id"]
            stream = "-p --output-format stream-json --verbose"
            assert [
                f"--allowedTools Bash {stream} --session-id {session}",
                f"--allowedTools Bash {stream} --resume {session}",
                f"--allowedTools Bash {stream} --session-id {new}",
                f"--allowedTools Bash {stream} --resume {new}",
            ] == world.argv_log("claude")
            await world.stop("a")

    async def test_new_session_from_the_cli(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude")
            first = await world.ok("send", "a", "one", "--wait", "--json")
            again = await world.ok("send", "a", "two", "--wait", "--json", "--new-session")
            assert reply(1, "two") == again.json()["result"]
            assert first.json()["session_id"] != again.json()["session_id"]
            await world.stop("a")

    async def test_the_conversation_survives_stop_and_restart(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude --allowedTools Bash")
            first = await world.turn("a", "remember 42")
            session = first["session_id"]
            await world.stop("a")
            # What the stopped pod kept: its state dir, its result, its output.
            assert world.transcript("a", session).is_file()
            kept = await world.ok("result", "a", "--json")
            assert first == kept.json()
            shown = await world.ok("output", "a")
            assert f"✓ result: {reply(1, 'remember 42')}" in shown.stdout
            await world.ok("restart", "a")
            second = await world.turn("a", "what was it?")
            assert (2, reply(2, "what was it?"), session) == (
                second["turn"],
                second["result"],
                second["session_id"],
            )
            assert ["remember 42", "what was it?"] == prompts_of(world.transcript("a", session))
            doc = await world.status("a")
            assert (session, 2) == (doc["session_id"], doc["turns"])
            await world.stop("a")


class TestCodexThreads:
    """``codex exec --json … -`` first, ``codex exec … resume <thread_id> --json -``
    after, the same thread after stop and restart."""

    async def test_exec_then_exec_resume(self, world: World) -> None:
        agent = f"{world.wrapper('codex')} --skip-git-repo-check"
        with trio.fail_after(BOUND):
            await world.spawn("x", "--agent", agent)
            first = await world.turn("x", "first question")
            thread = first["session_id"]
            assert (reply(1, "first question"), 1) == (
                first["result"],
                len(world.rollouts("x", thread)),
            )
            second = await world.turn("x", "second question")
            assert (reply(2, "second question"), thread) == (
                second["result"],
                second["session_id"],
            )
            await world.stop("x")
            await world.ok("restart", "x")
            third = await world.turn("x", "third question")
            assert (reply(3, "third question"), thread) == (
                third["result"],
                third["session_id"],
            )
            assert [
                "exec --skip-git-repo-check --json -",
                f"exec --skip-git-repo-check resume {thread} --json -",
                f"exec --skip-git-repo-check resume {thread} --json -",
            ] == world.argv_log("codex")
            assert thread == (await world.status("x"))["session_id"]
            await world.stop("x")


class TestCodexDaemonDir:
    """Codex creates ``/tmp/codex-daemon-<uid>`` (its daemon's socket directory, in
    ``/tmp`` whatever ``TMPDIR`` says) when it builds its own sandbox; where ``/tmp`` is
    read-only to the turn (``--nested-sandbox``) it cannot, and its every command fails.
    The pod creates it before a codex turn, as Codex would unconfined."""

    async def test_a_codex_turn_finds_it_there(self, world: World) -> None:
        daemon = pathlib.Path(f"/tmp/codex-daemon-{os.getuid()}")
        if not take_away_if_idle(daemon):
            pytest.skip(f"{daemon} is in use by a Codex daemon of this user")
        try:
            with trio.fail_after(BOUND):
                await world.spawn("x", "--agent", "codex --skip-git-repo-check")
                assert "finished" == (await world.turn("x", "hi"))["outcome"]
                await world.stop("x")
            assert (True, 0o700, os.getuid()) == kind_mode_owner(daemon)
        finally:
            take_away_if_idle(daemon)  # an empty one is made again by whoever needs it


def take_away_if_idle(directory: pathlib.Path) -> bool:
    """Remove ``directory`` if it is there and empty; whether it is gone."""
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
    return not directory.exists()


def kind_mode_owner(path: pathlib.Path) -> tuple[bool, int, int]:
    """Whether ``path`` is a directory, its permission bits and its owner."""
    made = path.stat()
    return stat.S_ISDIR(made.st_mode), stat.S_IMODE(made.st_mode), made.st_uid


class TestStateDirs:
    """Each pod's agent gets its own state dir, writable under confinement; the parent's
    environment's ``CLAUDE_CONFIG_DIR``/``CODEX_HOME`` never reach it; API keys and
    ``spawn --env`` do."""

    PROBE = (
        'echo "cfg=${CLAUDE_CONFIG_DIR-unset} home=${CODEX_HOME-unset} '
        "anthropic=${ANTHROPIC_API_KEY-unset} openai=${OPENAI_API_KEY-unset} "
        'extra=${EXTRA-unset} lead=${LEAD_ONLY-unset}"; touch "$STATE/probe" && echo probe-written'
    )

    def probe(self, variable: str) -> list[dict[str, Any]]:
        command = f"STATE=${variable}; {self.PROBE}"
        return [{"steps": [{"bash": command}, {"text": "probed"}]}]

    async def test_each_pod_has_its_own_state_dir(self, world: World) -> None:
        decoys = {var: world.scratch / var.lower() for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME")}
        for var, path in decoys.items():
            path.mkdir()
            world.podd.env[var] = str(path)
        claude = world.scenario("claude", self.probe("CLAUDE_CONFIG_DIR"))
        codex = world.scenario("codex", self.probe("CODEX_HOME"))
        with trio.fail_after(BOUND):
            await world.spawn(
                "lead", "--agent", "claude --allowedTools Bash", "--env", "LEAD_ONLY=yes",
                script=claude,
            )  # fmt: skip
            for var in decoys:
                world.podd.env.pop(var)
            for name, agent, script in (
                ("kid", "claude --allowedTools Bash", claude),
                ("cx", f"codex --skip-git-repo-check {BYPASS}", codex),
            ):
                await world.spawn(
                    name, "--parent", "lead", "--agent", agent, "--env", "EXTRA=from spawn",
                    script=script,
                )  # fmt: skip
            shell = (
                'echo "cfg=${CLAUDE_CONFIG_DIR-unset} home=${CODEX_HOME-unset} '
                'lead=${LEAD_ONLY-unset}"'
            )
            await world.spawn("sh", "--parent", "lead", "--agent", shell)
            for name in ("lead", "kid", "cx"):
                record = await world.turn(name, "probe")
                assert ("finished", "probed") == (record["outcome"], record["result"]), record
            plain = await world.turn("sh", "probe")
            assert "cfg=unset home=unset lead=unset\n" == plain["result"]
            state = {name: world.state_dir(name) for name in ("lead", "kid", "cx")}
            assert len(set(state.values())) == 3
            statuses = {name: await world.status(name) for name in state}
            assert {n: str(p) for n, p in state.items()} == {
                n: doc["state_dir"] for n, doc in statuses.items()
            }
            raw = {name: (await world.ok("output", name, "--raw")).stdout for name in state}
            keys = "anthropic=sk-ant-e2e openai=sk-e2e"
            own = "extra=from spawn lead=unset"
            assert f"cfg={state['lead']} home=unset {keys} extra=unset lead=yes" in raw["lead"]
            assert f"cfg={state['kid']} home=unset {keys} {own}" in raw["kid"]
            assert f"cfg=unset home={state['cx']} {keys} {own}" in raw["cx"]
            for name, path in state.items():
                assert (path / "probe").is_file(), raw[name]
            # The parent's own transcript is in its state dir, the child's in the child's.
            assert world.transcript("lead", statuses["lead"]["session_id"]).is_file()
            assert world.transcript("kid", statuses["kid"]["session_id"]).is_file()
            assert not world.transcript("lead", statuses["kid"]["session_id"]).exists()
            assert {var: [] for var in decoys} == {
                var: sorted(os.listdir(path)) for var, path in decoys.items()
            }
            await world.stop("lead")
            for path in state.values():
                assert (path / "probe").is_file()

    async def test_writes_outside_the_scope_fail_while_the_state_dir_is_writable(
        self, world: World
    ) -> None:
        outside = world.scratch / "outside"
        outside.mkdir()
        command = (
            f'touch "$CLAUDE_CONFIG_DIR/inside" && echo inside-ok; '
            f"touch {shlex.quote(str(outside))}/x 2>&1 || echo outside-refused"
        )
        scenario = world.scenario("w", [{"steps": [{"bash": command}, {"text": "done"}]}])
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude --allowedTools Bash", script=scenario)
            if (await world.status("a"))["enforcement"] == "advisory":
                await world.stop("a")
                pytest.skip("writes are not confined on this host")
            assert "finished" == (await world.turn("a", "go"))["outcome"]
            raw = (await world.ok("output", "a", "--raw")).stdout
            assert ("inside-ok" in raw, "outside-refused" in raw) == (True, True), raw
            assert ((world.state_dir("a") / "inside").is_file(), []) == (
                True,
                os.listdir(outside),
            )
            await world.stop("a")

    async def test_purge_removes_what_a_stopped_pod_kept(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude")
            await world.turn("a", "one")
            running = await world.cli("reclaim", "--purge", "a")
            assert 1 == running.code, running
            await world.stop("a")
            assert world.state_dir("a").is_dir()
            await world.ok("reclaim", "--purge", "a")
            assert not world.exists(".kept", "a")
            gone = await world.cli("result", "a")
            assert 3 == gone.code, gone

    async def test_spawning_the_name_again_starts_afresh(self, world: World) -> None:
        """Its output and records start again; its state dir stays (the agent's login
        and settings), and the new pod starts a new session."""
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude")
            first = await world.turn("a", "one")
            await world.stop("a")
            await world.spawn("a", "--agent", "claude")
            assert world.transcript("a", first["session_id"]).is_file()
            none = await world.cli("result", "a")
            assert (3, "") == (none.code, (await world.ok("output", "a")).stdout), none
            again = await world.turn("a", "two")
            assert (1, reply(1, "two")) == (again["turn"], again["result"])
            assert first["session_id"] != again["session_id"]
            await world.stop("a")


def write_login(config_dir: pathlib.Path) -> None:
    """A Claude Code login as the CLI saves it in its config dir."""
    config_dir.mkdir(parents=True, exist_ok=True)
    login = {"claudeAiOauth": {"accessToken": "sk-ant-oat01-e2e", "refreshToken": "r"}}
    (config_dir / ".credentials.json").write_text(json.dumps(login))


class TestAuthentication:
    """Without an API key Claude Code is not logged in; a login in the pod's state dir,
    or the user's own, is used."""

    async def test_a_login_in_the_state_dir_is_used(self, world: World) -> None:
        world.podd.env.pop("ANTHROPIC_API_KEY")
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude")
            refused = await world.turn("a", "hi")
            assert ("errored", 1) == (refused["outcome"], refused["exit_code"]), refused
            shown = (await world.ok("output", "a", "--turn", "1")).stdout
            assert shown.endswith("\n✗ error: Not logged in · Please run /login\n"), shown
            write_login(world.state_dir("a"))
            record = await world.turn("a", "hi again")
            # The refused prompt stays in the session, as the real CLI keeps it.
            assert ("finished", reply(2, "hi again")) == (record["outcome"], record["result"])
            await world.stop("a")

    async def test_the_users_own_login_is_used(self, world: World) -> None:
        """A login of the user's own CLI (``~/.claude``, ``~/.codex``) is copied into
        the state dir, which the agent then uses; the user's own files stay as they are."""
        home = world.scratch / "home"
        write_login(home / ".claude")
        (home / ".codex").mkdir()
        (home / ".codex" / "auth.json").write_text('{"OPENAI_API_KEY": "sk-e2e-login"}')
        world.podd.env.pop("ANTHROPIC_API_KEY")
        world.podd.env["HOME"] = str(home)
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude")
            await world.spawn("x", "--agent", "codex --skip-git-repo-check")
            record = await world.turn("a", "hi")
            assert ("finished", reply(1, "hi")) == (record["outcome"], record["result"])
            copied = {
                leaf: (world.state_dir(name) / leaf).read_text()
                for name, leaf in (("a", ".credentials.json"), ("x", "auth.json"))
            }
            assert {
                ".credentials.json": (home / ".claude" / ".credentials.json").read_text(),
                "auth.json": (home / ".codex" / "auth.json").read_text(),
            } == copied
            await world.stop("a")
            await world.stop("x")


class TestTurnRecords:
    """Every turn has a record with §9's fields; what the agent does not report is null;
    an error the agent reports errs the turn with its own reason."""

    async def test_claude_record(self, world: World) -> None:
        usage = {
            "input_tokens": 120,
            "output_tokens": 30,
            "cache_read_input_tokens": 50,
            "cache_creation_input_tokens": 9,
        }
        turns = [
            {
                "steps": [{"bash": "echo read-only"}, {"bash": "touch nope"}, {"text": "Tried."}],
                "cost_usd": 0.25,
                "usage": usage,
            }
        ]
        scenario = world.scenario("r", turns)
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude", script=scenario)
            record = await world.turn("a", "try")
            assert RECORD_FIELDS <= set(record), record
            denials = record["permission_denials"]
            assert [
                1,
                "finished",
                None,
                0,
                None,
                "Tried.",
                0.25,
                usage,
                3,
                ["touch nope"],
            ] == [
                record["turn"],
                record["outcome"],
                record["cause"],
                record["exit_code"],
                record["signal"],
                record["result"],
                record["cost_usd"],
                record["usage"],
                record["num_turns"],
                [d["tool_input"]["command"] for d in denials],
            ]
            assert is_uuid4(record["session_id"])
            assert isinstance(record["started_at"], float) and record["duration_s"] >= 0
            assert not world.made("nope")
            await world.stop("a")

    async def test_a_long_result_is_cut_at_64_kib(self, world: World) -> None:
        text = "0123456789" * 7000
        scenario = world.scenario("long", [{"steps": [{"text": text}]}])
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude", script=scenario)
            record = await world.turn("a", "talk")
            result = record["result"]
            assert (True, 64 * 1024) == (text.startswith(result[:-1]), len(result.encode()))
            assert ("…", " ".join(text.split())[:500]) == (result[-1], record["summary"])
            await world.stop("a")

    async def test_codex_record(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("x", "--agent", "codex --skip-git-repo-check")
            record = await world.turn("x", "hi")
            assert RECORD_FIELDS <= set(record), record
            assert ["finished", None, 0, reply(1, "hi"), None, None] == [
                record["outcome"],
                record["cause"],
                record["exit_code"],
                record["result"],
                record["cost_usd"],
                record["num_turns"],
            ]
            assert {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            } == record["usage"]
            await world.stop("x")

    async def test_codex_reports_no_permission_denials(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("x", "--agent", "codex --skip-git-repo-check")
            try:
                record = await world.turn("x", "hi")
            finally:
                await world.stop("x")
            assert record["permission_denials"] is None

    async def test_shell_record(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("s", "--agent", "echo out; echo err >&2")
            record = await world.turn("s", "x")
            assert RECORD_FIELDS <= set(record), record
            assert ["finished", "out\n", None, None, NO_USAGE, None, None] == [
                record["outcome"],
                record["result"],
                record["session_id"],
                record["cost_usd"],
                record["usage"],
                record["num_turns"],
                record["permission_denials"],
            ]
            await world.stop("s")

    @pytest.mark.parametrize("cli", ["claude", "codex"])
    async def test_reported_error_with_exit_0_errs_the_turn(self, world: World, cli: str) -> None:
        error = {"status": 400, "message": "The model is not available."}
        scenario = world.scenario("e", [{"error": error}])
        flags = "" if cli == "claude" else " --skip-git-repo-check"
        agent = world.wrapper(cli, exit_zero=True) + flags
        reason = {
            "claude": "API Error: 400 The model is not available.",
            "codex": "The model is not available.",
        }[cli]
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", agent, script=scenario)
            sent = await world.cli("send", "a", "fail", "--wait", "--json")
            assert 1 == sent.code, sent
            record = sent.json()
            assert ("errored", reason, 0) == (
                record["outcome"],
                record["cause"],
                record["exit_code"],
            )
            assert record == (await world.status("a"))["last_turn"]
            await world.stop("a")

    @pytest.mark.parametrize("cli", ["claude", "codex"])
    async def test_reported_error_names_the_agents_reason(self, world: World, cli: str) -> None:
        """The real CLIs exit 1 on the errors they report (``is_error``, ``turn.failed``)."""
        error = {"status": 400, "message": "The model is not available."}
        scenario = world.scenario("e", [{"error": error}])
        agent = "claude" if cli == "claude" else "codex --skip-git-repo-check"
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", agent, script=scenario)
            try:
                record = await world.turn("a", "fail")
            finally:
                await world.stop("a")
            assert ("errored", 1) == (record["outcome"], record["exit_code"])
            assert "The model is not available." in record["cause"], record


class TestResults:
    """``send --wait --json``, ``result``, ``wait``, ``status`` totals and ``ls``."""

    async def test_results_and_totals(self, world: World) -> None:
        turns: list[dict[str, Any]] = [
            {"cost_usd": 0.25},
            {"cost_usd": 0.5, "usage": {"input_tokens": 7}},
        ]
        scenario = world.scenario("r", turns)
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude", script=scenario)
            one = await world.ok("send", "a", "one", "--wait", "--json")
            two = await world.ok("send", "a", "two", "--wait", "--json")
            assert [(1, reply(1, "one")), (2, reply(2, "two"))] == [
                (doc["turn"], doc["result"]) for doc in (one.json(), two.json())
            ]
            assert f"{reply(2, 'two')}\n" == (await world.ok("result", "a")).stdout
            assert one.json() == (await world.ok("result", "a", "--turn", "1", "--json")).json()
            waited = await world.ok("wait", "a", "--json")
            assert {"pod": "a", "last_turn": two.json()} == waited.json()
            doc = (await world.ok("status", "a", "--json")).json()
            assert (
                "claude",
                pytest.approx(0.75),
                {
                    "input_tokens": 17,
                    "output_tokens": 10,
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                },
                two.json(),
            ) == (doc["driver"], doc["cost_usd"], doc["usage"], doc["last_turn"])
            human = await world.ok("send", "a", "three", "--wait")
            assert "a: turn 3 finished (cost $0.0010)\n" == human.stdout
            missing = await world.cli("result", "a", "--turn", "9")
            assert 3 == missing.code, missing
            await world.stop("a")

    async def test_ls_has_a_cost_column(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", "claude")
            try:
                await world.turn("a", "one")
                listing = await world.ok("ls")
            finally:
                await world.stop("a")
            header, row = listing.stdout.splitlines()[0], listing.stdout.splitlines()[-1]
            assert ("COST" in header.split(), "0.001" in row) == (True, True), listing.stdout


class TestNotifications:
    """A parent reads a child's claude turn (summary, denials, cost) in a notification,
    framed in front of its own agent's next input."""

    async def test_parent_reads_the_child_turn(self, world: World) -> None:
        text = "Child done.\n\n" + "word " * 120
        turns = [{"steps": [{"bash": "touch denied"}, {"text": text}], "cost_usd": 0.25}]
        scenario = world.scenario("kid", turns)
        summary = " ".join(text.split())
        line = f"pod 'kid' finished turn 1: {summary[:299]}… (1 tool calls denied) (cost $0.2500)"
        with trio.fail_after(BOUND):
            await world.spawn("lead", "--agent", "claude")
            await world.spawn(
                "kid", "--parent", "lead", "--agent", "claude", "--task", "do it", script=scenario
            )
            await world.pending("lead", 1)
            peeked = await world.ok("notifications", "lead", "--peek", "--json")
            [note] = peeked.json()["notifications"]
            assert line == note["text"]
            event = note["event"]
            assert ("turn_ended", summary[:500], 0.25) == (
                event["kind"],
                event["summary"],
                event["cost_usd"],
            )
            record = await world.turn("lead", "Merge.")
            framed = f"[podd: 1 notifications]\n{line}\n[podd: end of notifications]\nMerge."
            assert reply(1, framed) == record["result"]
            assert 0 == (await world.status("lead"))["notifications_pending"]
            await world.stop("lead")

    async def test_codex_input_is_framed_too(self, world: World) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("lead", "--agent", "codex --skip-git-repo-check")
            await world.spawn("kid", "--parent", "lead", "--agent", "echo done", "--task", "x")
            await world.pending("lead", 1)
            record = await world.turn("lead", "Go on.")
            framed = (
                "[podd: 1 notifications]\npod 'kid' finished turn 1: done\n"
                "[podd: end of notifications]\nGo on."
            )
            assert reply(1, framed) == record["result"]
            await world.stop("lead")


class TestInput:
    """A turn with empty input is refused for an LLM pod: exit 2, no turn."""

    @pytest.mark.parametrize("agent", ["claude", "codex --skip-git-repo-check"])
    async def test_empty_input_is_refused(self, world: World, agent: str) -> None:
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", agent)
            for text in ("", "  \n"):
                refused = await world.cli("send", "a", text)
                assert (2, True) == (refused.code, "invalid_params" in refused.stderr), refused
            waiting = await world.cli("send", "a", "", "--wait")
            assert 2 == waiting.code, waiting
            assert 0 == (await world.status("a"))["turns"]
            await world.stop("a")


class TestOutput:
    """``podd output`` renders an LLM pod's turns; ``--raw``, ``--turn N``, ``--stderr``;
    stdout and stderr apart per turn; all of it readable after stop."""

    async def test_output_views(self, world: World) -> None:
        turns = [
            {"steps": [{"text": "Looking.", "bash": "ls"}, {"text": "Listed."}]},
            {"steps": [{"bash": "touch f"}, {"text": "Could not."}]},
        ]
        scenario = world.scenario("o", turns)
        agent = world.wrapper("claude")
        with trio.fail_after(BOUND):
            await world.spawn("a", "--agent", agent, script=scenario)
            await world.turn("a", "one")
            await world.turn("a", "two")
            views = {
                args: (await world.ok("output", "a", *args)).stdout
                for args in [
                    (), ("--raw",), ("--turn", "2"), ("--stderr",), ("--stderr", "--turn", "1")
                ]
            }  # fmt: skip
            assert (
                "=== turn 1 (finished, $0.0010) ===\n"
                "Looking.\n"
                "→ Bash: ls\n"
                "Listed.\n"
                "✓ result: Listed.\n"
                "=== turn 2 (finished, $0.0010) ===\n"
                "→ Bash: touch f\n"
                "  ✗ Claude requested permissions to use Bash, but you haven't granted it yet.\n"
                "Could not.\n"
                "✓ result: Could not.\n"
            ) == views[()]
            raw = [json.loads(line) for line in views[("--raw",)].splitlines()]
            assert [("system", "init"), ("result", "success")] == [
                (raw[i]["type"], raw[i]["subtype"]) for i in (0, -1)
            ]
            assert 2 == sum(1 for message in raw if message["type"] == "result")
            assert views[("--turn", "2")].startswith("→ Bash: touch f\n")
            assert "claude stderr of turn 1\nclaude stderr of turn 2\n" == views[("--stderr",)]
            assert "claude stderr of turn 1\n" == views[("--stderr", "--turn", "1")]
            assert "stderr of turn" not in views[("--raw",)]
            await world.stop("a")
            after = {args: (await world.ok("output", "a", *args)).stdout for args in views}
            assert views == after
            missing = await world.cli("output", "a", "--turn", "3")
            assert 3 == missing.code, missing
