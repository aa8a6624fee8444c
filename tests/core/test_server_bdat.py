"""BDAT (RFC 3030): counted chunks, LAST, refused chunks still consumed, BINARYMIME."""

from __future__ import annotations

import pytest
from server_helpers import body_of, drain, in_transaction, session, talk

from esmtp_core import BodyChunk, EndOfMessage, MessageAborted, Reset


def test_chunks_and_last() -> None:
    conn = in_transaction()
    conn.receive_data(b"BDAT 5\r\nhelloBDAT 8\r\n\r\n.\r\n\x00\n\rBDAT 0 LAST\r\nNOOP\r\n")
    events = drain(conn)
    assert body_of(events) == b"hello\r\n.\r\n\x00\n\r"
    assert events[-1] == EndOfMessage(size=13, recipients=("b@example.net",))
    assert conn.data_to_send() == (
        b"250 2.0.0 Chunk received\r\n" * 2 + b"250 2.0.0 Message accepted\r\n250 2.0.0 OK\r\n"
    )
    assert not conn.in_transaction


def test_single_last_chunk_case_insensitive() -> None:
    conn = in_transaction()
    conn.receive_data(b"bdat 3 last\r\nabc")
    events = drain(conn)
    assert body_of(events) == b"abc"
    assert events[-1] == EndOfMessage(size=3, recipients=("b@example.net",))


def test_bdat_zero_last_only() -> None:
    conn = in_transaction()
    conn.receive_data(b"BDAT 0 LAST\r\n")
    assert drain(conn) == [EndOfMessage(size=0, recipients=("b@example.net",))]


def test_chunk_streamed_in_pieces_bounded_by_chunk_size() -> None:
    conn = in_transaction(max_chunk_size=1000)
    conn.receive_data(b"BDAT 3000 LAST\r\n" + b"a" * 1500)
    first = drain(conn)
    assert first == [BodyChunk(data=b"a" * 1000)]  # 500 left: too few to hand out yet
    conn.receive_data(b"b" * 1500 + b"NOOP\r\n")
    events = drain(conn)
    assert [len(e.data) for e in events if isinstance(e, BodyChunk)] == [1000, 1000]
    assert isinstance(events[-1], EndOfMessage)
    assert conn.data_to_send() == b"250 2.0.0 Message accepted\r\n250 2.0.0 OK\r\n"


def test_trickled_chunk_is_batched() -> None:
    conn = in_transaction()
    conn.receive_data(b"BDAT 2000 LAST\r\n")
    events = []
    for _ in range(2000):
        conn.receive_data(b"x")
        events += drain(conn)
    chunks = [e for e in events if isinstance(e, BodyChunk)]
    assert len(chunks) <= 2
    assert b"".join(c.data for c in chunks) == b"x" * 2000
    assert isinstance(events[-1], EndOfMessage)


@pytest.mark.parametrize(
    ("setup", "reply"),
    [
        (b"", b"503 5.5.1 Need MAIL command first\r\n"),
        (b"MAIL FROM:<a@b.c>\r\n", b"554 5.5.1 No valid recipients\r\n"),
    ],
)
def test_refused_bdat_chunk_is_consumed(setup: bytes, reply: bytes) -> None:
    # go-smtp #315: the chunk of a refused BDAT must not be read as commands.
    conn = session()
    if setup:
        talk(conn, setup)
    chunk = b"MAIL FROM:<evil@example.com>\r\n"
    conn.receive_data(b"BDAT %d LAST\r\n%sNOOP\r\n" % (len(chunk), chunk))
    events = drain(conn)
    assert all(isinstance(e, MessageAborted) for e in events)
    assert not conn.in_transaction
    assert conn.data_to_send() == reply + b"250 2.0.0 OK\r\n"


def test_bdat_without_chunking_still_consumed() -> None:
    conn = session(chunking=False)
    out = talk(conn, b"BDAT 6\r\nRSET\r\nNOOP\r\n")
    assert out == b"502 5.5.1 Command not implemented\r\n250 2.0.0 OK\r\n"


@pytest.mark.parametrize(
    "argument", [b"", b"x", b"-1", b"5 MORE", b"5LAST", b"123456789012345678901"]
)
def test_bdat_syntax(argument: bytes) -> None:
    conn = in_transaction()
    out = talk(conn, b"BDAT " + argument + b"\r\n")
    assert out == b"501 5.5.4 Syntax: BDAT chunk-size [LAST]\r\n"


def test_no_data_or_rcpt_inside_bdat_transaction() -> None:
    conn = in_transaction()
    out = talk(conn, b"BDAT 2\r\nabDATA\r\nRCPT TO:<c@example.net>\r\n")
    assert out == (
        b"250 2.0.0 Chunk received\r\n"
        b"503 5.5.1 DATA not allowed in a BDAT transaction\r\n"
        b"503 5.5.1 RCPT not allowed after BDAT\r\n"
    )
    assert conn.in_transaction


def test_rset_abandons_bdat_transaction() -> None:
    conn = in_transaction()
    conn.receive_data(b"BDAT 2\r\nabRSET\r\nBDAT 1 LAST\r\nx")
    events = drain(conn)
    assert [type(e) for e in events] == [BodyChunk, Reset]
    assert conn.data_to_send() == (
        b"250 2.0.0 Chunk received\r\n250 2.0.0 OK\r\n503 5.5.1 Need MAIL command first\r\n"
    )


def test_binarymime_only_with_bdat() -> None:
    conn = session()
    talk(conn, b"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\nRCPT TO:<b@example.net>\r\n")
    assert talk(conn, b"DATA\r\n") == b"503 5.5.1 BODY=BINARYMIME requires BDAT\r\n"
    conn.receive_data(b"BDAT 4 LAST\r\n\x00\r\n\xff")
    events = drain(conn)
    assert body_of(events) == b"\x00\r\n\xff"
    assert isinstance(events[-1], EndOfMessage)


def test_size_limit_across_chunks() -> None:
    conn = in_transaction(max_message_size=10)
    conn.receive_data(b"BDAT 6\r\n123456BDAT 6 LAST\r\n789012NOOP\r\n")
    events = drain(conn)
    assert body_of(events) == b"123456"  # nothing beyond the limit is handed out
    assert isinstance(events[-1], MessageAborted)
    assert events[-1].reply.code == 552
    assert conn.data_to_send() == (
        b"250 2.0.0 Chunk received\r\n"
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
        b"250 2.0.0 OK\r\n"
    )
    assert not conn.in_transaction


def test_eof_inside_chunk() -> None:
    conn = in_transaction()
    talk(conn, b"BDAT 100\r\nabc")
    conn.receive_data(b"")
    events = drain(conn)
    assert events[-1].in_transaction is True
