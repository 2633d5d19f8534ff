"""Becoming a pod in a process forked from one that has not imported the runtime.

A cold root spawn forks the pod from the CLI as the command starts (``podd.spawn.prestart``;
else ``podd.spawn.spawner`` forks it once the spec is built); the fork imports the runtime
itself, so the CLI never pays for it and the pod pays once.
"""

from __future__ import annotations

import gc

# Type checkers take this as true; the spec's module is imported by whoever calls.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from podd.core.spec import PodSpec
    from podd.spawn.forked_pod import RunPod

__all__ = ["load_runtime", "run_pod"]


def load_runtime() -> RunPod:
    """Import the runtime as a pod does and return ``run_pod``, which then starts at
    once (a pod forked before it knows its spec imports first: ``podd.spawn.prestart``).

    The import runs without the cyclic garbage collector (the CLI turns it off before
    its own imports; a collection during an import walks every object made so far).
    What the import made lives as long as the process: ``gc.freeze()`` keeps it off
    every later collection, and off the pages that the root's fork server, a fork of
    this process, shares with it; then the collector runs again.
    """
    gc.disable()
    try:
        import podd.runtime.main  # noqa: F401
    finally:
        gc.freeze()
        gc.enable()
    return run_pod


def run_pod(argv: list[str], spec: str | PodSpec) -> int:
    """Run the pod of ``spec`` (a ``PodSpec`` or its JSON document) in this process
    (``podd.runtime.main.main``), importing the runtime first (``load_runtime``)."""
    load_runtime()
    from podd.runtime.main import main

    return main(argv, spec)
