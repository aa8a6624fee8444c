"""The basic SMTP dialogue of the server core (RFC 5321 §3, §4.1.1)."""

from __future__ import annotations

import pytest
from server_helpers import drain, make, talk

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    BodyChunk,
    EndOfMessage,
    Hello,
    MailFrom,
    Quit,
    RcptTo,
    Reply,
    ServerConnection,
)


def test_greeting_default() -> None:
    conn = make(greet=False)
    conn.greet()
    assert conn.data_to_send() == b"220 mx.example ESMTP esmtp-core ready\r\n"


def test_full_transaction_byte_exact() -> None:
    conn = make()
    conn.receive_data(
        b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
    )
    events = drain(conn)
    assert [type(e) for e in events] == [Hello, MailFrom, RcptTo]
    assert events[0] == Hello(verb="EHLO", hostname="client.example")
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == (
        b"250-mx.example\r\n"
        b"250-PIPELINING\r\n"
        b"250-SIZE 33554432\r\n"
        b"250-8BITMIME\r\n"
        b"250-ENHANCEDSTATUSCODES\r\n"
        b"250-SMTPUTF8\r\n"
        b"250-CHUNKING\r\n"
        b"250-BINARYMIME\r\n"
        b"250 DSN\r\n"
        b"250 2.1.0 Sender OK\r\n"
        b"250 2.1.5 Recipient OK\r\n"
        b"354 End data with <CR><LF>.<CR><LF>\r\n"
    )
    conn.receive_data(b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
    assert conn.next_event() == BodyChunk(data=b"Subject: hi\r\n\r\n.dot\r\n")
    eom = conn.next_event()
    assert eom == EndOfMessage(size=21, recipients=("b@example.net",))
    assert conn.next_event() is PAUSED
    assert conn.pending is eom
    conn.accept("queued as 1234")
    assert conn.next_event() == Quit()
    assert conn.closed
    assert conn.data_to_send() == (
        b"250 2.0.0 queued as 1234\r\n221 2.0.0 mx.example Service closing\r\n"
    )


def test_reject_sender_keeps_session_usable() -> None:
    conn = make()
    talk(conn, b"EHLO c\r\n")
    out = talk(conn, b"MAIL FROM:<spam@example.org>\r\n", lambda c, e: c.reject())
    assert out == b"550 5.7.1 Sender rejected\r\n"
    assert not conn.in_transaction
    out = talk(conn, b"MAIL FROM:<ok@example.org>\r\n")
    assert out == b"250 2.1.0 Sender OK\r\n"
    assert conn.in_transaction


def test_send_reply_custom() -> None:
    conn = make()
    talk(conn, b"EHLO c\r\n")
    out = talk(
        conn,
        b"MAIL FROM:<a@example.org>\r\n",
        lambda c, e: c.send_reply(Reply.make(451, "4.7.1", "Greylisted", "try later")),
    )
    assert out == b"451-4.7.1 Greylisted\r\n451 4.7.1 try later\r\n"


def test_connection_has_slots_only() -> None:
    # Every attribute is a slot (mixins included): an instance __dict__ past 30 attributes loses
    # CPython's key sharing and slows the per-read path (see ServerConnection.__slots__).
    conn = ServerConnection()
    assert not hasattr(conn, "__dict__")
    with pytest.raises(AttributeError):
        conn.typo = 1  # type: ignore[attr-defined]
