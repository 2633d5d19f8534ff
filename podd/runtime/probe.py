"""Is a registered pod alive? Its process (pid and start time) and its socket decide.

``dead``: the process is gone, or the pid now belongs to another process (its start
time differs). ``unresponsive``: the process is there but its socket did not answer a
``ping`` within the probe timeout (500 ms by default). ``alive``: it answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import trio

from podd.client.asynchronous import async_call
from podd.core.registry import ChildRecord
from podd.errors import PodFailed, PodUnreachable
from podd.proc.facts import is_alive

__all__ = ["Liveness", "probe", "probe_all"]

Liveness = Literal["alive", "unresponsive", "dead"]


async def probe(record: ChildRecord, timeout: float = 0.5) -> Liveness:
    if not is_alive(record.pid, record.start_time):
        return "dead"
    try:
        await async_call(record.socket_path, "ping", timeout=timeout)
    except (PodUnreachable, PodFailed):
        return "unresponsive" if is_alive(record.pid, record.start_time) else "dead"
    return "alive"


async def probe_all(records: Sequence[ChildRecord], timeout: float = 0.5) -> dict[str, Liveness]:
    """Probe every record at once; the answer maps pod names to liveness."""
    results: dict[str, Liveness] = {}

    async def one(record: ChildRecord) -> None:
        results[record.pod_name] = await probe(record, timeout)

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(one, record)
    return results
