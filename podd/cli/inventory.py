"""Every pod under a root, as the operator sees it, and the root-wide reclaim sweep.

A pod's state comes from its ``pod.json`` (pid and start time), its process and its
socket: ``idle``/``running``/``stopping`` as the pod answers ``ping``; ``unresponsive``
when the process is there but the socket stays silent for 500 ms; ``stale`` when the
process is gone (or its pid belongs to another process now). The live pods are probed
all at once, each as soon as its ``pod.json`` says it lives, and their registries are
read while they answer: a listing costs about one round trip however many pods there
are.

This runs in the command line: files are read with ``podd.store.records``, processes with
``podd.proc.procfs``, pods asked with the blocking client.
"""

from __future__ import annotations

import os
import time

from podd.client.sync import Batch, call
from podd.core.names import is_valid_name
from podd.core.probing import PROBE_TIMEOUT, verdict
from podd.errors import PoddError, PodFailed, PodUnreachable
from podd.proc.procfs import is_alive
from podd.store.atomic import remove_abandoned
from podd.store.records import PodRecord, read_pod_record, read_registry

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PodView", "scan", "sweep"]


class PodView:
    """One pod as ``podd ls`` shows it."""

    __slots__ = (
        "children",
        "cost_usd",
        "incarnation",
        "name",
        "parent",
        "pid",
        "socket",
        "started_at",
        "state",
        "waiting_on",
    )

    def __init__(
        self,
        name: str,
        state: str,
        pid: int | None,
        parent: str | None,
        socket: str,
        incarnation: int,
        started_at: float | None,
        children: list[str],
        cost_usd: float | None = None,
        waiting_on: str | None = None,
    ) -> None:
        self.name = name
        self.state = state
        self.pid = pid
        self.parent = parent
        self.socket = socket
        self.incarnation = incarnation
        self.started_at = started_at
        self.children = children
        self.cost_usd = cost_usd
        self.waiting_on = waiting_on

    def __repr__(self) -> str:
        return f"PodView({self.name!r}, {self.state!r}, pid={self.pid!r})"

    def to_dict(self) -> dict[str, Any]:
        age = time.time() - self.started_at if self.started_at else None
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "parent": self.parent,
            "socket": self.socket,
            "incarnation": self.incarnation,
            "started_at": self.started_at,
            "children": list(self.children),
            "age": age,
            "cost_usd": self.cost_usd,
            "waiting_on": self.waiting_on,
        }


def _registry_children(directory: str, name: str) -> list[str]:
    return sorted(p["pod_name"] for p in read_registry(directory) if p.get("parent_pod") == name)


def _read(root: str, name: str) -> PodRecord | PodView | None:
    """The pod's record if its process lives (it is to be probed); else its view as a
    stale pod, or None if the directory is not a pod's."""
    if not is_valid_name(name):
        return None
    directory = os.path.join(root, name)
    sock = os.path.join(directory, "sock")
    try:
        record = read_pod_record(os.path.join(directory, "pod.json"))
    except (OSError, ValueError):
        if not os.path.isdir(directory) or not os.path.lexists(sock):
            return None
        return PodView(name, "stale", None, None, sock, 0, None, [])
    if not is_alive(record.pid, record.start_time):
        return _view(root, name, record, "stale", record.parent)
    return record


def _view(
    root: str,
    name: str,
    record: PodRecord,
    state: str,
    parent: str | None,
    children: list[str] | None = None,
) -> PodView:
    directory = os.path.join(root, name)
    return PodView(
        name=name,
        state=state,
        pid=record.pid,
        parent=parent,
        socket=os.path.join(directory, "sock"),
        incarnation=record.incarnation,
        started_at=record.start_time,
        children=_registry_children(directory, name) if children is None else children,
    )


def _probed(
    root: str, name: str, record: PodRecord, pong: Any, children: list[str] | None = None
) -> PodView:
    """The view of a pod whose process lived, from its answer to ``ping`` (or the
    error instead of one)."""
    liveness = verdict(
        not isinstance(pong, PoddError), lambda: is_alive(record.pid, record.start_time)
    )
    if liveness != "alive":
        state = "stale" if liveness == "dead" else "unresponsive"
        return _view(root, name, record, state, record.parent, children)
    state, parent = str(pong.get("state", "idle")), pong.get("parent", record.parent)
    view = _view(root, name, record, state, parent, children)
    cost = pong.get("cost_usd")
    view.cost_usd = float(cost) if isinstance(cost, (int, float)) else None
    waiting = pong.get("waiting_on")
    view.waiting_on = str(waiting) if waiting else None
    return view


def _views(root: str, names: list[str]) -> list[PodView]:
    """The views of the pods ``names`` (those that are pods), in that order.

    Each live pod is pinged as soon as its record is read, all of them at once; while
    they answer, their registries are read.
    """
    probes = Batch("ping", timeout=PROBE_TIMEOUT)
    found: dict[str, PodRecord | PodView | None] = {}
    asked: dict[str, int] = {}
    for name in names:
        found[name] = item = _read(root, name)
        if isinstance(item, PodRecord):
            asked[name] = probes.add(os.path.join(root, name, "sock"))
    children = {name: _registry_children(os.path.join(root, name), name) for name in asked}
    pongs = probes.answers()
    result = []
    for name, item in found.items():
        if isinstance(item, PodRecord):
            result.append(_probed(root, name, item, pongs[asked[name]], children[name]))
        elif item is not None:
            result.append(item)
    return result


def view(root: str, name: str) -> PodView | None:
    """The operator's view of one pod directory; None if it is not a pod's."""
    found = _views(root, [name])
    return found[0] if found else None


def scan(root: str) -> list[PodView]:
    """Every pod directory under ``root``, sorted by name."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return _views(root, [name for name in names if os.path.isdir(os.path.join(root, name))])


def sweep(root: str) -> list[dict[str, Any]]:
    """Reclaim across ``root``: every live pod reclaims its dead registry entries, then
    the directories and sockets of pods whose process is gone are removed."""
    reclaimed: dict[str, dict[str, Any]] = {}
    found = scan(root)
    for v in found:
        if v.state in ("idle", "running", "stopping"):
            try:
                result = call(
                    v.socket, "reclaim_stale", {"probe_timeout": PROBE_TIMEOUT}, timeout=10.0
                )
            except (PodUnreachable, PodFailed):
                continue
            for item in result.get("reclaimed", []):
                reclaimed.setdefault(item["pod"], item)
    for v in found:
        if v.state == "stale" and v.name not in reclaimed:
            current = view(root, v.name)
            if current is None or current.state != "stale":
                continue
            # Only here, with a dead pod's state to keep for ``podd restart``, does the
            # sweep need the pods' typed journal.
            from podd.store.leftovers import cleanup_pod_dir

            if cleanup_pod_dir(root, v.name, v.pid or 0):
                reclaimed[v.name] = {"pod": v.name, "by": "podd", "reason": "process gone"}
    # A pod killed while it wrote its stopped record leaves the temp file of that write.
    remove_abandoned(root)
    return list(reclaimed.values())
