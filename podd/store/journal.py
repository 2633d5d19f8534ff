"""The pod's journal: its state changes, appended, so a restart can rebuild the state.

``<pod dir>/journal.log`` holds one JSON record per line:

    {"op": "notify", "notification": {...}}     a notification was buffered
    {"op": "drain"}                             the buffer was drained
    {"op": "turn", "turns": N, "last_turn": {}, "session": ..., "cost_usd": ...,
     "usage": {...}}                            a turn ended (its record, the totals)
    {"op": "session", "session": ID}            the agent's session is known
    {"op": "queue", "items": [...]}             the queue is these items (after a clear)
    {"op": "queue_push", "item": {...}}         a turn was queued
    {"op": "queue_pop", "seq": N}               queued turn N started
    {"op": "registry", "pods": [...]}           the registry changed (all of it)

Records are buffered while the dispatch loop has work queued and written (one
``write``) before it waits again, so whatever the pod has acknowledged is in the kernel
and survives the pod's own crash; ``sync`` (run every ``SYNC_INTERVAL`` by the pod)
fsyncs it against a crash of the machine. Past ``COMPACT_AFTER`` records the journal is
compacted: ``snapshot.json`` is replaced atomically and the log truncated.

A pod that stopped or was reclaimed leaves its last state in
``<root>/.stopped.<name>.json`` (its ``pod.json`` plus the state), which
``podd restart`` reads and removes.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import attrs
import orjson

from podd.core.notifications import Notification
from podd.core.registry import ChildRecord
from podd.core.spec import PodInfo
from podd.store.atomic import write_atomic
from protocol import converter

__all__ = [
    "COMPACT_AFTER",
    "Journal",
    "Snapshot",
    "load_state",
    "read_stopped",
    "stopped_how",
    "stopped_path",
    "write_stopped",
]

COMPACT_AFTER = 5000
SYNC_INTERVAL = 0.2


@attrs.define
class Snapshot:
    """What a restart brings back."""

    registry: list[ChildRecord] = attrs.field(factory=list)
    notifications: list[Notification] = attrs.field(factory=list)
    dropped: int = 0
    turns: int = 0
    last_turn: dict[str, Any] | None = None
    session: str | None = None
    cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    queue: list[dict[str, Any]] = attrs.field(factory=list)

    def apply(self, record: dict[str, Any]) -> None:
        """Apply one journal record (unknown ops are skipped)."""
        op = record.get("op")
        if op == "notify":
            notification = Notification.from_dict(record["notification"])
            self.notifications.append(notification)
            self._seen(notification)
        elif op == "drain":
            self.notifications.clear()
            self.dropped = 0
        elif op == "turn":
            self.turns = int(record["turns"])
            self.last_turn = record.get("last_turn")
            self.session = record.get("session", self.session)
            self.cost_usd = record.get("cost_usd", self.cost_usd)
            self.usage = record.get("usage", self.usage)
        elif op == "session":
            self.session = record.get("session")
        elif op == "queue":
            self.queue = list(record.get("items", []))
        elif op == "queue_push":
            self.queue.append(record["item"])
        elif op == "queue_pop":
            self.queue = [i for i in self.queue if i.get("seq") != record.get("seq")]
        elif op == "registry":
            self.registry = [converter.structure(p, ChildRecord) for p in record["pods"]]

    def _seen(self, notification: Notification) -> None:
        """A notification carries the stamp of the event it came from: replaying it also
        restores the sender's de-duplication state, so that events a child sends again
        after this pod restarts are not applied twice."""
        event = notification.event
        incarnation = getattr(event, "incarnation", 0)
        name = getattr(event, "pod_name", None)
        if not incarnation or name is None:
            return
        seq = getattr(event, "seq", 0)
        for record in self.registry:
            if record.pod_name == name:
                if incarnation > record.incarnation:
                    record.incarnation, record.last_seq = incarnation, seq
                elif incarnation == record.incarnation:
                    record.last_seq = max(record.last_seq, seq)

    def to_dict(self) -> dict[str, Any]:
        return {
            "registry": [converter.unstructure(r) for r in self.registry],
            "notifications": [n.to_dict() for n in self.notifications],
            "dropped": self.dropped,
            "turns": self.turns,
            "last_turn": self.last_turn,
            "session": self.session,
            "cost_usd": self.cost_usd,
            "usage": self.usage,
            "queue": self.queue,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        return cls(
            registry=[converter.structure(p, ChildRecord) for p in data.get("registry", [])],
            notifications=[Notification.from_dict(n) for n in data.get("notifications", [])],
            dropped=int(data.get("dropped", 0)),
            turns=int(data.get("turns", 0)),
            last_turn=data.get("last_turn"),
            session=data.get("session"),
            cost_usd=data.get("cost_usd"),
            usage=data.get("usage"),
            queue=list(data.get("queue") or []),
        )


class Journal:
    """Appends records for one pod; the pod's dispatch loop is its only writer."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, "journal.log")
        self.snapshot_path = os.path.join(directory, "snapshot.json")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._buffer: list[bytes] = []
        self.records = 0
        self.dirty = False

    def append(self, record: dict[str, Any]) -> None:
        self._buffer.append(orjson.dumps(record) + b"\n")
        self.records += 1

    def flush(self) -> None:
        """Write the buffered records (one ``write``)."""
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self.dirty = True

    def sync(self) -> None:
        """fsync what was written."""
        if self.dirty:
            self.dirty = False
            os.fsync(self._fd)

    @property
    def wants_compaction(self) -> bool:
        return self.records >= COMPACT_AFTER

    def compact(self, state: Snapshot) -> None:
        """Replace the snapshot with ``state`` and empty the log."""
        self._buffer.clear()
        write_atomic(self.snapshot_path, orjson.dumps(state.to_dict()))
        os.ftruncate(self._fd, 0)
        self.records = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.flush()
            os.close(self._fd)


def load_state(directory: str) -> Snapshot | None:
    """Rebuild the state a pod directory's journal describes; None if it has none.

    A torn last line (the pod died mid-write) is ignored.
    """
    state: Snapshot | None = None
    try:
        with open(os.path.join(directory, "snapshot.json"), "rb") as f:
            state = Snapshot.from_dict(orjson.loads(f.read()))
    except FileNotFoundError:
        pass
    except ValueError:
        state = None
    try:
        with open(os.path.join(directory, "journal.log"), "rb") as f:
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return state
    state = state or Snapshot()
    for line in lines:
        if not line.strip():
            continue
        try:
            state.apply(orjson.loads(line))
        except (ValueError, KeyError, TypeError):
            continue
    return state


def stopped_path(root: str, name: str) -> str:
    return os.path.join(root, f".stopped.{name}.json")


def write_stopped(
    root: str, info: PodInfo, state: Snapshot, how: str = "stopped", reason: str | None = None
) -> None:
    """Keep a stopped or dead pod's last state for ``podd restart``; ``how`` it ended:
    ``stopped`` (it shut down cleanly) or ``died`` (it was reclaimed).

    The same file is the pod's completion record for whoever watches from outside:
    ``how``, ``reason``, ``at``, ``turns``, ``cost_usd`` and ``last_turn`` at its top.
    """
    document = {
        "name": info.spec.name,
        "how": how,
        "reason": reason or how,
        "at": time.time(),
        "turns": state.turns,
        "cost_usd": state.cost_usd,
        "last_turn": state.last_turn,
        "info": converter.unstructure(info),
        "state": state.to_dict(),
    }
    write_atomic(stopped_path(root, info.spec.name), orjson.dumps(document))


def stopped_how(root: str, name: str) -> str | None:
    """How the pod of a stopped record ended (``stopped`` or ``died``); None if none."""
    try:
        with open(stopped_path(root, name), "rb") as f:
            return str(orjson.loads(f.read()).get("how", "stopped"))
    except (OSError, ValueError, AttributeError):
        return None


def read_stopped(root: str, name: str) -> tuple[PodInfo, Snapshot] | None:
    try:
        with open(stopped_path(root, name), "rb") as f:
            document = orjson.loads(f.read())
        return converter.structure(document["info"], PodInfo), Snapshot.from_dict(document["state"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None
