"""Table tests of a child's exit and its restart policy (``podd.core.children``)."""

from __future__ import annotations

import pytest

from podd.core.children import exit_cause, on_child_exited, restart_effects
from podd.core.effects import Notify, Reclaim, RestartLater
from podd.core.notifications import Notification
from podd.core.restart_policy import RestartTracker
from protocol import RestartGaveUp
from protocol.messages import RestartPolicy
from tests.core.test_events import child, registry_of


class TestExitCause:
    """The notification names the exit status, or the signal by name."""

    @pytest.mark.parametrize(
        ("code", "cause"),
        [(0, "exited with status 0"), (70, "exited with status 70"), (-9, "killed by SIGKILL")],
    )
    def test_cause(self, code: int, cause: str) -> None:
        assert cause == exit_cause(code)


class TestOnChildExited:
    """An exited child is reclaimed (cleanly on status 0), unless it said shut_down first;
    then its restart policy applies."""

    @pytest.mark.parametrize(("code", "clean"), [(0, True), (3, False), (-15, False)])
    def test_reclaimed(self, code: int, clean: bool) -> None:
        registry = registry_of(child("a", 11))
        record = registry.get("a")
        assert record is not None
        effects = on_child_exited(
            registry, "a", 11, code, policy=None, stopping=False, tracker=RestartTracker(), now=0
        )
        assert [Reclaim(record, exit_cause(code), clean=clean)] == effects

    @pytest.mark.parametrize(("name", "pid"), [("a", 12), ("gone", 11)])
    def test_nothing_when_it_said_shut_down_first(self, name: str, pid: int) -> None:
        registry = registry_of(child("a", 11))
        assert [] == on_child_exited(
            registry, name, pid, 0, policy="always", stopping=False, tracker=RestartTracker(), now=0
        )

    def test_restart_follows_the_reclaim(self) -> None:
        registry = registry_of(child("a", 11))
        effects = on_child_exited(
            registry,
            "a",
            11,
            1,
            policy="on-failure",
            stopping=False,
            tracker=RestartTracker(),
            now=0,
        )
        assert [Reclaim, RestartLater] == [type(e) for e in effects]


class TestRestartPolicy:
    """never, on-failure, always; none while stopping; backoff, then giving up at the
    intensity limit, named."""

    @pytest.mark.parametrize(
        ("policy", "failed", "restarts"),
        [
            ("never", True, False),
            ("on-failure", False, False),
            ("on-failure", True, True),
            ("always", False, True),
        ],
    )
    def test_policy(self, policy: RestartPolicy, failed: bool, restarts: bool) -> None:
        effects = restart_effects(
            "a", policy, failed=failed, stopping=False, tracker=RestartTracker(), now=0
        )
        assert restarts == (len(effects) == 1 and isinstance(effects[0], RestartLater))

    def test_no_restart_while_stopping(self) -> None:
        assert [] == restart_effects(
            "a", "always", failed=True, stopping=True, tracker=RestartTracker(), now=0
        )

    def test_backoff_then_gives_up_naming_the_limit(self) -> None:
        tracker = RestartTracker(jitter=0.0)
        delays = []
        for _ in range(tracker.limit):
            (effect,) = restart_effects(
                "a", "always", failed=True, stopping=False, tracker=tracker, now=1.0
            )
            assert isinstance(effect, RestartLater)
            delays.append(effect.delay)
        assert delays == sorted(delays) and delays[0] < delays[-1]
        assert [Notify(Notification.of(RestartGaveUp("a", tracker.describe_limit())))] == (
            restart_effects("a", "always", failed=True, stopping=False, tracker=tracker, now=1.0)
        )
