"""The shell driver runs CMD as it is and takes its stdout, capped, as the result."""

from __future__ import annotations

import subprocess

from hypothesis import given
from hypothesis import strategies as st

from podd.drivers import RESULT_LIMIT, Invocation, ShellDriver, TurnInput, TurnResult
from tests.drivers.support import FAKE_TIMEOUT, parse, split_at

DRIVER = ShellDriver()


def turn(command: str, text: str = "task", notifications: tuple[str, ...] = ()) -> TurnInput:
    return TurnInput(
        command=command,
        text=text,
        notifications=notifications,
        new_session_id="unused",
        state_dir="/state",
    )


class TestInvocation:
    """CMD runs unchanged under /bin/sh; stdin is plain notification lines and the text."""

    def test_invocation(self) -> None:
        expected = Invocation(
            argv=("/bin/sh", "-c", "FOO=1 cat | tr a-z A-Z"),
            env={},
            stdin=b"pod 'a' finished turn 1: ok\ntask\n",
            session=None,
        )
        assert expected == DRIVER.invocation(
            turn("FOO=1 cat | tr a-z A-Z", notifications=("pod 'a' finished turn 1: ok",))
        )

    def test_every_command_is_accepted(self) -> None:
        assert None is DRIVER.check("{ cat; } >> log")

    def test_runs_as_given(self) -> None:
        invocation = DRIVER.invocation(turn("tr a-z A-Z", "hello", ("note",)))
        done = subprocess.run(
            invocation.argv, input=invocation.stdin, capture_output=True, timeout=FAKE_TIMEOUT
        )
        assert TurnResult(result="NOTE\nHELLO\n") == parse(DRIVER, done.stdout)


class TestResult:
    """The result is stdout; past 64 KiB its last 64 KiB, marked as cut."""

    def test_stdout_is_the_result(self) -> None:
        assert TurnResult(result="a\nb\n") == parse(DRIVER, [b"a\n", b"b\n"], exit_code=3)

    def test_empty_output(self) -> None:
        assert TurnResult(result="") == parse(DRIVER, b"")

    def test_long_output_keeps_its_end(self) -> None:
        data = b"head" + b"x" * (3 * RESULT_LIMIT) + b"tail"
        result = parse(DRIVER, [data[i : i + 1000] for i in range(0, len(data), 1000)]).result
        assert result is not None
        assert RESULT_LIMIT == len(result.encode())
        assert result.startswith("…x") and result.endswith("xtail")

    def test_one_huge_chunk(self) -> None:
        result = parse(DRIVER, b"y" * (5 * RESULT_LIMIT) + b"end").result
        assert result is not None
        assert RESULT_LIMIT == len(result.encode()) and result.endswith("yend")

    @given(st.binary(max_size=3 * 1024), st.lists(st.integers(min_value=0), max_size=6))
    def test_chunking_does_not_matter(self, data: bytes, cuts: list[int]) -> None:
        assert parse(DRIVER, data) == parse(DRIVER, split_at(data, cuts))
