"""Stopping a pod, as the pod runs it: the phases and the outcome are decided by
``podd.core.stopping``; this part does the waiting of each phase and reports back."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
from typing import Any

import attrs
import trio

from podd.core.inputs import ChildrenStopped, OutboxFlushed, SpawnsSettled, StopAsked, TurnStopped
from podd.core.registry import ChildRecord
from podd.proc.facts import is_alive, signal_name
from podd.runtime.loop import LATER, PodCore
from podd.runtime.server import Connection
from podd.spawn.child_process import stop_child
from protocol import Request, ShutdownParams, encode_result

__all__ = ["Stopper"]

log = logging.getLogger(__name__)


class Stopper:
    """``shutdown`` requests, SIGTERM/SIGINT, and orphans with no ancestor left."""

    def __init__(self, pod: PodCore) -> None:
        self.pod = pod

    async def watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                stop = StopAsked(ShutdownParams(), f"received {signal_name(signum)}")
                self.pod.post("signal", functools.partial(self.pod.apply, stop))

    def on_shutdown(self, conn: Connection, request: Request) -> Any:
        requester = (conn, request.id) if request.id is not None else None
        self.pod.apply(StopAsked(request.params, "stopped", requester))
        return LATER

    # The waiting of each phase (``podd.core.stopping`` decides what follows).

    async def wait_spawns(self, deadline: float) -> None:
        # The last spawn settling ends the phase sooner (``podd.core.spawning``).
        await trio.sleep_until(deadline)

        self.pod.post("spawns_settled", lambda: self.pod.apply(SpawnsSettled()))

    async def stop_children(
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
                self.pod.processes.get(record.pod_name),
            )
            if outcome == "force_killed":
                _kill_all(below)
            outcomes.append(outcome)

        async with trio.open_nursery() as nursery:
            for record, below in children:
                nursery.start_soon(stop_one, record, below)

        self.pod.post("children_stopped", lambda: self.pod.apply(ChildrenStopped(tuple(outcomes))))

    async def run_stop_turn(self, params: ShutdownParams, deadline: float) -> None:
        outcome = await self._stop_turn(params, deadline)
        self.pod.post("turn_stopped", lambda: self.pod.apply(TurnStopped(outcome)))

    async def flush_outbox(self, timeout: float) -> None:
        await self.pod.outbox.flush(timeout=timeout)

        self.pod.post("outbox_flushed", lambda: self.pod.apply(OutboxFlushed()))

    async def _stop_turn(self, params: ShutdownParams, deadline: float) -> str:
        """Let the in-flight turn finish (drain) or cancel it: SIGTERM, and what is still
        there at the deadline gets SIGKILL (``force_killed``) or, without ``kill``, is
        left running (``timeout``)."""
        handle = self.pod.turn
        if handle is None:
            return "clean"
        if params.drain:
            with trio.move_on_at(deadline):
                await self.pod.turn_over.wait()
                return "clean"
            if not params.kill:
                return "timeout"
            # It outlived the timeout: it is killed, whatever it does with SIGTERM.
            handle.cancel("the stop timed out while draining", grace=0.0)
            await self.pod.turn_over.wait()
            return "force_killed"
        else:
            grace = max(0.0, deadline - trio.current_time())
            handle.cancel("the pod is stopping", grace=grace, kill=params.kill)
        if params.kill:
            await self.pod.turn_over.wait()
        else:
            async with trio.open_nursery() as nursery:

                async def until(event: trio.Event) -> None:
                    await event.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until, self.pod.turn_over)
                nursery.start_soon(until, handle.left_running)
            if not self.pod.turn_over.is_set():
                return "timeout"  # it outlived the deadline and was left running
        return "force_killed" if handle.force_killed else "clean"

    def finish_stop(self, outcome: str, requesters: tuple[Any, ...]) -> None:
        for conn, request_id in requesters:
            conn.reply(encode_result(request_id, {"outcome": outcome, "pid": self.pod.pid}))
        self.pod.background(self._flush_then_end, list(requesters))

    async def _flush_then_end(self, requesters: list[tuple[Connection, Any]]) -> None:
        with trio.move_on_after(1.0):
            for conn, _ in requesters:
                await conn.wait_flushed()
        with trio.move_on_after(5.0):
            await self.pod.registry_file.flush()
        self.pod.post("end", self._end)

    def _end(self) -> None:
        self.pod.stopped = True


def _kill_all(records: tuple[ChildRecord, ...]) -> None:
    """SIGKILL the pods of ``records`` (those registered below a child that had to be
    killed), so that no grandchild goes looking for a new parent."""
    for record in records:
        if is_alive(record.pid, record.start_time):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
