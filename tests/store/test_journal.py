"""The pod's journal (issue 7): state changes appended to ``journal.log``, replayed
into a ``Snapshot``, compacted into ``snapshot.json``; and the stopped record that
``podd restart`` reads.

Files only, no pods: the journal is written the way the pod's loop writes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import Ancestor, PodInfo, PodSpec
from podd.store.journal import (
    COMPACT_AFTER,
    Journal,
    Snapshot,
    load_state,
    read_stopped,
    stopped_path,
    write_stopped,
)
from protocol import Errored, ScopeRule, ShutDown, TurnEnded


def note(pod: str, turn: int = 1) -> Notification:
    return Notification.of(TurnEnded(pod, turn=turn))


def child(name: str, pid: int = 100) -> ChildRecord:
    return ChildRecord(
        pod_name=name,
        socket_path=f"/run/podd/{name}/sock",
        scope_delegated=[ScopeRule(f"/work/{name}", "write")],
        callback_address="/run/podd/p/sock",
        pid=pid,
        start_time=1700000000.25,
        parent_pod="p",
        incarnation=1,
        restart="on-failure",
    )


def notify(n: Notification) -> dict[str, Any]:
    return {"op": "notify", "notification": n.to_dict()}


def registry(*records: ChildRecord) -> dict[str, Any]:
    return {"op": "registry", "pods": [attrs.asdict(r) for r in records]}


def turn(turns: int, finished: bool = True) -> dict[str, Any]:
    last = {"turn": turns, "finished": finished, "message": f"turn {turns} finished"}
    return {"op": "turn", "turns": turns, "last_turn": last}


DRAIN = {"op": "drain"}


def written(directory: Path, *records: dict[str, Any]) -> Journal:
    """A journal in ``directory`` with ``records`` appended and flushed."""
    journal = Journal(str(directory))
    for record in records:
        journal.append(record)
    journal.flush()
    return journal


class TestReplay:
    """Replaying the log rebuilds the registry, the pending notifications and the turn
    count, each record applied in order."""

    def test_no_journal_means_no_state(self, tmp_path: Path) -> None:
        assert None is load_state(str(tmp_path))

    def test_notifications_accumulate_until_drained(self, tmp_path: Path) -> None:
        written(tmp_path, notify(note("a", 1)), notify(note("b", 1)), DRAIN, notify(note("a", 2)))
        state = load_state(str(tmp_path))
        assert Snapshot(notifications=[note("a", 2)]) == state

    def test_every_kind_of_record(self, tmp_path: Path) -> None:
        gone = Notification.of(ShutDown("b", reason="stopped"))
        written(
            tmp_path,
            registry(child("a"), child("b", pid=101)),
            notify(note("a")),
            turn(1),
            registry(child("a")),
            notify(gone),
            turn(2, finished=False),
        )
        expected = Snapshot(
            registry=[child("a")],
            notifications=[note("a"), gone],
            turns=2,
            last_turn={"turn": 2, "finished": False, "message": "turn 2 finished"},
        )
        assert expected == load_state(str(tmp_path))

    def test_unknown_records_are_skipped(self, tmp_path: Path) -> None:
        written(tmp_path, {"op": "from_the_future", "x": 1}, notify(note("a")), {"no_op": 1})
        assert Snapshot(notifications=[note("a")]) == load_state(str(tmp_path))

    def test_nothing_reaches_the_file_before_flush(self, tmp_path: Path) -> None:
        journal = Journal(str(tmp_path))
        journal.append(notify(note("a")))
        assert Snapshot() == load_state(str(tmp_path))
        journal.flush()
        journal.sync()
        assert Snapshot(notifications=[note("a")]) == load_state(str(tmp_path))
        journal.close()


class TestTornLine:
    """A record cut short by a crash mid-write is ignored; the records before it count."""

    def test_torn_last_line_is_ignored(self, tmp_path: Path) -> None:
        written(tmp_path, notify(note("a")), turn(1)).close()
        whole = orjson.dumps(notify(note("b")))
        with open(tmp_path / "journal.log", "ab") as f:
            f.write(whole[: len(whole) // 2])
        assert Snapshot(notifications=[note("a")], turns=1, last_turn=turn(1)["last_turn"]) == (
            load_state(str(tmp_path))
        )

    @pytest.mark.parametrize("cut", [1, 10, -1])
    def test_any_cut_of_the_last_record(self, tmp_path: Path, cut: int) -> None:
        written(tmp_path, registry(child("a"))).close()
        whole = orjson.dumps(registry(child("a"), child("b")))
        with open(tmp_path / "journal.log", "ab") as f:
            f.write(whole[:cut])
        assert Snapshot(registry=[child("a")]) == load_state(str(tmp_path))


class TestCompaction:
    """Compaction writes the state as ``snapshot.json`` and empties the log; reloading
    gives the same state, and later records apply on top of it."""

    def test_compacted_state_reloads_the_same(self, tmp_path: Path) -> None:
        journal = written(
            tmp_path, registry(child("a")), notify(note("a")), notify(note("a", 2)), turn(3)
        )
        before = load_state(str(tmp_path))
        assert before is not None
        journal.compact(before)
        assert 0 == os.path.getsize(tmp_path / "journal.log")
        assert (tmp_path / "snapshot.json").exists()
        assert before == load_state(str(tmp_path))
        assert 0 == journal.records
        journal.close()

    def test_records_after_compaction_apply_on_the_snapshot(self, tmp_path: Path) -> None:
        journal = written(tmp_path, registry(child("a")), notify(note("a")))
        state = load_state(str(tmp_path))
        assert state is not None
        journal.compact(state)
        journal.append(notify(note("b")))
        journal.append(registry(child("a"), child("b", pid=101)))
        journal.flush()
        journal.close()
        expected = Snapshot(
            registry=[child("a"), child("b", pid=101)], notifications=[note("a"), note("b")]
        )
        assert expected == load_state(str(tmp_path))

    def test_compaction_is_wanted_past_the_threshold(self, tmp_path: Path) -> None:
        journal = Journal(str(tmp_path))
        for _ in range(COMPACT_AFTER - 1):
            journal.append(DRAIN)
        assert not journal.wants_compaction
        journal.append(DRAIN)
        assert journal.wants_compaction
        journal.compact(Snapshot())
        assert not journal.wants_compaction
        journal.close()

    def test_a_broken_snapshot_is_not_trusted(self, tmp_path: Path) -> None:
        (tmp_path / "snapshot.json").write_bytes(b'{"registry": [')
        written(tmp_path, notify(note("a"))).close()
        assert Snapshot(notifications=[note("a")]) == load_state(str(tmp_path))

    def test_state_round_trips_through_a_dict(self) -> None:
        state = Snapshot(
            registry=[child("a")],
            notifications=[note("a"), Notification.of(Errored("a", "boom"))],
            dropped=3,
            turns=4,
            last_turn=turn(4)["last_turn"],
        )
        assert state == Snapshot.from_dict(orjson.loads(orjson.dumps(state.to_dict())))


class TestStoppedRecord:
    """A stopped pod's info and state are kept in ``<root>/.stopped.<name>.json`` and
    read back as they were; a missing or broken record reads as None."""

    def info(self, root: str) -> PodInfo:
        spec = PodSpec(
            name="x",
            root=root,
            cwd="/work",
            scope=[ScopeRule("/work", "write")],
            agent="true",
            wake_on_notify=True,
            restart="on-failure",
            parent="p",
            parent_socket=f"{root}/p/sock",
            parent_pid=42,
            ancestors=[Ancestor("top", f"{root}/top/sock")],
            incarnation=3,
        )
        return PodInfo(spec=spec, pid=4242, start_time=1700000000.5)

    def test_round_trip(self, tmp_path: Path) -> None:
        root = str(tmp_path)
        state = Snapshot(registry=[child("a")], notifications=[note("a")], dropped=1, turns=2)
        write_stopped(root, self.info(root), state)
        assert os.path.join(root, ".stopped.x.json") == stopped_path(root, "x")
        assert (self.info(root), state) == read_stopped(root, "x")
        assert 0o600 == os.stat(stopped_path(root, "x")).st_mode & 0o777

    def test_missing_record(self, tmp_path: Path) -> None:
        assert None is read_stopped(str(tmp_path), "x")

    def test_broken_record(self, tmp_path: Path) -> None:
        root = str(tmp_path)
        with open(stopped_path(root, "x"), "wb") as f:
            f.write(b'{"info": {"spec": ')
        assert None is read_stopped(root, "x")


class TestDeduplicationState:
    """Replaying notifications restores what was applied from each sender."""

    def test_replayed_notifications_restore_last_seq(self) -> None:
        state = Snapshot(registry=[ChildRecord("c", "/s", [], "/p", 7, 0.0, "p", 1, 0)])
        for seq in (1, 2, 3):
            event = TurnEnded("c", turn=seq, incarnation=1, seq=seq)
            state.apply({"op": "notify", "notification": Notification.of(event).to_dict()})
        assert (1, 3) == (state.registry[0].incarnation, state.registry[0].last_seq)
