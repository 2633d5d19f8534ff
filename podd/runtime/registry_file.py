"""The registry file (``spawned_pods.json``), written off the loop, newest first.

The loop hands over a serialized copy at each change (``changed``); one writer task
replaces the file atomically (temp file, fsync, rename) in a worker thread, so an
fsync never holds the loop, and a burst of changes costs one write of the newest.
``flush`` waits until the registry as of now has reached the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from podd.store.atomic import write_atomic

__all__ = ["RegistryFile"]

log = logging.getLogger(__name__)


class RegistryFile:
    """The writer of one registry file; ``on_error`` hears of a write that failed."""

    def __init__(self, path: str, on_error: Callable[[str, BaseException], None]) -> None:
        self.path = path
        self._on_error = on_error
        self._data: bytes | None = None
        self._dirty = trio.Event()
        self._written = trio.Event()
        self._version = 0
        """Bumped at each change; ``_on_disk`` is the newest one in the file."""
        self._on_disk = 0

    def changed(self, data: bytes) -> None:
        """The registry is now ``data``: write it (newest wins)."""
        self._data = data
        self._version += 1
        self._dirty.set()

    async def run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            data, self._data = self._data, None
            version = self._version
            if data is not None:
                try:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(write_atomic, self.path, data)
                except OSError as exc:
                    # A full or broken disk must not end the pod: the journal still has
                    # the registry; the file is written again with the next change.
                    log.error("cannot write the registry file: %s", exc)
                    self._on_error("registry write", exc)
            # Written, or given up on: either way no waiter waits for this one any more.
            self._on_disk = version
            self._written.set()
            self._written = trio.Event()

    async def flush(self) -> None:
        """Wait until the registry as of now has reached its file (a write already under
        way when the registry changed does not count)."""
        wanted = self._version
        while self._on_disk < wanted:
            await self._written.wait()
