"""Process facts through psutil: start times (to tell a reused pid), liveness, killing.

psutil is imported on the first call, not with this module: a pod asks for its first
process fact after it is ready, and importing psutil costs about 6 ms of its start-up.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["is_alive", "kill_group", "signal_name", "start_time"]


def start_time(pid: int) -> float:
    """The process's start time (seconds since the epoch); 0.0 if there is no such process."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return 0.0


def is_alive(pid: int, started: float) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` and not a zombie.

    A ``started`` of 0 skips the start-time comparison.
    """
    if pid <= 0:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if started and abs(proc.create_time() - started) > 0.01:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a whole process group; a group already gone is fine."""
    if pgid > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
