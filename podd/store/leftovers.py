"""Removing what dead pods leave behind: turn process groups, directories, sockets."""

from __future__ import annotations

import os
import shutil

from podd.core.spec import PodInfo
from podd.proc.facts import is_alive, kill_group
from podd.store.journal import load_state, write_stopped
from podd.store.paths import is_locked
from podd.store.pod_files import read_info

__all__ = ["cleanup_pod_dir", "crash_report", "kill_leftover_turn"]


def kill_leftover_turn(directory: str) -> None:
    """Kill the process group of a turn the dead pod was running (``turn.pid``)."""
    try:
        with open(os.path.join(directory, "turn.pid")) as f:
            pid_text, started_text = f.read().split()
        pid, started = int(pid_text), float(started_text)
    except (OSError, ValueError):
        return
    if is_alive(pid, started):
        kill_group(pid)


def crash_report(directory: str) -> str | None:
    """The last line of the ``exit_reason`` a crashed pod left, if any."""
    try:
        with open(os.path.join(directory, "exit_reason")) as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return None
    return lines[-1] if lines else None


def cleanup_pod_dir(root: str, name: str, pid: int, reason: str | None = None) -> bool:
    """Remove a dead pod's directory (socket included) and kill its leftover turn,
    keeping its last state in ``<root>/.stopped.<name>.json`` for ``podd restart``.

    Only if the directory still belongs to ``pid`` (0: whoever it was): a new pod may
    have taken the name since. Returns whether anything was removed.
    """
    directory = os.path.join(root, name)
    if not os.path.isdir(directory) or is_locked(directory):
        return False  # gone already, or a live pod owns it (perhaps a new one)
    try:
        info: PodInfo | None = read_info(os.path.join(directory, "pod.json"))
    except FileNotFoundError:
        info = None
    except (OSError, ValueError):
        return False
    if pid and (info is None or info.pid != pid):
        return False
    kill_leftover_turn(directory)
    state = load_state(directory)
    if info is not None and state is not None:
        reason = reason or crash_report(directory) or "died"
        write_stopped(root, info, state, how="died", reason=reason)
    shutil.rmtree(directory, ignore_errors=True)
    return True
