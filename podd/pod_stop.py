"""Stopping a pod: children first, then the turn, then ``shut_down`` upward."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
from typing import Any

import attrs
import trio

from podd.children import stop_child
from podd.pod_core import LATER, OUTCOME_RANK, PodCore
from podd.procfacts import is_alive, signal_name
from podd.registry import ChildRecord
from podd.server import Connection
from protocol import Request, ShutDown, ShutdownParams, encode_result

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
        self.background(self._stop, params, reason)

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
        """Let the in-flight turn finish (drain) or cancel it: SIGTERM, and what is still
        there at the deadline gets SIGKILL (``force_killed``) or, without ``kill``, is
        left running (``timeout``)."""
        discarded = False
        if params.drain:
            # Queued work (a wake-on-notify turn) is dropped, whenever it was queued.
            discarded = await self.call("discard_queued_work", self._discard_queued_work)
        handle = self._turn
        if handle is None:
            return "drained_with_discards" if discarded else "clean"
        if params.drain:
            with trio.move_on_at(deadline):
                await self._turn_over.wait()
                return "drained_with_discards" if discarded else "clean"
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

    def _discard_queued_work(self) -> bool:
        """Drop a queued wake-on-notify turn; whether there was one."""
        queued, self._wake_pending = self._wake_pending, False
        return queued

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
                self._reclaim(record, "stopped with its parent", clean=True)
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
