"""The server's receive buffer."""

from __future__ import annotations

from esmtp_core._receivebuffer import ReceiveBuffer


def test_lines_and_partial_lines() -> None:
    buf = ReceiveBuffer()
    assert buf.extract_line() is None
    buf.append(b"NOOP\r\nRS")
    assert buf.extract_line() == b"NOOP\r\n"
    assert buf.extract_line() is None
    assert len(buf) == 2
    buf.append(b"ET\nrest")
    assert buf.extract_line() == b"RSET\n"
    assert buf.peek(100) == b"rest"
    assert buf.peek(2) == b"re"
    buf.discard(1)
    assert buf.peek(100) == b"est"
    buf.clear()
    assert not buf


def test_whole_read_is_not_copied() -> None:
    buf = ReceiveBuffer()
    data = b"x" * 100_000
    buf.append(data)
    assert buf.peek(1 << 20) is data
    buf.discard(len(data))
    assert len(buf) == 0


def test_search_resumes_where_it_stopped() -> None:
    # Feeding a long line one byte at a time stays linear: each search starts where the last
    # one ended (checked through the internal marker, since timing tests are flaky).
    buf = ReceiveBuffer()
    for _ in range(1000):
        buf.append(b"a")
        assert buf.extract_line() is None
    assert buf._searched == 1000
    buf.append(b"\n")
    assert buf.extract_line() == b"a" * 1000 + b"\n"
    assert buf._searched == 0


def test_short_rest_of_a_read_is_handed_out_without_another_copy() -> None:
    # A BDAT command line and its chunk in one read: after the line, the chunk is a bytes object
    # that peek() returns as is (one copy in all, not bytearray and back).
    buf = ReceiveBuffer()
    buf.append(b"BDAT 5 LAST\r\nhello")
    assert buf.extract_line() == b"BDAT 5 LAST\r\n"
    assert isinstance(buf.data, bytes)
    rest = buf.peek(100)
    assert rest == b"hello"
    assert buf.peek(100) is rest


def test_long_rest_of_a_read_is_trimmed_in_place() -> None:
    # Many lines off one large read: the read becomes a bytearray whose front is deleted in
    # place, so taking every line stays linear.
    buf = ReceiveBuffer()
    buf.append(b"NOOP\r\n" * 2000)
    assert buf.extract_line() == b"NOOP\r\n"
    assert isinstance(buf.data, bytearray)
    lines = 1
    while buf.extract_line() is not None:
        lines += 1
    assert lines == 2000
    assert not buf.data


def test_discard_keeps_the_search_position_consistent() -> None:
    buf = ReceiveBuffer()
    buf.append(b"abcdef")
    assert buf.extract_line() is None
    buf.discard(2)
    assert buf._searched == 4
    assert buf.data == b"cdef"
    buf.append(b"\nxy")
    assert buf.extract_line() == b"cdef\n"
    assert buf.data == b"xy"
