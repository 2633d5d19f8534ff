"""Unit tests of the event plane's pure parts: ``podd.core.events``, ``podd.core.registry`` and
``podd.core.notifications``. No event loop, no sockets."""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest

from podd.core.events import Applied, apply_event, authorize, sender_of
from podd.core.notifications import DEFAULT_CAPACITY, Notification, NotificationBuffer, render
from podd.core.registry import ChildRecord, Registry
from podd.proc.facts import signal_name
from podd.store.pod_files import load_registry, save_registry
from protocol import (
    Adopted,
    Errored,
    Forbidden,
    NotificationsDropped,
    PodEvent,
    RestartGaveUp,
    ScopeRule,
    ScopeSubDelegated,
    ShutDown,
    TurnEnded,
    UnknownEvent,
)

ME = "me"
MY_SOCKET = "/run/podd/me/sock"


def child(name: str, pid: int, parent: str = ME, **fields: Any) -> ChildRecord:
    """A record as the pod ``ME`` keeps it."""
    return ChildRecord(
        pod_name=name,
        socket_path=f"/run/podd/{name}/sock",
        scope_delegated=[ScopeRule(f"/work/{name}", "write")],
        callback_address=MY_SOCKET if parent == ME else f"/run/podd/{parent}/sock",
        pid=pid,
        start_time=1000.0 + pid,
        parent_pod=parent,
        **fields,
    )


def sub_delegated(parent: str, sub: str, pid: int = 0, **stamp: int) -> ScopeSubDelegated:
    return ScopeSubDelegated(
        parent_pod=parent,
        sub_pod=sub,
        sub_socket=f"/run/podd/{sub}/sock",
        scope=[ScopeRule(f"/work/{parent}/{sub}", "read")],
        sub_pid=pid,
        sub_start_time=2000.0 + pid,
        **stamp,
    )


def registry_of(*records: ChildRecord) -> Registry:
    registry = Registry()
    for record in records:
        registry.add(record)
    return registry


def shape(registry: Registry) -> list[tuple[str, str, str, int]]:
    """What the registry says about the tree, leaving out de-duplication counters."""
    return sorted((r.pod_name, r.parent_pod, r.callback_address, r.pid) for r in registry)


PIDS = {"b": 200, "c": 300, "g": 400}


def deliver(
    registry: Registry, events: Sequence[PodEvent], notes: list[str] | None = None
) -> list[Applied]:
    """What a pod does with each event: authorize by the sender's own pid, then apply.
    Refused events are skipped; notification texts go to ``notes``."""
    applied = []
    for event in events:
        sender = sender_of(event) or ""
        try:
            record = authorize(registry, event, PIDS.get(sender))
        except Forbidden:
            continue
        result = apply_event(registry, record, event, ME)
        if notes is not None and result.notification is not None:
            notes.append(result.notification.text)
        applied.append(result)
    return applied


class TestAuthorize:
    """Only the process of the pod an event speaks for may send it, and only for a pod
    in the registry."""

    def test_the_pods_own_process_is_accepted(self) -> None:
        b = child("b", 200)
        assert b is authorize(registry_of(b), TurnEnded("b"), 200)

    @pytest.mark.parametrize("pid", [201, 1, 0, None])
    def test_another_process_is_forbidden(self, pid: int | None) -> None:
        with pytest.raises(Forbidden, match="only the process of pod 'b'"):
            authorize(registry_of(child("b", 200)), TurnEnded("b"), pid)

    def test_a_sibling_cannot_speak_for_another(self) -> None:
        registry = registry_of(child("b", 200), child("c", 300))
        for event in (TurnEnded("c"), Errored("c", "x"), ShutDown("c"), sub_delegated("c", "g")):
            with pytest.raises(Forbidden):
                authorize(registry, event, 200)

    def test_an_unknown_pod_is_forbidden(self) -> None:
        with pytest.raises(Forbidden, match="not registered"):
            authorize(registry_of(child("b", 200)), TurnEnded("nobody"), 200)

    @pytest.mark.parametrize(
        "event",
        [Adopted("b", "x"), RestartGaveUp("b", "limit"), NotificationsDropped(3)],
        ids=["adopted", "restart_gave_up", "notifications_dropped"],
    )
    def test_local_kinds_are_forbidden(self, event: PodEvent) -> None:
        with pytest.raises(Forbidden, match="local"):
            authorize(registry_of(child("b", 200)), event, 200)

    def test_a_sub_delegation_speaks_for_its_parent_pod(self) -> None:
        b = child("b", 200)
        g = child("g", 400, parent="b")
        registry = registry_of(b, g)
        assert b is authorize(registry, sub_delegated("b", "h"), 200)
        with pytest.raises(Forbidden):
            authorize(registry, sub_delegated("b", "h"), 400)

    def test_a_sub_delegation_outside_the_senders_scope_is_forbidden(self) -> None:
        registry = registry_of(child("b", 200))
        event = attrs.evolve(sub_delegated("b", "g"), scope=[ScopeRule("/work/c", "read")])
        with pytest.raises(Forbidden, match="outside the scope"):
            authorize(registry, event, 200)

    @pytest.mark.parametrize("name", ["..", "", "G", "a/b", "a" * 64])
    def test_a_sub_delegation_to_an_invalid_name_is_forbidden(self, name: str) -> None:
        with pytest.raises(Forbidden, match="invalid pod name"):
            authorize(registry_of(child("b", 200)), sub_delegated("b", name), 200)

    def test_an_unknown_kind_speaks_for_its_pod_name(self) -> None:
        b = child("b", 200)
        registry = registry_of(b)
        assert b is authorize(registry, UnknownEvent("new_kind", {"pod_name": "b"}), 200)
        with pytest.raises(Forbidden):
            authorize(registry, UnknownEvent("new_kind", {"pod_name": 5}), 200)

    def test_a_starting_child_is_accepted(self) -> None:
        registry = Registry()
        b = child("b", 200)
        registry.add_starting(b)
        assert b is authorize(registry, TurnEnded("b"), 200)


class TestApply:
    """Each kind has its effect on the registry and the notifications."""

    def test_turn_ended_becomes_a_notification(self) -> None:
        registry = registry_of(child("b", 200))
        before = shape(registry)
        applied = apply_event(registry, child("b", 200), TurnEnded("b", turn=3), ME)
        assert Applied(notification=Notification.of(TurnEnded("b", turn=3))) == applied
        assert "pod 'b' finished turn 3" == applied.notification.text  # type: ignore[union-attr]
        assert before == shape(registry)

    def test_errored_becomes_a_notification_with_its_message(self) -> None:
        registry = registry_of(child("b", 200))
        applied = apply_event(registry, child("b", 200), Errored("b", "exit 3"), ME)
        assert (None, False) == (applied.forward, applied.registry_changed)
        assert "pod 'b' errored: exit 3" == applied.notification.text  # type: ignore[union-attr]

    def test_shut_down_removes_the_pod_and_everything_below_it(self) -> None:
        b = child("b", 200)
        registry = registry_of(
            b,
            child("c", 300),
            child("g", 400, parent="b"),
            child("h", 500, parent="g"),
            child("k", 600, parent="c"),
        )
        applied = apply_event(registry, b, ShutDown("b"), ME)
        assert (True, {"b", "g", "h"}) == (applied.registry_changed, set(applied.removed))
        assert ["c", "k"] == sorted(r.pod_name for r in registry)
        assert "pod 'b' shut down: stopped" == applied.notification.text  # type: ignore[union-attr]

    def test_shut_down_returns_the_delegated_scope(self) -> None:
        b = child("b", 200)
        registry = registry_of(b, child("c", 300), child("g", 400, parent="b"))
        apply_event(registry, b, ShutDown("b"), ME)
        assert {"c": [ScopeRule("/work/c", "write")]} == dict(registry.held_scopes())

    def test_shut_down_of_a_missing_entry_is_fine(self) -> None:
        registry = registry_of(child("c", 300))
        applied = apply_event(registry, child("b", 200), ShutDown("b"), ME)
        assert ["c"] == [r.pod_name for r in registry]
        assert applied.notification is not None

    def test_sub_delegation_registers_the_grandchild_and_goes_upward(self) -> None:
        b = child("b", 200)
        registry = registry_of(b)
        event = sub_delegated("b", "g", pid=400, incarnation=2, seq=7)
        applied = apply_event(registry, b, event, ME)
        expected_record = ChildRecord(
            pod_name="g",
            socket_path="/run/podd/g/sock",
            scope_delegated=[ScopeRule("/work/b/g", "read")],
            callback_address=b.socket_path,
            pid=400,
            start_time=2400.0,
            parent_pod="b",
            spawned_by="b",
        )
        assert expected_record == registry.get("g")
        # Passed up, it says who spawned the grandchild: the pod that reported it first.
        expected_forward = attrs.evolve(event, parent_pod=ME, sub_parent="b", incarnation=0, seq=0)
        assert (expected_forward, None, True) == (
            applied.forward,
            applied.notification,
            applied.registry_changed,
        )

    def test_an_unknown_kind_becomes_a_notification(self) -> None:
        registry = registry_of(child("b", 200))
        event = UnknownEvent("progress", {"kind": "progress", "pod_name": "b", "pct": 5})
        applied = apply_event(registry, child("b", 200), event, ME)
        assert "event 'progress' from 'b'" == applied.notification.text  # type: ignore[union-attr]
        assert (None, False) == (applied.forward, applied.registry_changed)


class TestIdempotence:
    """The same event twice has the effect of once."""

    def test_a_stamped_event_twice_notifies_once(self) -> None:
        b = child("b", 200)
        registry = registry_of(b)
        event = TurnEnded("b", turn=1, incarnation=1, seq=5)
        first = apply_event(registry, b, event, ME)
        second = apply_event(registry, b, event, ME)
        assert (False, True) == (first.duplicate, second.duplicate)
        assert Applied(duplicate=True) == second

    def test_an_older_seq_is_a_duplicate_and_a_newer_is_not(self) -> None:
        b = child("b", 200)
        registry = registry_of(b)
        apply_event(registry, b, TurnEnded("b", incarnation=1, seq=5), ME)
        assert apply_event(registry, b, TurnEnded("b", incarnation=1, seq=4), ME).duplicate
        assert not apply_event(registry, b, TurnEnded("b", incarnation=1, seq=6), ME).duplicate

    def test_a_new_incarnation_starts_its_own_sequence(self) -> None:
        b = child("b", 200)
        registry = registry_of(b)
        apply_event(registry, b, TurnEnded("b", incarnation=1, seq=50), ME)
        assert not apply_event(registry, b, TurnEnded("b", incarnation=2, seq=1), ME).duplicate
        assert apply_event(registry, b, TurnEnded("b", incarnation=1, seq=51), ME).duplicate
        assert apply_event(registry, b, TurnEnded("b", incarnation=2, seq=1), ME).duplicate

    @pytest.mark.parametrize("stamp", [{}, {"incarnation": 1, "seq": 3}], ids=["plain", "stamped"])
    def test_a_sub_delegation_twice_registers_and_forwards_once(
        self, stamp: dict[str, int]
    ) -> None:
        b = child("b", 200)
        registry = registry_of(b)
        event = sub_delegated("b", "g", pid=400, **stamp)
        first = apply_event(registry, b, event, ME)
        second = apply_event(registry, b, event, ME)
        assert ["b", "g"] == sorted(r.pod_name for r in registry)
        assert (True, False) == (first.registry_changed, second.registry_changed)
        assert (True, None) == (first.forward is not None, second.forward)

    def test_a_sub_delegation_does_not_replace_a_known_pod(self) -> None:
        b, c = child("b", 200), child("c", 300)
        registry = registry_of(b, c)
        applied = apply_event(registry, b, sub_delegated("b", "c", pid=999), ME)
        assert (c, None) == (registry.get("c"), applied.forward)

    def test_shut_down_twice_removes_once(self) -> None:
        b = child("b", 200)
        registry = registry_of(b, child("c", 300))
        notes: list[str] = []
        deliver(registry, [ShutDown("b", incarnation=1, seq=1)] * 2, notes)
        assert (["c"], ["pod 'b' shut down: stopped"]) == (
            [r.pod_name for r in registry],
            notes,
        )


def event_sets() -> Iterator[Any]:
    b = {"incarnation": 1}
    yield pytest.param(
        [
            sub_delegated("b", "g", pid=400, seq=1, **b),
            TurnEnded("b", turn=1, seq=2, **b),
            sub_delegated("b", "g", pid=400, seq=3, **b),
            ShutDown("b", seq=4, **b),
        ],
        id="stamped",
    )
    yield pytest.param(
        [sub_delegated("b", "g", pid=400), TurnEnded("b"), sub_delegated("b", "g"), ShutDown("b")],
        id="plain",
    )
    yield pytest.param(
        [sub_delegated("b", "g", pid=400), sub_delegated("c", "h", pid=500), TurnEnded("c")],
        id="two-senders",
    )


class TestAnyOrder:
    """Whatever the order of arrival, the registry ends the same; nothing arriving after
    a shut_down brings its pod back."""

    @pytest.mark.parametrize("events", list(event_sets()))
    def test_every_order_leaves_the_same_registry(self, events: list[PodEvent]) -> None:
        outcomes = set()
        for order in itertools.permutations(events):
            registry = registry_of(child("b", 200), child("c", 300))
            deliver(registry, order)
            outcomes.add(tuple(shape(registry)))
        in_order = registry_of(child("b", 200), child("c", 300))
        deliver(in_order, events)
        assert {tuple(shape(in_order))} == outcomes

    def test_turn_ended_after_shut_down_resurrects_nothing(self) -> None:
        registry = registry_of(child("b", 200), child("c", 300))
        notes: list[str] = []
        deliver(registry, [ShutDown("b"), TurnEnded("b"), Errored("b", "late")], notes)
        assert (["c"], ["pod 'b' shut down: stopped"]) == (
            [r.pod_name for r in registry],
            notes,
        )

    def test_sub_delegation_after_shut_down_registers_nothing(self) -> None:
        registry = registry_of(child("b", 200))
        applied = deliver(registry, [ShutDown("b"), sub_delegated("b", "g", pid=400)])
        assert ([], 1) == (shape(registry), len(applied))


class TestNotificationBuffer:
    """The buffer hands out oldest first, is emptied by draining, and past its capacity
    keeps the newest entries and says how many it dropped."""

    def note(self, turn: int) -> Notification:
        return Notification.of(TurnEnded("b", turn=turn))

    def test_drain_is_oldest_first_and_empties(self) -> None:
        buffer = NotificationBuffer()
        for turn in (1, 2, 3):
            buffer.push(self.note(turn))
        assert [self.note(1), self.note(2), self.note(3)] == buffer.peek()
        assert 3 == len(buffer)
        assert [self.note(1), self.note(2), self.note(3)] == buffer.drain()
        assert ([], 0) == (buffer.drain(), len(buffer))

    def test_capacity_is_at_least_128(self) -> None:
        assert DEFAULT_CAPACITY >= 128
        buffer = NotificationBuffer()
        for turn in range(128):
            buffer.push(self.note(turn))
        assert (128, 0) == (len(buffer.drain()), buffer.dropped)

    def test_overflow_keeps_the_newest_and_counts_the_dropped(self) -> None:
        buffer = NotificationBuffer(capacity=128)
        for turn in range(1, 201):
            buffer.push(self.note(turn))
        assert 129 == len(buffer)
        items = buffer.drain()
        expected_head = Notification.of(NotificationsDropped(72))
        assert expected_head == items[0]
        assert "72 older notifications were dropped" in items[0].text
        assert [self.note(t) for t in range(73, 201)] == items[1:]
        assert (0, [], 0) == (len(buffer), buffer.drain(), buffer.dropped)

    def test_peek_leaves_everything_in_place(self) -> None:
        buffer = NotificationBuffer(capacity=2)
        for turn in (1, 2, 3):
            buffer.push(self.note(turn))
        assert buffer.peek() == buffer.peek() == buffer.drain()

    def test_restore_refills(self) -> None:
        buffer = NotificationBuffer()
        buffer.restore([self.note(7)], dropped=4)
        assert [Notification.of(NotificationsDropped(4)), self.note(7)] == buffer.drain()


class TestRender:
    """Every notification is one line; signals are named by name."""

    @pytest.mark.parametrize(
        "event",
        [
            TurnEnded("b", turn=2),
            TurnEnded("b"),
            Errored("b", "first line\nsecond line\r\n\tthird"),
            ShutDown("b", reason="stopped\nby the operator"),
            Adopted("b", "a"),
            RestartGaveUp("b", "gave up after 5 restarts in 60 s\n(limit: 5)"),
            NotificationsDropped(3),
            sub_delegated("b", "g"),
            UnknownEvent("new\nkind", {"kind": "new\nkind", "pod_name": "b\nx"}),
        ],
        ids=lambda e: type(e).__name__,
    )
    def test_one_line(self, event: PodEvent) -> None:
        text = render(event)
        assert ([text], True) == (text.splitlines(), text.strip() == text and "\t" not in text)

    def test_signals_are_named(self) -> None:
        assert ["SIGKILL", "SIGTERM", "SIGSEGV"] == [signal_name(n) for n in (9, 15, 11)]
        text = render(Errored("b", f"pod died: killed by {signal_name(9)}"))
        assert "pod 'b' errored: pod died: killed by SIGKILL" == text

    def test_an_adoption_says_adopted(self) -> None:
        assert "adopted" in render(Adopted("g", "b"))

    def test_a_restart_giving_up_names_its_limit(self) -> None:
        assert "5 restarts" in render(RestartGaveUp("b", "gave up after 5 restarts in 60 s"))

    def test_round_trip_through_json(self) -> None:
        for event in (TurnEnded("b", turn=1, incarnation=1, seq=2), sub_delegated("b", "g")):
            note = Notification.of(event)
            assert note == Notification.from_dict(note.to_dict())


class TestRegistryFile:
    """The registry is saved atomically and reads back as it was."""

    def test_round_trip(self, tmp_path: Any) -> None:
        path = str(tmp_path / "spawned_pods.json")
        registry = Registry()
        records = [
            child("b", 200, incarnation=2, last_seq=9),
            child("g", 400, parent="b"),
        ]
        for record in records:
            registry.add(record)
        save_registry(path, registry)
        assert records == list(load_registry(path))

    def test_missing_file_is_an_empty_registry(self, tmp_path: Any) -> None:
        assert [] == list(load_registry(str(tmp_path / "absent.json")))

    def test_save_leaves_no_temp_file_and_mode_0600(self, tmp_path: Any) -> None:
        path = str(tmp_path / "spawned_pods.json")
        registry = Registry()
        for pid in range(1, 20):
            registry.add(child(f"c{pid}", pid))
            save_registry(path, registry)
        assert ["spawned_pods.json"] == os.listdir(tmp_path)
        assert 0o600 == stat.S_IMODE(os.stat(path).st_mode)
        assert 19 == len(load_registry(path))

    def test_failed_replace_keeps_the_old_file(
        self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = str(tmp_path / "spawned_pods.json")
        registry = Registry()
        registry.add(child("b", 200))
        save_registry(path, registry)
        with open(path, "rb") as f:
            before = f.read()

        def fail(src: str, dst: str) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "rename", fail)
        monkeypatch.setattr(os, "replace", fail)
        registry.add(child("c", 300))
        with pytest.raises(OSError):
            save_registry(path, registry)
        monkeypatch.undo()
        with open(path, "rb") as f:
            assert before == f.read()
        assert ["spawned_pods.json"] == os.listdir(tmp_path)

    def test_starting_records_are_neither_listed_nor_saved(self, tmp_path: Any) -> None:
        path = str(tmp_path / "spawned_pods.json")
        registry = Registry()
        registry.add_starting(child("b", 200))
        save_registry(path, registry)
        assert ([], []) == (list(registry), list(load_registry(path)))
        registry.confirm("b")
        save_registry(path, registry)
        assert ["b"] == [r.pod_name for r in load_registry(path)]

    def test_descendants_of_survives_a_cycle(self) -> None:
        registry = registry_of(child("x", 1, parent="y"), child("y", 2, parent="x"))
        assert ["x", "y"] == sorted(registry.descendants_of("x"))


class TestRestartedSubPod:
    """A sub-pod reported again from a new process (restarted) is followed, not ignored."""

    def test_new_pid_from_the_same_reporter_refreshes_the_record(self) -> None:
        registry = registry_of(child("b", 200))
        first = apply_event(registry, registry.get("b"), sub_delegated("b", "g", 400), ME)
        again = apply_event(registry, registry.get("b"), sub_delegated("b", "g", 401), ME)
        record = registry.get("g")
        assert (True, True) == (first.forward is not None, again.forward is not None)
        assert (401, "b") == (record.pid if record else 0, record.parent_pod if record else "")

    def test_same_pid_again_changes_nothing(self) -> None:
        registry = registry_of(child("b", 200))
        apply_event(registry, registry.get("b"), sub_delegated("b", "g", 400), ME)
        again = apply_event(registry, registry.get("b"), sub_delegated("b", "g", 400), ME)
        assert Applied() == again

    def test_another_reporter_cannot_take_over_a_sub_pod(self) -> None:
        registry = registry_of(child("b", 200), child("c", 300))
        apply_event(registry, registry.get("b"), sub_delegated("b", "g", 400), ME)
        taken = apply_event(registry, registry.get("c"), sub_delegated("c", "g", 999), ME)
        record = registry.get("g")
        assert (Applied(), 400) == (taken, record.pid if record else 0)
