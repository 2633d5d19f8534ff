"""The dispatch loop in isolation: jobs run one at a time, failures are contained, and
the loop refuses to wait on itself."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from podd.core.scope import default_root_scope
from podd.core.spec import PodSpec
from podd.runtime.pod import LoopReentryError, Pod


@pytest.fixture
def pod(tmp_path: object) -> Iterator[Pod]:
    root = str(tmp_path)
    directory = os.path.join(root, "p")
    os.mkdir(directory, 0o700)
    spec = PodSpec(
        name="p",
        root=root,
        cwd=root,
        scope=default_root_scope(root),
        parent="parent",
        parent_socket=os.path.join(root, "parent", "sock"),
    )
    pod = Pod(spec, start_time=0.0)
    yield pod
    pod.journal.close()
    pod.output.close()


async def run_loop(pod: Pod, nursery: trio.Nursery) -> None:
    pod._nursery = nursery
    nursery.start_soon(pod._dispatch_loop)
    await trio.testing.wait_all_tasks_blocked()


class TestDispatchLoop:
    """Jobs posted from anywhere run in order, one at a time, in the loop."""

    async def test_call_runs_in_the_loop_and_returns_its_value(self, pod: Pod) -> None:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await run_loop(pod, nursery)
                seen = []
                for i in range(3):
                    pod.post("record", lambda i=i: seen.append(i))
                value = await pod.call("answer", lambda: trio.lowlevel.current_task())
                assert ([0, 1, 2], pod._loop_task) == (seen, value)
                nursery.cancel_scope.cancel()

    async def test_waiting_on_the_loop_from_the_loop_is_refused(self, pod: Pod) -> None:
        with trio.fail_after(5):
            pod._loop_task = trio.lowlevel.current_task()
            with pytest.raises(LoopReentryError, match="cannot wait on itself"):
                await pod.call("reentrant", lambda: None)

    async def test_a_failing_job_is_contained_and_reported_upward(self, pod: Pod) -> None:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await run_loop(pod, nursery)

                def broken() -> None:
                    raise RuntimeError("boom")

                pod.post("broken", broken)
                after = await pod.call("after", lambda: "still serving")
                assert ("still serving", 1) == (after, pod.outbox.pending)
                assert pod.lag.count >= 2
                nursery.cancel_scope.cancel()

    async def test_call_reraises_the_jobs_exception(self, pod: Pod) -> None:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await run_loop(pod, nursery)

                def fails() -> None:
                    raise ValueError("bad")

                with pytest.raises(ValueError, match="bad"):
                    await pod.call("fails", fails)
                nursery.cancel_scope.cancel()
