"""Helpers for the client-core tests: drive a ClientConnection with hand-written server bytes."""

from __future__ import annotations

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    ClientConfig,
    ClientConnection,
    ClientEvent,
    EhloReply,
    Greeting,
    SessionEnded,
)

FULL_EHLO = (
    b"250-mx.example hello\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE 1000000\r\n"
    b"250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250-DSN\r\n"
    b"250-CHUNKING\r\n"
    b"250-BINARYMIME\r\n"
    b"250-AUTH PLAIN LOGIN\r\n"
    b"250 STARTTLS\r\n"
)
PLAIN_EHLO = b"250-mx.example hello\r\n250 8BITMIME\r\n"


def events(conn: ClientConnection, data: bytes = b"") -> list[ClientEvent]:
    """Feed ``data`` and collect events until the connection needs more (or ended/paused)."""
    if data:
        conn.receive_data(data)
    out: list[ClientEvent] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return out
        assert isinstance(event, ClientEvent)
        out.append(event)
        if isinstance(event, SessionEnded):
            return out


def one(conn: ClientConnection, data: bytes = b"") -> ClientEvent:
    """Feed ``data``; exactly one event must come out."""
    got = events(conn, data)
    assert len(got) == 1, got
    return got[0]


def hello_sent(config: ClientConfig | None = None) -> ClientConnection:
    """A greeted connection whose EHLO (LHLO with ``lmtp=True``) has left; no reply read yet."""
    conn = ClientConnection(config)
    events(conn, b"220 mx.example\r\n")
    if conn.config.lmtp:
        conn.lhlo()
    else:
        conn.ehlo()
    conn.data_to_send()
    return conn


def ready(ehlo: bytes = FULL_EHLO, **config: object) -> ClientConnection:
    """A connection greeted and past EHLO (LHLO with lmtp=True) with the given capabilities."""
    conn = ClientConnection(ClientConfig(**config))  # type: ignore[arg-type]
    assert isinstance(one(conn, b"220 mx.example ESMTP\r\n"), Greeting)
    conn.hello()
    verb = b"LHLO" if conn.config.lmtp else b"EHLO"
    assert conn.data_to_send() == verb + b" localhost\r\n"
    event = one(conn, ehlo)
    assert isinstance(event, EhloReply)
    assert event.ok
    return conn
