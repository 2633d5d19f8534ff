"""``podd stop``: ask a pod to stop its subtree, then make sure every process is gone.

The pod stops its children first and answers with its outcome. This side then waits
for every process of the subtree (known beforehand from the registries) to exit; what
outlives the timeout is SIGKILLed (``force_killed``), or left running with
``--no-kill`` (``timeout``, exit 1).

This runs in the command line: files are read with ``podd.store.records``, processes with
``podd.proc.procfs``, the pod asked with the blocking client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from podd.client.sync import call
from podd.errors import PodFailed, PodUnreachable
from podd.proc.procfs import is_alive
from podd.store.records import read_pod_record, read_registry

__all__ = ["NotRunning", "stop", "subtree"]

GRACE = 2.0
"""Seconds past ``--timeout`` allowed for processes to exit after the pod answered."""


class NotRunning(Exception):
    """There is no such pod, or its process is gone."""


def subtree(root: str, name: str) -> list[tuple[str, int, float]]:
    """``(name, pid, start_time)`` of a pod and of everything in its registry, at any depth."""
    found: list[tuple[str, int, float]] = []
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        directory = os.path.join(root, current)
        try:
            info = read_pod_record(os.path.join(directory, "pod.json"))
            found.append((current, info.pid, info.start_time))
        except (OSError, ValueError):
            pass
        for record in read_registry(directory):
            pending.append(record["pod_name"])
            found.append((record["pod_name"], record["pid"], record.get("start_time", 0.0)))
    unique = {(n, pid): (n, pid, st) for n, pid, st in found}
    return list(unique.values())


def _alive(members: list[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    return [m for m in members if is_alive(m[1], m[2])]


def stop(root: str, name: str, *, timeout: float, drain: bool, kill: bool) -> str:
    """Stop ``name`` and its subtree; return the outcome."""
    try:
        info = read_pod_record(os.path.join(root, name, "pod.json"))
    except (OSError, ValueError) as exc:
        raise NotRunning(f"no pod named {name!r} under {root}") from exc
    if not is_alive(info.pid, info.start_time):
        raise NotRunning(f"pod {name!r} is not running (stale); 'podd reclaim' removes it")
    members = subtree(root, name)
    deadline = time.monotonic() + timeout
    outcome = "clean"
    try:
        result = call(
            os.path.join(root, name, "sock"),
            "shutdown",
            {"timeout": timeout, "drain": drain, "kill": kill},
            timeout=timeout + GRACE,
        )
        outcome = str(result.get("outcome", "clean"))
    except (PodUnreachable, PodFailed):
        # No answer (a stopped or hung pod, or it died meanwhile): what happens to its
        # processes below decides the outcome.
        pass
    if outcome == "timeout":
        return outcome
    while _alive(members) and time.monotonic() < deadline + GRACE:
        time.sleep(0.01)
    leftovers = _alive(members)
    if not leftovers:
        return outcome
    if not kill:
        return "timeout"
    for _, pid, _ in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    while _alive(leftovers):
        time.sleep(0.01)
    # Only here, with dead pods' state to keep for ``podd restart``, does stopping need
    # the pods' typed journal.
    from podd.store.leftovers import cleanup_pod_dir

    for member_name, pid, _ in members:
        cleanup_pod_dir(root, member_name, pid)
    return "force_killed"
