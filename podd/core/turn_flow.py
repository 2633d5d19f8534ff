"""The flow of a pod's work items, over ``PodState``: asked, queued, waiting, run, done.

One work item is current at a time (``TurnsState.work``). It begins with the next turn
number and either runs at once or waits for concurrency slots (``TakeSlots``); a
child's task may first wait for its siblings (``--after``, released by the parent's
``deps``). Whatever is asked meanwhile is refused (``already_running``) or queued.
A work item ends exactly once (``TurnDone``): one record in the journal, one event
upward, the replies of ``send --wait``; then the next queued item, a pending
wake-on-notify turn, or the answers of ``wait``.

Notifications pass through here too (``notify``): they are buffered and journaled,
release or skip the tasks of children waiting for a sibling, and wake an idle
``--wake-on-notify`` pod.
"""

from __future__ import annotations

from typing import Any

from podd.core.effects import (
    Effect,
    Journal,
    Log,
    PostEvent,
    Publish,
    ReleaseLeases,
    Reply,
    ReplyTo,
    RunTurn,
    TakeSlots,
    TellPrerequisites,
    TurnOver,
)
from podd.core.notifications import Notification
from podd.core.state import PodState, Waiter
from podd.core.turns import DEFAULT_MAX_ITERATIONS, QueueFull, Work, add_usage
from protocol import (
    AlreadyRunning,
    Errored,
    Forbidden,
    InvalidParams,
    NoAgent,
    SendParams,
    ShuttingDown,
    TurnEnded,
)
from protocol.errors import QueueFull as QueueFullError
from protocol.messages import LOCAL_EVENT_KINDS, TaskSkipped

__all__ = [
    "DROPPED",
    "begin",
    "drain_notifications",
    "drop_queued_work",
    "notify",
    "on_deps",
    "on_send",
    "on_session",
    "on_slots_granted",
    "on_task_due",
    "on_turn_done",
    "on_wait",
    "skip_waiting_task",
]

DROPPED = {"turn": None, "outcome": "errored", "cause": "dropped by stop"}
"""The answer of a ``send --wait`` whose work a stop dropped before it ran."""


# --- Requests --------------------------------------------------------------------------


def on_send(state: PodState, params: SendParams, waiter: Waiter | None) -> list[Effect]:
    """``send``: begin the work now, or queue it (``--queue``), or refuse. With a
    ``waiter`` the reply is the turn record, later; else it says what happened."""
    spec, turns = state.spec, state.turns
    if not spec.agent:
        raise NoAgent(f"pod {state.name!r} has no agent; it only supervises")
    if state.stop.stopping:
        raise ShuttingDown(f"pod {state.name!r} is stopping")
    if spec.driver != "shell" and not params.text.strip():
        raise InvalidParams(
            f"pod {state.name!r} runs an LLM agent ({spec.driver}): the input is empty"
        )
    work = Work(
        text=params.text,
        priority=params.priority,
        until=params.until,
        max_iterations=params.max_iterations or DEFAULT_MAX_ITERATIONS,
        budget=params.budget,
        new_session=params.new_session,
    )
    if waiter is not None:
        work.waiters.append(waiter)
    if turns.work is not None:
        if not params.queue:
            raise AlreadyRunning(f"pod {state.name!r} is {_busy_with(state)}")
        try:
            position = turns.queue.push(work)
        except QueueFull as exc:
            raise QueueFullError(f"pod {state.name!r}: {exc}") from None
        effects: list[Effect] = [Journal({"op": "queue_push", "item": work.to_journal()})]
        if waiter is None:
            effects.append(Reply({"turn": None, "queued": True, "position": position}))
        return effects
    turn, effects = begin(state, work)
    if waiter is None:
        effects.append(Reply({"turn": turn, "queued": False}))
    return effects


def on_wait(state: PodState, waiter: Waiter | None) -> list[Effect]:
    """``wait``: the last record now if nothing runs, waits or is queued; else later."""
    turns = state.turns
    if turns.work is None and not len(turns.queue):
        return [Reply({"last_turn": turns.last_record})]
    if waiter is not None:
        turns.idle_waiters.append(waiter)
    return []


def on_deps(state: PodState, failed: str | None, peer_pid: int | None) -> list[Effect]:
    """``deps``: the parent (only it) says whether this pod's task may start."""
    turns = state.turns
    if peer_pid != state.lineage.parent_pid:
        raise Forbidden("only this pod's parent says whether its prerequisites are met")
    work = turns.work
    if work is None or not work.task or not turns.awaiting_prerequisites:
        return [Reply({"ok": True})]
    if failed is not None:
        return [*skip_waiting_task(state, failed), Reply({"ok": True})]
    turns.awaiting_prerequisites = False
    turns.waiting_on = None
    _, effects = begin(state, work)
    return [*effects, Reply({"ok": True})]


def skip_waiting_task(state: PodState, reason: str) -> list[Effect]:
    """Drop the task that waits for its prerequisites, if there is one (the pod goes
    on with what comes next, or is idle)."""
    turns = state.turns
    if turns.work is None or not turns.awaiting_prerequisites:
        return []
    turns.awaiting_prerequisites = False
    turns.waiting_on = None
    turns.work = None
    return [Log(f"task skipped: {reason}"), *_after_work(state)]


# --- What the runtime reports ----------------------------------------------------------


def on_task_due(state: PodState) -> list[Effect]:
    """The pod is up: its task begins (or waits for its prerequisites); a restarted pod
    goes on with what its queue held."""
    spec, turns = state.spec, state.turns
    if turns.work is not None or state.stop.stopping:
        return []
    if spec.restore:
        return _after_work(state)
    if spec.task is None:
        return []
    work = Work(
        text=spec.task,
        until=spec.until,
        max_iterations=spec.max_iterations or DEFAULT_MAX_ITERATIONS,
        budget=spec.budget,
        task=True,
    )
    if spec.after:
        turns.work = work
        turns.awaiting_prerequisites = True
        turns.waiting_on = f"prerequisites: {', '.join(spec.after)}"
        return []
    return begin(state, work)[1]


def on_slots_granted(state: PodState, work: Work, leases: tuple[Any, ...]) -> list[Effect]:
    return _run_now(state, work, leases)


def on_session(state: PodState, session: str) -> list[Effect]:
    """The agent's conversation, to resume next turn; journaled when it changes."""
    if session == state.turns.session:
        return []
    state.turns.session = session
    return [Journal({"op": "session", "session": session})]


def on_turn_done(state: PodState, record: dict[str, Any]) -> list[Effect]:
    """The current work item ended with ``record``: totals, journal, one event upward,
    the waiters' replies, then whatever comes next."""
    turns = state.turns
    turns.running = False
    work, turns.work = turns.work, None
    turns.last_record = record
    effects: list[Effect] = [TurnOver()]
    if record.get("session_id"):
        effects += on_session(state, str(record["session_id"]))
    cost = record.get("cost_usd")
    if isinstance(cost, (int, float)):
        turns.cost_usd = (turns.cost_usd or 0.0) + float(cost)
    add_usage(turns.usage, record.get("usage"))
    effects.append(
        Journal(
            {
                "op": "turn",
                "turns": turns.count,
                "last_turn": record,
                "session": turns.session,
                "cost_usd": turns.cost_usd,
                "usage": dict(turns.usage),
            }
        )
    )
    turn = int(record["turn"])
    if record["outcome"] == "finished":
        denials = record.get("permission_denials") or []
        event: TurnEnded | Errored = TurnEnded(
            state.name,
            turn=turn,
            summary=record.get("summary"),
            cost_usd=record.get("cost_usd"),
            denied=len(denials) if isinstance(denials, list) else 0,
        )
    else:
        event = Errored(state.name, str(record.get("message") or record["cause"]), turn=turn)
    effects.append(PostEvent(event))
    effects.append(Log(f"turn {turn} {record['outcome']} ({record['cause'] or 'ok'})"))
    if work is not None:
        effects += _answer(work, record)
    return effects + _after_work(state)


# --- Notifications ---------------------------------------------------------------------


def notify(state: PodState, notification: Notification) -> list[Effect]:
    """Buffer ``notification`` for the agent; it may release or skip siblings' tasks and
    wake an idle ``--wake-on-notify`` pod."""
    state.notifications.push(notification)
    effects: list[Effect] = [Journal({"op": "notify", "notification": notification.to_dict()})]
    if notification.event.kind in LOCAL_EVENT_KINDS:
        # Made by this pod (an adoption, a restart given up, a skipped task): the feed
        # has them too, as it has every event applied from below.
        effects.append(Publish(notification.event))
    effects += _track_prerequisites(state, notification)
    spec = state.spec
    if spec.wake_on_notify and spec.agent and not state.stop.stopping:
        if state.turns.work is None:
            effects += begin(state, Work(text=""))[1]
        else:
            state.turns.wake_pending = True
    return effects


def drain_notifications(state: PodState) -> tuple[list[Notification], list[Effect]]:
    """Take every buffered notification (journaled as drained if there were any)."""
    items = state.notifications.drain()
    return items, [Journal({"op": "drain"})] if items else []


def drop_queued_work(state: PodState) -> list[Effect]:
    """A draining stop drops what was asked for and has not started: the queue, a
    pending wake, a work item still waiting; their waiters are told."""
    turns = state.turns
    turns.wake_pending = False
    dropped = turns.queue.clear()
    effects: list[Effect] = []
    if dropped:
        effects.append(Journal({"op": "queue", "items": []}))
    for work in dropped:
        effects += _answer(work, DROPPED)
    if turns.work is not None and turns.waiting_on is not None:
        # It never started: it goes as the queue does.
        work, turns.work, turns.waiting_on = turns.work, None, None
        effects += _answer(work, DROPPED)
    return effects


# --- The flow ------------------------------------------------------------------------


def begin(state: PodState, work: Work) -> tuple[int, list[Effect]]:
    """Make ``work`` current with the next turn number: it runs, or waits for slots."""
    turns, spec = state.turns, state.spec
    turns.work = work
    turns.count += 1
    if spec.max_running is not None or spec.slot_holders:
        turns.waiting_on = "a slot (--max-running)"
        return turns.count, [TakeSlots(work, turns.count)]
    return turns.count, _run_now(state, work, ())


def _run_now(state: PodState, work: Work, leases: tuple[Any, ...]) -> list[Effect]:
    turns = state.turns
    if turns.work is not work or state.stop.stopping:
        return [ReleaseLeases(leases)] if leases else []
    turns.waiting_on = None
    turns.running = True
    notes, effects = drain_notifications(state)
    return [
        *effects,
        Publish({"kind": "turn_started", "pod_name": state.name, "turn": turns.count}),
        RunTurn(work, turns.count, tuple(n.text for n in notes), leases),
    ]


def _after_work(state: PodState) -> list[Effect]:
    """The current work item is over: begin the next one, or answer who waits."""
    turns = state.turns
    if state.stop.stopping:
        return _answer_idle(state)
    work = turns.queue.pop()
    if work is not None:
        effects: list[Effect] = [Journal({"op": "queue_pop", "seq": work.seq})]
        return effects + begin(state, work)[1]
    if turns.wake_pending:
        turns.wake_pending = False
        if len(state.notifications):
            return begin(state, Work(text=""))[1]
    return _answer_idle(state)


def _answer(work: Work, record: dict[str, Any]) -> list[Effect]:
    effects: list[Effect] = [ReplyTo(waiter, record) for waiter in work.waiters]
    work.waiters.clear()
    return effects


def _answer_idle(state: PodState) -> list[Effect]:
    turns = state.turns
    if turns.work is not None or len(turns.queue):
        return []
    effects: list[Effect] = [
        ReplyTo(waiter, {"last_turn": turns.last_record}) for waiter in turns.idle_waiters
    ]
    turns.idle_waiters.clear()
    return effects


def _busy_with(state: PodState) -> str:
    if state.turns.waiting_on is not None:
        return f"waiting for {state.turns.waiting_on}"
    return f"already running turn {state.turns.count}"


def _track_prerequisites(state: PodState, notification: Notification) -> list[Effect]:
    """Children's turns ending (or children ending) release or skip the tasks of
    siblings that wait for them."""
    event = notification.event
    kind = getattr(event, "kind", "")
    name = getattr(event, "pod_name", None)
    if name is None or kind not in ("turn_ended", "errored", "shut_down"):
        return []
    children = state.children
    if kind == "turn_ended":
        children.finished.add(name)
    if not children.prerequisites:
        return []  # no task waits for anyone (nearly always)
    effects: list[Effect] = []
    for waiter, pending in list(children.prerequisites.items()):
        if name not in pending:
            continue
        if kind == "turn_ended":
            pending.discard(name)
            if not pending:
                del children.prerequisites[waiter]
                effects.append(TellPrerequisites(waiter, None))
            continue
        how = "errored" if kind == "errored" else "ended before finishing a turn"
        del children.prerequisites[waiter]
        reason = f"{name!r} {how}"
        effects += notify(state, Notification.of(TaskSkipped(waiter, reason)))
        effects.append(TellPrerequisites(waiter, reason))
    return effects
