"""A pod's agent turns: one at a time, notifications first on stdin, confined."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import attrs
import trio

from podd import sandbox, scope
from podd.notifications import Notification
from podd.pod_core import LATER, PodCore
from podd.procfacts import start_time
from podd.server import Connection
from podd.turns import TurnHandle, TurnOutcome, run_turn
from protocol import (
    AlreadyRunning,
    Errored,
    NoAgent,
    Request,
    SendParams,
    ShuttingDown,
    TurnEnded,
    encode_result,
)

__all__ = ["TurnsMixin"]

log = logging.getLogger(__name__)


class TurnsMixin(PodCore):
    """Turns and the notification buffer's consumer side."""

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
        self.buffer_notification(notification)
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
        # The pending notifications go first on stdin, one line each, and are thereby
        # delivered: drained from the buffer.
        lines = "".join(n.text + "\n" for n in self.drain_notifications())
        if text and not text.endswith("\n"):
            text += "\n"
        self.background(self._run_turn, handle, (lines + text).encode())
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
        return sandbox.prepare_confinement(
            self.spec.agent or "",
            write,
            excluded,
            [tmpdir],
            nested_sandbox=self.spec.nested_sandbox,
        )

    async def _run_turn(self, handle: TurnHandle, stdin_data: bytes) -> None:
        tmpdir = os.path.join(self.spec.directory, "tmp")
        marker = os.path.join(self.spec.directory, "turn.pid")
        try:
            os.makedirs(tmpdir, mode=0o700, exist_ok=True)
            with self._confinement(tmpdir) as confinement:
                outcome = await run_turn(
                    handle,
                    confinement=confinement,
                    cwd=self.spec.cwd,
                    env=self._turn_env(handle.turn, tmpdir),
                    stdin_data=stdin_data,
                    timeout=self.spec.turn_timeout,
                    output=self.output,
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
        self.journal.append({"op": "turn", "turns": self.turns, "last_turn": attrs.asdict(outcome)})
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


def _write_marker(path: str, pid: int) -> None:
    """Record the running turn's process group, for whoever reclaims this pod if it dies."""
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(f"{pid} {start_time(pid)}\n")
