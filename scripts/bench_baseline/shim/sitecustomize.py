"""Instrumentation that ``scripts/bench`` loads into pod processes for the event cases.

``scripts/bench`` puts this directory first on ``PYTHONPATH`` of the root pod it starts
for ``events_throughput`` and ``event_latency``; the root pod's children inherit it.
Python imports ``sitecustomize`` at start-up, and this one does nothing unless
``PODD_BENCHSHIM`` is set. It changes no code path of podd: once ``podd.runtime.pod`` has been
imported, it wraps ``Pod.run`` (to start one extra task when the pod is ready) and
``Journal.append`` of ``podd.store.journal`` (to time-stamp each notification the rules
buffered, as its journal record goes out).

- A pod **with** a parent and ``PODD_BENCHSHIM_EMIT=N``: on ``SIGUSR1`` it posts N
  ``TurnEnded`` events through its own outbox (``pod.outbox.post``, the very call a
  finished turn makes), as fast as it can or paced at ``PODD_BENCHSHIM_RATE`` per second,
  noting ``time.monotonic_ns()`` just before each post; then it writes
  ``PODD_BENCHSHIM_OUT/emit-<name>.json``. Delivery (batching, ``flush_events`` acks,
  retries) is the real outbox's; only the cause of the events (no agent turn) is
  synthetic.
- A pod **without** a parent and ``PODD_BENCHSHIM_TRACE=PATH``: each notification it
  buffers is recorded as ``[pod_name, turn, monotonic_ns]`` in the job that buffered it
  (when its ``Journal`` effect is carried out); on ``SIGUSR2`` the records are written
  to PATH (atomically).
"""

import os
import sys

if os.environ.get("PODD_BENCHSHIM"):

    def _patch(module):  # type: ignore[no-untyped-def]
        import json
        import signal
        import time

        import trio

        from protocol import TurnEnded

        from podd.store import journal

        pod_class = module.Pod
        trace: list[list[object]] = []
        original_append = journal.Journal.append
        original_run = pod_class.run

        def append(self, record):  # type: ignore[no-untyped-def]
            original_append(self, record)
            if record.get("op") == "notify":
                event = record["notification"].get("event", {})
                trace.append([event.get("pod_name", ""), event.get("turn", 0), time.monotonic_ns()])

        def _write(path, document):  # type: ignore[no-untyped-def]
            with open(path + ".tmp", "w") as f:
                json.dump(document, f)
            os.replace(path + ".tmp", path)

        async def _dump_on_signal(self, receiver, manager, path):  # type: ignore[no-untyped-def]
            try:
                async for _ in receiver:
                    _write(path, {"pid": os.getpid(), "pod": self.name, "events": trace})
            finally:
                manager.__exit__(None, None, None)

        async def _emit_on_signal(self, receiver, manager, count, rate, out):  # type: ignore[no-untyped-def]
            try:
                async for _ in receiver:
                    posted: list[int] = []
                    begun = trio.current_time()
                    for turn in range(1, count + 1):
                        if rate > 0:
                            await trio.sleep_until(begun + (turn - 1) / rate)
                        elif turn % 256 == 0:
                            await trio.lowlevel.checkpoint()
                        posted.append(time.monotonic_ns())
                        self.outbox.post(TurnEnded(self.name, turn=turn))
                    document = {
                        "pod": self.name,
                        "pid": os.getpid(),
                        "count": count,
                        "first_ns": posted[0] if posted else 0,
                        "last_ns": posted[-1] if posted else 0,
                        "posted_ns": posted if rate > 0 else [],
                    }
                    _write(os.path.join(out, f"emit-{self.name}.json"), document)
            finally:
                manager.__exit__(None, None, None)

        async def run(self, listener, on_ready):  # type: ignore[no-untyped-def]
            def ready():  # type: ignore[no-untyped-def]
                # Handlers are installed before the pod reports ready, so a signal sent
                # once the spawn has returned can never hit the default action.
                env = os.environ
                parent = self.state.lineage.parent
                if parent is not None and env.get("PODD_BENCHSHIM_EMIT"):
                    manager = trio.open_signal_receiver(signal.SIGUSR1)
                    receiver = manager.__enter__()
                    self.nursery.start_soon(
                        _emit_on_signal,
                        self,
                        receiver,
                        manager,
                        int(env["PODD_BENCHSHIM_EMIT"]),
                        float(env.get("PODD_BENCHSHIM_RATE", "0")),
                        env.get("PODD_BENCHSHIM_OUT", "."),
                    )
                if parent is None and env.get("PODD_BENCHSHIM_TRACE"):
                    manager = trio.open_signal_receiver(signal.SIGUSR2)
                    receiver = manager.__enter__()
                    self.nursery.start_soon(
                        _dump_on_signal, self, receiver, manager, env["PODD_BENCHSHIM_TRACE"]
                    )
                on_ready()

            await original_run(self, listener, ready)

        journal.Journal.append = append
        pod_class.run = run

    class _PatchPodModule:
        """Finds ``podd.runtime.pod`` through the other finders and patches it once executed."""

        def find_spec(self, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
            if fullname != "podd.runtime.pod":
                return None
            sys.meta_path.remove(self)
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find is not None else None
                if spec is not None and spec.loader is not None:
                    break
            else:
                return None
            exec_module = spec.loader.exec_module

            def exec_and_patch(module):  # type: ignore[no-untyped-def]
                exec_module(module)
                _patch(module)

            spec.loader.exec_module = exec_and_patch
            return spec

    sys.meta_path.insert(0, _PatchPodModule())
