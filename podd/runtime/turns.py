"""A pod's agent turns: asked for, queued, waiting, run (as loops, through a gate), recorded.

One work item (``podd.core.turns.Work``) is current at a time: waiting for its
prerequisites (``--after``) or for concurrency slots (``--max-running`` above), then
running. Whatever else is asked meanwhile is refused (``already_running``) or queued
(``send --queue``). A work item ends exactly once: one turn record (in
``<root>/.kept/NAME/turns.jsonl`` and the journal), one event upward, the replies of
``send --wait`` and ``wait``.
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
from podd.core.notifications import Notification
from podd.core.turns import DEFAULT_MAX_ITERATIONS, QueueFull, Work, add_usage, empty_usage
from podd.drivers import driver_for
from podd.proc.facts import start_time
from podd.runtime.loop import LATER, PodCore
from podd.runtime.server import Connection
from podd.runtime.slots import Lease, acquire_lease
from podd.runtime.turn_process import TurnHandle
from podd.runtime.turn_runner import TurnPlan, run_work
from podd.store import kept
from protocol import (
    AlreadyRunning,
    Errored,
    Forbidden,
    InvalidParams,
    NoAgent,
    Request,
    SendParams,
    ShuttingDown,
    TurnEnded,
    encode_result,
)
from protocol.errors import QueueFull as QueueFullError
from protocol.messages import LOCAL_EVENT_KINDS, DepsParams, SlotParams, TaskSkipped

__all__ = ["TurnsMixin"]

log = logging.getLogger(__name__)


class TurnsMixin(PodCore):
    """Turns, the queue, and the notification buffer's consumer side."""

    # --- Requests --------------------------------------------------------------------

    def _on_send(self, conn: Connection, request: Request) -> Any:
        params: SendParams = request.params
        if not self.spec.agent:
            raise NoAgent(f"pod {self.name!r} has no agent; it only supervises")
        if self.stopping:
            raise ShuttingDown(f"pod {self.name!r} is stopping")
        if self.spec.driver != "shell" and not params.text.strip():
            raise InvalidParams(
                f"pod {self.name!r} runs an LLM agent ({self.spec.driver}): the input is empty"
            )
        work = Work(
            text=params.text,
            priority=params.priority,
            until=params.until,
            max_iterations=params.max_iterations or DEFAULT_MAX_ITERATIONS,
            budget=params.budget,
            new_session=params.new_session,
        )
        waits = params.wait and request.id is not None
        if waits:
            work.waiters.append((conn, request.id))
        if self._work is not None:
            if not params.queue:
                raise AlreadyRunning(f"pod {self.name!r} is {self._busy_with()}")
            try:
                position = self.queue.push(work)
            except QueueFull as exc:
                raise QueueFullError(f"pod {self.name!r}: {exc}") from None
            self.journal.append({"op": "queue_push", "item": work.to_journal()})
            return LATER if waits else {"turn": None, "queued": True, "position": position}
        turn = self._begin(work)
        return LATER if waits else {"turn": turn, "queued": False}

    def _on_wait(self, conn: Connection, request: Request) -> Any:
        if self._work is None and not len(self.queue):
            return {"last_turn": self.last_record}
        if request.id is not None:
            self._idle_waiters.append((conn, request.id))
        return LATER

    def _on_deps(self, conn: Connection, request: Request) -> Any:
        """The parent says whether the siblings this pod's task waits for have finished."""
        params: DepsParams = request.params
        if conn.peer_pid != self.parent_pid:
            raise Forbidden("only this pod's parent says whether its prerequisites are met")
        work = self._work
        if work is None or not work.task or not self._awaiting_prerequisites:
            return {"ok": True}
        self._awaiting_prerequisites = False
        if params.failed is None:
            self._waiting_on = None
            self._begin(work)
        else:
            log.info("task skipped: %s", params.failed)
            self._waiting_on = None
            self._work = None
            self._after_work()
        return {"ok": True}

    def _on_slot(self, conn: Connection, request: Request) -> Any:
        """A turn below asks for one of this pod's slots: granted when one is free; the
        connection is the lease (see ``podd.runtime.slots``)."""
        params: SlotParams = request.params
        if self.slots is None:
            return {"granted": True, "limit": None}
        self.background(self._grant_slot, conn, request.id, params)
        return LATER

    async def _grant_slot(self, conn: Connection, request_id: Any, params: SlotParams) -> None:
        assert self.slots is not None
        lease = await self.slots.acquire(params.pod_name, params.turn)
        conn.on_close.append(lease.release)
        if conn.closed or conn.eof:
            lease.release()  # the asker is gone already
        conn.reply(encode_result(request_id, {"granted": True, "limit": self.slots.limit}))

    # --- Hooks -----------------------------------------------------------------------

    def _notify(self, notification: Notification) -> None:
        self.buffer_notification(notification)
        if notification.event.kind in LOCAL_EVENT_KINDS:
            # Made by this pod (an adoption, a restart given up, a skipped task): the
            # feed has them too, as it has every event applied from below.
            self.feed.record(self.name, notification.event)
        self._track_prerequisites(notification)
        if self.spec.wake_on_notify and self.spec.agent and not self.stopping:
            if self._work is None:
                self._start_turn("")
            else:
                self._wake_pending = True

    def _start_turn(self, text: str) -> int:
        return self._begin(Work(text=text))

    def _start_task(self) -> None:
        if self._work is not None or self.stopping:
            return
        if self.spec.restore:
            self._after_work()  # what the queue held when the pod went down
            return
        if self.spec.task is None:
            return
        work = Work(
            text=self.spec.task,
            until=self.spec.until,
            max_iterations=self.spec.max_iterations or DEFAULT_MAX_ITERATIONS,
            budget=self.spec.budget,
            task=True,
        )
        if self.spec.after:
            self._work = work
            self._awaiting_prerequisites = True
            self._waiting_on = f"prerequisites: {', '.join(self.spec.after)}"
            return
        self._begin(work)

    def _drop_queued_work(self) -> None:
        self._wake_pending = False
        dropped = self.queue.clear()
        if dropped:
            self._journal_queue()
        for work in dropped:
            self._answer(work, {"turn": None, "outcome": "errored", "cause": "dropped by stop"})
        if self._work is not None and self._waiting_on is not None:
            # It never started: it goes as the queue does.
            work, self._work, self._waiting_on = self._work, None, None
            self._answer(work, {"turn": None, "outcome": "errored", "cause": "dropped by stop"})

    # --- The flow of a work item -----------------------------------------------------

    def _busy_with(self) -> str:
        if self._waiting_on is not None:
            return f"waiting for {self._waiting_on}"
        return f"already running turn {self.turns}"

    def _begin(self, work: Work) -> int:
        """Make ``work`` current: it gets the next turn number and starts, or waits for
        its slots."""
        self._work = work
        self.turns += 1
        self._launch(work)
        return self.turns

    def _launch(self, work: Work) -> None:
        if self.spec.max_running is not None or self.spec.slot_holders:
            self._waiting_on = "a slot (--max-running)"
            self.background(self._take_slots, work, self.turns)
        else:
            self._run_now(work, [])

    async def _take_slots(self, work: Work, turn: int) -> None:
        leases: list[Lease] = []
        try:
            if self.slots is not None:
                leases.append(await self.slots.acquire(self.name, turn))
            for holder in self.spec.slot_holders:
                lease = await acquire_lease(holder.socket, self.name, turn)
                if lease is not None:
                    leases.append(lease)
        except BaseException:
            for lease in leases:
                lease.release()
            raise
        self.post("slots_granted", lambda: self._run_now(work, leases))

    def _run_now(self, work: Work, leases: list[Any]) -> None:
        if self._work is not work or self.stopping:
            for lease in leases:
                lease.release()
            return
        self._waiting_on = None
        turn = self.turns
        handle = TurnHandle(turn)
        self._turn = handle
        self._turn_over = trio.Event()
        notes = [n.text for n in self.drain_notifications()]
        self.publish({"kind": "turn_started", "pod_name": self.name, "turn": turn})
        self.background(self._run_work, handle, work, notes, leases)

    def _plan(self, work: Work, turn: int, notes: list[str]) -> TurnPlan:
        tmpdir = os.path.join(self.spec.directory, "tmp")
        state_dir = kept.state_dir(self.spec.root, self.name)
        write, excluded = scope.confinement_paths(self.spec.scope, self._held())
        mcp_config = None
        if self.spec.mcp and self.spec.driver == "claude":
            mcp_config = os.path.join(kept.kept_dir(self.spec.root, self.name), "mcp.json")
        return TurnPlan(
            turn=turn,
            work=work,
            notifications=notes,
            driver=driver_for(self.spec.driver),
            command=self.spec.agent or "",
            session=None if work.new_session else self.session,
            cwd=self.spec.cwd,
            env=self._turn_env(turn, tmpdir),
            tmpdir=tmpdir,
            state_dir=state_dir,
            mcp_config=mcp_config,
            timeout=self.spec.turn_timeout,
            gate=self.spec.gate,
            gate_timeout=self.spec.gate_timeout,
            confine=lambda command: sandbox.prepare_confinement(
                command,
                write,
                excluded,
                [tmpdir, state_dir],
                nested_sandbox=self.spec.nested_sandbox,
            ),
            output=self.output,
            out_path=kept.turn_output(self.spec.root, self.name, turn, "out"),
            err_path=kept.turn_output(self.spec.root, self.name, turn, "err"),
            on_session=lambda session: self.post("session", lambda: self._set_session(session)),
            on_start=lambda pid: _write_marker(self._marker, pid),
        )

    def _turn_env(self, turn: int, tmpdir: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec.env)
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
        # A parent's agent state never reaches a child's agent: each pod's driver sets
        # its own.
        for variable in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
            if variable not in self.spec.env:
                env.pop(variable, None)
        return env

    @property
    def _marker(self) -> str:
        return os.path.join(self.spec.directory, "turn.pid")

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
                "driver": self.spec.driver,
            }
        finally:
            for lease in leases:
                lease.release()
            with contextlib.suppress(OSError):
                os.unlink(self._marker)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(kept.append_record, self.spec.root, self.name, record)
        self.post("turn_done", lambda: self._turn_done(record))

    def _set_session(self, session: str) -> None:
        if session != self.session:
            self.session = session
            self.journal.append({"op": "session", "session": session})

    def _turn_done(self, record: dict[str, Any]) -> None:
        self._turn = None
        self._work, work = None, self._work
        self.last_record = record
        if record.get("session_id"):
            self._set_session(str(record["session_id"]))
        cost = record.get("cost_usd")
        if isinstance(cost, (int, float)):
            self.cost_usd = (self.cost_usd or 0.0) + float(cost)
        add_usage(self.usage, record.get("usage"))
        self._turn_over.set()
        self.journal.append(
            {
                "op": "turn",
                "turns": self.turns,
                "last_turn": record,
                "session": self.session,
                "cost_usd": self.cost_usd,
                "usage": self.usage,
            }
        )
        turn = int(record["turn"])
        if record["outcome"] == "finished":
            denials = record.get("permission_denials") or []
            self.outbox.post(
                TurnEnded(
                    self.name,
                    turn=turn,
                    summary=record.get("summary"),
                    cost_usd=record.get("cost_usd"),
                    denied=len(denials) if isinstance(denials, list) else 0,
                )
            )
        else:
            message = str(record.get("message") or record["cause"])
            self.outbox.post(Errored(self.name, message, turn=turn))
        log.info("turn %d %s (%s)", turn, record["outcome"], record["cause"] or "ok")
        if work is not None:
            self._answer(work, record)
        self._after_work()

    def _after_work(self) -> None:
        """The current work item is over: start the next one, or tell who waits."""
        if self.stopping:
            self._answer_idle()
            return
        work = self.queue.pop()
        if work is not None:
            self.journal.append({"op": "queue_pop", "seq": work.seq})
            self._begin(work)
            return
        if self._wake_pending:
            self._wake_pending = False
            if len(self.notifications):
                self._start_turn("")
                return
        self._answer_idle()

    def _answer(self, work: Work, record: dict[str, Any]) -> None:
        for conn, request_id in work.waiters:
            conn.reply(encode_result(request_id, record))
        work.waiters.clear()

    def _answer_idle(self) -> None:
        if self._work is not None or len(self.queue):
            return
        for conn, request_id in self._idle_waiters:
            conn.reply(encode_result(request_id, {"last_turn": self.last_record}))
        self._idle_waiters.clear()

    def _journal_queue(self) -> None:
        self.journal.append({"op": "queue", "items": [w.to_journal() for w in self.queue.items()]})

    # --- Prerequisites of children's tasks (--after) ---------------------------------

    def _track_prerequisites(self, notification: Notification) -> None:
        """Children's turns ending (or children ending) release or skip the tasks of
        siblings that wait for them."""
        event = notification.event
        kind = getattr(event, "kind", "")
        name = getattr(event, "pod_name", None)
        if name is None or kind not in ("turn_ended", "errored", "shut_down"):
            return
        if kind == "turn_ended":
            self.finished_children.add(name)
        for waiter, pending in list(self.prerequisites.items()):
            if name not in pending:
                continue
            if kind == "turn_ended":
                pending.discard(name)
                if not pending:
                    del self.prerequisites[waiter]
                    self.background(self._tell_prerequisites, waiter, None)
                continue
            how = "errored" if kind == "errored" else "ended before finishing a turn"
            del self.prerequisites[waiter]
            reason = f"{name!r} {how}"
            self._notify(Notification.of(TaskSkipped(waiter, reason)))
            self.background(self._tell_prerequisites, waiter, reason)

    async def _tell_prerequisites(self, waiter: str, failed: str | None) -> None:
        from podd.client.asynchronous import async_call
        from podd.errors import PoddError

        socket = os.path.join(self.spec.root, waiter, "sock")
        try:
            await async_call(socket, "deps", {"failed": failed}, timeout=10.0)
        except PoddError as exc:
            log.warning("cannot tell %s about its prerequisites: %s", waiter, exc)


def _write_marker(path: str, pid: int) -> None:
    """Record the running turn's process group, for whoever reclaims this pod if it dies."""
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(f"{pid} {start_time(pid)}\n")
