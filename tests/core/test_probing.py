"""``podd.core.probing.verdict``: the one rule by which pods and the CLI judge a probe."""

from __future__ import annotations

import pytest

from podd.core.probing import verdict


class TestVerdict:
    """A ping answered means alive; a silent pod is unresponsive while its process lives."""

    def test_an_answer_is_alive_without_looking_at_the_process(self) -> None:
        def never() -> bool:
            pytest.fail("the process is looked at only when the ping failed")

        assert "alive" == verdict(True, never)

    def test_silent_with_its_process_there_is_unresponsive(self) -> None:
        assert "unresponsive" == verdict(False, lambda: True)

    def test_silent_with_its_process_gone_is_dead(self) -> None:
        assert "dead" == verdict(False, lambda: False)
