"""Becoming a pod in a process forked from one that has not imported the runtime.

A cold root spawn forks the pod from the CLI (``podd.spawn.spawner``); the fork imports the
runtime itself, so the CLI never pays for it and the pod pays once.
"""

from __future__ import annotations

__all__ = ["run_pod"]


def run_pod(argv: list[str], spec_json: str) -> int:
    """Run the pod of ``spec_json`` in this process (``podd.runtime.main.main``)."""
    from podd.runtime.main import main

    return main(argv, spec_json)
