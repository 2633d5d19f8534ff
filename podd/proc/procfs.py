"""Process facts read straight from ``/proc``: what a command-line call needs, no psutil.

The pods record their start time as psutil's ``Process.create_time()`` (seconds since
the epoch). ``start_time`` here computes the same value the way psutil does on Linux:
the ``starttime`` field of ``/proc/PID/stat`` (clock ticks since boot) divided by
``SC_CLK_TCK``, plus the boot time (``btime`` in ``/proc/stat``). ``is_alive`` has the
meaning of ``podd.proc.facts.is_alive``, which the pods use. Importing psutil costs a
short-lived command more than everything else it does; this module costs nothing.
"""

from __future__ import annotations

import os

__all__ = ["ProcStat", "is_alive", "parse_stat", "read_stat"]

DEAD_STATES = frozenset({"Z", "X"})
"""A zombie (exited, not yet reaped) or a task being torn down: not alive."""

_boot_time: float | None = None


class ProcStat:
    """What ``/proc/PID/stat`` says of a process: its state letter and start time."""

    __slots__ = ("start_time", "state")

    def __init__(self, state: str, start_time: float) -> None:
        self.state = state
        self.start_time = start_time

    def __repr__(self) -> str:
        return f"ProcStat(state={self.state!r}, start_time={self.start_time!r})"


def boot_time() -> float:
    """The boot time, seconds since the epoch (``btime`` of ``/proc/stat``)."""
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime"):
                    _boot_time = float(line.split()[1])
                    break
            else:
                raise OSError("no btime line in /proc/stat")
    return _boot_time


def parse_stat(data: bytes) -> tuple[str, int]:
    """The state letter and ``starttime`` (clock ticks after boot) of a stat line.

    Field 2 is the command name in parentheses, which may itself hold spaces and
    parentheses; the fields that follow start after the last ``)``. Raises
    ``ValueError`` for a line that is not one.
    """
    close = data.rfind(b")")
    if close < 0:
        raise ValueError("not a /proc/PID/stat line: no ')'")
    fields = data[close + 1 :].split()
    # fields[0] is field 3 of proc(5) (the state), fields[19] field 22 (starttime).
    if len(fields) < 20:
        raise ValueError("not a /proc/PID/stat line: too few fields")
    return fields[0].decode("ascii", "replace"), int(fields[19])


def read_stat(pid: int) -> ProcStat | None:
    """The state and start time of process ``pid``; None if there is no such process
    (or its ``/proc`` entry cannot be read)."""
    if pid <= 0:
        return None
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        state, ticks = parse_stat(data)
        return ProcStat(state, float(ticks) / os.sysconf("SC_CLK_TCK") + boot_time())
    except (OSError, ValueError):
        return None


def is_alive(pid: int, started: float) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` and not a zombie.

    A ``started`` of 0 skips the start-time comparison; a difference of up to 0.01 s
    (a clock tick) is the same process.
    """
    facts = read_stat(pid)
    if facts is None:
        return False
    if started and abs(facts.start_time - started) > 0.01:
        return False
    return facts.state not in DEAD_STATES
