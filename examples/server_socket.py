"""A complete SMTP server over plain blocking sockets, driven by the sans-I/O core.

    python examples/server_socket.py [HOST [PORT]]        # default 127.0.0.1 8025

Serves one connection at a time, accepts mail for any recipient at ``example.com`` (and refuses
the others), keeps each accepted message in memory and prints it. Stop it with Ctrl-C. The whole
protocol (pipelining, DATA and BDAT, dot-unstuffing, limits, error replies) lives in
:class:`esmtp_core.ServerConnection`; this file only moves bytes and makes the policy decisions.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from dataclasses import dataclass, field

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    BodyChunk,
    EndOfMessage,
    MailFrom,
    MessageAborted,
    RcptTo,
    RemoteProtocolError,
    Reset,
    ServerConfig,
    ServerConnection,
)


@dataclass
class Message:
    """One accepted message: the envelope and the exact bytes received."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes


@dataclass
class MemoryStore:
    """Accepted messages, in order."""

    messages: list[Message] = field(default_factory=list)


def serve_connection(sock: socket.socket, store: MemoryStore, config: ServerConfig) -> None:
    """Run one SMTP session on a connected socket until it ends."""
    conn = ServerConnection(config)
    conn.greet()
    sender = ""
    body: list[bytes] = []
    try:
        while not conn.closed:
            event = conn.next_event()
            if event is NEED_DATA:
                # Send the replies to everything pipelined so far in one write, then read.
                sock.sendall(conn.data_to_send())
                conn.receive_data(sock.recv(65536))  # b"" when the client closed
            elif event is PAUSED:
                break  # closed (PAUSED would also mean STARTTLS, which this server never offers)
            elif isinstance(event, MailFrom):
                sender, body = event.address, []
                conn.accept()
            elif isinstance(event, RcptTo):
                if event.address.lower().endswith("@example.com"):
                    conn.accept()
                else:
                    conn.reject()  # 550 5.1.1
            elif isinstance(event, BodyChunk):
                body.append(event.data)  # exact bytes, already unstuffed
            elif isinstance(event, EndOfMessage):
                message = Message(sender, event.recipients, b"".join(body))
                store.messages.append(message)  # "durable" before the 250
                conn.accept(f"queued as {len(store.messages)}")
                print(f"--- from <{sender}> to {', '.join(event.recipients)}")
                print(message.content.decode("utf-8", "replace"), end="", flush=True)
            elif isinstance(event, (MessageAborted, Reset)):
                body = []
            elif conn.pending is not None:
                conn.accept()  # HELO/EHLO, VRFY: the defaults
    except RemoteProtocolError:
        pass  # the core ended the session (too many errors); its 421 is queued below
    finally:
        with contextlib.suppress(OSError):  # the client may be gone already
            sock.sendall(conn.data_to_send())
        sock.close()


def serve(
    listener: socket.socket,
    store: MemoryStore,
    config: ServerConfig,
    *,
    sessions: int | None = None,
) -> None:
    """Accept connections one after the other (``sessions`` of them, or for ever)."""
    served = 0
    while sessions is None or served < sessions:
        sock, _ = listener.accept()
        sock.settimeout(300)  # RFC 5321 §4.5.3.2.7: 5 minutes for a command
        try:
            serve_connection(sock, store, config)
        except OSError as error:  # timeout or reset: drop this client, keep serving
            print(f"connection error: {error}", file=sys.stderr)
        served += 1


def main(argv: list[str]) -> None:
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 8025
    listener = socket.create_server((host, port))
    print(f"listening on {host}:{port}", file=sys.stderr)
    try:
        serve(listener, MemoryStore(), ServerConfig(hostname="mx.example.com"))
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


if __name__ == "__main__":
    main(sys.argv)
