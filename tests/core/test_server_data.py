"""DATA (RFC 5321 §4.1.1.4, §4.5.2): streaming, unstuffing, end of data, bare CR/LF, limits."""

from __future__ import annotations

from typing import Any

import pytest
from server_helpers import body_of, drain, feed_in_reads, in_transaction, session, talk

from esmtp_core import (
    BareLineEndingPolicy,
    BodyChunk,
    EndOfMessage,
    LocalProtocolError,
    MailFrom,
    MessageAborted,
    RcptTo,
)

START = b"354 End data with <CR><LF>.<CR><LF>\r\n"


def send_message(wire: bytes, **options: Any) -> tuple[list[Any], bytes]:
    conn = in_transaction(**options)
    conn.receive_data(b"DATA\r\n" + wire)
    events = drain(conn)
    return list(events), conn.data_to_send()


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (b".\r\n", b""),
        (b"\r\n.\r\n", b"\r\n"),
        (b"a\r\n.\r\n", b"a\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"..x\r\n...\r\n.\r\n", b".x\r\n..\r\n"),
        (b"a\r\n..b\r\n.c\r\n.\r\n", b"a\r\n.b\r\nc\r\n"),
        (b"no final newline\r\n.\r\n", b"no final newline\r\n"),
        (b"x" * 998 + b"\r\n.\r\n", b"x" * 998 + b"\r\n"),
        (b"\x00\xff\x80 8-bit\r\n.\r\n", b"\x00\xff\x80 8-bit\r\n"),
    ],
)
def test_unstuffing(wire: bytes, body: bytes) -> None:
    events, out = send_message(wire)
    assert body_of(events) == body
    assert events[-1] == EndOfMessage(size=len(body), recipients=("b@example.net",))
    assert out == START + b"250 2.0.0 Message accepted\r\n"


def test_empty_message_has_no_chunk() -> None:
    events, _ = send_message(b".\r\n")
    assert not any(isinstance(e, BodyChunk) for e in events)


def test_chunks_bounded_by_max_chunk_size() -> None:
    body = b"".join(b"line %05d\r\n" % i for i in range(100))
    events, _ = send_message(body + b".\r\n", max_chunk_size=64)
    chunks = [e for e in events if isinstance(e, BodyChunk)]
    assert all(0 < len(c.data) <= 64 for c in chunks)
    assert b"".join(c.data for c in chunks) == body


def test_streaming_byte_by_byte() -> None:
    conn = in_transaction()
    talk(conn, b"DATA\r\n")
    wire = b"Subject: x\r\n\r\n..a\r\n.\r\nNOOP\r\n"
    events: list[object] = []
    for i in range(len(wire)):
        conn.receive_data(wire[i : i + 1])
        events += drain(conn)
    assert body_of(events) == b"Subject: x\r\n\r\n.a\r\n"
    assert isinstance(events[-1], EndOfMessage)
    assert conn.data_to_send() == b"250 2.0.0 Message accepted\r\n250 2.0.0 OK\r\n"


# Every way of writing an end-of-data marker with a bare CR or LF. None of them ends the data.
SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r.\n", b"\n.\r", b"\r.\r"]
SMUGGLED = (
    b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
    b"From: spoofed\r\n\r\nsmuggled\r\n"
)


@pytest.mark.parametrize("marker", SMUGGLING)
def test_bare_endings_never_end_data_and_reject(marker: bytes) -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\nlegit" + marker + SMUGGLED + b".\r\nNOOP\r\n")
    events = drain(conn)
    assert not any(isinstance(e, (MailFrom, RcptTo, EndOfMessage)) for e in events)
    assert [e for e in events if isinstance(e, MessageAborted)] == [
        MessageAborted(reply=events[-1].reply)
    ]
    assert conn.data_to_send() == (
        START
        + "550 5.6.11 Message contains a bare CR or LF (RFC 5321 §2.3.8)\r\n".encode()
        + b"250 2.0.0 OK\r\n"
    )
    assert not conn.in_transaction


@pytest.mark.parametrize("marker", SMUGGLING)
def test_bare_endings_split_everywhere(marker: bytes) -> None:
    wire = b"DATA\r\nlegit" + marker + SMUGGLED + b".\r\nNOOP\r\n"
    for split in range(1, len(wire)):
        conn = in_transaction()
        conn.receive_data(wire[:split])
        events = drain(conn)
        conn.receive_data(wire[split:])
        events += drain(conn)
        assert [type(e) for e in events if not isinstance(e, BodyChunk)] == [MessageAborted]


@pytest.mark.parametrize("marker", SMUGGLING)
def test_bare_endings_normalized_is_one_message(marker: bytes) -> None:
    conn = in_transaction(bare_line_endings=BareLineEndingPolicy.NORMALIZE)
    conn.receive_data(b"DATA\r\nlegit" + marker + SMUGGLED + b".\r\nNOOP\r\n")
    events = drain(conn)
    assert [type(e) for e in events if not isinstance(e, BodyChunk)] == [EndOfMessage]
    body = body_of(events)
    assert body.startswith(b"legit\r\n")
    assert body.endswith(SMUGGLED)
    assert body == body.replace(b"\r", b"").replace(b"\n", b"\r\n")  # only CRLF remains
    assert conn.data_to_send().endswith(b"250 2.0.0 Message accepted\r\n250 2.0.0 OK\r\n")


def test_normalize_each_bare_ending() -> None:
    events, _ = send_message(
        b"a\nb\rc\r\r\nd\n\r\n.\r\n", bare_line_endings=BareLineEndingPolicy.NORMALIZE
    )
    assert body_of(events) == b"a\r\nb\r\nc\r\n\r\nd\r\n\r\n"


def test_size_limit() -> None:
    events, out = send_message(b"x" * 40 + b"\r\n.\r\n", max_message_size=42)
    assert isinstance(events[-1], EndOfMessage)
    assert events[-1].size == 42
    events, out = send_message(
        b"x" * 41 + b"\r\n" + b"y" * 900 + b"\r\n.\r\nNOOP\r\n", max_message_size=42
    )
    assert events[-1] == MessageAborted(reply=events[-1].reply)
    assert sum(len(e.data) for e in events if isinstance(e, BodyChunk)) <= 42
    assert out == (
        START
        + b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
        + b"250 2.0.0 OK\r\n"
    )


def test_size_limit_memory_bounded_streaming() -> None:
    conn = in_transaction(max_message_size=1000, max_chunk_size=4096)
    talk(conn, b"DATA\r\n")
    for _ in range(200):  # 1.6 MB after the limit is crossed: consumed, not kept
        conn.receive_data((b"z" * 78 + b"\r\n") * 100)
        assert not any(isinstance(e, BodyChunk) and len(e.data) > 4096 for e in drain(conn))
        assert len(conn._buf) == 0  # the buffer is drained: nothing piles up
    conn.receive_data(b".\r\n")
    assert isinstance(drain(conn)[-1], MessageAborted)


def test_line_length_limit() -> None:
    events, out = send_message(b"x" * 999 + b"\r\n.\r\nNOOP\r\n")
    assert isinstance(events[-1], MessageAborted)
    assert (
        out == START + b"554 5.6.0 Message has a line longer than 1000 octets\r\n250 2.0.0 OK\r\n"
    )
    events, out = send_message(b"x" * 2000 + b"\r\n.\r\n", max_data_line_length=None)
    assert isinstance(events[-1], EndOfMessage)
    events, out = send_message(b"ab\r\nabc\r\n.\r\n", max_data_line_length=5)
    assert isinstance(events[-1], EndOfMessage)
    events, out = send_message(b"ab\r\nabcd\r\n.\r\n", max_data_line_length=5)
    assert isinstance(events[-1], MessageAborted)


def test_line_length_across_reads() -> None:
    conn = in_transaction(max_data_line_length=100)
    talk(conn, b"DATA\r\n")
    events = []
    for _ in range(19):
        conn.receive_data(b"x" * 5)
        events += drain(conn)
    conn.receive_data(b"\r\n.\r\n")
    events += drain(conn)
    assert isinstance(events[-1], EndOfMessage)
    conn = in_transaction(max_data_line_length=100)
    talk(conn, b"DATA\r\n")
    for _ in range(20):
        conn.receive_data(b"x" * 5)
        drain(conn)
    conn.receive_data(b"y\r\n.\r\n")
    assert isinstance(drain(conn)[-1], MessageAborted)


@pytest.mark.parametrize(
    ("setup", "reply"),
    [
        (b"", b"503 5.5.1 Need MAIL command first\r\n"),
        (b"MAIL FROM:<a@b.c>\r\n", b"554 5.5.1 No valid recipients\r\n"),
        (
            b"MAIL FROM:<a@b.c> BODY=BINARYMIME\r\nRCPT TO:<d@e.f>\r\n",
            b"503 5.5.1 BODY=BINARYMIME requires BDAT\r\n",
        ),
        (
            b"MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nBDAT 1\r\nx",
            b"503 5.5.1 DATA not allowed in a BDAT transaction\r\n",
        ),
    ],
)
def test_data_sequencing(setup: bytes, reply: bytes) -> None:
    conn = session()
    if setup:
        talk(conn, setup)
    # The body lines after a refused DATA are read as commands (the client must wait for 354).
    assert talk(conn, b"DATA\r\n") == reply


def test_rejected_message_and_next_transaction() -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\nspam\r\n.\r\nMAIL FROM:<a@example.org>\r\n")
    events = drain(conn, lambda c, e: c.reject() if isinstance(e, EndOfMessage) else c.accept())
    assert isinstance(events[-1], MailFrom)
    assert conn.data_to_send() == START + b"554 5.7.1 Message rejected\r\n250 2.1.0 Sender OK\r\n"


def test_data_without_recipients_ends_the_transaction() -> None:
    conn = session()
    conn.receive_data(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n"
        b"MAIL FROM:<b@example.org>\r\n"
    )
    events = drain(conn, lambda c, e: c.reject() if isinstance(e, RcptTo) else c.accept())
    assert [type(e) for e in events] == [MailFrom, RcptTo, MessageAborted, MailFrom]
    assert conn.data_to_send() == (
        b"250 2.1.0 Sender OK\r\n"
        b"550 5.1.1 Recipient rejected\r\n"
        b"554 5.5.1 No valid recipients\r\n"
        b"250 2.1.0 Sender OK\r\n"
    )


@pytest.mark.parametrize("read", [7, 100, 1 << 20])
def test_dot_heavy_body(read: int) -> None:
    body = b"".join(b"." * (i % 3) + b"x%d\r\n" % i for i in range(500)) + b".\r\n..\r\n"
    wire = body.replace(b"\r\n.", b"\r\n..")
    wire = (b"." + wire if wire.startswith(b".") else wire) + b".\r\nNOOP\r\n"
    conn = in_transaction()
    talk(conn, b"DATA\r\n")
    events = feed_in_reads(conn, wire, read)
    assert body_of(events) == body
    assert isinstance(events[-1], EndOfMessage)
    assert conn.data_to_send() == b"250 2.0.0 Message accepted\r\n250 2.0.0 OK\r\n"


def test_answering_before_the_decision_is_handed_out() -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\nhello\r\n.\r\n")
    assert conn.next_event() is not None  # BodyChunk; the EndOfMessage is queued behind it
    with pytest.raises(LocalProtocolError):
        conn.accept()
    assert isinstance(conn.next_event(), EndOfMessage)
    conn.accept()


def test_trickled_body_is_batched_and_ends_promptly() -> None:
    conn = in_transaction()
    talk(conn, b"DATA\r\n")
    wire = b"y" * 70 + b"\r\n"
    events = []
    for _ in range(50):
        for i in range(len(wire)):
            conn.receive_data(wire[i : i + 1])
            events += drain(conn)
    for byte in b".\r\n":
        conn.receive_data(bytes([byte]))
        events += drain(conn)
    chunks = [e for e in events if isinstance(e, BodyChunk)]
    assert len(chunks) <= 4
    assert body_of(events) == wire * 50
    assert isinstance(events[-1], EndOfMessage)  # right after the last byte of ".\r\n"


@pytest.mark.parametrize("read", [5, 333, 1 << 20])
@pytest.mark.parametrize("kind", ["prose", "base64"])
def test_full_stops_and_dot_lines(kind: str, read: int) -> None:
    # Prose has a full stop every few words (the decoder then searches for "CRLF ." itself);
    # base64 has no dot at all (it hops from dot line to dot line). Same reading either way.
    if kind == "prose":
        lines = [b"Line %d. Ends here. ...\r\n" % i for i in range(300)]
    else:
        lines = [b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo%04d\r\n" % i for i in range(300)]
    lines[7::50] = [b"." + line for line in lines[7::50]]
    body = b"".join(lines)
    wire = body.replace(b"\r\n.", b"\r\n..") + b".\r\nNOOP\r\n"
    conn = in_transaction()
    talk(conn, b"DATA\r\n")
    events = feed_in_reads(conn, wire, read)
    assert body_of(events) == body
    assert events[-1] == EndOfMessage(size=len(body), recipients=("b@example.net",))
    assert conn.data_to_send() == b"250 2.0.0 Message accepted\r\n250 2.0.0 OK\r\n"


def test_receiving_body_is_true_from_the_354_to_the_end_of_data() -> None:
    conn = in_transaction()
    assert not conn.receiving_body
    assert talk(conn, b"DATA\r\n") == START
    assert conn.receiving_body
    talk(conn, b"Subject: x\r\n\r\npart")
    assert conn.receiving_body
    assert talk(conn, b"\r\n.\r\n").startswith(b"250")
    assert not conn.receiving_body


def test_receiving_body_is_false_after_a_whole_message_in_one_read() -> None:
    conn = in_transaction()
    replies = talk(conn, b"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
    assert replies.startswith(START)
    assert not conn.receiving_body
