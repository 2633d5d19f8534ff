"""The core of a pod: one dispatch loop that owns all of the pod's state.

Connections, turns, child watchers and timers never touch the state themselves: they
post jobs to the loop, which runs them one at a time (``Job`` carries the time it was
posted, for the lag figures in ``status``). Handlers are plain functions: they cannot
await, so the loop cannot wait on itself. Work that takes time (spawning a child, a
turn, probing liveness, stopping) runs in background tasks that post their results
back as further jobs. An exception in a job is logged with its traceback and becomes
an ``errored`` event upward; the loop goes on.

The concerns built on this core live beside it: ``events`` (events from below),
``children`` (spawning, reclaiming and restarting children), ``turns`` (the
agent's turns and notifications), ``liveness`` (probes, parent death, adoption)
and ``stop`` (stopping); ``pod.Pod`` puts them together.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import orjson
import trio
import trio.lowlevel

from podd import sandbox
from podd.core import scope
from podd.core.effects import (
    AbortStop,
    BeginStop,
    DropQueuedWork,
    Effect,
    FindAdopter,
    FinishStop,
    FlushOutbox,
    Notify,
    PersistRegistry,
    PostEvent,
    Reclaim,
    Reply,
    RestartLater,
    RetargetOutbox,
    StopChildren,
    StopTurn,
    Trace,
    WaitSpawns,
    WatchAdopted,
    WatchParent,
    WriteInfo,
)
from podd.core.notifications import Notification, NotificationBuffer
from podd.core.registry import ChildRecord, Registry
from podd.core.spec import PodInfo, PodSpec
from podd.core.stopping import Stop
from podd.core.tombstones import Tombstones
from podd.core.turns import Queue, Work, empty_usage
from podd.faults import fault_injected
from podd.runtime.event_feed import EventFeed
from podd.runtime.outbox import Outbox
from podd.runtime.server import Connection, serve
from podd.runtime.slots import SlotPool
from podd.runtime.turn_process import OutputLog, TurnHandle
from podd.spawn import forkserver
from podd.spawn.child_process import ChildProcess
from podd.spawn.forkclient import ForkServer
from podd.spawn.spawner import pod_environment
from podd.store import kept
from podd.store.atomic import write_atomic
from podd.store.journal import SYNC_INTERVAL, Journal, PodState
from podd.store.pod_files import save_registry, write_info
from protocol import (
    Errored,
    InternalError,
    NotificationsParams,
    ProtocolError,
    Request,
    ShutdownParams,
    encode_error,
    encode_result,
)

__all__ = ["LATER", "LoopReentryError", "PodCore"]

log = logging.getLogger(__name__)

LATER = object()
"""A handler's result meaning "the reply is sent later, by a background task"."""

SLOW_HANDLER = 0.05
"""A handler holding the loop longer than this (seconds) is logged as a warning."""

_RECORD_FIELDS = operator.attrgetter(*(field.name for field in attrs.fields(ChildRecord)))
"""A registry record's fields as a tuple: what ``status`` shows of it."""


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


class PodCore:
    """State, loop and the requests every concern shares; see the module docstring."""

    def __init__(self, spec: PodSpec, start_time: float, restored: PodState | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.pid = os.getpid()
        self.start_time = start_time
        self.incarnation = spec.incarnation
        self.parent = spec.parent
        self.parent_socket = spec.parent_socket
        self.parent_pid = spec.parent_pid
        self.ancestors = list(spec.ancestors)
        self.registry = Registry()
        self.registry_path = os.path.join(spec.directory, "spawned_pods.json")
        self.notifications = NotificationBuffer()
        self.outbox = Outbox(self.name, self.incarnation, spec.parent_socket)
        self.feed = EventFeed(self.name, self.background)
        self.outbox.on_post = functools.partial(self.feed.record, self.name)
        kept.prepare(spec.root, spec.name, fresh=not spec.restore)
        kept.seed_login(spec.root, spec.name, spec.driver, dict(os.environ))
        if spec.mcp:
            _write_mcp_config(spec)
        self.output = OutputLog(kept.output_log(spec.root, spec.name))
        self.trace = EventTrace.from_env(self.name)
        self.lag = LagStats()
        self.turns = 0
        self.last_record: dict[str, Any] | None = None
        """The last turn's record (see ``podd.runtime.turn_runner``)."""
        self.session: str | None = None
        """The agent's conversation, resumed by the next turn (LLM drivers)."""
        self.cost_usd: float | None = None
        self.usage: dict[str, int | None] = empty_usage()
        self.queue = Queue()
        self._work: Work | None = None
        """The current work item: waiting (``_waiting_on`` says for what) or running."""
        self._waiting_on: str | None = None
        self._awaiting_prerequisites = False
        self._idle_waiters: list[tuple[Connection, Any]] = []
        self.slots = SlotPool(spec.max_running) if spec.max_running is not None else None
        self.finished_children: set[str] = set()
        """Children that have finished a turn (for siblings' ``--after``)."""
        self.prerequisites: dict[str, set[str]] = {}
        """Child -> the siblings its task still waits for."""
        self.stop_reason = "stopped"
        self._turn: TurnHandle | None = None
        self._turn_over = trio.Event()
        self._wake_pending = False
        self._processes: dict[str, ChildProcess] = {}
        self.forkserver = (
            ForkServer(
                [sys.executable, "-m", "podd._forkserver_main"],
                pod_environment(),
                [spec.name, spec.root],
            )
            if forkserver.available()
            else None
        )
        self._pending_spawns: dict[str, list[Any]] = {}
        self._child_specs: dict[str, PodSpec] = {}
        self._restart_trackers: dict[str, Any] = {}
        self._restart_specs: dict[str, PodSpec] = {}
        self._spawns_settled = trio.Event()
        self.tombstones = Tombstones()
        self._stop_requesters: list[tuple[Connection, Any]] = []
        self.stopping = False
        self._stop_plan: Stop | None = None
        self._stopped = False
        self._jobs_send, self._jobs_recv = trio.open_memory_channel[Job](4096)
        self._loop_task: trio.lowlevel.Task | None = None
        self._nursery: trio.Nursery | None = None
        self._handlers: dict[str, Callable[[Connection, Request], Any]] = {
            "ping": self._on_ping,
            "status": self._on_status,
            "notifications": self._on_notifications,
            "events": self.feed.on_events,
        }
        self.journal = Journal(spec.directory)
        self._registry_bytes: bytes | None = None
        self._registry_dirty = trio.Event()
        self._registry_written = trio.Event()
        self._registry_version = 0
        """Bumped at each change; ``_registry_on_disk`` is the newest one in the file."""
        self._registry_on_disk = 0
        if restored is not None:
            self._restore(restored)

    # --- Hooks the concerns provide (see pod.Pod) ------------------------------------

    def _notify(self, notification: Notification) -> None:
        raise NotImplementedError

    def _start_turn(self, text: str) -> int:
        raise NotImplementedError

    def _start_task(self) -> None:
        if self._turn is None and not self.stopping:
            self._start_turn(self.spec.task or "")

    def _reclaim(self, record: ChildRecord, cause: str, *, clean: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def _begin_stop(self, params: ShutdownParams, reason: str) -> None:
        raise NotImplementedError

    async def _watch_signals(self) -> None:
        raise NotImplementedError

    async def _watch_parent(self, pid: int, os_parent: bool) -> None:
        raise NotImplementedError

    async def _reclaim_periodically(self) -> None:
        raise NotImplementedError

    async def _watch_adopted(self, name: str, pid: int, started: float) -> None:
        raise NotImplementedError

    async def _find_adopter(self, previous: str) -> None:
        raise NotImplementedError

    async def _wait_spawns(self, deadline: float) -> None:
        raise NotImplementedError

    async def _stop_children(
        self,
        children: tuple[tuple[ChildRecord, tuple[ChildRecord, ...]], ...],
        params: ShutdownParams,
        deadline: float,
    ) -> None:
        raise NotImplementedError

    def _has_queued_work(self) -> bool:
        """Whether a stop would drop work that was asked for: a pending wake, a queued
        turn, or a work item that never started (waiting)."""
        return (
            self._wake_pending
            or len(self.queue) > 0
            or (self._work is not None and self._waiting_on is not None)
        )

    def _drop_queued_work(self) -> None:
        raise NotImplementedError

    def _restart_later(self, name: str, delay: float) -> None:
        raise NotImplementedError

    async def _run_stop_turn(self, params: ShutdownParams, deadline: float) -> None:
        raise NotImplementedError

    async def _flush_outbox(self, timeout: float) -> None:
        raise NotImplementedError

    def _stop_timed_out(self, outcome: str) -> None:
        raise NotImplementedError

    def _finish_stop(self, outcome: str) -> None:
        raise NotImplementedError

    def _held(self) -> dict[str, list[Any]]:
        held = dict(self.registry.held_scopes())
        held.update(self._pending_spawns)
        return held

    def run_effects(self, effects: list[Effect]) -> Any:
        """Carry out what a handler of ``podd.core`` returned, in order; the result of
        its ``Reply`` (None if it has none)."""
        result: Any = None
        for effect in effects:
            match effect:
                case Reply(result=result):
                    pass
                case PostEvent(event=event):
                    self.outbox.post(event)
                case Notify(notification=notification):
                    self._notify(notification)
                case PersistRegistry():
                    self.registry_changed()
                case Trace(text=text):
                    if self.trace is not None:
                        self.trace.write(text)
                case Reclaim(record=record, cause=cause, clean=clean):
                    self._reclaim(record, cause, clean=clean)
                case RestartLater(name=name, delay=delay):
                    self._restart_later(name, delay)
                case WatchAdopted(name=name, pid=pid, start_time=started):
                    self.background(self._watch_adopted, name, pid, started)
                case WatchParent(pid=pid):
                    self.background(self._watch_parent, pid, False)
                case FindAdopter(previous_parent=previous):
                    self.background(self._find_adopter, previous)
                case RetargetOutbox(target=target):
                    self.outbox.retarget(target)
                case WriteInfo():
                    self.write_info()
                case BeginStop(params=params, reason=reason):
                    self._begin_stop(params, reason)
                case WaitSpawns(deadline=deadline):
                    self.background(self._wait_spawns, deadline)
                case StopChildren(children=children, params=params, deadline=deadline):
                    self.background(self._stop_children, children, params, deadline)
                case DropQueuedWork():
                    self._drop_queued_work()
                case StopTurn(params=params, deadline=deadline):
                    self.background(self._run_stop_turn, params, deadline)
                case FlushOutbox(timeout=timeout):
                    self.background(self._flush_outbox, timeout)
                case AbortStop(outcome=outcome):
                    self._stop_timed_out(outcome)
                case FinishStop(outcome=outcome):
                    self._finish_stop(outcome)
        return result

    # --- Journal ---------------------------------------------------------------------

    def _restore(self, state: PodState) -> None:
        for record in state.registry:
            self.registry.add(record)
        self.notifications.restore(state.notifications, state.dropped)
        self.turns = state.turns
        self.last_record = state.last_turn
        self.session = state.session
        self.cost_usd = state.cost_usd
        if state.usage:
            self.usage.update(state.usage)
        for item in sorted(state.queue, key=lambda item: int(item.get("seq") or 0)):
            self.queue.push(Work.from_journal(item))
        save_registry(self.registry_path, self.registry)
        self.journal.compact(self.snapshot())

    def snapshot(self) -> PodState:
        """The state a restart would bring back, as of now."""
        return PodState(
            registry=list(self.registry),
            notifications=self.notifications.peek_raw(),
            dropped=self.notifications.dropped,
            turns=self.turns,
            last_turn=self.last_record,
            session=self.session,
            cost_usd=self.cost_usd,
            usage=dict(self.usage),
            queue=[w.to_journal() for w in self.queue.items()],
        )

    def registry_changed(self) -> None:
        """Persist the registry: the journal now, the file by the registry writer.

        The file is replaced atomically (temp file, fsync, rename) in a worker thread,
        so an fsync never holds the loop; the loop hands over a serialized copy, newest
        wins, and the writer task is the file's only writer.
        """
        self.journal.append({"op": "registry", "pods": [attrs.asdict(r) for r in self.registry]})
        self._registry_bytes = self.registry.to_json()
        self._registry_version += 1
        self._registry_dirty.set()

    async def _write_registry_forever(self) -> None:
        while True:
            await self._registry_dirty.wait()
            self._registry_dirty = trio.Event()
            data, self._registry_bytes = self._registry_bytes, None
            version = self._registry_version
            if data is not None:
                try:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(write_atomic, self.registry_path, data)
                except OSError as exc:
                    # A full or broken disk must not end the pod: the journal still has
                    # the registry; the file is written again with the next change.
                    log.error("cannot write the registry file: %s", exc)
                    self._report_fault("registry write", exc)
            # Written, or given up on: either way no waiter waits for this one any more.
            self._registry_on_disk = version
            self._registry_written.set()
            self._registry_written = trio.Event()

    async def flush_registry(self) -> None:
        """Wait until the registry as of now has reached its file (a write already under
        way when the registry changed does not count)."""
        wanted = self._registry_version
        while self._registry_on_disk < wanted:
            await self._registry_written.wait()

    def buffer_notification(self, notification: Notification) -> None:
        self.notifications.push(notification)
        self.journal.append({"op": "notify", "notification": notification.to_dict()})

    def drain_notifications(self) -> list[Notification]:
        items = self.notifications.drain()
        if items:
            self.journal.append({"op": "drain"})
        return items

    async def _sync_journal_periodically(self) -> None:
        while True:
            await trio.sleep(SYNC_INTERVAL)
            if self.journal.dirty:
                try:
                    await trio.to_thread.run_sync(self.journal.sync)
                except OSError as exc:
                    log.error("cannot fsync the journal: %s", exc)

    # --- Running -------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.stopping:
            return "stopping"
        if self._turn is not None:
            return "running"
        return "waiting" if self._waiting_on is not None else "idle"

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
            nursery.start_soon(self._sync_journal_periodically)
            nursery.start_soon(self._write_registry_forever)
            on_ready()
            if self.spec.agent and (
                (self.spec.task is not None and not self.spec.restore)
                or (self.spec.restore and len(self.queue))
            ):
                # The first turn (the task, or what a restart brought back in the queue),
                # unless something (a `send`) already started one.
                self.post("task", self._start_task)
            await self._dispatch_loop()
            nursery.cancel_scope.cancel()
        if self.forkserver is not None:
            await self.forkserver.aclose()
        self.journal.close()
        if self.trace is not None:
            self.trace.close()

    def background(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` as a background task whose failure is contained: logged
        with its traceback and reported upward as ``errored``, never fatal to the pod."""
        self.nursery.start_soon(self._contained, fn, args)

    async def _contained(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await fn(*args)
        except Exception as exc:
            name = getattr(fn, "__name__", repr(fn))
            log.exception("background task %s failed", name)
            self._report_fault(name, exc)

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

    async def _dispatch(self, conn: Connection, requests: list[Request]) -> None:
        """Handle ``requests`` in the loop, in order, as one job; return once they are.

        Returning only then keeps each connection to one job in the loop's queue, so the
        loop serves busy connections in turn, a batch of each (see ``podd.runtime.server``).
        """
        handled = trio.Event()

        def handle_all() -> None:
            try:
                for request in requests:
                    self._handle(conn, request)
            finally:
                handled.set()

        name = requests[0].method if len(requests) == 1 else f"{len(requests)} requests"
        await self._jobs_send.send(Job(trio.current_time(), name, handle_all))
        await handled.wait()

    async def _dispatch_loop(self) -> None:
        self._loop_task = trio.lowlevel.current_task()
        while True:
            try:
                job = self._jobs_recv.receive_nowait()
            except trio.WouldBlock:
                # Nothing queued: what the jobs so far changed goes to the journal
                # before anything they replied can reach a client.
                self._journal_flush()
                job = await self._jobs_recv.receive()
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

    def _journal_flush(self) -> None:
        try:
            if self.journal.wants_compaction:
                self.journal.compact(self.snapshot())
            else:
                self.journal.flush()
        except OSError:
            log.exception("cannot write the journal")

    def _report_fault(self, where: str, exc: BaseException) -> None:
        self.outbox.post(Errored(self.name, f"internal error in {where}: {exc!r}"))

    def _handle(self, conn: Connection, request: Request) -> None:
        answers = request.id is not None
        try:
            if fault_injected(request.method, self.name):
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

    def publish(self, event: dict[str, Any]) -> None:
        """Record ``event`` (a wire dict) in this pod's event feed as its own, for
        whoever follows the pod (``events``); it is not sent upward."""
        self.feed.record(self.name, event)

    def _on_ping(self, conn: Connection, request: Request) -> Any:
        return {
            "pong": True,
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "incarnation": self.incarnation,
            "parent": self.parent,
            "cost_usd": self.cost_usd,
            "waiting_on": self._waiting_on,
        }

    _status_key: Any = None
    """What the cached part of ``status`` was built from (see ``_on_status``)."""
    _status_parts: Any = None

    def _on_status(self, conn: Connection, request: Request) -> Any:
        # Clients ask for status in floods and live views poll it, so what only the spec,
        # the last turn and the registry change is built again only when one of them has.
        # Records are compared field by field (events change them in place); the key
        # keeps copies of the rule lists, so that a list changed in place is seen too.
        # The cached values are shared by the replies, which only encode them.
        held = self._held()
        records = [_RECORD_FIELDS(r) for r in self.registry]
        if (self.spec, self.last_record, held, records) != self._status_key:
            self._status_key = (
                self.spec,
                self.last_record,
                {name: list(rules) for name, rules in held.items()},
                [tuple(list(v) if isinstance(v, list) else v for v in r) for r in records],
            )
            self._status_parts = (
                self.spec.socket,
                self.last_record,
                scope.effective_rules(self.spec.scope, held),
                [attrs.asdict(r) for r in self.registry],
            )
        socket, last, effective_scope, children = self._status_parts
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "parent": self.parent,
            "parent_socket": self.parent_socket,
            "incarnation": self.incarnation,
            "socket": socket,
            "cwd": self.spec.cwd,
            "agent": self.spec.agent,
            "started_at": self.start_time,
            "turns": self.turns,
            "last_turn": last,
            "current_turn": self._turn.turn if self._turn else None,
            "waiting_on": self._waiting_on,
            "driver": self.spec.driver,
            "session_id": self.session,
            "cost_usd": self.cost_usd,
            "usage": dict(self.usage),
            "queue": [{"priority": w.priority, "text": w.text[:80]} for w in self.queue.items()],
            "slots": self.slots.to_dict() if self.slots is not None else None,
            "state_dir": kept.state_dir(self.spec.root, self.name),
            "wake_on_notify": self.spec.wake_on_notify,
            "turn_timeout": self.spec.turn_timeout,
            "scope": self.spec.scope,
            "effective_scope": effective_scope,
            "nested_sandbox": self.spec.nested_sandbox,
            "enforcement": sandbox.enforcement_mode(self.spec.nested_sandbox),
            "enforcement_detail": sandbox.enforcement_detail(self.spec.nested_sandbox),
            "children": children,
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
        items = self.notifications.peek() if params.peek else self.drain_notifications()
        return {"notifications": [n.to_dict() for n in items]}

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


def _write_mcp_config(spec: PodSpec) -> None:
    """The ``--mcp-config`` of a claude pod started with ``--mcp``: ``podd mcp`` acting
    as this pod, run by this interpreter."""
    from podd.mcp_config import config_for

    path = os.path.join(kept.kept_dir(spec.root, spec.name), "mcp.json")
    data = orjson.dumps(config_for(spec.root, spec.name, sys.executable))
    write_atomic(path, data)


class EventTrace:
    """Test hook (``PODD_TRACE_EVENTS=DIR``): one line per event applied here, with
    ``time.monotonic()``, in ``DIR/<pod>.trace``."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1 << 16)  # noqa: SIM115

    @classmethod
    def from_env(cls, name: str) -> EventTrace | None:
        directory = os.environ.get("PODD_TRACE_EVENTS")
        return cls(os.path.join(directory, f"{name}.trace")) if directory else None

    def write(self, what: str) -> None:
        self._file.write(f"{what} {time.monotonic():.6f}\n")

    def close(self) -> None:
        self._file.close()
