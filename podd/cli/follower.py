"""Following pods' event feeds: ``Follower``, for ``podd events`` and ``podd top``.

Each pod keeps its recent events and streams new ones to whoever follows it (the
``events`` method, ``docs/protocol.md``, Event feed). ``Follower`` follows every pod of
the root, or ``name`` and the pods below it, at once: one connection per pod, all in one
``selectors`` loop over non-blocking sockets. It finds pods started later by listing
the root's directories every ``RESCAN`` seconds and reading the ``pod.json`` of those
that are new or changed (a directory listing and a few file reads: no pod is asked
anything for it). It has no thread of its own: ``poll`` does its work and returns
what happened as ``Update`` values. A caller that does not poll for long is dropped by
a busy pod for falling behind (``lagged``) and subscribes to it again.

Records are kept apart per pod and per process of the pod: a record seen once (the
same sequence number of the same feed, after a reconnect, say) is never given twice.
The same event does appear twice when two pods record it (the child that emitted
it, the parent that applied it): those are two records, and both are given.

Plain sockets and the ``json`` module only, like every other command (no trio,
no cattrs).
"""

from __future__ import annotations

import json
import os
import selectors
import time

from podd.core.names import is_valid_name
from podd.errors import PoddError
from protocol.errors import FrameTooLarge
from protocol.framing import FrameBuffer

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

__all__ = ["CONNECT_TIMEOUT", "RESCAN", "Follower", "Update"]

RESCAN = 0.5
"""Seconds between two listings of the root's directories."""

CONNECT_TIMEOUT = 2.0
"""Seconds to connect to a pod, at most."""

EVENTS_ID = 1
"""The request id of the ``events`` subscription on every connection."""


class Update:
    """What happened to one followed pod.

    ``what`` is ``added`` (subscribed: ``data`` is its recent records), ``event``
    (``data`` is a record), ``status`` (``data`` is its ``status`` result), ``lagged``
    (it dropped this follower, which subscribed again: ``data`` is the ``events_end``
    params), ``gone`` (its stream ended; ``data`` is why), ``failed`` (it cannot be
    followed: ``data`` is why) or ``ready`` (a descriptor given to ``watch`` is
    readable: ``data`` is its tag).
    """

    __slots__ = ("data", "pod", "what")

    def __init__(self, what: str, pod: str, data: Any = None) -> None:
        self.what = what
        self.pod = pod
        self.data = data

    def __repr__(self) -> str:
        return f"Update({self.what!r}, {self.pod!r})"


class _Stream:
    """The connection to one followed pod."""

    __slots__ = ("frames", "key", "name", "parent", "pending_status", "sock", "subscribed")

    def __init__(self, name: str, key: tuple[int, float], parent: str | None) -> None:
        self.name = name
        self.key = key
        self.parent = parent
        self.sock: socket.socket | None = None
        self.frames = FrameBuffer()
        self.subscribed = False
        self.pending_status = 0
        """Status requests sent and not answered yet."""


class Follower:
    """Follows the pods of ``root`` (or ``name`` and the pods below it).

    ``poll`` waits for the pods' frames at most ``timeout`` seconds, lists the root
    again when that is due, and returns what happened. With ``status``, each pod is
    also asked for its ``status`` once when it is first followed (on the same
    connection), and again on ``refresh``.
    """

    def __init__(self, root: str, name: str | None = None, *, status: bool = False) -> None:
        self.root = root
        self.name = name
        self.status = status
        self.selector = selectors.DefaultSelector()
        self.streams: dict[str, _Stream] = {}
        self.parents: dict[str, str | None] = {}
        """The parent of every pod seen under the root (from its ``pod.json``)."""
        self._files: dict[str, tuple[int, tuple[int, float], str | None]] = {}
        """Per pod directory: the mtime of its ``pod.json`` and what it says."""
        self._refused: dict[str, tuple[int, float]] = {}
        """Pods that could not be followed, by process: not tried again until it changes."""
        self._seen: dict[str, tuple[tuple[int, float], int]] = {}
        """Per pod: its process and the newest sequence number given out from it."""
        self._next_scan = 0.0
        self._ids = 1
        self.rescan = True
        """Whether ``poll`` lists the root again every ``RESCAN`` seconds."""

    # --- The pods -----------------------------------------------------------------

    def in_scope(self, name: str) -> bool:
        """Whether ``name`` is followed: any pod of the root, or one of ``self.name``'s
        subtree (by the parents the pods' ``pod.json`` name)."""
        if self.name is None:
            return True
        hops = 0
        current: str | None = name
        while current is not None and hops <= len(self.parents):
            if current == self.name:
                return True
            current = self.parents.get(current)
            hops += 1
        return False

    def scan(self) -> list[Update]:
        """List the root and follow the pods that are new there."""
        self._next_scan = time.monotonic() + RESCAN
        try:
            names = [n for n in os.listdir(self.root) if is_valid_name(n)]
        except OSError:
            names = []
        present = set(names)
        for gone in [n for n in self._files if n not in present]:
            self._files.pop(gone, None)
            self.parents.pop(gone, None)
        found: dict[str, tuple[int, float]] = {}
        for name in names:
            record = self._read(name)
            if record is not None:
                key, parent = record
                self.parents[name] = parent
                found[name] = key
        updates: list[Update] = []
        for name, key in sorted(found.items()):
            if name in self.streams or self._refused.get(name) == key:
                continue
            if self.in_scope(name):
                updates.extend(self._follow(name, key))
        return updates

    def _read(self, name: str) -> tuple[tuple[int, float], str | None] | None:
        path = os.path.join(self.root, name, "pod.json")
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            self._files.pop(name, None)
            return None
        cached = self._files.get(name)
        if cached is not None and cached[0] == mtime:
            return cached[1], cached[2]
        from podd.store.records import read_pod_record

        try:
            record = read_pod_record(path)
        except (OSError, ValueError):
            return None
        key = (record.pid, record.start_time)
        self._files[name] = (mtime, key, record.parent)
        return key, record.parent

    def _follow(self, name: str, key: tuple[int, float]) -> list[Update]:
        from podd.client.core import encode_request
        from podd.client.sync import connect

        stream = _Stream(name, key, self.parents.get(name))
        try:
            sock = connect(os.path.join(self.root, name, "sock"), timeout=CONNECT_TIMEOUT)
        except PoddError:
            self._refused[name] = key
            return []
        try:
            request = encode_request("events", {"follow": True}, EVENTS_ID)
            if self.status and key != self._seen.get(name, ((0, 0.0), 0))[0]:
                request += encode_request("status", None, self._next_id())
                stream.pending_status += 1
            sock.sendall(request)
            sock.setblocking(False)
        except OSError:
            sock.close()
            self._refused[name] = key
            return []
        stream.sock = sock
        self.streams[name] = stream
        self.selector.register(sock, selectors.EVENT_READ, stream)
        return []

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def refresh(self, name: str) -> None:
        """Ask ``name`` for its ``status`` again, unless an answer is on its way."""
        from podd.client.core import encode_request

        stream = self.streams.get(name)
        if stream is None or stream.sock is None or stream.pending_status:
            return
        try:
            stream.sock.send(encode_request("status", None, self._next_id()))
            stream.pending_status += 1
        except OSError:  # BlockingIOError included: it is busy, ask another time
            return

    # --- Frames -------------------------------------------------------------------

    def poll(self, timeout: float) -> list[Update]:
        """What happened within ``timeout`` seconds (less if something did)."""
        now = time.monotonic()
        updates: list[Update] = []
        if self.rescan and now >= self._next_scan:
            updates.extend(self.scan())
        wait = timeout
        if self.rescan:
            wait = max(0.0, min(timeout, self._next_scan - time.monotonic()))
        if updates:
            wait = 0.0
        if self.selector.get_map():
            ready = self.selector.select(wait)
        else:
            time.sleep(wait)
            ready = []
        for key, _ in ready:
            if isinstance(key.data, _Stream):
                updates.extend(self._read_stream(key.data))
            else:
                updates.append(Update("ready", "", key.data))
        return updates

    def watch(self, fd: int, tag: str) -> None:
        """Have ``poll`` also wait for ``fd`` to be readable: it then returns an
        ``Update("ready", "", tag)`` (reading it is the caller's)."""
        self.selector.register(fd, selectors.EVENT_READ, tag)

    def _read_stream(self, stream: _Stream) -> list[Update]:
        assert stream.sock is not None
        updates: list[Update] = []
        while True:
            try:
                data = stream.sock.recv(262144)
            except BlockingIOError:
                return updates
            except OSError as exc:
                updates.extend(self._ended(stream, f"connection lost: {exc.strerror or exc}"))
                return updates
            if not data:
                updates.extend(self._ended(stream, "the pod closed the connection"))
                return updates
            for line in stream.frames.feed(data):
                updates.extend(self._frame(stream, line))
                if stream.sock is None:
                    return updates

    def _frame(self, stream: _Stream, line: bytes | FrameTooLarge) -> list[Update]:
        if isinstance(line, FrameTooLarge):
            return []
        try:
            frame = json.loads(line)
        except ValueError:
            return []
        if not isinstance(frame, dict):
            return []
        method = frame.get("method")
        if method == "event":
            record = frame.get("params")
            return [Update("event", stream.name, record)] if self._fresh(stream, record) else []
        if method == "events_end":
            params = frame.get("params") or {}
            if params.get("reason") == "lagging":
                # Dropped for falling behind: subscribe again at once; what was already
                # given out is not given again.
                self._close(stream)
                self._follow(stream.name, stream.key)
                return [Update("lagged", stream.name, params)]
            return []
        request_id = frame.get("id")
        if request_id == EVENTS_ID:
            if "error" in frame:
                error = frame.get("error") or {}
                self._close(stream)
                self._refused[stream.name] = stream.key
                why = f"{error.get('message', '')} [{error.get('code', 'error')}]"
                return [Update("failed", stream.name, why)]
            result = frame.get("result") or {}
            stream.subscribed = True
            records = [r for r in result.get("events", []) if self._fresh(stream, r)]
            return [Update("added", stream.name, records)]
        if isinstance(request_id, int) and stream.pending_status:
            stream.pending_status -= 1
            if isinstance(frame.get("result"), dict):
                return [Update("status", stream.name, frame["result"])]
        return []

    def _fresh(self, stream: _Stream, record: Any) -> bool:
        """Whether ``record`` was not given out before (and is a record at all)."""
        if not isinstance(record, dict):
            return False
        seq = record.get("seq")
        if not isinstance(seq, int):
            return True
        key, last = self._seen.get(stream.name, (stream.key, 0))
        if key != stream.key:
            last = 0
        if seq <= last:
            return False
        self._seen[stream.name] = (stream.key, seq)
        return True

    def _ended(self, stream: _Stream, why: str) -> list[Update]:
        self._close(stream)
        return [Update("gone", stream.name, why)]

    def _close(self, stream: _Stream) -> None:
        if stream.sock is not None:
            self.selector.unregister(stream.sock)
            stream.sock.close()
            stream.sock = None
        self.streams.pop(stream.name, None)

    def close(self) -> None:
        """Close every connection and the selector."""
        for stream in list(self.streams.values()):
            self._close(stream)
        self.selector.close()
