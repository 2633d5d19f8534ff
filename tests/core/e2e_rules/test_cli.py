"""Table tests mirroring ``tests/e2e/test_cli.py``: the rules it sees the product keep."""

from __future__ import annotations

from podd.core.inputs import (
    EventReceived,
)
from tests.core.e2e_rules.support import (
    ROOT,
    spawn_child,
)
from tests.core.test_events import ME, MY_SOCKET, sub_delegated
from tests.core.test_machine import run, state_of


class TestCli:
    """A tree spawned through its parents is registered with the sockets its events come
    through."""

    def test_children_and_a_grandchild_are_registered_with_the_sockets_of_their_reporters(
        self,
    ) -> None:
        state = state_of()
        spawn_child(state, "a", 11)
        spawn_child(state, "b", 12)
        run(state, EventReceived(sub_delegated("a", "c", pid=13), 11))
        assert {
            "a": (f"{ROOT}/a/sock", MY_SOCKET, 11, 1011.0, ME),
            "b": (f"{ROOT}/b/sock", MY_SOCKET, 12, 1012.0, ME),
            "c": (f"{ROOT}/c/sock", f"{ROOT}/a/sock", 13, 2013.0, "a"),
        } == {
            r.pod_name: (r.socket_path, r.callback_address, r.pid, r.start_time, r.parent_pod)
            for r in state.registry
        }
