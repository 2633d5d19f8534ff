"""What a pod is started with (``PodSpec``) and what it records about itself (``PodInfo``).

The spawner hands the spec to the new process as one JSON argument. The pod writes
``pod.json`` into its directory once its socket listens: the spec plus its pid, start
time and incarnation. ``podd ls``, ``reclaim`` and ``restart`` read that file.
"""

from __future__ import annotations

import os

import attrs
import orjson

from podd.atomic import write_atomic
from protocol import ScopeRule, converter
from protocol.messages import RestartPolicy

__all__ = ["Ancestor", "PodInfo", "PodSpec", "read_info", "write_info"]


@attrs.frozen
class Ancestor:
    """A pod above this one: where to turn if every pod below it has died."""

    name: str
    socket: str


@attrs.frozen
class PodSpec:
    name: str
    root: str
    cwd: str
    scope: list[ScopeRule]
    agent: str | None = None
    task: str | None = None
    turn_timeout: float = 1800.0
    wake_on_notify: bool = False
    restart: RestartPolicy = "never"
    parent: str | None = None
    parent_socket: str | None = None
    parent_pid: int = 0
    ancestors: list[Ancestor] = attrs.field(factory=list)
    """Nearest first, the parent excluded."""
    incarnation: int = 1
    reclaim_interval: float = 5.0
    restore: bool = False
    """Start from the state the previous incarnation left (``podd restart``)."""
    nested_sandbox: bool = False
    """Confine turns by mounts alone, so that a sandbox the agent starts can run
    (``podd spawn --nested-sandbox``; see ``podd.sandbox``)."""

    @property
    def directory(self) -> str:
        return os.path.join(self.root, self.name)

    @property
    def socket(self) -> str:
        return os.path.join(self.root, self.name, "sock")


@attrs.frozen
class PodInfo:
    spec: PodSpec
    pid: int
    start_time: float


def write_info(path: str, info: PodInfo) -> None:
    """Write ``info`` atomically (temp file, fsync, rename)."""
    write_atomic(path, orjson.dumps(converter.unstructure(info), option=orjson.OPT_INDENT_2))


def read_info(path: str) -> PodInfo:
    """Read a ``pod.json``; raises ``OSError`` or ``ValueError`` if missing or unreadable."""
    with open(path, "rb") as f:
        data = orjson.loads(f.read())
    try:
        return converter.structure(data, PodInfo)
    except Exception as exc:
        raise ValueError(f"{path}: not a pod record ({exc})") from exc
