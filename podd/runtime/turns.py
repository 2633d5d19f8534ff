"""A pod's agent turns, as the pod runs them: slots taken, processes run, records kept.

When a work item begins, waits, ends and what follows is decided by
``podd.core.turn_flow`` (through ``podd.core.machine``); this part hands it the
requests (``send``, ``wait``, ``deps``), takes the concurrency slots it asks for, runs
the turn (``podd.runtime.turn_runner``: iterations through the driver, then the gate),
appends the record to ``<root>/.kept/NAME/turns.jsonl`` and reports it back as
``TurnDone``, exactly once. It also grants this pod's own slots to turns below
(``slot``) and tells children that their ``--after`` siblings finished (``deps``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import trio

from podd import sandbox
from podd.core import scope
from podd.core.inputs import (
    DepsAnswered,
    SendAsked,
    SessionSeen,
    SlotsGranted,
    TurnDone,
    WaitAsked,
)
from podd.core.turns import Work, empty_usage
from podd.drivers import driver_for
from podd.proc.facts import start_time
from podd.runtime.loop import LATER, PodCore
from podd.runtime.server import Connection
from podd.runtime.slots import Lease, acquire_lease
from podd.runtime.turn_process import TurnHandle
from podd.runtime.turn_runner import TurnPlan, run_work
from podd.store import kept
from podd.store.paths import write_private
from protocol import Request, SendParams, encode_result
from protocol.messages import DepsParams, SlotParams

__all__ = ["Turns"]

log = logging.getLogger(__name__)


class Turns:
    """``send``, ``wait``, ``deps``, ``slot``; the processes of turns."""

    def __init__(self, pod: PodCore) -> None:
        self.pod = pod

    # --- Requests --------------------------------------------------------------------

    def on_send(self, conn: Connection, request: Request) -> Any:
        params: SendParams = request.params
        waiter = (conn, request.id) if params.wait and request.id is not None else None
        return self.pod.apply(SendAsked(params, waiter))

    def on_wait(self, conn: Connection, request: Request) -> Any:
        waiter = (conn, request.id) if request.id is not None else None
        return self.pod.apply(WaitAsked(waiter))

    def on_deps(self, conn: Connection, request: Request) -> Any:
        """The parent says whether the siblings this pod's task waits for have finished."""
        params: DepsParams = request.params
        return self.pod.apply(DepsAnswered(params.failed, conn.peer_pid))

    def on_slot(self, conn: Connection, request: Request) -> Any:
        """A turn below asks for one of this pod's slots: granted when one is free; the
        connection is the lease (see ``podd.runtime.slots``)."""
        params: SlotParams = request.params
        if self.pod.slots is None:
            return {"granted": True, "limit": None}
        self.pod.background(self._grant_slot, conn, request.id, params)
        return LATER

    async def _grant_slot(self, conn: Connection, request_id: Any, params: SlotParams) -> None:
        assert self.pod.slots is not None
        lease = await self.pod.slots.acquire(params.pod_name, params.turn, held=params.held)
        conn.on_close.append(lease.release)
        if conn.closed or conn.eof:
            lease.release()  # the asker is gone already
        conn.reply(encode_result(request_id, {"granted": True, "limit": self.pod.slots.limit}))

    # --- Running a work item (``podd.core.turn_flow`` decides when) --------------------

    async def take_slots(self, work: Work, turn: int) -> None:
        leases: list[Lease] = []
        try:
            if self.pod.slots is not None:
                leases.append(await self.pod.slots.acquire(self.pod.name, turn))
            for holder in self.pod.spec.slot_holders:
                remote = await acquire_lease(holder.socket, self.pod.name, turn)
                if remote is not None:
                    leases.append(remote)
                    self.pod.background(remote.keep)
        except BaseException:
            for lease in leases:
                lease.release()
            raise
        self.pod.post("slots_granted", lambda: self.pod.apply(SlotsGranted(work, tuple(leases))))

    def run_turn(
        self, work: Work, turn: int, notes: tuple[str, ...], leases: tuple[Any, ...]
    ) -> None:
        handle = TurnHandle(turn)
        self.pod.turn = handle
        self.pod.turn_over = trio.Event()
        self.pod.background(self._run_work, handle, work, list(notes), list(leases))

    def _plan(self, work: Work, turn: int, notes: list[str]) -> TurnPlan:
        tmpdir = os.path.join(self.pod.spec.directory, "tmp")
        state_dir = kept.state_dir(self.pod.spec.root, self.pod.name)
        write, excluded = scope.confinement_paths(self.pod.spec.scope, self.pod.state.held())
        mcp_config = None
        if self.pod.spec.mcp and self.pod.spec.driver == "claude":
            mcp_config = os.path.join(kept.kept_dir(self.pod.spec.root, self.pod.name), "mcp.json")
        return TurnPlan(
            turn=turn,
            work=work,
            notifications=notes,
            driver=driver_for(self.pod.spec.driver),
            command=self.pod.spec.agent or "",
            session=None if work.new_session else self.pod.state.turns.session,
            cwd=self.pod.spec.cwd,
            env=self._turn_env(turn, tmpdir),
            tmpdir=tmpdir,
            state_dir=state_dir,
            mcp_config=mcp_config,
            timeout=self.pod.spec.turn_timeout,
            gate=self.pod.spec.gate,
            gate_timeout=self.pod.spec.gate_timeout,
            confine=lambda command: sandbox.prepare_confinement(
                command,
                write,
                excluded,
                [tmpdir, state_dir],
                nested_sandbox=self.pod.spec.nested_sandbox,
            ),
            output=self.pod.output,
            out_path=kept.turn_output(self.pod.spec.root, self.pod.name, turn, "out"),
            err_path=kept.turn_output(self.pod.spec.root, self.pod.name, turn, "err"),
            on_session=lambda session: self.pod.post(
                "session", lambda: self.pod.apply(SessionSeen(session))
            ),
            on_start=lambda pid: _write_marker(self._marker, pid),
        )

    def _turn_env(self, turn: int, tmpdir: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.pod.spec.env)
        env.update(
            POD_NAME=self.pod.name,
            POD_SOCKET=self.pod.spec.socket,
            PODD_ROOT=self.pod.spec.root,
            POD_TURN=str(turn),
            TMPDIR=tmpdir,
        )
        if self.pod.state.lineage.parent:
            env["POD_PARENT"] = self.pod.state.lineage.parent
        else:
            env.pop("POD_PARENT", None)
        # A parent's agent state never reaches a child's agent: each pod's driver sets
        # its own.
        for variable in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
            if variable not in self.pod.spec.env:
                env.pop(variable, None)
        return env

    @property
    def _marker(self) -> str:
        return os.path.join(self.pod.spec.directory, "turn.pid")

    async def _run_work(
        self, handle: TurnHandle, work: Work, notes: list[str], leases: list[Any]
    ) -> None:
        try:
            record = await run_work(handle, self._plan(work, handle.turn, notes))
        except Exception as exc:
            log.exception("turn %d failed inside the pod", handle.turn)
            record = {
                "turn": handle.turn,
                "outcome": "errored",
                "cause": f"turn {handle.turn} failed to run: {exc!r}",
                "started_at": time.time(),
                "usage": empty_usage(),
                "driver": self.pod.spec.driver,
            }
        finally:
            for lease in leases:
                lease.release()
            with contextlib.suppress(OSError):
                os.unlink(self._marker)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(
                kept.append_record, self.pod.spec.root, self.pod.name, record
            )
        self.pod.post("turn_done", lambda: self.pod.apply(TurnDone(record)))

    async def tell_prerequisites(self, waiter: str, failed: str | None) -> None:
        from podd.client.asynchronous import async_call
        from podd.errors import PoddError

        socket = os.path.join(self.pod.spec.root, waiter, "sock")
        try:
            await async_call(socket, "deps", {"failed": failed}, timeout=10.0)
        except PoddError as exc:
            log.warning("cannot tell %s about its prerequisites: %s", waiter, exc)


def _write_marker(path: str, pid: int) -> None:
    """Record the running turn's process group, for whoever reclaims this pod if it dies."""
    with contextlib.suppress(OSError):
        write_private(path, f"{pid} {start_time(pid)}\n")
