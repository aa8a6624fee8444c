"""Drive our sans-I/O cores in memory for the benchmarks (no sockets, no threads).

The drivers answer every decision the way a discarding server would (``accept()``), so what is
timed is the core's own work plus the minimum any embedding code must do (call ``next_event()``
until ``NEED_DATA``, look at the event's type, flush ``data_to_send()``).
"""

from __future__ import annotations

from collections.abc import Iterable

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    BodyChunk,
    ClientConfig,
    ClientConnection,
    EhloReply,
    EndOfMessage,
    Greeting,
    ServerConfig,
    ServerConnection,
    SessionEnded,
    TransactionResult,
)

__all__ = [
    "PAIR_SERVER_CONFIGS",
    "SERVER_CONFIG",
    "client_in_body",
    "client_server_transaction",
    "encode_into",
    "feed_server",
    "server_after_ehlo",
    "server_in_data_state",
    "server_in_transaction",
    "server_message",
    "server_transaction",
]

#: Strict defaults (bare LF/CR rejected, 1000-octet lines), only the size limit lifted so that
#: the 10 MiB body fits.
SERVER_CONFIG = ServerConfig(hostname="bench.example", max_message_size=None)
CLIENT_CONFIG = ClientConfig(local_hostname="client.example")

#: The server core for the client+server pair: DATA (no CHUNKING) or BDAT (the default config).
PAIR_SERVER_CONFIGS = {
    "DATA": ServerConfig(hostname="bench.example", chunking=False),
    "BDAT": ServerConfig(hostname="bench.example"),
}

TRANSACTION_HEAD = (
    b"EHLO client.example\r\n"
    b"MAIL FROM:<sender@client.example>\r\n"
    b"RCPT TO:<rcpt@bench.example>\r\n"
)


def _server(config: ServerConfig = SERVER_CONFIG) -> ServerConnection:
    conn = ServerConnection(config)
    conn.greet()
    return conn


def _serve(conn: ServerConnection, data: bytes, delivered: list[bytes] | None = None) -> bytes:
    """Hand ``data`` to a server core, accept every decision (collecting the body chunks into
    ``delivered`` when given) until it needs more data; return its replies."""
    if data:
        conn.receive_data(data)
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            break
        if event is PAUSED:
            if conn.closed:  # after QUIT: nothing more will come
                break
            conn.accept()
        elif delivered is not None and type(event) is BodyChunk:
            delivered.append(event.data)
    return conn.data_to_send()


def server_in_transaction() -> ServerConnection:
    """A server core after EHLO, MAIL and one RCPT, all accepted (ready for DATA or BDAT)."""
    conn = _server()
    replies = _serve(conn, TRANSACTION_HEAD)
    if replies.count(b"\r\n250 ") != 3:
        raise RuntimeError(f"unexpected replies setting up a transaction: {replies!r}")
    return conn


def server_in_data_state() -> ServerConnection:
    """A server core that answered DATA with 354 and now expects the body."""
    conn = server_in_transaction()
    reply = _serve(conn, b"DATA\r\n")
    if not reply.startswith(b"354"):
        raise RuntimeError(f"DATA was answered {reply!r}")
    return conn


def feed_server(conn: ServerConnection, pieces: Iterable[bytes], *, collect: bool = False) -> bytes:
    """Feed body pieces (DATA wire form, or a BDAT command plus its octets) and accept the message.

    The loop is what any adapter does per received chunk. With ``collect`` the body is
    reassembled from the ``BodyChunk`` events and the ``250`` reply is checked (the validation
    pass); without it the chunks are dropped, as a discarding handler would.
    """
    out: list[bytes] = []
    receive, next_event = conn.receive_data, conn.next_event
    done = False
    for piece in pieces:
        receive(piece)
        while True:
            event = next_event()
            if event is NEED_DATA:
                break
            if type(event) is BodyChunk:
                if collect:
                    out.append(event.data)
            elif type(event) is EndOfMessage:
                conn.accept()
                done = True
            elif event is PAUSED:
                conn.accept()
            else:
                raise RuntimeError(f"unexpected event in the body: {event!r}")
    reply = conn.data_to_send()  # an adapter flushes the 250; keeps the outbound buffer empty
    if collect and (not done or not reply.startswith(b"250")):
        raise RuntimeError(f"message not accepted: done={done}, reply={reply[-200:]!r}")
    return b"".join(out)


def server_after_ehlo() -> ServerConnection:
    """A server core that greeted and answered EHLO (an open session between messages)."""
    conn = _server()
    conn.data_to_send()
    _serve(conn, b"EHLO client.example\r\n")
    return conn


def server_message(conn: ServerConnection, reads: list[bytes]) -> bytes:
    """One more message on an open session, one ``receive_data`` per element of ``reads``;
    returns the body delivered."""
    body: list[bytes] = []
    for data in reads:
        _serve(conn, data, body)
    return b"".join(body)


def server_transaction(reads: list[bytes]) -> bytes:
    """A whole session through a fresh server core, one ``receive_data`` per element of
    ``reads``, every decision accepted, replies flushed after each read (as an adapter does).
    Returns the body delivered, for checking."""
    conn = _server()
    conn.data_to_send()
    body: list[bytes] = []
    for data in reads:
        _serve(conn, data, body)
    if not conn.closed:
        raise RuntimeError("the session did not end after QUIT")
    return b"".join(body)


# --- the client side ------------------------------------------------------------------------

#: What a server without CHUNKING answers, so that the client core sends DATA.
_CANNED_GREETING = b"220 bench.example ESMTP\r\n"
_CANNED_EHLO = (
    b"250-bench.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
)
_CANNED_TRANSACTION = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n"


def _drain(conn: ClientConnection) -> None:
    while conn.next_event() is not NEED_DATA:
        pass


def client_in_body() -> ClientConnection:
    """A client core that sent MAIL, RCPT and DATA (pipelined) and got the 354: ``send_body()``
    output now goes straight to ``data_to_send()``. The server side is canned replies."""
    conn = ClientConnection(CLIENT_CONFIG)
    conn.receive_data(_CANNED_GREETING)
    _drain(conn)
    conn.ehlo()
    conn.data_to_send()
    conn.receive_data(_CANNED_EHLO)
    _drain(conn)
    conn.data_to_send()
    conn.start_transaction("sender@client.example", ["rcpt@bench.example"])
    if not conn.data_to_send().endswith(b"DATA\r\n"):
        raise RuntimeError("the client core did not pipeline MAIL, RCPT and DATA")
    conn.receive_data(_CANNED_TRANSACTION)
    _drain(conn)
    return conn


def encode_into(conn: ClientConnection, pieces: Iterable[bytes]) -> bytes:
    """Stream ``pieces`` of a body through a client core in DATA and end it, taking the output
    after each piece as an adapter writing to its socket would; return the whole wire."""
    send_body, data_to_send = conn.send_body, conn.data_to_send
    out = []
    for piece in pieces:
        send_body(piece)
        out.append(data_to_send())
    conn.end_body()
    out.append(data_to_send())
    return b"".join(out)


def client_server_transaction(body: bytes, mode: str = "DATA") -> bytes:
    """A whole session driven by our client core (``send_message`` to two recipients, with
    PIPELINING), wired in memory to our server core; returns the body the server delivered."""
    server = _server(PAIR_SERVER_CONFIGS[mode])
    client = ClientConnection(CLIENT_CONFIG)
    delivered: list[bytes] = []
    sent = False
    while not client.closed:
        event = client.next_event()
        if event is NEED_DATA:
            client.receive_data(_serve(server, client.data_to_send(), delivered))
        elif isinstance(event, Greeting):
            client.ehlo()
        elif isinstance(event, EhloReply):
            client.send_message("sender@client.example",
                                ["one@bench.example", "two@bench.example"], body)
            sent = True
        elif isinstance(event, TransactionResult):
            if not event.ok:
                raise RuntimeError(f"transaction refused: {event!r}")
            client.quit()
        elif isinstance(event, SessionEnded):
            break
    if not sent:
        raise RuntimeError("the client never got to send the message")
    return b"".join(delivered)
