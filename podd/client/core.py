"""The clients' logic without I/O: one request, one reply, failures translated once.

Two faces drive it: ``podd.client.sync`` over blocking sockets (the command line) and
``podd.client.asynchronous`` over trio streams (pods talking to pods). Each face only moves
bytes: it connects (``Backoff`` paces the retries of a full listen backlog), sends
``Exchange.request`` and hands what it reads to ``Exchange.feed`` until that says the
reply has come. Everything else is here:

- the request frame: ``{"method", "params", "id"}``, one line of JSON (params given as
  a dict are sent as they are; the pods' wire types are unstructured by the codec);
- the reply: the first frame whose ``id`` is the request's (others are skipped);
- the failures: an error frame raises ``PodFailed`` wrapping the ``protocol.errors``
  class of its code; no answer (nothing listening, the connection lost or closed, the
  time up) is ``PodUnreachable``.

The frames are plain JSON, written and read with the standard ``json`` module, so that
a command-line call imports neither cattrs nor orjson.
"""

from __future__ import annotations

import itertools
import json

from podd.errors import PodFailed, PodUnreachable
from protocol.errors import FrameTooLarge, InvalidJson, error_from_wire
from protocol.framing import FrameBuffer

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Backoff", "Exchange", "encode_request", "overloaded", "unreachable", "wire_params"]

_ids = itertools.count(1)


def wire_params(method: str, params: Any) -> dict[str, Any]:
    """``params`` as the JSON object a request carries: a dict as it is, None as ``{}``,
    a wire type (an attrs instance, as the pods pass) unstructured by the codec."""
    if params is None:
        return {}
    if isinstance(params, dict):
        return params
    # Only the pods pass wire types, and they have the codec loaded already.
    from protocol.codec import converter, event_to_dict

    if method == "pod_event":
        return event_to_dict(params)
    body: dict[str, Any] = converter.unstructure(params)
    return body


def encode_request(method: str, params: Any = None, request_id: int | str | None = None) -> bytes:
    """One request frame, newline included; without ``request_id`` it is a notification."""
    frame: dict[str, Any] = {"method": method, "params": wire_params(method, params)}
    if request_id is not None:
        frame["id"] = request_id
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def unreachable(sock_path: str, exc: BaseException) -> PodUnreachable:
    """The error for a connect that failed with ``exc``: nobody listens there."""
    return PodUnreachable(f"no pod answers at {sock_path}: {_reason(exc) or 'timed out'}")


def overloaded(sock_path: str, exc: BaseException) -> PodUnreachable:
    """The error for a listen backlog that stayed full until the time was up."""
    return PodUnreachable(f"the pod at {sock_path} is overloaded: {exc}")


class Backoff:
    """The pauses between connect attempts while a pod's listen backlog is full.

    A full backlog (a burst of connections) makes a Unix-socket connect fail at once
    with EAGAIN rather than wait; the attempt is repeated after 1 ms, then twice as
    long each time, at most 50 ms.
    """

    FIRST = 0.001
    LONGEST = 0.05

    def __init__(self) -> None:
        self._pause = self.FIRST

    def next(self) -> float:
        """The pause before the next attempt, in seconds."""
        pause = self._pause
        self._pause = min(pause * 2, self.LONGEST)
        return pause


class Exchange:
    """One request to the pod at ``sock_path`` and the wait for its reply.

    ``request`` is the frame to send. ``feed`` takes what was read from the socket and
    returns True once the reply has come; ``result`` then holds its result.
    """

    def __init__(
        self, sock_path: str, method: str, params: Any = None, request_id: int | None = None
    ) -> None:
        self.sock_path = sock_path
        self.method = method
        self.id = next(_ids) if request_id is None else request_id
        self.request = encode_request(method, params, self.id)
        self.result: Any = None
        self._frames = FrameBuffer()

    def feed(self, data: bytes) -> bool:
        """Take bytes read from the socket; True once the reply has come.

        Empty ``data`` (the end of the stream) raises ``PodUnreachable``; an error
        reply, or a frame that is not a reply, raises ``PodFailed``.
        """
        if not data:
            raise PodUnreachable(f"the pod at {self.sock_path} closed the connection")
        for line in self._frames.feed(data):
            if isinstance(line, FrameTooLarge):
                raise PodFailed(line)
            if self._take(line):
                return True
        return False

    def _take(self, line: bytes) -> bool:
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError) as exc:
            # ValueError: not JSON, or not UTF-8 (UnicodeDecodeError is one).
            raise PodFailed(InvalidJson(f"not valid UTF-8 JSON: {exc}")) from exc
        if not isinstance(reply, dict):
            raise PodFailed(InvalidJson("a reply must be a JSON object"))
        if reply.get("id") != self.id:
            return False
        error = reply.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise PodFailed(InvalidJson("'error' must be an object"))
            code = str(error.get("code", "error"))
            raise PodFailed(error_from_wire(code, str(error.get("message", ""))))
        self.result = reply.get("result")
        return True

    def lost(self, exc: BaseException) -> PodUnreachable:
        """The error for a connection that broke (``exc``) before the reply came."""
        return PodUnreachable(f"lost the pod at {self.sock_path}: {_reason(exc)}")

    def timed_out(self, within: float | None = None) -> PodUnreachable:
        """The error for a reply that did not come within ``within`` seconds."""
        when = "in time" if within is None else f"within {within:g} s"
        return PodUnreachable(f"the pod at {self.sock_path} did not answer {self.method} {when}")
