"""The pod: the dispatch loop, its concerns, and the runner of the rules' effects.

The rules (``podd.core.machine.handle``) decide; ``Pod.run_effects`` carries out what
they decided with the means of each concern (``events``, ``children``, ``turns``,
``liveness``, ``stop``): replies, events upward, the journal, processes, timers. Work
that takes time runs as a background task that posts its outcome back as an input.
See ``loop`` for the loop and ``docs/architecture.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from podd.core.effects import (
    AskToRejoin,
    Effect,
    FindAdopter,
    FinishStop,
    FlushOutbox,
    Journal,
    Log,
    PersistRegistry,
    PostEvent,
    Publish,
    Reclaim,
    ReleaseLeases,
    Reply,
    ReplyError,
    ReplyTo,
    ReplyWhenPersisted,
    RestartLater,
    RetargetOutbox,
    RunTurn,
    StartChild,
    StopChildren,
    StopTurn,
    TakeSlots,
    TellPrerequisites,
    Trace,
    TurnOver,
    WaitSpawns,
    WatchAdopted,
    WatchChild,
    WatchParent,
    WriteInfo,
)
from podd.core.inputs import TaskDue
from podd.core.spec import PodSpec
from podd.runtime.children import Children
from podd.runtime.events import Events
from podd.runtime.liveness import Liveness
from podd.runtime.loop import LATER, LoopReentryError, PodCore
from podd.runtime.server import serve
from podd.runtime.stop import Stopper
from podd.runtime.turns import Turns
from podd.store.journal import Snapshot
from protocol import encode_result

__all__ = ["LoopReentryError", "Pod"]

log = logging.getLogger(__name__)


class Pod(PodCore):
    """The loop and state (``PodCore``) with each concern's means as a field."""

    def __init__(self, spec: PodSpec, start_time: float, restored: Snapshot | None = None) -> None:
        super().__init__(spec, start_time, restored)
        self.events = Events(self)
        self.children = Children(self)
        self.turns = Turns(self)
        self.liveness = Liveness(self)
        self.stopper = Stopper(self)
        self._handlers.update(
            pod_event=self.events.on_pod_event,
            flush_events=self.events.on_flush_events,
            spawn=self.children.on_spawn,
            restart_child=self.children.on_restart_child,
            send=self.turns.on_send,
            wait=self.turns.on_wait,
            deps=self.turns.on_deps,
            slot=self.turns.on_slot,
            list_pods=self.liveness.on_list_pods,
            reclaim_stale=self.liveness.on_reclaim_stale,
            adopt=self.liveness.on_adopt,
            rejoin=self.liveness.on_rejoin,
            shutdown=self.stopper.on_shutdown,
        )

    async def run(self, listener: trio.SocketListener, on_ready: Callable[[], None]) -> None:
        """Serve until stopped. ``on_ready`` is called once the socket accepts."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(serve, listener, self._dispatch)
            await nursery.start(self.outbox.run)
            nursery.start_soon(self.stopper.watch_signals)
            if self.state.lineage.parent is not None:
                nursery.start_soon(self.liveness.watch_parent, self.state.lineage.parent_pid, True)
            nursery.start_soon(self.liveness.reclaim_periodically)
            nursery.start_soon(self._sync_journal_periodically)
            nursery.start_soon(self.registry_file.run)
            on_ready()
            nursery.start_soon(self.make_info_durable)
            if self.spec.restore:
                self.post("ask_back_children", self.liveness.ask_back_children)
            if self.spec.agent and (
                (self.spec.task is not None and not self.spec.restore)
                or (self.spec.restore and len(self.state.turns.queue))
            ):
                # The first turn (the task, or what a restart brought back in the queue),
                # unless something (a `send`) already started one.
                self.post("task", lambda: self.apply(TaskDue()))
            await self.serve_jobs(nursery)
            nursery.cancel_scope.cancel()
        if self.forkserver is not None:
            await self.forkserver.aclose()
        self.journal.close()
        if self.trace is not None:
            self.trace.close()

    def run_effects(self, effects: list[Effect]) -> Any:
        """Carry out what the rules returned, in order; the result of their ``Reply``,
        or ``LATER`` (the reply is sent later, or never) if they have none."""
        result: Any = LATER
        journal, trace = self.journal, self.trace
        for effect in effects:
            # An event from below makes a Trace, a Journal record and a Reply: those are
            # told by their exact type (none is subclassed), the rest by pattern.
            kind = type(effect)
            if kind is Journal and isinstance(effect, Journal):
                journal.append(effect.record)
                continue
            if kind is Trace and isinstance(effect, Trace):
                if trace is not None:
                    trace.write(effect.text)
                continue
            if kind is Reply and isinstance(effect, Reply):
                result = effect.result
                continue
            match effect:
                case ReplyTo(waiter=(conn, request_id), result=value):
                    conn.reply(encode_result(request_id, value))
                case PostEvent(event=event):
                    self.outbox.post(event)
                case PersistRegistry():
                    self.registry_changed()
                case Publish(event=event):
                    self.feed.record(self.name, event)
                case Log(text=text, warning=warning):
                    log.log(logging.WARNING if warning else logging.INFO, "%s", text)
                case Reclaim(record=record, cause=cause, clean=clean):
                    self.liveness.reclaim(record, cause, clean=clean)
                case RestartLater(spec=spec, delay=delay) if spec is not None:
                    self.children.restart_later(spec, delay)
                case StartChild(spec=spec, waiter=waiter):
                    self.children.start_child(spec, waiter)
                case WatchChild(name=name):
                    self.children.watch(name)
                case ReplyWhenPersisted(waiter=waiter, result=value):
                    self.children.reply_when_persisted(waiter, value)
                case ReplyError(waiter=waiter, error=error):
                    self.children.reply_error(waiter, error)
                case WatchAdopted(name=name, pid=pid, start_time=started):
                    self.background(self.liveness.watch_adopted, name, pid, started)
                case AskToRejoin(name=name, socket=socket):
                    self.background(self.liveness.ask_to_rejoin, name, socket)
                case WatchParent(pid=pid):
                    self.background(self.liveness.watch_parent, pid, False)
                case FindAdopter(previous_parent=previous, skipped_task=skipped):
                    self.background(self.liveness.find_adopter, previous, skipped)
                case RetargetOutbox(target=target):
                    self.outbox.retarget(target)
                case WriteInfo():
                    self.background(self.rewrite_info, self.info())
                case WaitSpawns(deadline=deadline):
                    self.background(self.stopper.wait_spawns, deadline)
                case StopChildren(children=children, params=params, deadline=deadline):
                    self.background(self.stopper.stop_children, children, params, deadline)
                case StopTurn(params=params, deadline=deadline):
                    self.background(self.stopper.run_stop_turn, params, deadline)
                case FlushOutbox(timeout=timeout):
                    self.background(self.stopper.flush_outbox, timeout)
                case FinishStop(outcome=outcome, requesters=requesters):
                    self.stopper.finish_stop(outcome, requesters)
                case TakeSlots(work=work, turn=turn):
                    self.background(self.turns.take_slots, work, turn)
                case RunTurn(work=work, turn=turn, notes=notes, leases=leases):
                    self.turns.run_turn(work, turn, notes, leases)
                case ReleaseLeases(leases=leases):
                    for lease in leases:
                        lease.release()
                case TurnOver():
                    self.turn = None
                    self.turn_over.set()
                case TellPrerequisites(waiter=waiter, failed=failed):
                    self.background(self.turns.tell_prerequisites, waiter, failed)
                case _:
                    raise TypeError(f"the runtime has no means for {effect!r}")
        return result
