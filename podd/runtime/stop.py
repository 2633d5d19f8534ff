"""Stopping a pod, as the pod runs it: the phases and the outcome are decided by
``podd.core.stopping``; this mixin does the waiting of each phase and reports back."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
from typing import Any

import attrs
import trio

from podd.core.registry import ChildRecord
from podd.core.stopping import (
    Stop,
    begin_stop,
    on_children_stopped,
    on_outbox_flushed,
    on_spawns_settled,
    on_turn_stopped,
)
from podd.proc.facts import is_alive, signal_name
from podd.runtime.loop import LATER, PodCore
from podd.runtime.server import Connection
from podd.spawn.child_process import stop_child
from protocol import Request, ShutdownParams, encode_result

__all__ = ["StopMixin"]

log = logging.getLogger(__name__)


class StopMixin(PodCore):
    """``shutdown`` requests, SIGTERM/SIGINT, and orphans with no ancestor left."""

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                stop = functools.partial(
                    self._begin_stop, ShutdownParams(), f"received {signal_name(signum)}"
                )
                self.post("signal", stop)

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
        self.stop_reason = reason
        self._stop_plan, effects = begin_stop(
            params,
            reason,
            trio.current_time(),
            spawns_pending=bool(self._pending_spawns),
            registry=self.registry,
            self_name=self.name,
        )
        self.run_effects(effects)

    @property
    def _stop_in_progress(self) -> Stop:
        assert self._stop_plan is not None
        return self._stop_plan

    # The waiting of each phase (``podd.core.stopping`` decides what follows).

    async def _wait_spawns(self, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await self._spawns_settled.wait()

        def settled() -> None:
            self.run_effects(on_spawns_settled(self._stop_in_progress, self.registry, self.name))

        self.post("spawns_settled", settled)

    async def _stop_children(
        self,
        children: tuple[tuple[ChildRecord, tuple[ChildRecord, ...]], ...],
        params: ShutdownParams,
        deadline: float,
    ) -> None:
        outcomes: list[str] = []

        async def stop_one(record: ChildRecord, below: tuple[ChildRecord, ...]) -> None:
            remaining = max(0.1, deadline - trio.current_time())
            outcome = await stop_child(
                record.socket_path,
                record.pid,
                record.start_time,
                attrs.evolve(params, timeout=remaining),
                self._processes.get(record.pod_name),
            )
            if outcome == "force_killed":
                _kill_all(below)
            outcomes.append(outcome)

        async with trio.open_nursery() as nursery:
            for record, below in children:
                nursery.start_soon(stop_one, record, below)

        def stopped() -> None:
            effects = on_children_stopped(
                self._stop_in_progress,
                outcomes,
                turn_running=self._turn is not None,
                queued_work=self._has_queued_work(),
                self_name=self.name,
                now=trio.current_time(),
            )
            self.run_effects(effects)

        self.post("children_stopped", stopped)

    async def _run_stop_turn(self, params: ShutdownParams, deadline: float) -> None:
        outcome = await self._stop_turn(params, deadline)

        def stopped() -> None:
            effects = on_turn_stopped(
                self._stop_in_progress, outcome, self.name, trio.current_time()
            )
            self.run_effects(effects)

        self.post("turn_stopped", stopped)

    async def _flush_outbox(self, timeout: float) -> None:
        await self.outbox.flush(timeout=timeout)

        def flushed() -> None:
            self.run_effects(on_outbox_flushed(self._stop_in_progress, self.registry, self.name))

        self.post("outbox_flushed", flushed)

    async def _stop_turn(self, params: ShutdownParams, deadline: float) -> str:
        """Let the in-flight turn finish (drain) or cancel it: SIGTERM, and what is still
        there at the deadline gets SIGKILL (``force_killed``) or, without ``kill``, is
        left running (``timeout``)."""
        handle = self._turn
        if handle is None:
            return "clean"
        if params.drain:
            with trio.move_on_at(deadline):
                await self._turn_over.wait()
                return "clean"
            if not params.kill:
                return "timeout"
            # It outlived the timeout: it is killed, whatever it does with SIGTERM.
            handle.cancel("the stop timed out while draining", grace=0.0)
            await self._turn_over.wait()
            return "force_killed"
        else:
            grace = max(0.0, deadline - trio.current_time())
            handle.cancel("the pod is stopping", grace=grace, kill=params.kill)
        if params.kill:
            await self._turn_over.wait()
        else:
            async with trio.open_nursery() as nursery:

                async def until(event: trio.Event) -> None:
                    await event.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until, self._turn_over)
                nursery.start_soon(until, handle.left_running)
            if not self._turn_over.is_set():
                return "timeout"  # it outlived the deadline and was left running
        return "force_killed" if handle.force_killed else "clean"

    def _stop_timed_out(self, outcome: str) -> None:
        self.stopping = False
        self._stop_plan = None
        for conn, request_id in self._stop_requesters:
            conn.reply(encode_result(request_id, {"outcome": outcome, "pid": self.pid}))
        self._stop_requesters.clear()

    def _finish_stop(self, outcome: str) -> None:
        for conn, request_id in self._stop_requesters:
            conn.reply(encode_result(request_id, {"outcome": outcome, "pid": self.pid}))
        self.background(self._flush_then_end, list(self._stop_requesters))

    async def _flush_then_end(self, requesters: list[tuple[Connection, Any]]) -> None:
        with trio.move_on_after(1.0):
            for conn, _ in requesters:
                await conn.wait_flushed()
        with trio.move_on_after(5.0):
            await self.flush_registry()
        self.post("end", self._end)

    def _end(self) -> None:
        self._stopped = True


def _kill_all(records: tuple[ChildRecord, ...]) -> None:
    """SIGKILL the pods of ``records`` (those registered below a child that had to be
    killed), so that no grandchild goes looking for a new parent."""
    for record in records:
        if is_alive(record.pid, record.start_time):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
