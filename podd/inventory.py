"""Every pod under a root, as the operator sees it, and the root-wide reclaim sweep.

A pod's state comes from its ``pod.json`` (pid and start time), its process and its
socket: ``idle``/``running``/``stopping`` as the pod answers ``ping``; ``unresponsive``
when the process is there but the socket stays silent for 500 ms; ``stale`` when the
process is gone (or its pid belongs to another process now).
"""

from __future__ import annotations

import os
import time
from typing import Any

import attrs
import orjson

from podd.client import call
from podd.errors import PodFailed, PodUnreachable
from podd.paths import is_valid_name
from podd.procfacts import is_alive
from podd.reclaim import cleanup_pod_dir
from podd.spec import PodInfo, read_info

__all__ = ["PodView", "scan", "sweep"]

PROBE_TIMEOUT = 0.5


@attrs.frozen
class PodView:
    name: str
    state: str
    pid: int | None
    parent: str | None
    socket: str
    incarnation: int
    started_at: float | None
    children: list[str]

    def to_dict(self) -> dict[str, Any]:
        age = time.time() - self.started_at if self.started_at else None
        return {**attrs.asdict(self), "age": age}


def _registry_children(directory: str, name: str) -> list[str]:
    try:
        with open(os.path.join(directory, "spawned_pods.json"), "rb") as f:
            pods = orjson.loads(f.read()).get("pods", [])
    except (OSError, ValueError, AttributeError):
        return []
    return sorted(p["pod_name"] for p in pods if p.get("parent_pod") == name)


def view(root: str, name: str) -> PodView | None:
    """The operator's view of one pod directory; None if it is not a pod's."""
    if not is_valid_name(name):
        return None
    directory = os.path.join(root, name)
    sock = os.path.join(directory, "sock")
    info: PodInfo | None
    try:
        info = read_info(os.path.join(directory, "pod.json"))
    except (OSError, ValueError):
        info = None
    if info is None:
        if not os.path.isdir(directory) or not os.path.lexists(sock):
            return None
        return PodView(name, "stale", None, None, sock, 0, None, [])
    parent = info.spec.parent
    if not is_alive(info.pid, info.start_time):
        state = "stale"
    else:
        try:
            pong = call(sock, "ping", timeout=PROBE_TIMEOUT)
            state = str(pong.get("state", "idle"))
            parent = pong.get("parent", parent)
        except (PodUnreachable, PodFailed):
            state = "unresponsive" if is_alive(info.pid, info.start_time) else "stale"
    return PodView(
        name=name,
        state=state,
        pid=info.pid,
        parent=parent,
        socket=sock,
        incarnation=info.spec.incarnation,
        started_at=info.start_time,
        children=_registry_children(directory, name),
    )


def scan(root: str) -> list[PodView]:
    """Every pod directory under ``root``, sorted by name."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    views = []
    for name in names:
        if os.path.isdir(os.path.join(root, name)):
            v = view(root, name)
            if v is not None:
                views.append(v)
    return views


def sweep(root: str) -> list[dict[str, Any]]:
    """Reclaim across ``root``: every live pod reclaims its dead registry entries, then
    the directories and sockets of pods whose process is gone are removed."""
    reclaimed: dict[str, dict[str, Any]] = {}
    views = scan(root)
    for v in views:
        if v.state in ("idle", "running", "stopping"):
            try:
                result = call(
                    v.socket, "reclaim_stale", {"probe_timeout": PROBE_TIMEOUT}, timeout=10.0
                )
            except (PodUnreachable, PodFailed):
                continue
            for item in result.get("reclaimed", []):
                reclaimed.setdefault(item["pod"], item)
    for v in views:
        if v.state == "stale" and v.name not in reclaimed:
            current = view(root, v.name)
            if current is None or current.state != "stale":
                continue
            if cleanup_pod_dir(root, v.name, v.pid or 0):
                reclaimed[v.name] = {"pod": v.name, "by": "podd", "reason": "process gone"}
    return list(reclaimed.values())
