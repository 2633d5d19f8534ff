"""The shell of a pod: one dispatch loop, the only place its state changes.

Connections, turns, child watchers and timers never touch the state themselves: they
post jobs to the loop, which runs them one at a time (``Job`` carries the time it was
posted, for the lag figures in ``status``). A job turns what happened into an input of
the rules and carries out their effects (``apply``: ``podd.core.machine.handle``, then
``run_effects``). Jobs are plain functions: they cannot await, so the loop cannot wait
on itself. Work that takes time (spawning a child, a turn, probing liveness, stopping)
runs in background tasks that post their results back as further jobs. An exception in
a job is logged with its traceback and becomes an ``errored`` event upward; the loop
goes on.

``pod.Pod`` adds the parts that carry out the effects (``events``, ``children``,
``turns``, ``liveness``, ``stop``), each a field.
"""

from __future__ import annotations

import abc
import functools
import logging
import operator
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
import trio.lowlevel

from podd.core.effects import Effect
from podd.core.inputs import Input
from podd.core.machine import handle
from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import PodInfo, PodSpec
from podd.core.state import PodState
from podd.core.turn_flow import drain_notifications
from podd.core.turns import Work
from podd.faults import fault_injected
from podd.runtime.diagnostics import EventTrace, LagStats
from podd.runtime.event_feed import EventFeed
from podd.runtime.outbox import Outbox
from podd.runtime.registry_file import RegistryFile
from podd.runtime.server import Connection
from podd.runtime.slots import SlotPool
from podd.runtime.status import StatusView, ping_reply
from podd.runtime.turn_process import OutputLog, TurnHandle
from podd.spawn import forkserver
from podd.spawn.child_process import ChildProcess
from podd.spawn.forkclient import ForkServer
from podd.spawn.spawner import pod_environment
from podd.store import kept
from podd.store.atomic import make_durable
from podd.store.journal import SYNC_INTERVAL, Journal, Snapshot
from podd.store.pod_files import save_registry, write_info
from protocol import (
    Errored,
    InternalError,
    NotificationsParams,
    ProtocolError,
    Request,
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


class PodCore(abc.ABC):
    """State, loop and the requests every concern shares; see the module docstring."""

    def __init__(self, spec: PodSpec, start_time: float, restored: Snapshot | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.pid = os.getpid()
        self.start_time = start_time
        self.incarnation = spec.incarnation
        self.state = PodState.of(spec, self.pid)
        """All the pod knows (``podd.core.state``); changed only by the rules."""
        self.registry_file = RegistryFile(
            os.path.join(spec.directory, "spawned_pods.json"), self.report_fault
        )
        self.outbox = Outbox(self.name, self.incarnation, spec.parent_socket)
        self.feed = EventFeed(self.name, self.background)
        self.outbox.on_post = functools.partial(self.feed.record, self.name)
        kept.prepare(spec.root, spec.name, fresh=not spec.restore)
        kept.seed_login(spec.root, spec.name, spec.driver, dict(os.environ))
        if spec.mcp:
            from podd.mcp_config import config_for

            kept.write_mcp_config(
                spec.root, spec.name, config_for(spec.root, spec.name, sys.executable)
            )
        self.output = OutputLog(kept.output_log(spec.root, spec.name))
        self.trace = EventTrace.from_env(self.name)
        self.lag = LagStats()
        self.slots = SlotPool(spec.max_running) if spec.max_running is not None else None
        self.turn: TurnHandle | None = None
        self.turn_over = trio.Event()
        self.processes: dict[str, ChildProcess] = {}
        self.forkserver = (
            ForkServer(
                [sys.executable, "-m", "podd._forkserver_main"],
                pod_environment(),
                [spec.name, spec.root],
            )
            if forkserver.available()
            else None
        )
        self.stopped = False
        self._jobs_send, self._jobs_recv = trio.open_memory_channel[Job](4096)
        self._loop_task: trio.lowlevel.Task | None = None
        self._nursery: trio.Nursery | None = None
        self._handlers: dict[str, Callable[[Connection, Request], Any]] = {
            "ping": lambda conn, request: ping_reply(self.state),
            "status": self._on_status,
            "notifications": self._on_notifications,
            "events": self.feed.on_events,
        }
        self.journal = Journal(spec.directory)
        self._status = StatusView()
        self._info_lock = trio.Lock()
        if restored is not None:
            self._restore(restored)

    @property
    def stop_reason(self) -> str:
        return self.state.stop.reason

    def apply(self, event: Input) -> Any:
        """Run ``event`` through the pod's rules (``podd.core.machine.handle``) and carry
        out the effects; the result of its ``Reply``, or ``LATER`` if it has none."""
        return self.run_effects(handle(self.state, event, trio.current_time()))

    @abc.abstractmethod
    def run_effects(self, effects: list[Effect]) -> Any:
        """Carry out ``effects`` in order: ``podd.runtime.pod.Pod``, which has every
        concern's means, runs them."""

    # --- Journal ---------------------------------------------------------------------

    def _restore(self, state: Snapshot) -> None:
        for record in state.registry:
            self.state.registry.add(record)
        self.state.notifications.restore(state.notifications, state.dropped)
        self.state.turns.count = state.turns
        self.state.turns.last_record = state.last_turn
        self.state.turns.session = state.session
        self.state.turns.cost_usd = state.cost_usd
        if state.usage:
            self.state.turns.usage.update(state.usage)
        for item in sorted(state.queue, key=lambda item: int(item.get("seq") or 0)):
            self.state.turns.queue.push(Work.from_journal(item))
        save_registry(self.registry_file.path, self.state.registry)
        self.journal.compact(self.snapshot())

    def snapshot(self) -> Snapshot:
        """The state a restart would bring back, as of now."""
        return Snapshot(
            registry=list(self.state.registry),
            notifications=self.state.notifications.peek_raw(),
            dropped=self.state.notifications.dropped,
            turns=self.state.turns.count,
            last_turn=self.state.turns.last_record,
            session=self.state.turns.session,
            cost_usd=self.state.turns.cost_usd,
            usage=dict(self.state.turns.usage),
            queue=[w.to_journal() for w in self.state.turns.queue.items()],
        )

    def registry_changed(self) -> None:
        """Persist the registry: the journal now, the file by its writer, off the loop."""
        self.journal.append(
            {"op": "registry", "pods": [attrs.asdict(r) for r in self.state.registry]}
        )
        self.registry_file.changed(self.state.registry.to_json())

    def drain_notifications(self) -> list[Notification]:
        items, effects = drain_notifications(self.state)
        self.run_effects(effects)
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
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None
        return self._nursery

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
            self.report_fault(name, exc)

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

    async def serve_jobs(self, nursery: trio.Nursery) -> None:
        """Run the dispatch loop until the pod ends, starting background tasks in
        ``nursery``."""
        self._nursery = nursery
        await self._dispatch_loop()

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
                self.report_fault(job.name, exc)
            held = trio.current_time() - begun
            self.lag.record(begun - job.posted_at, held, job.name)
            if held > SLOW_HANDLER:
                log.warning("job %s held the dispatch loop for %.3f s", job.name, held)
            if self.stopped:
                return

    def _journal_flush(self) -> None:
        try:
            if self.journal.wants_compaction:
                self.journal.compact(self.snapshot())
            else:
                self.journal.flush()
        except OSError:
            log.exception("cannot write the journal")

    def report_fault(self, where: str, exc: BaseException) -> None:
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
            self.report_fault(request.method, exc)
            conn.reply(encode_error(request.id, InternalError(repr(exc))), answers=answers)
        else:
            if result is not LATER and answers:
                conn.reply(encode_result(request.id, result))

    # --- Simple requests -----------------------------------------------------------

    def _on_status(self, conn: Connection, request: Request) -> Any:
        return self._status.reply(
            self.state,
            self.start_time,
            lag=self.lag.to_dict(),
            outbox={
                "pending": self.outbox.pending,
                "delivered": self.outbox.delivered,
                "dropped": self.outbox.dropped,
                "target": self.outbox.target,
            },
            slots=self.slots.to_dict() if self.slots is not None else None,
        )

    def _on_notifications(self, conn: Connection, request: Request) -> Any:
        params: NotificationsParams = request.params
        items = self.state.notifications.peek() if params.peek else self.drain_notifications()
        return {"notifications": [n.to_dict() for n in items]}

    def info(self) -> PodInfo:
        spec = attrs.evolve(
            self.spec,
            parent=self.state.lineage.parent,
            parent_socket=self.state.lineage.parent_socket,
            parent_pid=self.state.lineage.parent_pid,
            ancestors=list(self.state.lineage.ancestors),
        )
        return PodInfo(spec=spec, pid=self.pid, start_time=self.start_time)

    def write_info(self) -> None:
        """Write ``pod.json`` now (at start-up, before the loop runs), without waiting
        for the disk: every process sees it at once; ``make_info_durable`` fsyncs it
        once the pod has said it is ready (a power loss ends the pod's process anyway)."""
        write_info(os.path.join(self.spec.directory, "pod.json"), self.info(), durable=False)

    async def make_info_durable(self) -> None:
        """fsync the ``pod.json`` that ``write_info`` wrote, in a worker thread."""
        async with self._info_lock:
            path = os.path.join(self.spec.directory, "pod.json")
            try:
                await trio.to_thread.run_sync(make_durable, path)
            except OSError as exc:  # removed by a stop meanwhile, or the disk failed
                log.warning("cannot fsync %s: %s", path, exc)

    async def rewrite_info(self, info: PodInfo) -> None:
        """Replace ``pod.json`` with ``info`` (the lineage changed) in a worker thread,
        so that its fsync never holds the loop; one write at a time, in order."""
        async with self._info_lock:
            with trio.CancelScope(shield=True):
                path = os.path.join(self.spec.directory, "pod.json")
                await trio.to_thread.run_sync(write_info, path, info)
