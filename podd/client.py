"""Clients of a pod's socket: blocking (for the CLI) and trio (for pods).

The CLI is a short-lived process; it talks to pods with the standard ``socket`` module
so that a command does not pay trio's import time. Pods talk to each other with
``AsyncClient``. Both translate failures once, here: nothing listening becomes
``PodUnreachable``, an error reply becomes ``PodFailed``.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from typing import Any

from podd.errors import PodFailed, PodUnreachable
from podd.paths import short_socket_path
from protocol import FrameBuffer, FrameTooLarge, ProtocolError, decode_reply, encode_request

__all__ = ["call", "connect"]

_ids = itertools.count(1)


def connect(sock_path: str, timeout: float | None = 5.0) -> socket.socket:
    """Connect to a pod socket (any path length); ``PodUnreachable`` if nobody listens.

    A full listen backlog (a burst of connections) makes a Unix-socket connect fail at
    once with EAGAIN rather than wait: that is retried, with a short pause, until
    ``timeout``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            with short_socket_path(os.path.dirname(sock_path), os.path.basename(sock_path)) as p:
                sock.connect(p)
            return sock
        except BlockingIOError as exc:
            sock.close()
            if deadline is not None and time.monotonic() + pause > deadline:
                raise PodUnreachable(f"the pod at {sock_path} is overloaded: {exc}") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        except (OSError, TimeoutError) as exc:
            sock.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PodUnreachable(f"no pod answers at {sock_path}: {reason or 'timed out'}") from exc


def call(sock_path: str, method: str, params: Any = None, timeout: float | None = 10.0) -> Any:
    """Send one request and return its result.

    Raises ``PodUnreachable`` when the socket does not answer (within ``timeout``
    seconds, ``None`` for no limit) and ``PodFailed`` for an error reply.
    """
    request_id = next(_ids)
    sock = connect(sock_path, timeout=timeout if timeout is not None else 5.0)
    sock.settimeout(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    frames = FrameBuffer()
    try:
        sock.sendall(encode_request(method, params, request_id))
        while True:
            if deadline is not None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                raise PodUnreachable(f"the pod at {sock_path} closed the connection")
            for item in frames.feed(data):
                if isinstance(item, FrameTooLarge):
                    raise PodFailed(item)
                reply = decode_reply(item)
                if reply.id != request_id:
                    continue
                if reply.error is not None:
                    raise PodFailed(reply.error)
                return reply.result
    except TimeoutError as exc:
        raise PodUnreachable(f"the pod at {sock_path} did not answer {method} in time") from exc
    except ProtocolError as exc:
        raise PodFailed(exc) from exc
    except OSError as exc:
        raise PodUnreachable(f"lost the pod at {sock_path}: {exc.strerror or exc}") from exc
    finally:
        sock.close()
