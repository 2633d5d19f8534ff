"""Fault injection for tests, read from ``$PODD_FAULT`` once, at start-up.

``PODD_FAULT`` is a comma-separated list of ``WHAT`` or ``WHAT@POD``: ``WHAT`` is a
method name (its handler raises, as a bug would) or ``crash`` (the pod exits with
status 70 right after it reports ready); ``@POD`` limits the fault to that pod.
Children inherit the variable, so ``@POD`` is how a test aims at one pod of a tree.
"""

from __future__ import annotations

import functools
import os

__all__ = ["fault_injected"]


@functools.cache
def _faults() -> frozenset[tuple[str, str]]:
    faults = set()
    for item in os.environ.get("PODD_FAULT", "").split(","):
        what, _, target = item.strip().partition("@")
        if what:
            faults.add((what, target))
    return frozenset(faults)


def fault_injected(what: str, pod: str) -> bool:
    faults = _faults()
    return bool(faults) and ((what, "") in faults or (what, pod) in faults)
