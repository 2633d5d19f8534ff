"""The pod: one dispatch loop that owns all of a pod's state.

Connections, turns, child watchers and timers never touch the state themselves: they
post jobs to the loop, which runs them one at a time (``Job`` carries the time it was
posted, for the lag figures in ``status``). Handlers are plain functions: they cannot
await, so the loop cannot wait on itself. Work that takes time (spawning a child, a
turn, probing liveness, stopping) runs in background tasks that post their results
back as further jobs. An exception in a job is logged with its traceback and becomes
an ``errored`` event upward; the loop goes on.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import attrs
import trio

from podd import liveness, sandbox, scope
from podd.async_client import async_call
from podd.children import spawn_child, stop_child, wait_gone
from podd.errors import PodFailed, PodUnreachable, UsageError
from podd.events import apply_event, authorize, sender_of
from podd.notifications import Notification, NotificationBuffer
from podd.outbox import Outbox
from podd.paths import check_name
from podd.procfacts import is_alive, signal_name, start_time
from podd.reclaim import cleanup_pod_dir
from podd.registry import ChildRecord, Registry
from podd.server import Connection, serve
from podd.spawner import SpawnError
from podd.spec import Ancestor, PodInfo, PodSpec, write_info
from podd.turns import OutputLog, TurnHandle, TurnOutcome, check_agent, run_turn
from protocol import (
    Adopted,
    AdoptParams,
    AlreadyRunning,
    Errored,
    FlushEventsParams,
    Forbidden,
    InternalError,
    InvalidName,
    ListPodsParams,
    NoAgent,
    NotificationsParams,
    PodExists,
    PodNotFound,
    ProtocolError,
    ReclaimStaleParams,
    Request,
    ScopeSubDelegated,
    SendParams,
    ShutDown,
    ShutdownParams,
    ShuttingDown,
    SpawnFailed,
    SpawnParams,
    TurnEnded,
    encode_error,
    encode_result,
)

__all__ = ["LoopReentryError", "Pod"]

log = logging.getLogger(__name__)

LATER = object()
"""A handler's result meaning "the reply is sent later, by a background task"."""

SLOW_HANDLER = 0.05
"""A handler holding the loop longer than this (seconds) is logged as a warning."""

OUTCOME_RANK = {"clean": 0, "drained_with_discards": 1, "force_killed": 2, "timeout": 3}


class LoopReentryError(RuntimeError):
    """A task running inside the dispatch loop tried to wait on the loop."""


@attrs.define
class Job:
    posted_at: float
    name: str
    fn: Callable[[], Any]


@attrs.define
class LagStats:
    last: float = 0.0
    max: float = 0.0
    total: float = 0.0
    count: int = 0
    longest_handler: float = 0.0
    longest_handler_name: str = ""

    def record(self, lag: float, held: float, name: str) -> None:
        self.last = lag
        self.max = max(self.max, lag)
        self.total += lag
        self.count += 1
        if held > self.longest_handler:
            self.longest_handler = held
            self.longest_handler_name = name

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "max": self.max,
            "mean": self.total / self.count if self.count else 0.0,
            "jobs": self.count,
            "longest_handler": {"seconds": self.longest_handler, "job": self.longest_handler_name},
        }


@attrs.frozen
class Tombstone:
    """A pod removed from the registry: its late events are ignored, not refused."""

    pid: int
    incarnation: int
    last_seq: int


class Pod:
    def __init__(self, spec: PodSpec, start_time: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.pid = os.getpid()
        self.start_time = start_time
        self.incarnation = spec.incarnation
        self.parent = spec.parent
        self.parent_socket = spec.parent_socket
        self.parent_pid = spec.parent_pid
        self.ancestors = list(spec.ancestors)
        self.registry = Registry(os.path.join(spec.directory, "spawned_pods.json"))
        self.notifications = NotificationBuffer()
        self.outbox = Outbox(self.name, self.incarnation, spec.parent_socket)
        self.output = OutputLog(os.path.join(spec.directory, "output.log"))
        self.enforcement = sandbox.enforcement_mode()
        self.fault = os.environ.get("PODD_FAULT", "")
        self.lag = LagStats()
        self.turns = 0
        self.last_turn: TurnOutcome | None = None
        self._turn: TurnHandle | None = None
        self._turn_over = trio.Event()
        self._turn_waiters: list[tuple[Connection, Any]] = []
        self._wake_pending = False
        self._processes: dict[str, trio.Process] = {}
        self._pending_spawns: dict[str, list[Any]] = {}
        self._spawns_settled = trio.Event()
        self._tombstones: collections.OrderedDict[str, Tombstone] = collections.OrderedDict()
        self._stop_requesters: list[tuple[Connection, Any]] = []
        self.stopping = False
        self._stopped = False
        self._jobs_send, self._jobs_recv = trio.open_memory_channel[Job](4096)
        self._loop_task: trio.lowlevel.Task | None = None
        self._nursery: trio.Nursery | None = None
        self._handlers: dict[str, Callable[[Connection, Request], Any]] = {
            "ping": self._on_ping,
            "status": self._on_status,
            "spawn": self._on_spawn,
            "send": self._on_send,
            "notifications": self._on_notifications,
            "shutdown": self._on_shutdown,
            "list_pods": self._on_list_pods,
            "reclaim_stale": self._on_reclaim_stale,
            "adopt": self._on_adopt,
            "flush_events": self._on_flush_events,
            "pod_event": self._on_pod_event,
        }

    # --- Running -------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.stopping:
            return "stopping"
        return "running" if self._turn is not None else "idle"

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None
        return self._nursery

    async def run(self, listener: trio.SocketListener, on_ready: Callable[[], None]) -> None:
        """Serve until stopped. ``on_ready`` is called once the socket accepts."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(serve, listener, self._dispatch)
            await nursery.start(self.outbox.run)
            nursery.start_soon(self._watch_signals)
            if self.parent is not None:
                nursery.start_soon(self._watch_parent, self.parent_pid, True)
            nursery.start_soon(self._reclaim_periodically)
            on_ready()
            if self.spec.task is not None and self.spec.agent:
                self.post("task", lambda: self._start_turn(self.spec.task or ""))
            await self._dispatch_loop()
            nursery.cancel_scope.cancel()

    def post(self, name: str, fn: Callable[[], Any]) -> None:
        """Queue a job for the loop from any task; never blocks (the queue is generous,
        and a job that cannot be queued is run later by a helper task)."""
        job = Job(trio.current_time(), name, fn)
        try:
            self._jobs_send.send_nowait(job)
        except trio.WouldBlock:
            self.nursery.start_soon(self._jobs_send.send, job)

    async def call(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the loop and return its result. Refused from inside the loop,
        where waiting for the loop would wait forever."""
        if trio.lowlevel.current_task() is self._loop_task:
            raise LoopReentryError(f"{name}: the dispatch loop cannot wait on itself")
        done = trio.Event()
        box: list[Any] = []

        def job() -> None:
            try:
                box.append((True, fn()))
            except Exception as exc:
                box.append((False, exc))
            done.set()

        await self._jobs_send.send(Job(trio.current_time(), name, job))
        await done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    async def _dispatch(self, conn: Connection, request: Request) -> None:
        await self._jobs_send.send(
            Job(trio.current_time(), request.method, lambda: self._handle(conn, request))
        )

    async def _dispatch_loop(self) -> None:
        self._loop_task = trio.lowlevel.current_task()
        async for job in self._jobs_recv:
            begun = trio.current_time()
            try:
                job.fn()
            except Exception as exc:
                log.exception("job %s failed", job.name)
                self._report_fault(job.name, exc)
            held = trio.current_time() - begun
            self.lag.record(begun - job.posted_at, held, job.name)
            if held > SLOW_HANDLER:
                log.warning("job %s held the dispatch loop for %.3f s", job.name, held)
            if self._stopped:
                return

    def _report_fault(self, where: str, exc: BaseException) -> None:
        self.outbox.post(Errored(self.name, f"internal error in {where}: {exc!r}"))

    def _handle(self, conn: Connection, request: Request) -> None:
        answers = request.id is not None
        try:
            if self.fault and self.fault == request.method:
                raise RuntimeError(f"injected fault in {request.method} (PODD_FAULT)")
            result = self._handlers[request.method](conn, request)
        except ProtocolError as exc:
            conn.reply(encode_error(request.id, exc), answers=answers)
        except Exception as exc:
            log.exception("handler %s failed", request.method)
            self._report_fault(request.method, exc)
            conn.reply(encode_error(request.id, InternalError(repr(exc))), answers=answers)
        else:
            if result is not LATER and answers:
                conn.reply(encode_result(request.id, result))

    # --- Simple requests -----------------------------------------------------------

    def _on_ping(self, conn: Connection, request: Request) -> Any:
        return {
            "pong": True,
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "incarnation": self.incarnation,
            "parent": self.parent,
        }

    def _on_status(self, conn: Connection, request: Request) -> Any:
        last = attrs.asdict(self.last_turn) if self.last_turn else None
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "parent": self.parent,
            "parent_socket": self.parent_socket,
            "incarnation": self.incarnation,
            "socket": self.spec.socket,
            "cwd": self.spec.cwd,
            "agent": self.spec.agent,
            "started_at": self.start_time,
            "turns": self.turns,
            "last_turn": last,
            "current_turn": self._turn.turn if self._turn else None,
            "wake_on_notify": self.spec.wake_on_notify,
            "turn_timeout": self.spec.turn_timeout,
            "scope": self.spec.scope,
            "effective_scope": scope.effective_rules(self.spec.scope, self._held()),
            "enforcement": self.enforcement,
            "children": [attrs.asdict(r) for r in self.registry],
            "notifications_pending": len(self.notifications),
            "notifications_dropped": self.notifications.dropped,
            "lag": self.lag.to_dict(),
            "outbox": {
                "pending": self.outbox.pending,
                "delivered": self.outbox.delivered,
                "dropped": self.outbox.dropped,
                "target": self.outbox.target,
            },
        }

    def _on_notifications(self, conn: Connection, request: Request) -> Any:
        params: NotificationsParams = request.params
        items = self.notifications.peek() if params.peek else self.notifications.drain()
        return {"notifications": [n.to_dict() for n in items]}

    # --- Spawning children ---------------------------------------------------------

    def _held(self) -> dict[str, list[Any]]:
        held = dict(self.registry.held_scopes())
        held.update(self._pending_spawns)
        return held

    def _on_spawn(self, conn: Connection, request: Request) -> Any:
        params: SpawnParams = request.params
        if self.stopping:
            raise ShuttingDown(f"pod {self.name!r} is stopping")
        try:
            check_name(params.name)
        except UsageError as exc:
            raise InvalidName(str(exc)) from exc
        name = params.name
        if name == self.name or name in self.registry or name in self._pending_spawns:
            raise PodExists(f"a pod named {name!r} already exists")
        if os.path.exists(os.path.join(self.spec.root, name, "sock")):
            raise PodExists(f"a pod named {name!r} already exists under {self.spec.root}")
        try:
            if params.scope is not None:
                rules = [scope.normalize_rule(r) for r in params.scope]
            else:
                rules = scope.default_child_scope(self.spec.scope)
        except ValueError as exc:
            raise SpawnFailed(str(exc)) from exc
        scope.check_delegation(self.spec.scope, self._held(), rules)
        cwd = os.path.abspath(params.cwd or self.spec.cwd)
        if not os.path.isdir(cwd):
            raise SpawnFailed(f"cwd {cwd!r} is not a directory")
        if params.agent is not None:
            problem = check_agent(params.agent, cwd)
            if problem:
                raise SpawnFailed(problem)
        ancestors = [Ancestor(self.parent, self.parent_socket or "")] if self.parent else []
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
            parent=self.name,
            parent_socket=self.spec.socket,
            parent_pid=self.pid,
            ancestors=ancestors + self.ancestors,
            reclaim_interval=self.spec.reclaim_interval,
        )
        self._pending_spawns[name] = rules
        self._spawns_settled = trio.Event()
        self.nursery.start_soon(self._run_spawn, spec, conn, request.id)
        return LATER

    async def _run_spawn(self, spec: PodSpec, conn: Connection, request_id: Any) -> None:
        try:
            proc, ready = await spawn_child(spec)
        except SpawnError as exc:
            error = exc.as_wire()
            self.post("spawn_failed", lambda: self._spawn_settled(spec.name, conn, request_id, error))
            return
        self.post("spawn_done", lambda: self._spawn_done(spec, proc, ready.socket, ready, conn, request_id))

    def _spawn_settled(self, name: str, conn: Connection, request_id: Any, error: ProtocolError) -> None:
        del self._pending_spawns[name]
        if not self._pending_spawns:
            self._spawns_settled.set()
        conn.reply(encode_error(request_id, error), answers=request_id is not None)

    def _spawn_done(
        self, spec: PodSpec, proc: trio.Process, sock: str, ready: Any, conn: Connection, request_id: Any
    ) -> None:
        rules = self._pending_spawns.pop(spec.name)
        if not self._pending_spawns:
            self._spawns_settled.set()
        record = ChildRecord(
            pod_name=spec.name,
            socket_path=sock,
            scope_delegated=rules,
            callback_address=self.spec.socket,
            pid=ready.pid,
            start_time=ready.start_time,
            parent_pod=self.name,
            restart=spec.restart,
        )
        self.registry.add(record)
        self.registry.save()
        self._processes[spec.name] = proc
        self.nursery.start_soon(self._watch_child, spec.name, proc)
        self.outbox.post(
            ScopeSubDelegated(
                parent_pod=self.name,
                sub_pod=spec.name,
                sub_socket=sock,
                scope=rules,
                sub_pid=ready.pid,
                sub_start_time=ready.start_time,
            )
        )
        if request_id is not None:
            conn.reply(encode_result(request_id, {"name": spec.name, "pid": ready.pid, "socket": sock}))

    async def _watch_child(self, name: str, proc: trio.Process) -> None:
        code = await proc.wait()
        self.post("child_exited", lambda: self._child_exited(name, proc.pid, code))

    def _child_exited(self, name: str, pid: int, code: int) -> None:
        if self._processes.get(name) is not None and self._processes[name].pid == pid:
            del self._processes[name]
        record = self.registry.get(name)
        if record is None or record.pid != pid:
            return  # it said shut_down first: nothing left to reclaim
        cause = f"killed by {signal_name(-code)}" if code < 0 else f"exited with status {code}"
        self._reclaim(record, cause, clean=code == 0)

    def _reclaim(self, record: ChildRecord, cause: str, *, clean: bool = False) -> dict[str, Any]:
        """Remove a dead pod: registry entry, scope, leftovers; leave a notification."""
        self.registry.remove(record.pod_name)
        self._tombstone(record)
        self.registry.save()
        cleanup_pod_dir(self.spec.root, record.pod_name, record.pid)
        if clean:
            event: Any = ShutDown(record.pod_name, reason=f"pod {cause}")
        else:
            event = Errored(record.pod_name, f"pod died: {cause}")
        self._notify(Notification.of(event))
        log.info("reclaimed %s: %s", record.pod_name, cause)
        return {"pod": record.pod_name, "by": self.name, "reason": cause}

    def _tombstone(self, record: ChildRecord) -> None:
        self._tombstones[record.pod_name] = Tombstone(record.pid, record.incarnation, record.last_seq)
        while len(self._tombstones) > 1024:
            self._tombstones.popitem(last=False)

    # --- Turns ---------------------------------------------------------------------

    def _on_send(self, conn: Connection, request: Request) -> Any:
        params: SendParams = request.params
        if not self.spec.agent:
            raise NoAgent(f"pod {self.name!r} has no agent; it only supervises")
        if self.stopping:
            raise ShuttingDown(f"pod {self.name!r} is stopping")
        if self._turn is not None:
            raise AlreadyRunning(f"pod {self.name!r} is already running turn {self._turn.turn}")
        turn = self._start_turn(params.text)
        if params.wait and request.id is not None:
            self._turn_waiters.append((conn, request.id))
            return LATER
        return {"turn": turn}

    def _notify(self, notification: Notification) -> None:
        self.notifications.push(notification)
        if self.spec.wake_on_notify and self.spec.agent and not self.stopping:
            if self._turn is None:
                self._start_turn("")
            else:
                self._wake_pending = True

    def _start_turn(self, text: str) -> int:
        self.turns += 1
        handle = TurnHandle(self.turns)
        self._turn = handle
        self._turn_over = trio.Event()
        lines = "".join(n.text + "\n" for n in self.notifications.drain())
        if text and not text.endswith("\n"):
            text += "\n"
        self.nursery.start_soon(self._run_turn, handle, (lines + text).encode())
        return handle.turn

    def _turn_env(self, turn: int, tmpdir: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            POD_NAME=self.name,
            POD_SOCKET=self.spec.socket,
            PODD_ROOT=self.spec.root,
            POD_TURN=str(turn),
            TMPDIR=tmpdir,
        )
        if self.parent:
            env["POD_PARENT"] = self.parent
        else:
            env.pop("POD_PARENT", None)
        return env

    def _confinement(self, tmpdir: str) -> sandbox.Confinement:
        write, excluded = scope.confinement_paths(self.spec.scope, self._held())
        return sandbox.prepare_confinement(write, excluded, [tmpdir])

    async def _run_turn(self, handle: TurnHandle, stdin_data: bytes) -> None:
        tmpdir = os.path.join(self.spec.directory, "tmp")
        os.makedirs(tmpdir, mode=0o700, exist_ok=True)
        marker = os.path.join(self.spec.directory, "turn.pid")
        try:
            with self._confinement(tmpdir) as confinement:
                outcome = await run_turn(
                    handle,
                    command=self.spec.agent or "",
                    cwd=self.spec.cwd,
                    env=self._turn_env(handle.turn, tmpdir),
                    stdin_data=stdin_data,
                    timeout=self.spec.turn_timeout,
                    output=self.output,
                    preexec=confinement,
                    on_start=lambda pid: _write_marker(marker, pid),
                )
        except Exception as exc:
            log.exception("turn %d failed inside the pod", handle.turn)
            outcome = TurnOutcome(handle.turn, False, f"turn {handle.turn} failed to run: {exc!r}")
        with contextlib.suppress(OSError):
            os.unlink(marker)
        self.post("turn_done", lambda: self._turn_done(outcome))

    def _turn_done(self, outcome: TurnOutcome) -> None:
        self._turn = None
        self.last_turn = outcome
        self._turn_over.set()
        if outcome.finished:
            self.outbox.post(TurnEnded(self.name, turn=outcome.turn))
        else:
            self.outbox.post(Errored(self.name, outcome.message, turn=outcome.turn))
        log.info("%s", outcome.message)
        result = attrs.asdict(outcome)
        for conn, request_id in self._turn_waiters:
            conn.reply(encode_result(request_id, result))
        self._turn_waiters.clear()
        if self._wake_pending and not self.stopping:
            self._wake_pending = False
            if len(self.notifications):
                self._start_turn("")

    # --- Events from below ---------------------------------------------------------

    def _on_pod_event(self, conn: Connection, request: Request) -> Any:
        event = request.params
        try:
            sender = authorize(self.registry, event, conn.peer_pid)
        except Forbidden:
            tomb = self._tombstones.get(sender_of(event) or "")
            if tomb is not None and tomb.pid == conn.peer_pid:
                return {"applied": False, "reason": "the pod is no longer registered here"}
            raise
        applied = apply_event(self.registry, sender, event, self.name)
        for name in applied.removed:
            self._tombstones[name] = Tombstone(
                sender.pid if name == sender.pod_name else 0, sender.incarnation, sender.last_seq
            )
        if applied.registry_changed:
            self.registry.save()
        if applied.forward is not None:
            self.outbox.post(applied.forward)
        if applied.notification is not None:
            self._notify(applied.notification)
        return {"applied": not applied.duplicate}

    def _on_flush_events(self, conn: Connection, request: Request) -> Any:
        params: FlushEventsParams = request.params
        record = self.registry.get(params.pod_name)
        if record is not None and record.pid == conn.peer_pid:
            return {"incarnation": record.incarnation, "seq": record.last_seq}
        tomb = self._tombstones.get(params.pod_name)
        if tomb is not None and tomb.pid == conn.peer_pid:
            return {"incarnation": tomb.incarnation, "seq": tomb.last_seq}
        raise Forbidden(f"pod {params.pod_name!r} is not registered here")

    def _on_adopt(self, conn: Connection, request: Request) -> Any:
        params: AdoptParams = request.params
        if self.stopping:
            raise ShuttingDown(f"pod {self.name!r} is stopping")
        record = self.registry.get(params.pod_name)
        if record is None:
            raise PodNotFound(f"pod {params.pod_name!r} is not registered here")
        if record.pid != conn.peer_pid:
            raise Forbidden(f"only pod {params.pod_name!r} itself may ask to be adopted")
        record.parent_pod = self.name
        record.callback_address = self.spec.socket
        record.socket_path = params.socket
        self.registry.save()
        self._notify(Notification.of(Adopted(params.pod_name, params.previous_parent)))
        self.nursery.start_soon(self._watch_adopted, record.pod_name, record.pid, record.start_time)
        ancestors = [Ancestor(self.parent, self.parent_socket or "")] if self.parent else []
        return {
            "name": self.name,
            "pid": self.pid,
            "socket": self.spec.socket,
            "ancestors": [attrs.asdict(a) for a in ancestors + self.ancestors],
        }

    async def _watch_adopted(self, name: str, pid: int, started: float) -> None:
        await wait_gone(pid, started, float("inf"))
        self.post("adopted_exited", lambda: self._adopted_exited(name, pid))

    def _adopted_exited(self, name: str, pid: int) -> None:
        record = self.registry.get(name)
        if record is not None and record.pid == pid:
            self._reclaim(record, "process gone")

    # --- Liveness ------------------------------------------------------------------

    def _on_list_pods(self, conn: Connection, request: Request) -> Any:
        params: ListPodsParams = request.params
        records = list(self.registry)
        self.nursery.start_soon(self._list_and_reply, records, params.probe_timeout, conn, request.id)
        return LATER

    async def _list_and_reply(
        self, records: list[ChildRecord], timeout: float, conn: Connection, request_id: Any
    ) -> None:
        probes = await liveness.probe_all(records, timeout)
        pods = [
            {**attrs.asdict(r), "liveness": probes[r.pod_name]} for r in records
        ]
        if request_id is not None:
            conn.reply(encode_result(request_id, {"pod": self.name, "pods": pods}))

    def _on_reclaim_stale(self, conn: Connection, request: Request) -> Any:
        params: ReclaimStaleParams = request.params
        self.nursery.start_soon(self._reclaim_stale, params.probe_timeout, conn, request.id)
        return LATER

    async def _reclaim_stale(
        self, timeout: float, conn: Connection | None = None, request_id: Any = None
    ) -> None:
        records = list(self.registry)
        probes = await liveness.probe_all(records, timeout)
        dead = [r for r in records if probes[r.pod_name] == "dead"]

        def reclaim() -> None:
            reclaimed = []
            for record in dead:
                current = self.registry.get(record.pod_name)
                if current is not None and current.pid == record.pid:
                    if not is_alive(current.pid, current.start_time):
                        reclaimed.append(self._reclaim(current, "process gone (reclaim_stale)"))
            if conn is not None and request_id is not None:
                conn.reply(encode_result(request_id, {"reclaimed": reclaimed}))

        self.post("reclaim_stale", reclaim)

    async def _reclaim_periodically(self) -> None:
        while True:
            await self._reclaim_stale(0.5)
            await trio.sleep(self.spec.reclaim_interval)

    # --- Parent death and adoption ---------------------------------------------------

    async def _watch_parent(self, pid: int, os_parent: bool) -> None:
        if os_parent and os.getppid() != pid:
            gone = True
        else:
            gone = await wait_gone(pid, 0.0, float("inf"))
        if gone:
            self.post("parent_died", self._parent_died)

    def _parent_died(self) -> None:
        if self.stopping:
            self.outbox.retarget(None)
            return
        log.warning("parent %s died; looking for an ancestor to adopt us", self.parent)
        self.nursery.start_soon(self._find_adopter, self.parent or "")

    async def _find_adopter(self, previous: str) -> None:
        for index, ancestor in enumerate(self.ancestors):
            params = AdoptParams(self.name, previous_parent=previous, socket=self.spec.socket)
            try:
                result = await async_call(ancestor.socket, "adopt", params, timeout=2.0)
            except (PodUnreachable, PodFailed) as exc:
                log.info("ancestor %s cannot adopt us: %s", ancestor.name, exc)
                continue
            rest = self.ancestors[index + 1 :]
            self.post("adopted", lambda: self._adopted(ancestor, int(result["pid"]), rest))
            return
        self.post("orphaned", self._orphaned)

    def _adopted(self, ancestor: Ancestor, pid: int, rest: list[Ancestor]) -> None:
        log.warning("adopted by %s", ancestor.name)
        self.parent, self.parent_socket, self.parent_pid = ancestor.name, ancestor.socket, pid
        self.ancestors = rest
        self.outbox.retarget(ancestor.socket)
        self.nursery.start_soon(self._watch_parent, pid, False)

    def _orphaned(self) -> None:
        log.warning("no live ancestor is left: stopping")
        self.parent = None
        self.outbox.retarget(None)
        self._begin_stop(ShutdownParams(timeout=5.0), "orphaned: no live ancestor")

    # --- Stopping ------------------------------------------------------------------

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                name = signal_name(signum)
                self.post("signal", lambda: self._begin_stop(ShutdownParams(), f"received {name}"))

    def _on_shutdown(self, conn: Connection, request: Request) -> Any:
        if request.id is not None:
            self._stop_requesters.append((conn, request.id))
        self._begin_stop(request.params, "stopped")
        return LATER

    def _begin_stop(self, params: ShutdownParams, reason: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: %s", reason)
        self.nursery.start_soon(self._stop, params, reason)

    async def _stop(self, params: ShutdownParams, reason: str) -> None:
        deadline = trio.current_time() + params.timeout
        if self._pending_spawns:
            with trio.move_on_at(deadline):
                await self._spawns_settled.wait()
        outcomes: list[str] = []
        children = [r for r in self.registry if r.parent_pod == self.name]

        async def stop_one(record: ChildRecord) -> None:
            remaining = max(0.1, deadline - trio.current_time())
            outcome = await stop_child(
                record.socket_path,
                record.pid,
                record.start_time,
                attrs.evolve(params, timeout=remaining),
                self._processes.get(record.pod_name),
            )
            if outcome == "force_killed":
                self._kill_subtree(record.pod_name)
            outcomes.append(outcome)

        async with trio.open_nursery() as nursery:
            for record in children:
                nursery.start_soon(stop_one, record)
        outcomes.append(await self._stop_turn(params, deadline))
        outcome = max(outcomes, key=OUTCOME_RANK.__getitem__, default="clean")
        if outcome == "timeout":
            self.post("stop_timed_out", lambda: self._stop_timed_out(outcome))
            return
        self.outbox.post(ShutDown(self.name, reason=reason))
        await self.outbox.flush(timeout=max(0.5, min(2.0, deadline - trio.current_time())))
        self.post("stopped", lambda: self._finish_stop(outcome))

    async def _stop_turn(self, params: ShutdownParams, deadline: float) -> str:
        handle = self._turn
        if handle is None:
            return "clean"
        if params.drain:
            discarded = self._wake_pending
            self._wake_pending = False
            with trio.move_on_at(deadline):
                await self._turn_over.wait()
                return "drained_with_discards" if discarded else "clean"
            if not params.kill:
                return "timeout"
            handle.cancel("stop timed out")
            await self._turn_over.wait()
            return "force_killed"
        handle.cancel("the pod is stopping")
        await self._turn_over.wait()
        return "clean"

    def _kill_subtree(self, name: str) -> None:
        """SIGKILL everything registered below ``name`` (a child that was force-killed),
        so that no grandchild goes looking for a new parent."""
        for below in self.registry.descendants_of(name):
            record = self.registry.get(below)
            if record is not None and is_alive(record.pid, record.start_time):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signal.SIGKILL)

    def _stop_timed_out(self, outcome: str) -> None:
        self.stopping = False
        for conn, request_id in self._stop_requesters:
            conn.reply(encode_result(request_id, {"outcome": outcome, "pid": self.pid}))
        self._stop_requesters.clear()

    def _finish_stop(self, outcome: str) -> None:
        for record in list(self.registry):
            if record.parent_pod == self.name:
                self._reclaim(record, "stopped with its parent")
        for conn, request_id in self._stop_requesters:
            conn.reply(encode_result(request_id, {"outcome": outcome, "pid": self.pid}))
        self.nursery.start_soon(self._flush_then_end, list(self._stop_requesters))

    async def _flush_then_end(self, requesters: list[tuple[Connection, Any]]) -> None:
        with trio.move_on_after(1.0):
            for conn, _ in requesters:
                await conn.wait_flushed()
        self._stopped = True
        self.post("end", lambda: None)

    def info(self) -> PodInfo:
        spec = attrs.evolve(
            self.spec,
            parent=self.parent,
            parent_socket=self.parent_socket,
            parent_pid=self.parent_pid,
            ancestors=self.ancestors,
        )
        return PodInfo(spec=spec, pid=self.pid, start_time=self.start_time)

    def write_info(self) -> None:
        write_info(os.path.join(self.spec.directory, "pod.json"), self.info())


def _write_marker(path: str, pid: int) -> None:
    """Record the running turn's process group, for whoever reclaims this pod if it dies."""
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(f"{pid} {start_time(pid)}\n")
