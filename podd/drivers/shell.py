"""The ``shell`` driver: CMD as it is, notifications as plain lines, stdout as the result."""

from __future__ import annotations

from podd.drivers.base import RESULT_LIMIT, Invocation, TurnInput, TurnResult, cap_tail, plain_input

__all__ = ["ShellDriver", "ShellParser"]


class ShellParser:
    """Keeps the last ``RESULT_LIMIT`` bytes of stdout: the turn's result."""

    def __init__(self) -> None:
        self._tail = bytearray()
        self._total = 0

    def feed(self, data: bytes) -> None:
        self._total += len(data)
        if len(data) >= RESULT_LIMIT:
            self._tail[:] = data[-RESULT_LIMIT:]
            return
        self._tail += data
        # Trimming only past twice the limit keeps the copying amortised.
        if len(self._tail) > 2 * RESULT_LIMIT:
            del self._tail[:-RESULT_LIMIT]

    def finish(self, exit_code: int | None) -> TurnResult:
        return TurnResult(result=cap_tail(bytes(self._tail), cut=self._total > len(self._tail)))


class ShellDriver:
    """Runs CMD with ``/bin/sh -c``; stdin is the notifications, one line each, then the text."""

    name = "shell"

    def check(self, command: str) -> str | None:
        return None

    def invocation(self, turn: TurnInput) -> Invocation:
        return Invocation(
            argv=("/bin/sh", "-c", turn.command),
            stdin=plain_input(turn.notifications, turn.text),
        )

    def parser(self) -> ShellParser:
        return ShellParser()
