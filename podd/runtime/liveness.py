"""A pod's view of liveness: probing its registry, reclaiming the dead, and what
happens when its own parent dies (adoption by the nearest live ancestor)."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import attrs
import trio

from podd.client.asynchronous import async_call
from podd.core.inputs import (
    AdoptAsked,
    AdoptedBy,
    AdoptedExited,
    ChildRejoined,
    ChildrenElsewhere,
    Orphaned,
    ParentDied,
    Reclaimed,
    RejoinAsked,
)
from podd.core.probing import PROBE_TIMEOUT
from podd.core.registry import ChildRecord
from podd.core.spec import Ancestor
from podd.errors import PodFailed, PodUnreachable
from podd.proc.facts import is_alive
from podd.runtime import probe
from podd.runtime.loop import LATER, PodCore
from podd.runtime.server import Connection
from podd.spawn.child_process import wait_gone
from podd.store.journal import stopped_how
from podd.store.leftovers import cleanup_pod_dir, crash_report
from podd.store.records import live_record
from protocol import AdoptParams, ListPodsParams, ReclaimStaleParams, Request, encode_result
from protocol.messages import RejoinParams

__all__ = ["Liveness"]

log = logging.getLogger(__name__)


class Liveness:
    """list_pods, reclaim_stale (on demand and periodic), adoption both ways."""

    def __init__(self, pod: PodCore) -> None:
        self.pod = pod

    def on_list_pods(self, conn: Connection, request: Request) -> Any:
        params: ListPodsParams = request.params
        records = list(self.pod.state.registry)
        self.pod.background(self._list_and_reply, records, params.probe_timeout, conn, request.id)
        return LATER

    async def _list_and_reply(
        self, records: list[ChildRecord], timeout: float, conn: Connection, request_id: Any
    ) -> None:
        probes = await probe.probe_all(records, timeout)
        pods = [{**attrs.asdict(r), "liveness": probes[r.pod_name]} for r in records]
        if request_id is not None:
            conn.reply(encode_result(request_id, {"pod": self.pod.name, "pods": pods}))

    def on_reclaim_stale(self, conn: Connection, request: Request) -> Any:
        params: ReclaimStaleParams = request.params
        self.pod.background(self._reclaim_stale, params.probe_timeout, conn, request.id)
        return LATER

    async def _reclaim_stale(
        self, timeout: float, conn: Connection | None = None, request_id: Any = None
    ) -> None:
        records = list(self.pod.state.registry)
        probes = await probe.probe_all(records, timeout)
        dead = [r for r in records if probes[r.pod_name] == "dead"]

        def reclaim() -> None:
            reclaimed = []
            for record in dead:
                current = self.pod.state.registry.get(record.pod_name)
                watched = self.pod.processes.get(record.pod_name)
                if watched is not None and watched.pid == record.pid:
                    # A child of this pod's own: its exit watcher reclaims it, with its
                    # exit status and its restart policy.
                    continue
                if (
                    current is not None
                    and current.pid == record.pid
                    and not is_alive(current.pid, current.start_time)
                ):
                    reclaimed.append(self.reclaim(current, "process gone (reclaim_stale)"))
            if conn is not None and request_id is not None:
                conn.reply(encode_result(request_id, {"reclaimed": reclaimed}))

        self.pod.post("reclaim_stale", reclaim)

    async def reclaim_periodically(self) -> None:
        while True:
            try:
                await self._reclaim_stale(PROBE_TIMEOUT)
            except Exception as exc:
                log.exception("periodic reclaim failed")
                self.pod.report_fault("reclaim_stale", exc)
            await trio.sleep(self.pod.spec.reclaim_interval)

    def reclaim(self, record: ChildRecord, cause: str, *, clean: bool = False) -> dict[str, Any]:
        """Remove a dead pod's leftovers, keeping its last state for ``podd restart``;
        the rules then drop its entry and scope and leave a notification naming the
        cause (for a pod further down too: reclaim_stale always says what it removed)."""
        directory = os.path.join(self.pod.spec.root, record.pod_name)
        report = crash_report(directory)
        if report and not clean:
            cause = f"{cause}; it crashed: {report}"
        elif (
            not os.path.isdir(directory)
            and stopped_how(self.pod.spec.root, record.pod_name) == "stopped"
        ):
            # It stopped cleanly: nothing is left of it but its stopped record.
            clean, cause = True, "stopped"
        if record.pid > 0:  # a pid-0 record (no sub_pid was given) owns no directory
            cleanup_pod_dir(self.pod.spec.root, record.pod_name, record.pid, reason=cause)
        self.pod.apply(Reclaimed(record, cause, clean))
        log.info("reclaimed %s: %s", record.pod_name, cause)
        return {"pod": record.pod_name, "by": self.pod.name, "reason": cause}

    # --- Parent death and adoption (the rules: ``podd.core.liveness``) ------------------

    async def watch_parent(self, pid: int, os_parent: bool) -> None:
        if os_parent and os.getppid() != pid:
            gone = True
        else:
            gone = await wait_gone(pid, 0.0, float("inf"))
        if gone:
            self.pod.post("parent_died", functools.partial(self._parent_died, pid))

    def _parent_died(self, pid: int) -> None:
        lineage = self.pod.state.lineage
        if not self.pod.state.stop.stopping and pid == lineage.parent_pid:
            log.warning("parent %s died; looking for an ancestor to adopt us", lineage.parent)
        self.pod.apply(ParentDied(pid))

    async def find_adopter(self, previous: str, skipped_task: str | None = None) -> None:
        for ancestor in self.pod.state.lineage.ancestors:
            params = AdoptParams(
                self.pod.name,
                previous_parent=previous,
                socket=self.pod.spec.socket,
                skipped_task=skipped_task,
            )
            try:
                result = await async_call(ancestor.socket, "adopt", params, timeout=2.0)
            except (PodUnreachable, PodFailed) as exc:
                log.info("ancestor %s cannot adopt us: %s", ancestor.name, exc)
                continue
            adopter_pid = int(result["pid"])
            self.pod.post("adopted", functools.partial(self._adopted, ancestor, adopter_pid))
            return
        self.pod.post("orphaned", self._orphaned)

    def _adopted(self, ancestor: Ancestor, pid: int) -> None:
        self.pod.apply(AdoptedBy(ancestor, pid))

    def _orphaned(self) -> None:
        self.pod.apply(Orphaned())

    def on_adopt(self, conn: Connection, request: Request) -> Any:
        return self.pod.apply(AdoptAsked(request.params, conn.peer_pid))

    # --- Back to a restarted parent ----------------------------------------------------

    def on_rejoin(self, conn: Connection, request: Request) -> Any:
        params: RejoinParams = request.params
        parent = live_record(self.pod.spec.root, params.parent)
        parent_pid = parent.pid if parent is not None else None
        return self.pod.apply(RejoinAsked(params, conn.peer_pid, parent_pid))

    def ask_back_children(self) -> None:
        """Restarted with its registry: the children that its ``pod.json`` files show
        under another parent now (adopted while this pod was gone) are asked back."""
        root, name = self.pod.spec.root, self.pod.name
        elsewhere = []
        for record in self.pod.state.registry.children_of(name):
            now = live_record(root, record.pod_name)
            if now is not None and now.parent != name:
                elsewhere.append(record.pod_name)
        if elsewhere:
            self.pod.apply(ChildrenElsewhere(tuple(elsewhere)))

    async def ask_to_rejoin(self, name: str, socket: str) -> None:
        params = {"parent": self.pod.name, "socket": self.pod.spec.socket}
        try:
            await async_call(socket, "rejoin", params, timeout=2.0)
        except (PodUnreachable, PodFailed) as exc:
            log.warning("%s did not come back here: %s", name, exc)
            return
        self.pod.post("child_rejoined", lambda: self.pod.apply(ChildRejoined(name)))

    async def watch_adopted(self, name: str, pid: int, started: float) -> None:
        await wait_gone(pid, started, float("inf"))
        self.pod.post("adopted_exited", lambda: self._adopted_exited(name, pid))

    def _adopted_exited(self, name: str, pid: int) -> None:
        self.pod.apply(AdoptedExited(name, pid))
