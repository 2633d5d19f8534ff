"""``podd restart``: bring a stopped or dead pod back under its name.

The pod's last state comes from its journal: from its directory if it died and was
not reclaimed yet, else from ``<root>/.stopped.<name>.json`` (written when it stopped
or was reclaimed). A root pod is started again detached, as by ``spawn``; a child is
restarted by its parent, so that it is the parent's OS child again and the parent
checks its scope again. Either way: a new incarnation, the same parent, scope,
registry and pending notifications.

This runs in the command line. Which case it is comes from ``podd.store.records``; only a
root pod, about to be started as a new interpreter, is read with the typed spec.
"""

from __future__ import annotations

import os

from podd.client.sync import call
from podd.errors import PodFailed, PodUnreachable
from podd.proc.procfs import is_alive
from podd.store.records import PodRecord, read_pod_record, read_stopped_record

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from podd.core.spec import PodInfo

__all__ = ["RestartError", "restart"]


class RestartError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _last_record(root: str, name: str) -> PodRecord | None:
    try:
        record = read_pod_record(os.path.join(root, name, "pod.json"))
    except (OSError, ValueError):
        return read_stopped_record(root, name)
    if is_alive(record.pid, record.start_time):
        raise RestartError(1, f"pod {name!r} is running (pid {record.pid}); stop it first")
    return record


def _last_info(root: str, name: str) -> PodInfo | None:
    from podd.store.journal import read_stopped
    from podd.store.pod_files import read_info

    try:
        return read_info(os.path.join(root, name, "pod.json"))
    except (OSError, ValueError):
        stopped = read_stopped(root, name)
        return stopped[0] if stopped is not None else None


def restart(root: str, name: str) -> dict[str, Any]:
    record = _last_record(root, name)
    if record is None:
        raise RestartError(3, f"no stopped or dead pod named {name!r} under {root}")
    if record.parent is not None:
        parent_socket = os.path.join(root, record.parent, "sock")
        try:
            result = call(parent_socket, "restart_child", {"name": name}, timeout=60.0)
        except PodUnreachable as exc:
            raise RestartError(
                1,
                f"its parent {record.parent!r} is not running, so {name!r} cannot come back"
                " under it",
            ) from exc
        except PodFailed as exc:
            raise RestartError(1, f"{exc.error.message} [{exc.code}]") from exc
        return dict(result)
    return _restart_root(root, name)


def _restart_root(root: str, name: str) -> dict[str, Any]:
    import attrs

    from podd.runtime.launch import run_pod
    from podd.spawn.spawner import SpawnError, spawn_detached

    info = _last_info(root, name)
    if info is None:
        raise RestartError(3, f"no stopped or dead pod named {name!r} under {root}")
    spec = info.spec
    new_spec = attrs.evolve(spec, incarnation=spec.incarnation + 1, restore=True)
    try:
        ready = spawn_detached(new_spec, run_pod=run_pod)
    except SpawnError as exc:
        raise RestartError(1, f"cannot restart {name!r}: {exc.message} [{exc.code}]") from exc
    return {
        "name": name,
        "pid": ready.pid,
        "socket": ready.socket,
        "incarnation": new_spec.incarnation,
    }
