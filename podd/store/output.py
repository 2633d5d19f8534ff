"""Reading a pod's output log: ``output.log.1`` (the rotated part) then ``output.log``."""

from __future__ import annotations

import contextlib
import os
import time

from podd.proc.procfs import is_alive
from podd.store.records import read_pod_record

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["show"]

POLL = 0.1


def _copy(fd: int, out: BinaryIO) -> int:
    total = 0
    while chunk := os.read(fd, 65536):
        out.write(chunk)
        total += len(chunk)
    out.flush()
    return total


def _pod_alive(pod_json: str) -> bool:
    try:
        info = read_pod_record(pod_json)
    except (OSError, ValueError):
        return False
    return is_alive(info.pid, info.start_time)


def show(current: str, pod_json: str, *, follow: bool, out: BinaryIO) -> None:
    """Write the output log ``current`` to ``out``; with ``follow``, keep going until the
    pod whose record is ``pod_json`` is gone."""
    with contextlib.suppress(FileNotFoundError), open(current + ".1", "rb") as old:
        _copy(old.fileno(), out)
    fd = -1
    try:
        while True:
            if fd < 0:
                try:
                    fd = os.open(current, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    fd = -1
            if fd >= 0:
                _copy(fd, out)
            if not follow:
                return
            if fd >= 0:
                try:
                    rotated = os.stat(current).st_ino != os.fstat(fd).st_ino
                except FileNotFoundError:
                    rotated = True
                if rotated:
                    _copy(fd, out)
                    os.close(fd)
                    fd = -1
                    continue
            if not _pod_alive(pod_json):
                if fd >= 0:
                    _copy(fd, out)
                return
            time.sleep(POLL)
    finally:
        if fd >= 0:
            os.close(fd)
