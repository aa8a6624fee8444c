"""STARTTLS (RFC 3207): the 220, the plaintext-injection defence and the session reset."""

from __future__ import annotations

import pytest
from server_helpers import drain, make, session, talk

from esmtp_core import (
    PAUSED,
    ChannelBinding,
    ConnectionClosed,
    Hello,
    LocalProtocolError,
    StartTLS,
)


def test_ehlo_offers_starttls_only_before_tls() -> None:
    conn = session(starttls=True)
    assert talk(conn, b"EHLO again\r\n").endswith(b"250-DSN\r\n250 STARTTLS\r\n")
    assert b"REQUIRETLS" not in talk(conn, b"EHLO again\r\n")


def test_injection_defence() -> None:
    conn = session(starttls=True)
    # The classic attack (CVE-2011-0411): commands pipelined behind STARTTLS in plaintext.
    conn.receive_data(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<v@example.net>\r\n")
    assert conn.next_event() == StartTLS()
    assert conn.data_to_send() == b"220 2.0.0 Ready to start TLS\r\n"
    assert conn.next_event() is PAUSED
    conn.receive_data(b"DATA\r\n")  # still plaintext: dropped too
    assert conn.next_event() is PAUSED
    conn.tls_started(ChannelBinding("tls-exporter", b"x" * 32))
    assert conn.tls_active
    assert conn.hello_name is None  # RFC 3207 §4.2: the client must say EHLO again
    conn.receive_data(b"MAIL FROM:<a@example.org>\r\n")
    assert drain(conn) == []
    assert conn.data_to_send() == b"503 5.5.1 Send EHLO or HELO first\r\n"
    out = talk(conn, b"EHLO client\r\n")
    assert b"STARTTLS" not in out
    assert out.endswith(b"250-DSN\r\n250-AUTH PLAIN LOGIN\r\n250 REQUIRETLS\r\n")


def test_starttls_refusals() -> None:
    conn = session()
    assert talk(conn, b"STARTTLS\r\n") == b"502 5.5.1 STARTTLS not available\r\n"
    conn = make(starttls=True)
    assert talk(conn, b"STARTTLS\r\n") == b"503 5.5.1 Send EHLO or HELO first\r\n"
    conn = session(tls_on_connect=True)
    assert talk(conn, b"STARTTLS\r\n") == b"503 5.5.1 TLS already active\r\n"
    conn = session(starttls=True)
    talk(conn, b"MAIL FROM:<a@example.org>\r\n")
    assert talk(conn, b"STARTTLS\r\n") == (
        b"503 5.5.1 STARTTLS not allowed during a mail transaction\r\n"
    )


def test_starttls_twice_after_tls() -> None:
    conn = session(starttls=True)
    talk(conn, b"STARTTLS\r\n")
    conn.tls_started()
    talk(conn, b"EHLO c\r\n")
    assert talk(conn, b"STARTTLS\r\n") == b"503 5.5.1 TLS already active\r\n"
    with pytest.raises(LocalProtocolError):
        conn.tls_started()


def test_eof_during_handshake() -> None:
    conn = session(starttls=True)
    talk(conn, b"STARTTLS\r\n")
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed(in_transaction=False)
    assert conn.closed


def test_implicit_tls_channel_binding_before_commands() -> None:
    conn = make(tls_on_connect=True)
    conn.tls_started(ChannelBinding("tls-exporter", b"k" * 32))
    conn.receive_data(b"EHLO c\r\n")
    assert drain(conn) == [Hello(verb="EHLO", hostname="c")]
    out = conn.data_to_send()
    assert b"AUTH PLAIN LOGIN" in out
    assert b"REQUIRETLS" in out
    with pytest.raises(LocalProtocolError):
        conn.tls_started()
