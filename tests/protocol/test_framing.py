"""Tests for ``protocol.framing``: bytes in, whole lines out, at most 1 MiB each."""

# House style writes asserts as `expected == actual`.

from __future__ import annotations

import itertools

import pytest

from protocol import MAX_FRAME, FrameBuffer, FrameTooLarge, encode_frame

TOO_LARGE = "<frame_too_large>"


def shape(items: list[bytes | FrameTooLarge]) -> list[bytes | str]:
    """Lines as they are, and each FrameTooLarge as a marker, so lists compare by value."""
    return [TOO_LARGE if isinstance(item, FrameTooLarge) else item for item in items]


def feed_all(buffer: FrameBuffer, chunks: list[bytes]) -> list[bytes | str]:
    out: list[bytes | FrameTooLarge] = []
    for chunk in chunks:
        out.extend(buffer.feed(chunk))
    return shape(out)


def reference_split(stream: bytes, max_frame: int) -> list[bytes | str]:
    """What a FrameBuffer must give for ``stream``, however it is cut into reads.

    An unfinished line is reported as soon as it passes the limit, before its newline.
    """
    *complete, unfinished = stream.split(b"\n")
    lines: list[bytes | str] = [TOO_LARGE if len(line) > max_frame else line for line in complete]
    return [*lines, TOO_LARGE] if len(unfinished) > max_frame else lines


def cut(stream: bytes, positions: tuple[int, ...]) -> list[bytes]:
    bounds = [0, *positions, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


class TestEncodeFrame:
    """A frame is its payload followed by exactly one newline."""

    def test_appends_one_newline(self) -> None:
        assert b'{"method":"ping"}\n' == encode_frame(b'{"method":"ping"}')

    def test_encoded_frame_reads_back_as_the_payload(self) -> None:
        assert [b"payload"] == FrameBuffer().feed(encode_frame(b"payload"))


class TestLineSplitting:
    """Lines come out whole, in order, without their newline, however the reads cut them."""

    def test_complete_line_comes_out_without_its_newline(self) -> None:
        assert [b"abc"] == FrameBuffer().feed(b"abc\n")

    def test_several_lines_in_one_chunk_come_out_in_order(self) -> None:
        assert [b"one", b"two", b"three"] == FrameBuffer().feed(b"one\ntwo\nthree\n")

    def test_chunk_without_newline_yields_nothing_and_is_held(self) -> None:
        buffer = FrameBuffer()

        assert [] == buffer.feed(b"partial")
        assert 7 == buffer.pending

    def test_held_bytes_join_the_next_chunk(self) -> None:
        buffer = FrameBuffer()
        buffer.feed(b"hel")

        assert [b"hello", b"next"] == buffer.feed(b"lo\nnext\n")
        assert 0 == buffer.pending

    def test_unfinished_tail_after_complete_lines_is_held(self) -> None:
        buffer = FrameBuffer()

        assert [b"done"] == buffer.feed(b"done\nhalf")
        assert 4 == buffer.pending
        assert [b"half-line"] == buffer.feed(b"-line\n")

    def test_empty_chunk_changes_nothing(self) -> None:
        buffer = FrameBuffer()
        buffer.feed(b"ab")

        assert [] == buffer.feed(b"")
        assert 2 == buffer.pending

    def test_empty_lines_come_out_as_empty_bytes(self) -> None:
        assert [b"", b"a", b"", b""] == FrameBuffer().feed(b"\na\n\n\n")

    def test_lone_newline_after_held_bytes_ends_that_line(self) -> None:
        buffer = FrameBuffer()
        buffer.feed(b"x")

        assert [b"x"] == buffer.feed(b"\n")

    def test_carriage_return_stays_in_the_line(self) -> None:
        assert [b"a\r"] == FrameBuffer().feed(b"a\r\n")

    def test_stream_cut_at_every_byte_position_gives_the_same_lines(self) -> None:
        stream = b'{"method":"ping","id":1}\n\n{"method":"status"}\nx\n'
        expected = [b'{"method":"ping","id":1}', b"", b'{"method":"status"}', b"x"]

        for position in range(len(stream) + 1):
            actual = feed_all(FrameBuffer(), cut(stream, (position,)))
            assert expected == actual, f"cut at {position}"

    def test_stream_cut_at_every_pair_of_positions_gives_the_same_lines(self) -> None:
        stream = b"ab\n\ncd\nef"
        expected = [b"ab", b"", b"cd"]

        for first, second in itertools.combinations_with_replacement(range(len(stream) + 1), 2):
            actual = feed_all(FrameBuffer(), cut(stream, (first, second)))
            assert expected == actual, f"cut at {first}, {second}"

    def test_stream_fed_one_byte_at_a_time_gives_the_same_lines(self) -> None:
        stream = b"first\nsecond\n\nthird\n"
        chunks = [stream[i : i + 1] for i in range(len(stream))]

        assert [b"first", b"second", b"", b"third"] == feed_all(FrameBuffer(), chunks)


class TestFrameLimit:
    """A line over the limit is reported once, in place, and reading resumes after it."""

    def test_default_limit_is_one_mebibyte(self) -> None:
        assert 1024 * 1024 == MAX_FRAME

    def test_line_of_exactly_the_limit_in_one_chunk_is_accepted(self) -> None:
        line = b"a" * MAX_FRAME

        assert [line] == FrameBuffer().feed(line + b"\n")

    def test_line_of_exactly_the_limit_in_pieces_is_accepted(self) -> None:
        line = b"a" * MAX_FRAME
        buffer = FrameBuffer()

        assert [] == buffer.feed(line[:1000])
        assert [] == buffer.feed(line[1000:])
        assert MAX_FRAME == buffer.pending
        assert [line] == buffer.feed(b"\n")

    def test_line_one_byte_over_in_one_chunk_is_reported_once(self) -> None:
        assert [TOO_LARGE] == shape(FrameBuffer().feed(b"a" * (MAX_FRAME + 1) + b"\n"))

    def test_line_one_byte_over_in_pieces_is_reported_when_it_passes_the_limit(self) -> None:
        buffer = FrameBuffer()

        assert [] == buffer.feed(b"a" * MAX_FRAME)
        assert [TOO_LARGE] == shape(buffer.feed(b"a"))
        assert 0 == buffer.pending
        assert [] == buffer.feed(b"a" * 4096)
        assert [] == buffer.feed(b"tail\n")

    def test_oversized_line_holds_no_bytes_while_it_is_discarded(self) -> None:
        buffer = FrameBuffer()
        buffer.feed(b"a" * (MAX_FRAME + 10))

        for _ in range(3):
            assert [] == buffer.feed(b"b" * 65536)
            assert 0 == buffer.pending

    def test_stream_continues_after_the_next_newline(self) -> None:
        buffer = FrameBuffer()
        stream = b"before\n" + b"a" * (MAX_FRAME + 1) + b"\nafter\n"

        assert [b"before", TOO_LARGE, b"after"] == shape(buffer.feed(stream))

    def test_stream_continues_after_an_oversized_line_fed_in_pieces(self) -> None:
        buffer = FrameBuffer()
        pieces = [b"a" * 300_000] * 4 + [b"a\nnext\n"]

        assert [TOO_LARGE, b"next"] == feed_all(buffer, pieces)

    def test_frame_too_large_has_its_wire_code_and_names_the_limit(self) -> None:
        [error] = FrameBuffer().feed(b"a" * (MAX_FRAME + 1) + b"\n")

        assert isinstance(error, FrameTooLarge)
        assert "frame_too_large" == error.code
        assert str(MAX_FRAME) in error.message

    @pytest.mark.parametrize(
        "stream",
        [
            b"abcd\nabcde\nab\n",
            b"abcdefgh\n\nabcd\n",
            b"abcdefghij",
            b"\n\nabcde\nabcdefghijk\nab",
            b"abcdeabcde\nabcd\nabcdeabcdeabcde\n",
        ],
    )
    def test_small_limit_cut_at_every_pair_of_positions_matches_the_reference(
        self, stream: bytes
    ) -> None:
        expected = reference_split(stream, max_frame=4)

        for first, second in itertools.combinations_with_replacement(range(len(stream) + 1), 2):
            actual = feed_all(FrameBuffer(max_frame=4), cut(stream, (first, second)))
            assert expected == actual, f"cut at {first}, {second}"
