"""Running one work item: the agent's iterations through its driver, then the gate.

``run_work`` takes a ``TurnPlan`` (everything the pod decided: driver, command,
session, confinement, limits, where the output goes) and returns the turn record. It
never raises for the agent's sake: whatever the processes do, one record comes back.
Each process (an iteration, the gate) runs confined, in its own process group, with
stdout and stderr kept apart: to the turn's files, the pod's output log and, for
stdout, the driver's parser.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from podd.core.turns import Work, add_usage, loop_verdict, new_record, summarize
from podd.drivers import Driver, TurnInput, TurnResult, UnsupportedCommand
from podd.runtime.turn_process import OutputLog, TurnHandle, TurnOutcome, run_turn
from podd.sandbox import Confinement
from protocol.values import Value

__all__ = ["TurnPlan", "run_work"]

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True, repr=False, eq=False)
class TurnPlan(Value):
    turn: int
    work: Work
    notifications: Sequence[str]
    driver: Driver
    command: str
    session: str | None
    cwd: str
    env: dict[str, str]
    tmpdir: str
    state_dir: str
    mcp_config: str | None
    timeout: float
    gate: str | None
    gate_timeout: float
    confine: Callable[[str], Confinement]
    """Builds the confinement of ``/bin/sh -c COMMAND``."""
    output: OutputLog
    out_path: str
    err_path: str
    on_session: Callable[[str], None]
    """Told the session as soon as it is known (before the turn ends)."""
    on_start: Callable[[int], None]


class _Files:
    """A turn's stdout and stderr files, and the pod's output log beside them."""

    def __init__(self, plan: TurnPlan) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self.out = os.open(plan.out_path, flags, 0o600)
        self.err = os.open(plan.err_path, flags, 0o600)
        self.output = plan.output

    def stdout(self, data: bytes) -> None:
        os.write(self.out, data)
        self.output.write(data)

    def stderr(self, data: bytes) -> None:
        os.write(self.err, data)
        self.output.write(data)

    def close(self) -> None:
        for fd in (self.out, self.err):
            with contextlib.suppress(OSError):
                os.close(fd)


def _command_of(argv: Sequence[str]) -> str:
    if len(argv) == 3 and argv[0] == "/bin/sh" and argv[1] == "-c":
        return argv[2]
    import shlex

    return shlex.join(argv)


def _cause(outcome: TurnOutcome, turn: int) -> str:
    """The outcome's message without its ``turn N`` head."""
    head = f"turn {turn} "
    return outcome.message[len(head) :] if outcome.message.startswith(head) else outcome.message


async def run_work(handle: TurnHandle, plan: TurnPlan) -> dict[str, Any]:
    """Run ``plan`` to its end and return its turn record."""
    work = plan.work
    record = new_record(plan.turn, time.time(), plan.driver.name)
    started = trio.current_time()
    files = _Files(plan)
    session = plan.session
    looping = work.until is not None
    budget = work.budget if work.budget is not None else plan.timeout
    deadline = started + budget if looping else None
    cost: float | None = None
    denials: list[Any] | None = None
    num_turns: int | None = None
    outcome: str | None = None
    cause: str | None = None
    message: str | None = None
    try:
        while outcome is None:
            iteration = record["iterations"] + 1
            timeout = plan.timeout
            if deadline is not None:
                timeout = min(timeout, deadline - trio.current_time())
                if timeout <= 0:
                    outcome, cause = "errored", "budget"
                    break
            notes = plan.notifications if iteration == 1 else ()
            step, result = await _iteration(handle, plan, session, notes, timeout, files)
            record["iterations"] = iteration
            if step.exit_code is not None or step.signal is not None:
                record["exit_code"], record["signal"] = step.exit_code, step.signal
            if result.session:
                session = result.session
            record["result"] = result.result
            if result.cost_usd is not None:
                cost = (cost or 0.0) + result.cost_usd
            add_usage(record["usage"], result.usage)
            if result.num_turns is not None:
                num_turns = (num_turns or 0) + result.num_turns
            if result.permission_denials is not None:
                denials = (denials or []) + list(result.permission_denials)
            if not step.finished:
                outcome = "errored"
                if step.timed_out and deadline is not None and timeout < plan.timeout:
                    cause = "budget"
                elif result.error is not None and not (step.timed_out or step.cancelled):
                    # The agent said why it failed: its reason, with how it exited.
                    cause = result.error
                    message = f"turn {plan.turn} errored ({_cause(step, plan.turn)}): {cause}"
                else:
                    cause = _cause(step, plan.turn)
                    message = step.message
            elif result.error is not None:
                outcome, cause = "errored", result.error
            elif looping:
                verdict = loop_verdict(result.result, iteration, work)
                if verdict == "finished":
                    outcome = "finished"
                elif verdict is not None:
                    outcome, cause = "errored", verdict
            else:
                outcome = "finished"
        if outcome == "finished" and plan.gate is not None:
            record["gate"], cause = await _run_gate(handle, plan, files)
            if cause is not None:
                outcome = "errored"
    finally:
        files.close()
    record["outcome"] = outcome
    record["cause"] = cause
    record["message"] = message or _message(plan, outcome, cause, record["iterations"])
    record["duration_s"] = round(trio.current_time() - started, 6)
    record["session_id"] = session
    record["cost_usd"] = cost
    record["num_turns"] = num_turns
    record["permission_denials"] = denials
    record["summary"] = summarize(record["result"])
    return record


def _message(plan: TurnPlan, outcome: str | None, cause: str | None, iterations: int) -> str:
    """The sentence an ``errored`` event carries (and ``send --wait`` prints)."""
    turn, work = plan.turn, plan.work
    ran = f"{iterations} iteration{'s' if iterations != 1 else ''}"
    if outcome == "finished":
        return f"turn {turn} finished" + (f" after {ran}" if work.until is not None else "")
    if cause == "blocked":
        return f"turn {turn} blocked: the result of iteration {iterations} says BLOCKED"
    if cause == "max_iterations":
        return f"turn {turn} gave up (max_iterations): {ran} without {work.until!r}"
    if cause == "budget":
        budget = work.budget if work.budget is not None else plan.timeout
        return f"turn {turn} ran out of its budget of {budget:g} s after {ran} (budget)"
    return f"turn {turn} errored: {cause}"


async def _iteration(
    handle: TurnHandle,
    plan: TurnPlan,
    session: str | None,
    notes: Sequence[str],
    timeout: float,
    files: _Files,
) -> tuple[TurnOutcome, TurnResult]:
    turn_input = TurnInput(
        command=plan.command,
        text=plan.work.text,
        notifications=tuple(notes),
        session=session,
        new_session_id=str(uuid.uuid4()),
        state_dir=plan.state_dir,
        mcp_config=plan.mcp_config,
    )
    try:
        invocation = plan.driver.invocation(turn_input)
    except UnsupportedCommand as exc:
        return TurnOutcome(plan.turn, False, f"turn {plan.turn} not run: {exc}"), TurnResult()
    if invocation.session is not None and invocation.session != session:
        plan.on_session(invocation.session)
    parser = plan.driver.parser()

    def stdout(data: bytes) -> None:
        parser.feed(data)
        files.stdout(data)

    env = dict(plan.env)
    env.update(invocation.env)
    os.makedirs(plan.tmpdir, mode=0o700, exist_ok=True)
    for path in invocation.runtime_dirs:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError as exc:  # the CLI meets it as it would unconfined
            log.warning("turn %d: cannot create %s for the agent: %s", plan.turn, path, exc)
    with plan.confine(_command_of(invocation.argv)) as confinement:
        step = await run_turn(
            handle,
            confinement=confinement,
            cwd=plan.cwd,
            env=env,
            stdin_data=invocation.stdin,
            timeout=timeout,
            stdout=stdout,
            stderr=files.stderr,
            on_start=plan.on_start,
        )
    result = parser.finish(step.exit_code)
    if result.session is None and invocation.session is not None:
        result = attrs.evolve(result, session=invocation.session)
    return step, result


async def _run_gate(handle: TurnHandle, plan: TurnPlan, files: _Files) -> tuple[str, str | None]:
    """Run the gate; ``("passed", None)`` or ``("failed", cause)``."""
    assert plan.gate is not None
    files.stdout(f"[podd: gate of turn {plan.turn}: {plan.gate}]\n".encode())
    with plan.confine(plan.gate) as confinement:
        step = await run_turn(
            handle,
            confinement=confinement,
            cwd=plan.cwd,
            env=plan.env,
            stdin_data=b"",
            timeout=plan.gate_timeout,
            stdout=files.stdout,
            stderr=files.stderr,
            what="gate",
        )
    if step.finished:
        return "passed", None
    if step.timed_out:
        return "timed_out", "gate timed out"
    if step.exit_code is not None:
        return "failed", f"gate failed: exit {step.exit_code}"
    return "failed", f"gate failed: {_cause(step, plan.turn)}"
