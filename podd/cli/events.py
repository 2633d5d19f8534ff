"""``podd events [NAME] [--follow] [--json]``: the events applied under the root.

Each pod keeps its recent events and streams new ones to whoever follows it (the
``events`` method, ``docs/protocol.md``, Event feed). ``Follower`` follows every pod of
the root, or NAME and the pods below it, at once: one connection per pod, all in one
``selectors`` loop over non-blocking sockets. It finds pods started later by listing
the root's directories every ``RESCAN`` seconds and reading the ``pod.json`` of those
that are new or changed (a directory listing and a few file reads: no pod is asked
anything for it). ``podd top`` follows the pods with it too.

Records are kept apart per pod and per process of the pod: a record seen once (the
same sequence number of the same feed, after a reconnect, say) is never given twice.
The same event does appear twice when two pods record it (the child that emitted
it, the parent that applied it): those are two records, and both are shown.

Plain sockets and the ``json`` module only, like every other command (no trio,
no cattrs).
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import time

from podd.cli.context import EXIT_NOT_RUNNING, EXIT_OK, Context, Exit
from podd.core.names import check_name, is_valid_name
from podd.errors import PoddError
from protocol.errors import FrameTooLarge
from protocol.framing import FrameBuffer

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

__all__ = ["Follower", "Update", "cmd_events", "describe", "format_line"]

RESCAN = 0.5
"""Seconds between two listings of the root's directories."""

CONNECT_TIMEOUT = 2.0
FIRST_REPLIES = 2.0
"""Seconds to wait for the first pods' recent events before the first lines."""

SUMMARY_CUT = 300


# --- Rendering --------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int = SUMMARY_CUT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rules(scope: Any) -> str:
    if not isinstance(scope, list):
        return ""
    parts = []
    for rule in scope:
        if isinstance(rule, dict):
            flat = "" if rule.get("recursive", True) else " (not recursive)"
            parts.append(f"{rule.get('permission', 'read')} {rule.get('target', '?')}{flat}")
    return ", ".join(parts)


def describe(event: Any) -> str:
    """One readable line for an event's wire dict (as a notification reads)."""
    if not isinstance(event, dict):
        return _one_line(repr(event))
    kind = event.get("kind")
    name = event.get("pod_name", "?")
    turn = event.get("turn")
    if kind == "turn_started":
        return f"pod {name!r} started turn {turn}" if turn else f"pod {name!r} started a turn"
    if kind == "turn_ended":
        text = f"pod {name!r} finished turn {turn}" if turn else f"pod {name!r} finished a turn"
        summary = event.get("summary")
        if isinstance(summary, str) and summary.strip():
            text += ": " + _cut(_one_line(summary))
        cost = event.get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            text += f" (${cost:.4f})"
        denied = event.get("denied")
        if isinstance(denied, int) and not isinstance(denied, bool) and denied > 0:
            text += f" ({denied} tool calls denied)"
        return text
    if kind == "errored":
        return _cut(_one_line(f"pod {name!r} errored: {event.get('message', '')}"), 400)
    if kind == "shut_down":
        return _one_line(f"pod {name!r} shut down: {event.get('reason', 'stopped')}")
    if kind == "scope_sub_delegated":
        rules = _rules(event.get("scope"))
        text = f"pod {event.get('parent_pod', '?')!r} delegated scope to {event.get('sub_pod')!r}"
        return f"{text}: {rules}" if rules else text
    if kind == "adopted":
        previous = event.get("previous_parent", "?")
        return f"pod {name!r} adopted: its parent {previous!r} died and it now reports here"
    if kind == "restart_gave_up":
        return _one_line(f"pod {name!r} not restarted: {event.get('message', '')}")
    if kind == "task_skipped":
        return _one_line(f"pod {name!r} skipped its task: {event.get('reason', '')}")
    rest = {k: v for k, v in event.items() if k not in ("kind", "incarnation", "seq")}
    return _cut(_one_line(f"event {kind!r}: {json.dumps(rest, ensure_ascii=False)}"), 400)


def clock(at: Any) -> str:
    """``HH:MM:SS.mmm`` (local time) of a wall-clock time."""
    if not isinstance(at, int | float):
        return "--:--:--.---"
    whole = time.localtime(at)
    return time.strftime("%H:%M:%S", whole) + f".{int(at * 1000) % 1000:03d}"


def format_line(record: dict[str, Any], pod_width: int = 8) -> str:
    """A record as one human line: time, pod, kind, what happened."""
    event = record.get("event")
    kind = event.get("kind", "?") if isinstance(event, dict) else "?"
    pod = str(record.get("pod", "?"))
    return f"{clock(record.get('at'))} {pod:<{pod_width}}  {kind:<12}  {describe(event)}"


# --- Following pods ---------------------------------------------------------------


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


EVENTS_ID = 1


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
        for stream in list(self.streams.values()):
            self._close(stream)
        self.selector.close()


# --- The command ------------------------------------------------------------------


def _check_target(ctx: Context, name: str) -> None:
    """Exit 3 unless pod ``name`` exists under the root and answers."""
    from podd.client.sync import call

    if not os.path.isdir(ctx.pod_dir(name)):
        raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {ctx.root}")
    try:
        call(ctx.socket(name), "ping", timeout=CONNECT_TIMEOUT)
    except PoddError as exc:
        raise Exit(EXIT_NOT_RUNNING, f"pod {name!r} is not running ({exc})") from exc


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.width = 8

    def print(self, records: list[dict[str, Any]]) -> None:
        out = sys.stdout
        for record in records:
            if self.as_json:
                document = {
                    "at": record.get("at"),
                    "pod": record.get("pod"),
                    "event": record.get("event"),
                }
                out.write(json.dumps(document, ensure_ascii=False) + "\n")
            else:
                self.width = max(self.width, len(str(record.get("pod", ""))))
                out.write(format_line(record, self.width) + "\n")
        out.flush()


def _by_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def at(record: dict[str, Any]) -> float:
        value = record.get("at")
        return float(value) if isinstance(value, int | float) else 0.0

    return sorted(records, key=at)


def cmd_events(ctx: Context) -> int:
    name = ctx.args.name
    if name is not None:
        check_name(name)
        _check_target(ctx, name)
    _end_on_signals()
    follower = Follower(ctx.root, name)
    printer = _Printer(ctx.json)
    try:
        if ctx.args.follow:
            _follow(follower, printer, name)
        else:
            _recent(follower, printer)
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
    return EXIT_OK


def _end_on_signals() -> None:
    """SIGINT and SIGTERM end ``podd events`` cleanly (exit 0), even when it was started
    with SIGINT ignored, as a background job of a script is."""
    import signal

    def end(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, end)
    signal.signal(signal.SIGTERM, end)


def _recent(follower: Follower, printer: _Printer) -> None:
    """Every followed pod's recent records, merged by time."""
    records: list[dict[str, Any]] = []
    follower.scan()
    follower.rescan = False  # one listing: the pods there now
    waiting = set(follower.streams)
    deadline = time.monotonic() + CONNECT_TIMEOUT + FIRST_REPLIES
    while waiting and time.monotonic() < deadline:
        for update in follower.poll(0.1):
            if update.what == "added":
                records.extend(update.data)
            if update.what in ("added", "gone", "failed"):
                waiting.discard(update.pod)
            if update.what == "failed":
                print(f"podd: cannot follow pod {update.pod!r}: {update.data}", file=sys.stderr)
    printer.print(_by_time([r for r in records if r.get("event") is not None]))


def _follow(follower: Follower, printer: _Printer, name: str | None) -> None:
    """Print the recent records, then every record as it comes, until interrupted or
    until pod ``name`` is gone."""
    follower.scan()
    if name is not None and name not in follower.streams:
        raise Exit(EXIT_NOT_RUNNING, f"pod {name!r} is not running")
    first = set(follower.streams)
    held: list[dict[str, Any]] = []
    deadline = time.monotonic() + CONNECT_TIMEOUT + FIRST_REPLIES
    while True:
        updates = follower.poll(0.1 if first else RESCAN)
        batch: list[dict[str, Any]] = []
        for update in updates:
            if update.what == "added":
                batch.extend(update.data)
            elif update.what == "event":
                batch.append(update.data)
            elif update.what == "lagged":
                missed = update.data.get("missed", 0)
                print(
                    f"podd: pod {update.pod!r} dropped this follower, {missed} events were"
                    " lost; following it again",
                    file=sys.stderr,
                )
            elif update.what == "failed":
                print(f"podd: cannot follow pod {update.pod!r}: {update.data}", file=sys.stderr)
            if update.what in ("added", "gone", "failed"):
                first.discard(update.pod)
        if first and time.monotonic() < deadline:
            # The pods there at the start: their recent records are merged by time.
            held.extend(batch)
            continue
        if held:
            batch, held, first = held + batch, [], set()
        printer.print(_by_time(batch))
        if name is not None and any(u.what == "gone" and u.pod == name for u in updates):
            return
