"""Tombstones: what a pod remembers of the pods it removed from its registry.

A removed pod may still send events (a late ``turn_ended`` after its ``shut_down``, an
outbox resending what was not yet acknowledged). Its tombstone (pid, and the newest
stamp applied from it) lets the pod ignore those events and acknowledge them, instead
of refusing them as ``forbidden``, so the sender's outbox empties and nothing is
resurrected. At most ``LIMIT`` are kept, the oldest forgotten first; spawning the name
again forgets its tombstone.
"""

from __future__ import annotations

import collections

import attrs

from protocol.values import Value

__all__ = ["Tombstone", "Tombstones"]


@attrs.frozen(repr=False, eq=False)
class Tombstone(Value):
    """A pod removed from the registry: its late events are ignored, not refused."""

    pid: int
    incarnation: int
    last_seq: int


class Tombstones:
    """Tombstones by pod name, bounded, oldest forgotten first."""

    LIMIT = 1024

    def __init__(self) -> None:
        self._items: collections.OrderedDict[str, Tombstone] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def bury(self, name: str, tombstone: Tombstone) -> None:
        self._items.pop(name, None)
        self._items[name] = tombstone
        while len(self._items) > self.LIMIT:
            self._items.popitem(last=False)

    def get(self, name: str) -> Tombstone | None:
        return self._items.get(name)

    def forget(self, name: str) -> None:
        self._items.pop(name, None)
