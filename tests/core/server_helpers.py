"""Helpers for the server-core tests: drive a ServerConnection with a scripted policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    BodyChunk,
    ServerConfig,
    ServerConnection,
)

Policy = Callable[[ServerConnection, object], None]


def accept_all(conn: ServerConnection, event: object) -> None:
    """Answer every decision positively."""
    conn.accept()


def make(*, greet: bool = True, **options: Any) -> ServerConnection:
    """A connection with ``hostname="mx.example"`` and the given options, greeted and flushed."""
    options.setdefault("hostname", "mx.example")
    conn = ServerConnection(ServerConfig(**options))
    if greet:
        conn.greet()
        conn.data_to_send()
    return conn


def drain(conn: ServerConnection, policy: Policy | None = accept_all) -> list[Any]:
    """Run ``next_event`` until NEED_DATA (or PAUSED with nothing to answer), answering each
    decision with ``policy``. Returns the events in order."""
    events: list[Any] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        if event is PAUSED:
            if conn.pending is None or policy is None:
                return events
            continue
        events.append(event)
        if conn.pending is event and policy is not None:
            policy(conn, event)


def talk(conn: ServerConnection, data: bytes, policy: Policy | None = accept_all) -> bytes:
    """Feed ``data``, run the events through ``policy`` and return the reply bytes."""
    conn.receive_data(data)
    drain(conn, policy)
    return conn.data_to_send()


def feed_in_reads(conn: ServerConnection, wire: bytes, read: int) -> list[Any]:
    """Feed ``wire`` in reads of ``read`` octets, draining (accepting) after each one; the
    events in order."""
    events: list[Any] = []
    for start in range(0, len(wire), read):
        conn.receive_data(wire[start : start + read])
        events += drain(conn)
    return events


def body_of(events: list[Any]) -> bytes:
    """The concatenated BodyChunk data."""
    return b"".join(e.data for e in events if isinstance(e, BodyChunk))


def session(**options: Any) -> ServerConnection:
    """A greeted connection after an accepted ``EHLO client``."""
    conn = make(**options)
    talk(conn, b"EHLO client\r\n")
    return conn


def in_transaction(**options: Any) -> ServerConnection:
    """A session with an accepted ``MAIL FROM:<a@example.org>`` and ``RCPT TO:<b@example.net>``."""
    conn = session(**options)
    talk(conn, b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n")
    return conn
