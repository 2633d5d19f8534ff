"""A stateful test of ``podd.core.machine.handle`` over a whole ``PodState``: the
agent's work and the stop, driven in any order.

``WorkMachine`` plays the runtime of pod ``ME`` (an agent, one child ``kid``): it asks
for turns (now, queued with priorities, waited for), ends the running one as finished
or errored, lets children's events arrive (which wake a ``--wake-on-notify`` pod), asks
``wait``, grants slots late, and stops the pod (draining or not) phase by phase. It
carries out the effects as the runtime does: a ``RunTurn`` starts a process, a
``TurnOver`` ends it, a ``ReplyTo`` answers a waiter. After every step it checks:

- one terminal event upward per turn, and only for a turn that ran;
- at most one process at a time, and ``running`` says whether one runs;
- no turn starts once the pod is stopping;
- every waiter is answered at most once; once the stop finishes, every ``send --wait``
  whose work ran, or was dropped by a drain, has its answer;
- turn numbers go up by one, and the queue never holds more than its limit.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from podd.core.effects import (
    Effect,
    FinishStop,
    PostEvent,
    ReleaseLeases,
    Reply,
    ReplyTo,
    RunTurn,
    StopChildren,
    StopTurn,
    TakeSlots,
    TurnOver,
)
from podd.core.inputs import (
    ChildrenStopped,
    EventReceived,
    Input,
    OutboxFlushed,
    SendAsked,
    SlotsGranted,
    StopAsked,
    TurnDone,
    TurnStopped,
    WaitAsked,
)
from podd.core.machine import handle
from podd.core.spec import PodSpec
from podd.core.state import PodState
from podd.core.turns import QUEUE_LIMIT
from protocol import (
    AlreadyRunning,
    Errored,
    ProtocolError,
    SendParams,
    ShutDown,
    ShutdownParams,
    ShuttingDown,
    TurnEnded,
)
from tests.core.test_events import ME, child

KID_PID = 11


class WorkMachine(RuleBasedStateMachine):
    @initialize(
        wake=st.booleans(),
        limited=st.booleans(),
    )
    def start(self, wake: bool, limited: bool) -> None:
        spec = PodSpec(
            name=ME,
            root="/run/podd",
            cwd="/work",
            scope=[],
            agent="cat",
            wake_on_notify=wake,
            max_running=1 if limited else None,
        )
        self.state = PodState.of(spec, 10)
        self.state.registry.add(child("kid", KID_PID))
        self.now = 0.0
        self.waiters = itertools.count(1)
        self.running: int | None = None
        self.slot_asks: list[Any] = []
        self.turns_run: list[int] = []
        self.terminal: dict[int, int] = {}
        self.answers: dict[Any, int] = {}
        self.must_answer: set[Any] = set()
        """Waiters whose work ran, or that a drain dropped: all are answered."""
        self.stop_begun = False
        self.finished = False
        self.last_turn = 0
        self.kid_seq = itertools.count(1)

    # --- The runtime -------------------------------------------------------------------

    def apply(self, event: Input) -> list[Effect]:
        self.now += 0.25
        effects = handle(self.state, event, self.now)
        for effect in effects:
            match effect:
                case RunTurn(work=work, turn=turn):
                    assert self.running is None, "two processes at once"
                    assert not self.stop_begun, "a turn started while stopping"
                    assert turn == self.last_turn + 1 or turn == self.last_turn
                    self.last_turn = turn
                    self.running = turn
                    self.turns_run.append(turn)
                    self.must_answer.update(work.waiters)
                case TurnOver():
                    self.running = None
                case PostEvent(event=TurnEnded(turn=turn) | Errored(turn=turn)):
                    self.terminal[turn] = self.terminal.get(turn, 0) + 1
                case ReplyTo(waiter=waiter):
                    self.answers[waiter] = self.answers.get(waiter, 0) + 1
                case TakeSlots(work=work):
                    self.slot_asks.append(work)
                case ReleaseLeases():
                    pass
                case FinishStop():
                    self.finished = True
        return effects

    # --- Rules -------------------------------------------------------------------------

    @precondition(lambda self: not self.finished)
    @rule(
        queue=st.booleans(),
        wait=st.booleans(),
        priority=st.integers(0, 3),
        text=st.sampled_from(["go", "", "again"]),
    )
    def send(self, queue: bool, wait: bool, priority: int, text: str) -> None:
        waiter = ("send", next(self.waiters)) if wait else None
        params = SendParams(text=text, queue=queue, priority=priority, wait=wait)
        busy = self.state.turns.work is not None
        try:
            effects = self.apply(SendAsked(params, waiter))
        except ShuttingDown:
            assert self.stop_begun
            return
        except AlreadyRunning:
            assert busy and not queue
            return
        except ProtocolError:
            assert busy and queue and len(self.state.turns.queue) == QUEUE_LIMIT
            return
        assert not self.stop_begun
        assert queue or not busy, "a busy pod took a send without --queue"
        if waiter is not None:
            assert not any(isinstance(e, Reply) for e in effects)

    @precondition(lambda self: not self.finished and self.state.turns.work is not None)
    @rule(priority=st.integers(0, 3))
    def queue_and_wait(self, priority: int) -> None:
        """The common case of an orchestrator: queue behind the running work, and wait."""
        self.send(queue=True, wait=True, priority=priority, text="later")

    @precondition(lambda self: not self.finished and bool(self.slot_asks))
    @rule(data=st.data())
    def grant_slot(self, data: st.DataObject) -> None:
        work = self.slot_asks.pop(data.draw(st.integers(0, len(self.slot_asks) - 1)))
        self.apply(SlotsGranted(work, ("lease",)))

    @precondition(lambda self: self.running is not None)
    @rule(ok=st.booleans())
    def turn_ends(self, ok: bool) -> None:
        turn = self.running
        record = {"turn": turn, "outcome": "finished" if ok else "errored", "cause": None}
        if not ok:
            record["cause"] = "exit 1"
        self.apply(TurnDone(record))

    @precondition(lambda self: not self.finished and "kid" in self.state.registry)
    @rule(finished=st.booleans())
    def kid_reports(self, finished: bool) -> None:
        seq = next(self.kid_seq)
        event: Any = (
            TurnEnded("kid", turn=seq, incarnation=1, seq=seq)
            if finished
            else Errored("kid", "boom", turn=seq, incarnation=1, seq=seq)
        )
        self.apply(EventReceived(event, KID_PID))

    @precondition(lambda self: not self.finished)
    @rule()
    def wait(self) -> None:
        waiter = ("wait", next(self.waiters))
        effects = self.apply(WaitAsked(waiter))
        idle = self.state.turns.work is None and not len(self.state.turns.queue)
        assert idle == any(isinstance(e, Reply) for e in effects)

    @precondition(lambda self: not self.stop_begun)
    @rule(drain=st.booleans(), kill=st.booleans())
    def stop(self, drain: bool, kill: bool) -> None:
        self.stop_begun = True
        turns = self.state.turns
        if drain:
            # What has not started is dropped, and its waiters told so.
            for work in turns.queue.items():
                self.must_answer.update(work.waiters)
            if turns.work is not None and turns.waiting_on is not None:
                self.must_answer.update(turns.work.waiters)
        params = ShutdownParams(drain=drain, kill=kill, timeout=10)
        effects = self.apply(StopAsked(params, "stopped", ("stop", next(self.waiters))))
        assert any(isinstance(e, StopChildren) for e in effects)
        # The child goes with the stop; the rules then see to the turn.
        effects = self.apply(ChildrenStopped(("clean",)))
        self.stop_turn_asked = any(isinstance(e, StopTurn) for e in effects)
        if not self.stop_turn_asked:
            self.finish_stop("clean")

    @precondition(
        lambda self: self.stop_begun and not self.finished and getattr(self, "stop_turn_asked", 0)
    )
    @rule()
    def stop_turn_done(self) -> None:
        # The runtime cancels (or drains) the turn: it ends, then the stop goes on.
        if self.running is not None:
            self.turn_ends(ok=False)
        self.stop_turn_asked = False
        self.finish_stop("clean")

    @rule()
    def look(self) -> None:
        """What ``ls`` would show agrees with what runs and waits."""
        expected = (
            "stopping"
            if self.state.stop.stopping
            else "running"
            if self.running is not None
            else "waiting"
            if self.state.turns.waiting_on is not None
            else "idle"
        )
        assert expected == self.state.phase

    def finish_stop(self, outcome: str) -> None:
        if self.state.stop.plan is None:
            return
        if self.state.stop.plan.phase == "turn":
            effects = self.apply(TurnStopped(outcome))
            assert [ShutDown(ME, reason="stopped")] == [
                e.event for e in effects if isinstance(e, PostEvent)
            ]
        self.apply(OutboxFlushed())
        assert self.finished

    # --- Invariants --------------------------------------------------------------------

    @invariant()
    def one_terminal_event_per_turn_that_ran(self) -> None:
        assert all(count == 1 for count in self.terminal.values())
        assert set(self.terminal) <= set(self.turns_run)
        assert len(self.turns_run) == len(set(self.turns_run))

    @invariant()
    def running_says_whether_a_process_runs(self) -> None:
        assert self.state.turns.running == (self.running is not None)
        if self.state.turns.waiting_on is not None:
            assert self.state.turns.work is not None

    @invariant()
    def every_waiter_is_answered_at_most_once(self) -> None:
        assert all(count == 1 for count in self.answers.values())

    @invariant()
    def a_finished_stop_answered_whatever_ran_or_was_dropped(self) -> None:
        if self.finished and self.running is None:
            assert self.must_answer <= set(self.answers)

    @invariant()
    def the_queue_stays_within_its_limit(self) -> None:
        assert len(self.state.turns.queue) <= QUEUE_LIMIT


WorkMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWorkMachine = WorkMachine.TestCase
