"""Newline-delimited framing: bytes in, complete lines out, bounded in size.

``FrameBuffer`` never holds more than ``max_frame`` bytes of an unfinished line. A line
that passes the limit is reported in place, as a ``FrameTooLarge`` value among the
lines, and its bytes are discarded up to the next newline, so a caller may answer the
error and go on reading, or close the connection.
"""

from __future__ import annotations

from protocol.errors import FrameTooLarge

__all__ = ["MAX_FRAME", "FrameBuffer", "encode_frame"]

MAX_FRAME = 1024 * 1024
"""The largest frame, newline excluded: 1 MiB."""


def encode_frame(payload: bytes) -> bytes:
    """Return ``payload`` as one frame; it must not contain a newline."""
    return payload + b"\n"


class FrameBuffer:
    """Splits a byte stream into lines (without the trailing newline)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._pending = bytearray()
        self._discarding = False

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished line are held."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes | FrameTooLarge]:
        """Add ``data``; return what it completes, oldest first.

        Each item is a line, or a ``FrameTooLarge`` standing where an oversized line
        was. An oversized line is reported once, as soon as it passes the limit.
        """
        out: list[bytes | FrameTooLarge] = []
        if not self._pending and not self._discarding:
            # The common case, a read of whole lines (and maybe the start of one), none
            # too large: split in one call rather than line by line.
            lines = data.split(b"\n")
            rest = lines.pop()
            if len(rest) <= self._max_frame and max(map(len, lines), default=0) <= self._max_frame:
                self._pending += rest
                out.extend(lines)
                return out
        start = 0
        size = len(data)
        while start <= size:
            end = data.find(b"\n", start)
            chunk_end = size if end < 0 else end
            if end >= 0 and not self._pending and not self._discarding:
                # Fast path: a whole line inside this read.
                if end - start <= self._max_frame:
                    out.append(data[start:end])
                else:
                    out.append(FrameTooLarge(f"frame exceeds the limit of {self._max_frame} bytes"))
                start = end + 1
                continue
            if not self._discarding:
                self._pending += data[start:chunk_end]
                if len(self._pending) > self._max_frame:
                    out.append(FrameTooLarge(f"frame exceeds the limit of {self._max_frame} bytes"))
                    self._pending.clear()
                    self._discarding = True
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            else:
                out.append(bytes(self._pending))
                self._pending.clear()
            start = end + 1
        return out
