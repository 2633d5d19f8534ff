"""A pod's files as a command-line call reads them, with the standard ``json`` module.

``<root>/NAME/pod.json`` (who the pod is: pid, start time, spec), its registry
``<root>/NAME/spawned_pods.json``, and ``<root>/.stopped.NAME.json`` (what a stopped or
reclaimed pod left). The pods write these files with their typed structures
(``podd.core.spec.PodInfo``, ``podd.core.registry.ChildRecord``,
``podd.store.journal``) and read them back with cattrs; ``podd ls`` or ``podd stop``
needs a few fields, and importing cattrs would cost it more than all the rest of its
work. The fields read here are checked for their types, so a torn or foreign file is
refused as the typed readers refuse it.
"""

from __future__ import annotations

import json
import os

from podd.proc.procfs import is_alive

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PodRecord", "live_record", "read_pod_record", "read_registry", "read_stopped_record"]


class PodRecord:
    """What ``pod.json`` says of a pod: enough to find its process and its parent."""

    __slots__ = ("incarnation", "name", "parent", "pid", "start_time")

    def __init__(
        self, name: str, pid: int, start_time: float, parent: str | None, incarnation: int
    ) -> None:
        self.name = name
        self.pid = pid
        self.start_time = start_time
        self.parent = parent
        self.incarnation = incarnation

    def __repr__(self) -> str:
        return (
            f"PodRecord(name={self.name!r}, pid={self.pid!r}, start_time={self.start_time!r},"
            f" parent={self.parent!r}, incarnation={self.incarnation!r})"
        )

    @classmethod
    def from_dict(cls, data: Any) -> PodRecord:
        """The record in a ``pod.json`` document; ``ValueError`` if it is not one."""
        spec = data.get("spec") if isinstance(data, dict) else None
        if not isinstance(spec, dict):
            raise ValueError("not a pod record: no spec")
        pid, start_time = data.get("pid"), data.get("start_time")
        name, parent = spec.get("name"), spec.get("parent")
        incarnation = spec.get("incarnation", 1)
        if not _is_int(pid) or not (_is_int(start_time) or type(start_time) is float):
            raise ValueError("not a pod record: pid and start_time must be numbers")
        if not isinstance(name, str) or not (parent is None or isinstance(parent, str)):
            raise ValueError("not a pod record: bad spec.name or spec.parent")
        if not _is_int(incarnation):
            raise ValueError("not a pod record: spec.incarnation must be an integer")
        return cls(name, pid, float(start_time), parent, incarnation)


def _is_int(value: object) -> bool:
    return type(value) is int


def _load(path: str) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


def read_pod_record(path: str) -> PodRecord:
    """Read a ``pod.json``; ``OSError`` or ``ValueError`` if missing or unreadable."""
    data = _load(path)
    try:
        return PodRecord.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def live_record(root: str, name: str) -> PodRecord | None:
    """The ``pod.json`` of pod ``name`` under ``root`` while its process lives; None if
    there is none, it is unreadable, or its process is gone."""
    try:
        record = read_pod_record(os.path.join(root, name, "pod.json"))
    except (OSError, ValueError):
        return None
    return record if is_alive(record.pid, record.start_time) else None


def read_stopped_record(root: str, name: str) -> PodRecord | None:
    """The ``pod.json`` kept in ``<root>/.stopped.NAME.json``; None if there is none
    (or it is unreadable)."""
    try:
        document = _load(os.path.join(root, f".stopped.{name}.json"))
        return PodRecord.from_dict(document.get("info"))
    except (OSError, ValueError, AttributeError):
        return None


def read_registry(directory: str) -> list[dict[str, Any]]:
    """The entries of the registry in pod directory ``directory`` (each with at least
    ``pod_name``); empty if there is none or it is unreadable."""
    try:
        pods = _load(os.path.join(directory, "spawned_pods.json")).get("pods", [])
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(pods, list):
        return []
    return [p for p in pods if isinstance(p, dict) and isinstance(p.get("pod_name"), str)]
