"""What drivers share: turn input, caps on results, and lines read in bounded memory."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from podd.drivers.base import (
    RESULT_LIMIT,
    LineBuffer,
    cap_head,
    cap_tail,
    framed_input,
    json_objects,
    plain_input,
)
from tests.drivers.support import split_at


class TestPlainInput:
    """A shell agent reads one line per notification, no header, then the text."""

    def test_notifications_then_text(self) -> None:
        expected = b"pod 'a' finished turn 1: ok\npod 'b' errored: boom\ndo it\n"
        assert expected == plain_input(
            ["pod 'a' finished turn 1: ok", "pod 'b' errored: boom"], "do it"
        )

    def test_a_notification_stays_on_one_line(self) -> None:
        assert b"one two\ntext\n" == plain_input(["one\ntwo"], "text\n")

    def test_no_notifications(self) -> None:
        assert b"just this\n" == plain_input([], "just this")

    def test_only_notifications(self) -> None:
        assert b"a\n" == plain_input(["a"], "")


class TestFramedInput:
    """An LLM agent reads its notifications between two marker lines, before the task."""

    def test_framed(self) -> None:
        expected = (
            b"[podd: 2 notifications]\n"
            b"pod 'a' finished turn 1: ok\n"
            b"pod 'b' errored: boom\n"
            b"[podd: end of notifications]\n"
            b"Summarise.\n"
        )
        assert expected == framed_input(
            ["pod 'a' finished turn 1: ok", "pod 'b' errored: boom"], "Summarise."
        )

    def test_no_notifications_no_frame(self) -> None:
        assert b"Summarise.\n" == framed_input([], "Summarise.")

    def test_text_keeps_its_own_newline(self) -> None:
        assert b"line 1\nline 2\n" == framed_input((), "line 1\nline 2\n")

    def test_a_notification_stays_on_one_line(self) -> None:
        framed = framed_input(["a\nb"], "t")
        assert [b"[podd: 1 notifications]", b"a b", b"[podd: end of notifications]", b"t"] == (
            framed.splitlines()
        )


class TestCaps:
    """Results hold at most 64 KiB of UTF-8, and say so when they were cut."""

    def test_short_text_is_kept(self) -> None:
        assert "ok" == cap_head("ok")

    def test_exactly_the_limit_is_kept(self) -> None:
        text = "a" * RESULT_LIMIT
        assert text == cap_head(text)

    def test_long_text_keeps_its_beginning(self) -> None:
        capped = cap_head("a" * RESULT_LIMIT + "b")
        assert RESULT_LIMIT == len(capped.encode())
        assert capped.endswith("a…")

    def test_a_cut_never_splits_a_character(self) -> None:
        capped = cap_head("é" * RESULT_LIMIT)
        assert len(capped.encode()) <= RESULT_LIMIT
        assert set(capped) == {"é", "…"}

    def test_tail_keeps_the_end(self) -> None:
        capped = cap_tail(b"x" + b"y" * RESULT_LIMIT)
        assert RESULT_LIMIT == len(capped.encode())
        assert capped.startswith("…y")

    def test_tail_never_splits_a_character(self) -> None:
        capped = cap_tail("é".encode() * RESULT_LIMIT)
        assert len(capped.encode()) <= RESULT_LIMIT
        assert set(capped) == {"é", "…"}

    def test_tail_marks_bytes_lost_earlier(self) -> None:
        assert "…end" == cap_tail(b"end", cut=True)

    @given(st.text(max_size=200), st.integers(min_value=8, max_value=300))
    def test_within_the_limit(self, text: str, limit: int) -> None:
        data = text.encode("utf-8", "surrogatepass")
        assert len(cap_head(text, limit).encode("utf-8", "surrogatepass")) <= limit
        assert len(cap_tail(data, limit).encode("utf-8", "surrogatepass")) <= limit


class TestLineBuffer:
    """Lines come out whole, whatever the chunking, and overlong lines are dropped."""

    @given(
        st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=8),
        st.lists(st.integers(min_value=0), max_size=10),
    )
    def test_any_chunking(self, lines: list[bytes], cuts: list[int]) -> None:
        data = b"".join(line + b"\n" for line in lines)
        buffer = LineBuffer()
        got = [line for chunk in split_at(data, cuts) for line in buffer.feed(chunk)]
        got += list(buffer.finish())
        assert lines == got

    def test_last_line_without_newline(self) -> None:
        buffer = LineBuffer()
        assert [b"a"] == list(buffer.feed(b"a\nb"))
        assert [b"b"] == list(buffer.finish())

    def test_overlong_lines_are_dropped(self) -> None:
        buffer = LineBuffer(limit=10)
        got = list(buffer.feed(b"short\n" + b"x" * 7))
        got += list(buffer.feed(b"y" * 7 + b"\nafter\n" + b"z" * 20))
        got += list(buffer.finish())
        assert [b"short", b"after"] == got
        assert 2 == buffer.dropped


class TestJsonObjects:
    """A line yields its JSON object, an array's objects, or nothing."""

    def test_object(self) -> None:
        assert [{"type": "a"}] == json_objects(b'{"type": "a"}\r')

    def test_array(self) -> None:
        assert [{"a": 1}, {"b": 2}] == json_objects(b'[{"a": 1}, 3, {"b": 2}]')

    def test_noise(self) -> None:
        for line in (b"", b"Reading prompt from stdin...", b"{broken", b"42", b'"x"', b"\xff"):
            assert [] == json_objects(line)
