"""LMTP (RFC 2033) as a mode of the server core: LHLO, one reply per recipient after the data."""

from __future__ import annotations

from server_helpers import drain, make, talk

from esmtp_core import EndOfMessage, Hello, MessageAborted, Reply


def lmtp_transaction(**options: object):  # type: ignore[no-untyped-def]
    conn = make(lmtp=True, **options)
    talk(conn, b"LHLO client\r\n")
    talk(
        conn,
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<one@example.net>\r\nRCPT TO:<bad@example.net>\r\n"
        b"RCPT TO:<two@example.net>\r\n",
        lambda c, e: c.reject() if "bad" in getattr(e, "address", "") else c.accept(),
    )
    return conn


def test_lhlo_and_refused_helo() -> None:
    conn = make(lmtp=True)
    assert talk(conn, b"HELO c\r\n") == (
        b"500 5.5.1 Command not recognized; this is LMTP, use LHLO\r\n"
    )
    assert talk(conn, b"EHLO c\r\n") == (
        b"500 5.5.1 Command not recognized; this is LMTP, use LHLO\r\n"
    )
    assert talk(conn, b"MAIL FROM:<a@b.c>\r\n") == b"503 5.5.1 Send LHLO first\r\n"
    conn.receive_data(b"LHLO c\r\n")
    assert drain(conn) == [Hello(verb="LHLO", hostname="c")]
    assert conn.data_to_send().startswith(b"250-mx.example\r\n250-PIPELINING\r\n")


def test_one_reply_per_recipient_after_data() -> None:
    conn = lmtp_transaction()
    conn.receive_data(b"DATA\r\nhi\r\n.\r\n")
    events = drain(conn, None)
    eom = events[-1]
    assert eom == EndOfMessage(size=4, recipients=("one@example.net", "two@example.net"))
    conn.data_to_send()
    conn.send_reply(Reply.make(250, "2.1.5", "one delivered"))
    assert conn.pending is eom  # still owed one more
    conn.send_reply(Reply.make(452, "4.2.2", "two over quota"))
    assert conn.pending is None
    assert not conn.in_transaction
    assert conn.data_to_send() == b"250 2.1.5 one delivered\r\n452 4.2.2 two over quota\r\n"


def test_accept_answers_all_remaining() -> None:
    conn = lmtp_transaction()
    conn.receive_data(b"BDAT 2 LAST\r\nhi")
    drain(conn, None)
    conn.data_to_send()
    conn.send_reply(Reply.make(550, "5.1.1", "one gone"))
    conn.accept()
    assert conn.data_to_send() == b"550 5.1.1 one gone\r\n250 2.0.0 Message accepted\r\n"


def test_no_valid_recipients_is_503() -> None:
    conn = make(lmtp=True)
    talk(conn, b"LHLO c\r\nMAIL FROM:<a@example.org>\r\n")
    assert talk(conn, b"DATA\r\n") == b"503 5.5.1 No valid recipients\r\n"


def test_core_refusal_repeated_per_recipient() -> None:
    conn = lmtp_transaction(max_message_size=5)
    conn.receive_data(b"DATA\r\n0123456789\r\n.\r\n")
    events = drain(conn)
    assert isinstance(events[-1], MessageAborted)
    assert conn.data_to_send().endswith(
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n" * 2
    )
