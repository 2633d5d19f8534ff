"""The dispatch loop in isolation: jobs run one at a time, failures are contained, and
the loop refuses to wait on itself."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import orjson
import pytest
import trio
import trio.testing

from podd.core.effects import Journal, Reply, Trace
from podd.core.scope import default_root_scope
from podd.core.spec import PodSpec
from podd.runtime.diagnostics import EventTrace
from podd.runtime.loop import LATER
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
    nursery.start_soon(pod.serve_jobs, nursery)
    await trio.testing.wait_all_tasks_blocked()


class TestDispatchLoop:
    """Jobs posted from anywhere run in order, one at a time, in the loop."""

    async def test_call_runs_in_the_loop_and_returns_its_value(self, pod: Pod) -> None:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await run_loop(pod, nursery)
                seen: list[int] = []
                for i in range(3):
                    pod.post("record", functools.partial(seen.append, i))
                value = await pod.call("answer", lambda: trio.lowlevel.current_task())
                assert [0, 1, 2] == seen
                assert value is not trio.lowlevel.current_task()
                nursery.cancel_scope.cancel()

    async def test_waiting_on_the_loop_from_the_loop_is_refused(self, pod: Pod) -> None:
        refused: list[BaseException] = []

        def reenter() -> None:
            # What a job would do if it could wait: ask the loop that is running it.
            waiting = pod.call("reentrant", lambda: None)
            try:
                waiting.send(None)
            except LoopReentryError as exc:
                refused.append(exc)
            finally:
                waiting.close()

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await run_loop(pod, nursery)
                pod.post("reenter", reenter)
                await pod.call("after", lambda: None)
                assert [LoopReentryError] == [type(e) for e in refused]
                assert "cannot wait on itself" in str(refused[0])
                nursery.cancel_scope.cancel()

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


class TestRunEffects:
    """The effects of an event from below (a Trace, a Journal record, a Reply) are
    carried out like any other: in order, the Reply's result returned."""

    def test_trace_journal_and_reply(self, pod: Pod, tmp_path: object) -> None:
        path = os.path.join(str(tmp_path), "p.trace")
        pod.trace = EventTrace(path)
        record = {"op": "notify", "notification": {"text": "t", "event": {"kind": "x"}}}
        result = pod.run_effects([Trace("apply a 1"), Journal(record), Reply({"applied": True})])
        pod.trace.close()
        assert {"applied": True} == result
        with open(path) as f:
            assert ["apply", "a", "1"] == f.read().split()[:3]
        pod.journal.flush()
        with open(pod.journal.path, "rb") as f:
            assert [record] == [orjson.loads(line) for line in f.read().splitlines()]

    def test_without_a_trace_or_a_reply(self, pod: Pod) -> None:
        pod.trace = None
        assert LATER is pod.run_effects([Trace("apply a 1")])
