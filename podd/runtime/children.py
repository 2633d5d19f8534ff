"""A pod's children: spawning them, reclaiming them when they die, restarting them."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import attrs
import trio

from podd.core import scope
from podd.core.children import restart_effects
from podd.core.inputs import ChildExited, NotificationArrived
from podd.core.names import check_name
from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import PodSpec, agent_driver, slot_holders_below
from podd.errors import UsageError
from podd.proc.facts import is_alive
from podd.runtime.loop import LATER, PodCore
from podd.runtime.server import Connection
from podd.spawn.agent_command import check_agent
from podd.spawn.child_process import ChildProcess, spawn_child
from podd.spawn.spawner import Ready, SpawnError
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
    ScopeSubDelegated,
    ShuttingDown,
    SpawnFailed,
    SpawnParams,
    encode_error,
    encode_result,
)

__all__ = ["ChildrenMixin"]

log = logging.getLogger(__name__)


class ChildrenMixin(PodCore):
    """Spawning, reclaiming and restarting children; state lives in ``PodCore``."""

    def _check_request(self, name: str) -> None:
        """What every request that starts a child needs: a running pod, a valid name."""
        if self.state.stop.stopping:
            raise ShuttingDown(f"pod {self.name!r} is stopping")
        try:
            check_name(name)
        except UsageError as exc:
            raise InvalidName(str(exc)) from exc

    def _on_spawn(self, conn: Connection, request: Request) -> Any:
        params: SpawnParams = request.params
        self._check_request(params.name)
        name = params.name
        self._check_name_free(name)
        try:
            if params.scope is not None:
                rules = [scope.normalize_rule(r) for r in params.scope]
            else:
                rules = scope.default_child_scope(self.spec.scope)
        except ValueError as exc:
            raise SpawnFailed(str(exc)) from exc
        scope.check_delegation(self.spec.scope, self.state.held(), rules)
        cwd = os.path.abspath(params.cwd or self.spec.cwd)
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
        missing = [a for a in params.after if not self._is_child(a)]
        if missing:
            raise PodNotFound(
                f"--after names no child of {self.name!r}: {', '.join(map(repr, missing))}"
            )
        waits_for = [a for a in params.after if a not in self.state.children.finished]
        spec = PodSpec(
            name=name,
            root=self.spec.root,
            cwd=cwd,
            scope=rules,
            agent=params.agent,
            task=params.task,
            turn_timeout=params.turn_timeout,
            wake_on_notify=params.wake_on_notify,
            restart=params.restart,
            reclaim_interval=self.spec.reclaim_interval,
            nested_sandbox=params.nested_sandbox,
            driver=driver,
            env=dict(params.env),
            mcp=params.mcp,
            until=params.until,
            max_iterations=params.max_iterations,
            budget=params.budget,
            gate=params.gate,
            gate_timeout=params.gate_timeout,
            after=waits_for if params.task is not None else [],
            max_running=params.max_running,
            slot_holders=slot_holders_below(self.spec),
        )
        if spec.after:
            self.state.children.prerequisites[name] = set(spec.after)
        self._start_child(spec, conn, request.id)
        return LATER

    def _is_child(self, name: str) -> bool:
        """Whether ``name`` is a direct child of this pod (not a pod further down)."""
        record = self.state.registry.get(name)
        return record is not None and record.parent_pod == self.name

    def _check_name_free(self, name: str) -> None:
        """Refuse a name in use here or by a live pod anywhere under the root. A dead
        pod's leftovers do not hold the name: the new pod clears them, as a root pod
        does (the child process makes the final, atomic claim on the directory)."""
        if name == self.name or name in self.state.registry or name in self.state.children.pending:
            raise PodExists(f"a pod named {name!r} already exists")
        try:
            info = read_info(os.path.join(self.spec.root, name, "pod.json"))
        except (OSError, ValueError):
            return
        if is_alive(info.pid, info.start_time):
            raise PodExists(f"a pod named {name!r} is running under {self.spec.root}")

    def _start_child(self, spec: PodSpec, conn: Connection | None, request_id: Any) -> None:
        """Reserve the name and scope, and start the child in the background."""
        spec = attrs.evolve(
            spec,
            parent=self.name,
            parent_socket=self.spec.socket,
            parent_pid=self.pid,
            ancestors=self.state.lineage.upward(),
        )
        self.state.children.pending[spec.name] = list(spec.scope)
        self._spawns_settled = trio.Event()
        self.background(self._run_spawn, spec, conn, request_id)

    async def _run_spawn(self, spec: PodSpec, conn: Connection | None, request_id: Any) -> None:
        def started(pid: int) -> None:
            self.post("child_started", functools.partial(self._child_started, spec, pid))

        try:
            proc, ready = await spawn_child(spec, started, self.forkserver)
        except Exception as exc:
            # Whatever went wrong, the request is answered and the name and scope it
            # reserved are released.
            if isinstance(exc, SpawnError):
                error = exc.as_wire()
            else:
                log.exception("spawning %s failed", spec.name)
                error = SpawnFailed(f"spawning {spec.name!r} failed: {exc!r}")
            self.post("spawn_failed", lambda: self._spawn_failed(spec, conn, request_id, error))
            return
        self.post("spawn_done", lambda: self._spawn_done(spec, proc, ready, conn, request_id))

    def _child_started(self, spec: PodSpec, pid: int) -> None:
        self.state.registry.add_starting(
            ChildRecord(
                pod_name=spec.name,
                socket_path=spec.socket,
                scope_delegated=list(spec.scope),
                callback_address=self.spec.socket,
                pid=pid,
                start_time=0.0,
                parent_pod=self.name,
                incarnation=spec.incarnation,
                restart=spec.restart,
            )
        )

    def _spawn_settled(self, name: str) -> None:
        del self.state.children.pending[name]
        if not self.state.children.pending:
            self._spawns_settled.set()

    def _spawn_failed(
        self, spec: PodSpec, conn: Connection | None, request_id: Any, error: ProtocolError
    ) -> None:
        self._spawn_settled(spec.name)
        self.state.registry.discard_starting(spec.name)
        self.state.children.prerequisites.pop(spec.name, None)
        if conn is not None:
            conn.reply(encode_error(request_id, error), answers=request_id is not None)
        if spec.restore and conn is None:
            # A restart by policy failed: it counts as a failure of the child.
            failed = Errored(spec.name, f"restart failed: {error.message}")
            self.apply(NotificationArrived(Notification.of(failed)))
            self._maybe_restart(spec, failed=True)

    def _spawn_done(
        self,
        spec: PodSpec,
        proc: ChildProcess,
        ready: Ready,
        conn: Connection | None,
        request_id: Any,
    ) -> None:
        self._spawn_settled(spec.name)
        record = self.state.registry.confirm(spec.name) or ChildRecord(
            pod_name=spec.name,
            socket_path=ready.socket,
            scope_delegated=list(spec.scope),
            callback_address=self.spec.socket,
            pid=ready.pid,
            start_time=ready.start_time,
            parent_pod=self.name,
            incarnation=spec.incarnation,
            restart=spec.restart,
        )
        record.socket_path, record.start_time = ready.socket, ready.start_time
        self.state.registry.add(record)
        self.registry_changed()
        self.state.tombstones.forget(spec.name)
        self._processes[spec.name] = proc
        self.state.children.specs[spec.name] = spec
        self.background(self._watch_child, spec.name, proc)
        self.outbox.post(
            ScopeSubDelegated(
                parent_pod=self.name,
                sub_pod=spec.name,
                sub_socket=ready.socket,
                scope=list(spec.scope),
                sub_pid=ready.pid,
                sub_start_time=ready.start_time,
            )
        )
        if self.state.stop.stopping:
            log.info("child %s came up while stopping; it is stopped with the rest", spec.name)
        if conn is not None and request_id is not None:
            result = {
                "name": spec.name,
                "pid": ready.pid,
                "socket": ready.socket,
                "incarnation": spec.incarnation,
            }
            self.background(self._reply_once_registered, conn, encode_result(request_id, result))

    async def _reply_once_registered(self, conn: Connection, frame: bytes) -> None:
        """Answer a spawn once ``spawned_pods.json`` names the child: whoever reads the
        registry file after the spawn returned finds it there."""
        with trio.move_on_after(5.0):
            await self.registry_file.flush()
        conn.reply(frame)

    async def _watch_child(self, name: str, proc: ChildProcess) -> None:
        code = await proc.wait()
        self.post("child_exited", lambda: self._child_exited(name, proc.pid, code))

    def _child_exited(self, name: str, pid: int, code: int) -> None:
        if self._processes.get(name) is not None and self._processes[name].pid == pid:
            del self._processes[name]
        self.apply(ChildExited(name, pid, code))

    # --- Restarting ------------------------------------------------------------------

    def _maybe_restart(self, spec: PodSpec, *, failed: bool) -> None:
        """Apply the child's restart policy after a restart of it failed."""
        self.state.children.restart_specs[spec.name] = spec
        effects = restart_effects(
            spec.name,
            spec.restart,
            failed=failed,
            stopping=self.state.stop.stopping,
            tracker=self.state.children.tracker(spec.name),
            now=trio.current_time(),
        )
        self.run_effects(effects)

    def _restart_later(self, name: str, delay: float) -> None:
        spec = self.state.children.restart_specs.pop(name)
        log.info("restarting %s in %.3f s", name, delay)

        async def later() -> None:
            await trio.sleep(delay)
            self.post("restart", lambda: self._restart(spec, None, None))

        self.background(later)

    def _restart(self, spec: PodSpec, conn: Connection | None, request_id: Any) -> None:
        if self.state.stop.stopping:
            return
        try:
            self._check_name_free(spec.name)
            scope.check_delegation(self.spec.scope, self.state.held(), spec.scope)
        except ProtocolError as exc:
            if conn is not None:
                raise
            refused = Errored(spec.name, f"restart refused: {exc.message}")
            self.apply(NotificationArrived(Notification.of(refused)))
            return
        self._start_child(
            attrs.evolve(spec, incarnation=spec.incarnation + 1, restore=True), conn, request_id
        )

    def _on_restart_child(self, conn: Connection, request: Request) -> Any:
        params: RestartChildParams = request.params
        self._check_request(params.name)
        stopped = read_stopped(self.spec.root, params.name)
        if stopped is None:
            raise PodNotFound(f"no stopped or dead pod named {params.name!r} to restart")
        info, _ = stopped
        if info.spec.parent != self.name:
            raise PodNotFound(f"pod {params.name!r} was not a child of {self.name!r}")
        self._restart(info.spec, conn, request.id)
        return LATER
