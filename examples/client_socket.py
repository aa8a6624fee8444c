"""A complete SMTP client session over a plain blocking socket, driven by the sans-I/O core.

    python examples/client_socket.py HOST PORT FROM TO [TO ...] < message.eml

Connects, reads the greeting, sends EHLO (HELO if refused), sends the message with
``send_message`` (PIPELINING, CHUNKING/BINARYMIME, SIZE, 8BITMIME and SMTPUTF8 are used when the
server offers them), prints one line per recipient and says QUIT. The whole protocol lives in
:class:`esmtp_core.ClientConnection`; this file only moves bytes. Exit status 0 when the message
was accepted for every recipient, 1 otherwise.
"""

from __future__ import annotations

import socket
import sys

from esmtp_core import (
    NEED_DATA,
    ClientConfig,
    ClientConnection,
    ClientEvent,
    EhloReply,
    Greeting,
    ReplyError,
    SessionEnded,
    TransactionResult,
)


class SocketClient:
    """The loop every adapter runs: flush what the core wants to send, then take its next event,
    reading from the socket only when it needs data."""

    def __init__(self, sock: socket.socket, conn: ClientConnection) -> None:
        self.sock = sock
        self.conn = conn

    def next_event(self) -> ClientEvent:
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                # Replies just processed may have released queued commands (one at a time
                # without PIPELINING): always flush before blocking on the socket.
                self.flush()
                self.conn.receive_data(self.sock.recv(65536))  # b"" when the server closed
                continue
            assert isinstance(event, ClientEvent)  # PAUSED only happens after STARTTLS
            return event

    def flush(self) -> None:
        outgoing = self.conn.data_to_send()
        if outgoing:
            self.sock.sendall(outgoing)


def send(
    host: str,
    port: int,
    sender: str,
    recipients: list[str],
    message: bytes,
    *,
    local_hostname: str = "localhost",
    timeout: float = 30.0,
) -> TransactionResult:
    """Deliver ``message`` and return the per-recipient result; raise :class:`ReplyError` when
    the server refuses the session itself (greeting or EHLO/HELO)."""
    conn = ClientConnection(ClientConfig(local_hostname=local_hostname))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        client = SocketClient(sock, conn)
        greeting = client.next_event()
        if not isinstance(greeting, Greeting) or not greeting.ok:
            raise (
                ReplyError(greeting.reply)
                if isinstance(greeting, Greeting)
                else OSError("server closed before greeting")
            )
        conn.ehlo()
        hello = client.next_event()  # the core falls back to HELO by itself if EHLO is refused
        if not isinstance(hello, EhloReply) or not hello.ok:
            raise (
                ReplyError(hello.reply)
                if isinstance(hello, EhloReply)
                else OSError("server closed during EHLO")
            )
        conn.send_message(sender, recipients, message)
        result = client.next_event()
        if not isinstance(result, TransactionResult):
            raise OSError(f"session ended during the transaction: {result}")
        if not conn.closed:
            conn.quit()
            while not isinstance(client.next_event(), SessionEnded):
                pass
        return result


def main(argv: list[str]) -> int:
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, sender, *recipients = argv[1:]
    result = send(host, int(port), sender, recipients, sys.stdin.buffer.read())
    for recipient, reply in result.outcomes().items():
        print(f"{recipient}: {reply}")
    return 0 if set(result.accepted) == set(recipients) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
