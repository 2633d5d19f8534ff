"""Removing what dead pods leave behind: turn process groups, directories, sockets."""

from __future__ import annotations

import os
import shutil

from podd.procfacts import is_alive, kill_group
from podd.spec import read_info

__all__ = ["cleanup_pod_dir", "kill_leftover_turn"]


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


def cleanup_pod_dir(root: str, name: str, pid: int) -> bool:
    """Remove a dead pod's directory (socket included) and its leftover turn.

    Only if the directory still belongs to ``pid``: a new pod may have taken the name
    since. Returns whether anything was removed.
    """
    directory = os.path.join(root, name)
    try:
        owner = read_info(os.path.join(directory, "pod.json")).pid
    except FileNotFoundError:
        owner = pid
    except (OSError, ValueError):
        return False
    if owner != pid or not os.path.isdir(directory):
        return False
    kill_leftover_turn(directory)
    shutil.rmtree(directory, ignore_errors=True)
    return True
