"""The restart policy's arithmetic: backoff that grows from 100 ms with jitter, capped,
and an intensity limit of 5 restarts in 60 s (issue 7).

``RestartTracker`` takes the time as an argument, so it is tested with plain numbers,
and driven by trio's virtual clock (``autojump_clock``) where a loop sleeps.
"""

from __future__ import annotations

import warnings

import pytest
import trio
import trio.testing

from podd.core.restart_policy import RestartTracker

BASE_DELAYS = [0.1, 0.2, 0.4, 0.8, 1.6]
"""The delays before the 1st..5th restart in a window, jitter aside."""

JITTER = 0.05


def delays_until_refused(tracker: RestartTracker, now: float = 0.0) -> list[float]:
    """Ask for restarts at ``now`` until the tracker refuses one."""
    delays = []
    while (delay := tracker.next_delay(now)) is not None:
        delays.append(delay)
        assert len(delays) <= 100, "the tracker never refused"
    return delays


class TestBackoff:
    """Delays start at 100 ms and double at each restart in the window, with at most
    50 ms of jitter, and never exceed the cap."""

    def test_delays_grow_from_100_ms(self) -> None:
        delays = delays_until_refused(RestartTracker())
        assert 5 == len(delays)
        for base, delay in zip(BASE_DELAYS, delays, strict=True):
            assert base <= delay <= base + JITTER, delays
        assert delays == sorted(delays)

    def test_jitter_varies_the_delays(self) -> None:
        firsts = {RestartTracker().next_delay(0.0) for _ in range(50)}
        assert len(firsts) > 1

    def test_delays_are_capped(self) -> None:
        tracker = RestartTracker(limit=30, cap=2.0)
        delays = delays_until_refused(tracker)
        assert 30 == len(delays)
        assert all(d <= 2.0 + JITTER for d in delays), delays
        assert delays[-1] >= 2.0


class TestIntensityLimit:
    """Past 5 restarts within 60 s the tracker gives up, naming the limit; as old
    restarts leave the window, new ones are allowed again, starting from 100 ms."""

    def test_sixth_restart_in_the_window_is_refused(self) -> None:
        tracker = RestartTracker()
        for now in (0.0, 1.0, 2.0, 3.0, 4.0):
            assert tracker.next_delay(now) is not None
        assert None is tracker.next_delay(59.0)
        assert None is tracker.next_delay(59.9)
        expected = "gave up after 5 restarts in 60 s (restart intensity limit)"
        assert expected == tracker.describe_limit()

    def test_a_refusal_does_not_count_as_a_restart(self) -> None:
        tracker = RestartTracker()
        delays_until_refused(tracker, now=0.0)
        for _ in range(10):
            assert None is tracker.next_delay(30.0)
        assert 5 == len(tracker.history)

    def test_window_slides(self) -> None:
        tracker = RestartTracker()
        for now in (0.0, 10.0, 20.0, 30.0, 40.0):
            assert tracker.next_delay(now) is not None
        assert None is tracker.next_delay(59.0)
        # At 60 s the restart made at 0 s has left the window: one more is allowed,
        # and only one, until the one at 10 s leaves it too.
        assert tracker.next_delay(60.0) is not None
        assert None is tracker.next_delay(65.0)
        assert tracker.next_delay(70.0) is not None

    def test_after_a_quiet_window_backoff_starts_over(self) -> None:
        tracker = RestartTracker()
        delays_until_refused(tracker, now=0.0)
        delay = tracker.next_delay(61.0)
        assert delay is not None
        assert BASE_DELAYS[0] <= delay <= BASE_DELAYS[0] + JITTER

    @pytest.mark.parametrize(("limit", "window"), [(1, 10.0), (3, 5.0)])
    def test_other_limits(self, limit: int, window: float) -> None:
        tracker = RestartTracker(limit=limit, window=window)
        assert limit == len(delays_until_refused(tracker))
        assert f"gave up after {limit} restarts in {window:g} s" in tracker.describe_limit()


class TestTenacityApi:
    """The tracker computes its delays without deprecated tenacity arguments."""

    def test_no_deprecation_warning(self) -> None:
        """tenacity 9.2 deprecates ``wait_exponential_jitter(initial=...)``."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert RestartTracker().next_delay(0.0) is not None


async def crash_loop(tracker: RestartTracker, crash_every: float) -> list[float]:
    """A supervisor's loop over a child that crashes ``crash_every`` seconds after each
    start: sleep the tracker's delay, restart, until the tracker gives up. Returns the
    (virtual) times of the restarts."""
    restarts = []
    while True:
        await trio.sleep(crash_every)
        delay = tracker.next_delay(trio.current_time())
        if delay is None:
            return restarts
        await trio.sleep(delay)
        restarts.append(trio.current_time())


class TestBackoffOnTrioClock:
    """Driven by trio's clock, the backoff takes the virtual time its delays add up to."""

    async def test_gives_up_after_the_sum_of_the_delays(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        tracker = RestartTracker(jitter=0.0)
        start = trio.current_time()
        with trio.fail_after(3600):
            restarts = await crash_loop(tracker, crash_every=0.0)
        assert 5 == len(restarts)
        assert pytest.approx(sum(BASE_DELAYS)) == trio.current_time() - start
        gaps = [b - a for a, b in zip([start, *restarts], restarts, strict=False)]
        assert pytest.approx(BASE_DELAYS) == gaps

    async def test_a_slowly_crashing_child_is_restarted_forever(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A child that lives 20 s each time never has 5 restarts in one 60 s window."""
        tracker = RestartTracker(jitter=0.0)
        with trio.move_on_after(3600) as scope:
            await crash_loop(tracker, crash_every=20.0)
        assert scope.cancelled_caught
        assert len(tracker.history) <= 3

    async def test_restarts_resume_once_the_window_has_slid(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        tracker = RestartTracker(jitter=0.0)
        with trio.fail_after(3600):
            first = await crash_loop(tracker, crash_every=0.0)
            await trio.sleep(60.0)
            second = await crash_loop(tracker, crash_every=0.0)
        assert (5, 5) == (len(first), len(second))
        assert pytest.approx(BASE_DELAYS[0]) == second[0] - first[-1] - 60.0
