"""Drive our sans-I/O cores in memory for the benchmarks (no sockets, no threads).

The driver answers every decision the way a discarding server would (``accept()``), so what is
timed is the core's own work plus the minimum any embedding code must do (call ``next_event()``
until ``NEED_DATA``, look at the event's type).

The cores are being written alongside the benchmarks; when a name is not there yet the matching
cases are reported as skipped instead of failing the whole run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import esmtp_core

__all__ = [
    "CLIENT_PAIR_AVAILABLE",
    "CLIENT_PAIR_MISSING",
    "CORE_AVAILABLE",
    "CORE_MISSING",
    "ENCODER_AVAILABLE",
    "ENCODER_MISSING",
    "encode_body",
    "feed_server",
    "server_in_data_state",
    "server_in_transaction",
    "server_transaction",
]

CORE_AVAILABLE = hasattr(esmtp_core, "ServerConnection")
CORE_MISSING = "esmtp_core.ServerConnection not available yet"
ENCODER_AVAILABLE = hasattr(esmtp_core, "ClientConnection")
ENCODER_MISSING = "esmtp_core.ClientConnection not available yet"
CLIENT_PAIR_AVAILABLE = CORE_AVAILABLE and ENCODER_AVAILABLE
CLIENT_PAIR_MISSING = ENCODER_MISSING

_NEED_DATA = esmtp_core.NEED_DATA
_PAUSED = esmtp_core.PAUSED
_BodyChunk = esmtp_core.BodyChunk
_EndOfMessage = esmtp_core.EndOfMessage

#: Strict defaults (bare LF/CR rejected, 1000-octet lines), only the size limit lifted so that
#: the 10 MiB body and the 100 MiB memory test fit.
SERVER_CONFIG = esmtp_core.ServerConfig(hostname="bench.example", max_message_size=None)

TRANSACTION_HEAD = (
    b"EHLO client.example\r\n"
    b"MAIL FROM:<sender@client.example>\r\n"
    b"RCPT TO:<rcpt@bench.example>\r\n"
)


def _server() -> Any:
    conn = esmtp_core.ServerConnection(SERVER_CONFIG)  # type: ignore[attr-defined,unused-ignore]
    conn.greet()
    return conn


def _answer_all(conn: Any) -> list[object]:
    """Process events until NEED_DATA, accepting every decision; return the events."""
    events: list[object] = []
    while True:
        event = conn.next_event()
        if event is _NEED_DATA:
            return events
        if event is _PAUSED:
            if conn.pending is None:
                raise RuntimeError("server core paused with no pending decision")
            conn.accept()
            continue
        events.append(event)


def server_in_transaction() -> Any:
    """A server core after EHLO, MAIL and one RCPT, all accepted (ready for DATA or BDAT)."""
    conn = _server()
    conn.receive_data(TRANSACTION_HEAD)
    _answer_all(conn)
    replies = conn.data_to_send()
    if replies.count(b"\r\n250 ") != 3:
        raise RuntimeError(f"unexpected replies setting up a transaction: {replies!r}")
    return conn


def server_in_data_state() -> Any:
    """A server core that answered DATA with 354 and now expects the body."""
    conn = server_in_transaction()
    conn.receive_data(b"DATA\r\n")
    _answer_all(conn)
    reply = conn.data_to_send()
    if not reply.startswith(b"354"):
        raise RuntimeError(f"DATA was answered {reply!r}")
    return conn


def feed_server(conn: Any, pieces: Iterable[bytes], *, collect: bool = False) -> bytes:
    """Feed body pieces (DATA wire form or a BDAT command plus its octets) and accept the message.

    The loop is what any adapter does per received chunk. With ``collect`` the body is
    reassembled from the ``BodyChunk`` events and the ``250`` reply is checked (validation pass);
    without it the chunks are dropped, as a discarding handler would.
    """
    out: list[bytes] = []
    receive, next_event = conn.receive_data, conn.next_event
    done = False
    for piece in pieces:
        receive(piece)
        while True:
            event = next_event()
            if event is _NEED_DATA:
                break
            if type(event) is _BodyChunk:
                if collect:
                    out.append(event.data)
            elif type(event) is _EndOfMessage:
                conn.accept()
                done = True
            elif event is _PAUSED:
                conn.accept()
            else:
                raise RuntimeError(f"unexpected event in the body: {event!r}")
    reply = conn.data_to_send()  # an adapter flushes the 250; keeps the outbound buffer empty
    if collect and (not done or not reply.startswith(b"250")):
        raise RuntimeError(f"message not accepted: done={done}, reply={reply[-200:]!r}")
    return b"".join(out)


def encode_body(body: bytes) -> bytes:
    """The client core's DATA encoding of ``body`` (dot-stuffed, with the final ``.CRLF``)."""
    raise NotImplementedError(ENCODER_MISSING)


def server_transaction(reads: list[bytes]) -> bytes:
    """A whole session through a fresh server core, one ``receive_data`` per element of
    ``reads``, every decision accepted, replies flushed after each read (as an adapter does).
    Returns the body delivered, for checking."""
    conn = _server()
    conn.data_to_send()
    body: list[bytes] = []
    for data in reads:
        conn.receive_data(data)
        while True:
            event = conn.next_event()
            if event is _NEED_DATA:
                break
            if event is _PAUSED:
                conn.accept()
            elif type(event) is _BodyChunk:
                body.append(event.data)
        conn.data_to_send()
    if not conn.closed:
        raise RuntimeError("the session did not end after QUIT")
    return b"".join(body)


def client_server_transaction(body: bytes) -> bytes:
    """The same transaction driven by our client core, wired in memory to our server core."""
    raise NotImplementedError(CLIENT_PAIR_MISSING)
