"""A pod's children: spawning them, reclaiming them when they die, restarting them."""

from __future__ import annotations

import logging
import os
from typing import Any

import attrs
import trio

from podd.core import scope
from podd.core.inputs import (
    ChildExited,
    ChildFailedToStart,
    ChildReady,
    ChildStarted,
    NotificationArrived,
    SpawnAsked,
)
from podd.core.names import check_name
from podd.core.notifications import Notification
from podd.core.spec import PodSpec, agent_driver, slot_holders_below
from podd.errors import UsageError
from podd.proc.facts import is_alive
from podd.runtime.loop import LATER, PodCore
from podd.runtime.server import Connection
from podd.spawn.agent_command import check_agent
from podd.spawn.child_process import ChildProcess, spawn_child
from podd.spawn.spawner import SpawnError
from podd.store.journal import read_stopped
from podd.store.pod_files import read_info
from protocol import (
    Errored,
    InvalidName,
    PodExists,
    PodNotFound,
    ProtocolError,
    Request,
    RestartChildParams,
    ShuttingDown,
    SpawnFailed,
    SpawnParams,
    encode_error,
    encode_result,
)

__all__ = ["Children"]

log = logging.getLogger(__name__)


class Children:
    """``spawn`` and ``restart_child``: the checks only the system can answer, the
    child processes, their watchers and delayed restarts (``podd.core.spawning`` and
    ``podd.core.children`` keep the books)."""

    def __init__(self, pod: PodCore) -> None:
        self.pod = pod

    def _check_request(self, name: str) -> None:
        """What every request that starts a child needs: a running pod, a valid name."""
        if self.pod.state.stop.stopping:
            raise ShuttingDown(f"pod {self.pod.name!r} is stopping")
        try:
            check_name(name)
        except UsageError as exc:
            raise InvalidName(str(exc)) from exc

    def on_spawn(self, conn: Connection, request: Request) -> Any:
        params: SpawnParams = request.params
        self._check_request(params.name)
        name = params.name
        self._check_no_live_pod(name)
        try:
            if params.scope is not None:
                rules = [scope.normalize_rule(r) for r in params.scope]
            else:
                rules = scope.default_child_scope(self.pod.spec.scope)
        except ValueError as exc:
            raise SpawnFailed(str(exc)) from exc
        cwd = os.path.abspath(params.cwd or self.pod.spec.cwd)
        if not os.path.isdir(cwd):
            raise SpawnFailed(f"cwd {cwd!r} is not a directory")
        if params.agent is not None:
            problem = check_agent(params.agent, cwd)
            if problem:
                raise SpawnFailed(problem)
        driver = agent_driver(params.driver, params.agent)
        if params.agent is not None and driver != "shell":
            from podd.drivers import driver_for

            problem = driver_for(driver).check(params.agent)
            if problem:
                raise SpawnFailed(problem)
        spec = PodSpec(
            name=name,
            root=self.pod.spec.root,
            cwd=cwd,
            scope=rules,
            agent=params.agent,
            task=params.task,
            turn_timeout=params.turn_timeout,
            wake_on_notify=params.wake_on_notify,
            restart=params.restart,
            reclaim_interval=self.pod.spec.reclaim_interval,
            nested_sandbox=params.nested_sandbox,
            driver=driver,
            env=dict(params.env),
            mcp=params.mcp,
            until=params.until,
            max_iterations=params.max_iterations,
            budget=params.budget,
            gate=params.gate,
            gate_timeout=params.gate_timeout,
            after=list(params.after),
            max_running=params.max_running,
            slot_holders=slot_holders_below(self.pod.spec),
        )
        self.pod.apply(SpawnAsked(spec, (conn, request.id)))
        return LATER

    def _check_no_live_pod(self, name: str) -> None:
        """Refuse a name a live pod holds anywhere under the root (whether it is held
        here is the rules' to say). A dead pod's leftovers do not hold the name: the new
        pod clears them, as a root pod does (the child process makes the final, atomic
        claim on the directory)."""
        try:
            info = read_info(os.path.join(self.pod.spec.root, name, "pod.json"))
        except (OSError, ValueError):
            return
        if is_alive(info.pid, info.start_time):
            raise PodExists(f"a pod named {name!r} is running under {self.pod.spec.root}")

    def start_child(self, spec: PodSpec, waiter: Any) -> None:
        self.pod.background(self._run_spawn, spec, waiter)

    async def _run_spawn(self, spec: PodSpec, waiter: Any) -> None:
        def started(pid: int) -> None:
            self.pod.post("child_started", lambda: self.pod.apply(ChildStarted(spec, pid)))

        try:
            proc, ready = await spawn_child(spec, started, self.pod.forkserver)
        except Exception as exc:
            # Whatever went wrong, the request is answered and the name and scope it
            # reserved are released.
            if isinstance(exc, SpawnError):
                error = exc.as_wire()
            else:
                log.exception("spawning %s failed", spec.name)
                error = SpawnFailed(f"spawning {spec.name!r} failed: {exc!r}")
            failed = ChildFailedToStart(spec, error, waiter)
            self.pod.post("spawn_failed", lambda: self.pod.apply(failed))
            return

        def done() -> None:
            self.pod.processes[spec.name] = proc
            self.pod.apply(ChildReady(spec, ready.pid, ready.socket, ready.start_time, waiter))

        self.pod.post("spawn_done", done)

    def reply_error(self, waiter: Any, error: ProtocolError) -> None:
        conn, request_id = waiter
        conn.reply(encode_error(request_id, error), answers=request_id is not None)

    def reply_when_persisted(self, waiter: Any, result: Any) -> None:
        conn, request_id = waiter
        if request_id is not None:
            self.pod.background(
                self._reply_once_registered, conn, encode_result(request_id, result)
            )

    async def _reply_once_registered(self, conn: Connection, frame: bytes) -> None:
        """Answer a spawn once ``spawned_pods.json`` names the child: whoever reads the
        registry file after the spawn returned finds it there."""
        with trio.move_on_after(5.0):
            await self.pod.registry_file.flush()
        conn.reply(frame)

    def watch(self, name: str) -> None:
        self.pod.background(self._watch_child, name, self.pod.processes[name])

    async def _watch_child(self, name: str, proc: ChildProcess) -> None:
        code = await proc.wait()
        self.pod.post("child_exited", lambda: self._child_exited(name, proc.pid, code))

    def _child_exited(self, name: str, pid: int, code: int) -> None:
        if self.pod.processes.get(name) is not None and self.pod.processes[name].pid == pid:
            del self.pod.processes[name]
        self.pod.apply(ChildExited(name, pid, code))

    # --- Restarting ------------------------------------------------------------------

    def restart_later(self, spec: PodSpec, delay: float) -> None:
        log.info("restarting %s in %.3f s", spec.name, delay)

        async def later() -> None:
            await trio.sleep(delay)
            self.pod.post("restart", lambda: self._restart(spec, None))

        self.pod.background(later)

    def _restart(self, spec: PodSpec, waiter: Any) -> None:
        if self.pod.state.stop.stopping:
            return
        try:
            self._check_no_live_pod(spec.name)
        except ProtocolError as exc:
            if waiter is not None:
                raise
            refused = Errored(spec.name, f"restart refused: {exc.message}")
            self.pod.apply(NotificationArrived(Notification.of(refused)))
            return
        spec = attrs.evolve(spec, incarnation=spec.incarnation + 1, restore=True)
        self.pod.apply(SpawnAsked(spec, waiter))

    def on_restart_child(self, conn: Connection, request: Request) -> Any:
        params: RestartChildParams = request.params
        self._check_request(params.name)
        stopped = read_stopped(self.pod.spec.root, params.name)
        if stopped is None:
            raise PodNotFound(f"no stopped or dead pod named {params.name!r} to restart")
        info, _ = stopped
        if info.spec.parent != self.pod.name:
            raise PodNotFound(f"pod {params.name!r} was not a child of {self.pod.name!r}")
        self._restart(info.spec, (conn, request.id))
        return LATER
