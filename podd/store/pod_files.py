"""A pod's own files, as the pod writes them: ``pod.json`` and ``spawned_pods.json``.

Both are replaced atomically (``podd.store.atomic``). The command line reads them with
the standard ``json`` module instead (``podd.store.records``), to stay lean.
"""

from __future__ import annotations

import attrs
import orjson

from podd.core.registry import Registry
from podd.core.spec import PodInfo
from podd.store.atomic import write_atomic
from protocol import converter

__all__ = ["load_registry", "read_info", "save_registry", "write_info"]


def write_info(path: str, info: PodInfo, *, durable: bool = True) -> None:
    """Write ``info`` atomically (temp file, fsync, rename; ``durable``: see
    ``podd.store.atomic.write_atomic``).

    ``attrs.asdict`` gives what the converter would (every field of ``PodInfo`` is a
    plain value, a list, a dict or an attrs class, with no hook of its own: the tests
    hold the two equal) without the converter generating its unstructure function, a
    few milliseconds that every pod would spend on its first write, before it is ready.
    """
    data = orjson.dumps(attrs.asdict(info), option=orjson.OPT_INDENT_2)
    write_atomic(path, data, durable=durable)


def read_info(path: str) -> PodInfo:
    """Read a ``pod.json``; raises ``OSError`` or ``ValueError`` if missing or unreadable."""
    with open(path, "rb") as f:
        data = orjson.loads(f.read())
    try:
        return converter.structure(data, PodInfo)
    except Exception as exc:
        raise ValueError(f"{path}: not a pod record ({exc})") from exc


def save_registry(path: str, registry: Registry) -> None:
    """Replace the registry file atomically."""
    write_atomic(path, registry.to_json())


def load_registry(path: str) -> Registry:
    """Read a registry file; a missing file gives an empty registry."""
    try:
        with open(path, "rb") as f:
            return Registry.from_json(f.read())
    except FileNotFoundError:
        return Registry()
