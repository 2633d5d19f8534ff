"""Helpers shared by the stress tests: finding every process of a tree, talking to
pods that may be dead, reading registry files, and reporting figures.

Every process podd starts for a root (pods, fork servers, turns) carries
``PODD_ROOT=<root>`` in its environment, because the CLI that started the tree had it:
that is how a test finds all of them, whatever their command line says.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson
import psutil
import trio

from podd.core.registry import ChildRecord
from protocol import converter

__all__ = [
    "all_registries",
    "describe",
    "figures",
    "read_registry",
    "request",
    "tree_processes",
]


def tree_processes(root: str, *, fork_server: bool = True) -> list[psutil.Process]:
    """Every live (not zombie) process started for ``root``; ``fork_server=False``
    leaves out the root's fork server, which outlives the pods it started."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid == os.getpid() or proc.environ().get("PODD_ROOT") != root:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if not fork_server and "--root" in (proc.info["cmdline"] or []):
            continue
        found.append(proc)
    return found


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for proc in procs:
        try:
            out.append(f"{proc.pid} {proc.name()} {' '.join(proc.cmdline())[:80]}")
        except psutil.Error:
            out.append(f"{proc.pid} (gone)")
    return out


async def request(sock: str, method: str, params: Any = None, timeout: float = 5.0) -> Any:
    """One request on a fresh connection: the reply frame, or None if the pod did not
    answer (gone, refusing, or silent for ``timeout`` seconds)."""
    frame: dict[str, Any] = {"method": method, "id": 1}
    if params is not None:
        frame["params"] = params
    with trio.move_on_after(timeout):
        try:
            stream = await trio.open_unix_socket(sock)
        except OSError:
            return None
        async with stream:
            try:
                await stream.send_all(orjson.dumps(frame) + b"\n")
                data = b""
                while b"\n" not in data:
                    chunk = await stream.receive_some(1 << 16)
                    if not chunk:
                        return None
                    data += chunk
            except (trio.BrokenResourceError, OSError):
                return None
        return orjson.loads(data.split(b"\n", 1)[0])
    return None


def read_registry(path: str) -> list[ChildRecord] | None:
    """The records of a ``spawned_pods.json``; None if there is no file. A file that
    does not parse raises."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    document = orjson.loads(data)
    return [converter.structure(raw, ChildRecord) for raw in document["pods"]]


def all_registries(root: str) -> dict[str, list[ChildRecord] | None]:
    """The registry of every pod directory under ``root``, by directory name."""
    return {
        entry: read_registry(os.path.join(root, entry, "spawned_pods.json"))
        for entry in sorted(os.listdir(root))
        if os.path.isdir(os.path.join(root, entry))
    }


def figures(test: str, **values: Any) -> None:
    """Print a test's figures on one line (shown with ``-s``, or ``-rP``)."""
    text = " ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
    print(f"\nFIGURES {test}: {text}", file=sys.stderr)
