"""Is a registered pod alive? Its process (pid and start time) and its socket decide,
by the rule of ``podd.core.probing``.

``dead``: the process is gone, or the pid now belongs to another process (its start
time differs). ``unresponsive``: the process is there but its socket did not answer a
``ping`` within the probe timeout (500 ms by default). ``alive``: it answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from podd.client.asynchronous import async_call
from podd.core.probing import PROBE_TIMEOUT, verdict
from podd.core.registry import ChildRecord
from podd.errors import PodFailed, PodUnreachable
from podd.proc.facts import is_alive

if TYPE_CHECKING:
    from podd.core.probing import Liveness

__all__ = ["probe", "probe_all"]


async def probe(record: ChildRecord, timeout: float = PROBE_TIMEOUT) -> Liveness:
    """The pod's liveness (``podd.core.probing``); a process already gone is not asked."""

    def still_running() -> bool:
        return is_alive(record.pid, record.start_time)

    if not still_running():
        return "dead"
    try:
        await async_call(record.socket_path, "ping", timeout=timeout)
        answered = True
    except (PodUnreachable, PodFailed):
        answered = False
    return verdict(answered, still_running)


async def probe_all(
    records: Sequence[ChildRecord], timeout: float = PROBE_TIMEOUT
) -> dict[str, Liveness]:
    """Probe every record at once; the answer maps pod names to liveness."""
    results: dict[str, Liveness] = {}

    async def one(record: ChildRecord) -> None:
        results[record.pod_name] = await probe(record, timeout)

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(one, record)
    return results
