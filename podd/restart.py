"""``podd restart``: bring a stopped or dead pod back under its name.

The pod's last state comes from its journal: from its directory if it died and was
not reclaimed yet, else from ``<root>/.stopped.<name>.json`` (written when it stopped
or was reclaimed). A root pod is started again detached, as by ``spawn``; a child is
restarted by its parent, so that it is the parent's OS child again and the parent
checks its scope again. Either way: a new incarnation, the same parent, scope,
registry and pending notifications.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from podd.client import call
from podd.errors import PodFailed, PodUnreachable
from podd.journal import read_stopped
from podd.procfacts import is_alive
from podd.spawner import SpawnError, spawn_detached
from podd.spec import PodInfo, read_info
from protocol import RestartChildParams

__all__ = ["RestartError", "restart"]


class RestartError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _last_info(root: str, name: str) -> PodInfo | None:
    try:
        info = read_info(os.path.join(root, name, "pod.json"))
    except (OSError, ValueError):
        stopped = read_stopped(root, name)
        return stopped[0] if stopped is not None else None
    if is_alive(info.pid, info.start_time):
        raise RestartError(1, f"pod {name!r} is running (pid {info.pid}); stop it first")
    return info


def restart(root: str, name: str) -> dict[str, Any]:
    info = _last_info(root, name)
    if info is None:
        raise RestartError(3, f"no stopped or dead pod named {name!r} under {root}")
    spec = info.spec
    if spec.parent is not None:
        parent_socket = os.path.join(root, spec.parent, "sock")
        try:
            result = call(parent_socket, "restart_child", RestartChildParams(name), timeout=60.0)
        except PodUnreachable as exc:
            raise RestartError(
                1,
                f"its parent {spec.parent!r} is not running, so {name!r} cannot come back under it",
            ) from exc
        except PodFailed as exc:
            raise RestartError(1, f"{exc.error.message} [{exc.code}]") from exc
        return dict(result)
    new_spec = attrs.evolve(spec, incarnation=spec.incarnation + 1, restore=True)
    try:
        ready = spawn_detached(new_spec)
    except SpawnError as exc:
        raise RestartError(1, f"cannot restart {name!r}: {exc.message} [{exc.code}]") from exc
    return {
        "name": name,
        "pid": ready.pid,
        "socket": ready.socket,
        "incarnation": new_spec.incarnation,
    }
