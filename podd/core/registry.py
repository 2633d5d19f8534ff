"""The registry of pods this pod knows below it, stored in ``spawned_pods.json``.

Direct children are there from the moment they are ready; grandchildren arrive through
``scope_sub_delegated``. The pod's dispatch loop is the registry's only writer; the
file is replaced atomically after every change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs
import orjson

from protocol import ScopeRule, converter
from protocol.messages import RestartPolicy

__all__ = ["ChildRecord", "Registry"]


@attrs.define
class ChildRecord:
    """One pod below this one.

    ``parent_pod`` is the pod that reports it here (this pod for a direct or adopted
    child); ``spawned_by`` the pod that spawned it (empty if it was not said);
    ``callback_address`` is the socket its events go to. ``incarnation`` and
    ``last_seq`` are the newest event stamp applied from it, for de-duplication.
    """

    pod_name: str
    socket_path: str
    scope_delegated: list[ScopeRule]
    callback_address: str
    pid: int
    start_time: float
    parent_pod: str
    incarnation: int = 0
    last_seq: int = 0
    restart: RestartPolicy = "never"
    spawned_by: str = ""


class Registry:
    """Records by pod name; ``podd.store.pod_files`` persists them."""

    def __init__(self) -> None:
        self._records: dict[str, ChildRecord] = {}
        self._starting: dict[str, ChildRecord] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self) -> Iterator[ChildRecord]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def get(self, name: str) -> ChildRecord | None:
        """The record of ``name``, a starting child's included."""
        return self._records.get(name) or self._starting.get(name)

    def add_starting(self, record: ChildRecord) -> None:
        """Know a child from the moment its process exists, so that the events it sends
        before its parent has seen it ready are accepted. Starting records are not
        listed, iterated or saved until ``confirm``."""
        self._starting[record.pod_name] = record

    def confirm(self, name: str) -> ChildRecord | None:
        """Make a starting record a full one; returns it (None if there was none)."""
        record = self._starting.pop(name, None)
        if record is not None:
            self._records[name] = record
        return record

    def discard_starting(self, name: str) -> None:
        self._starting.pop(name, None)

    def add(self, record: ChildRecord) -> None:
        self._records[record.pod_name] = record

    def remove(self, name: str) -> ChildRecord | None:
        return self._records.pop(name, None)

    def children_of(self, name: str) -> list[ChildRecord]:
        """The records reported through ``name`` itself (``name``'s own: its children)."""
        return [r for r in self._records.values() if r.parent_pod == name]

    def descendants_of(self, name: str) -> list[str]:
        """Names of the records reported through ``name``, at any depth."""
        return [r.pod_name for r in self._below(name, "parent_pod")]

    def spawned_below(self, name: str) -> list[str]:
        """Names of the records that ``name`` spawned, and those spawned by them, at any
        depth, wherever they report now (adopted above, while ``name`` was dead)."""
        return [r.pod_name for r in self._below(name, "spawned_by") if r.pod_name != name]

    def rehome(self, adopted: str, socket: str) -> None:
        """``adopted`` was adopted here: the pods it spawned, at any depth, are reported
        through it from now on (they were through its dead ancestors), so that they go
        with it."""
        for record in self._below(adopted, "spawned_by"):
            if record.pod_name != adopted:  # a cycle of records leads back to it
                record.parent_pod, record.callback_address = adopted, socket

    def _below(self, name: str, link: str) -> list[ChildRecord]:
        """The records whose ``link`` (``parent_pod`` or ``spawned_by``) leads to
        ``name``, at any depth, in the order found (``name``'s own, if a cycle of
        records leads back to it)."""
        found: list[ChildRecord] = []
        seen: set[str] = set()
        frontier = [name]
        while frontier:
            above = frontier.pop()
            for record in self._records.values():
                if getattr(record, link) == above and record.pod_name not in seen:
                    found.append(record)
                    seen.add(record.pod_name)
                    frontier.append(record.pod_name)
        return found

    def held_scopes(self, exclude: str | None = None) -> Mapping[str, list[ScopeRule]]:
        """The rules each recorded pod holds, by name (``exclude`` left out)."""
        return {
            r.pod_name: r.scope_delegated for r in self._records.values() if r.pod_name != exclude
        }

    def to_json(self) -> bytes:
        records = [converter.unstructure(r) for r in self._records.values()]
        return orjson.dumps({"pods": records}, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> Registry:
        """The registry of ``to_json``'s document."""
        registry = cls()
        for raw in orjson.loads(data).get("pods", []):
            registry.add(converter.structure(raw, ChildRecord))
        return registry
