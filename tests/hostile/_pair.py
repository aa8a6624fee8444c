"""A client core wired to a server core in memory, with a scriptable server application.

``Pair.pump()`` moves bytes both ways until neither side has anything to say, answering the
server's decisions through ``decide`` and simulating a TLS handshake (``tls_started()`` on both
sides) when STARTTLS was accepted. Client events are collected for the test to inspect; the
server side records every message it accepted, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    AuthSecretLookup,
    BodyChunk,
    ClientConfig,
    ClientConnection,
    EndOfMessage,
    Hello,
    MailFrom,
    MessageAborted,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Reset,
    ServerConfig,
    ServerConnection,
    StartTLS,
    StartTLSReply,
    UnknownCommand,
)


@dataclass
class StoredMessage:
    """A message the server application accepted (250 after the final dot / BDAT LAST)."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes


@dataclass
class ServerApp:
    """The server's application: accepts what ``decide(event)`` says, records messages."""

    decide: Callable[[object], bool] = lambda event: True
    messages: list[StoredMessage] = field(default_factory=list)
    decisions: list[tuple[object, bool]] = field(default_factory=list)
    sender: str | None = None
    recipients: list[str] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    def handle(self, conn: ServerConnection, event: object) -> None:
        """Track the transaction from notices and decisions."""
        if isinstance(event, BodyChunk):
            self.body += event.data
        elif isinstance(event, MessageAborted | Reset | Hello):
            self.body.clear()
            if not isinstance(event, MessageAborted):
                self.sender, self.recipients = None, []

    def answer(self, conn: ServerConnection) -> None:
        """Answer the pending decision."""
        event = conn.pending
        ok = self.decide(event)
        self.decisions.append((event, ok))
        if isinstance(event, UnknownCommand):
            conn.send_reply(Reply.make(502, "5.5.1", "no"))
            return
        if isinstance(event, AuthSecretLookup):
            conn.provide_secret("secret" if ok else None)
            return
        if isinstance(event, MailFrom) and ok:
            self.sender, self.recipients = event.address, []
            self.body.clear()
        elif isinstance(event, RcptTo) and ok:
            self.recipients.append(event.address)
        elif isinstance(event, EndOfMessage):
            if ok:
                self.messages.append(
                    StoredMessage(self.sender or "", tuple(event.recipients), bytes(self.body))
                )
            self.body.clear()
        if ok:
            conn.accept()
        else:
            conn.reject()


class Pair:
    """Client and server cores connected back to back."""

    def __init__(
        self,
        client_config: ClientConfig | None = None,
        server_config: ServerConfig | None = None,
        decide: Callable[[object], bool] = lambda event: True,
        on_client_event: Callable[[object], None] | None = None,
        cut: Callable[[bytes], list[bytes]] = lambda data: [data],
    ) -> None:
        self.on_client_event = on_client_event
        self.cut = cut
        self.client = ClientConnection(client_config or ClientConfig(local_hostname="c.example"))
        self.server = ServerConnection(server_config or ServerConfig(hostname="mx.example"))
        self.app = ServerApp(decide)
        self.client_events: list[object] = []
        self.server_events: list[object] = []
        self.client_wire = bytearray()
        self.server_wire = bytearray()
        self.server_error: RemoteProtocolError | None = None
        self._server_tls_wanted = False
        self.server.greet()

    def pump(self, limit: int = 10_000) -> None:
        """Exchange bytes until both sides are quiet. With ``cut`` set, every transfer in either
        direction is delivered in the pieces it returns, each processed before the next arrives
        (TCP may segment anything anywhere)."""
        for _ in range(limit):
            moved = False
            out = self.client.data_to_send()
            if out:
                self.client_wire += out
                moved = True
                for piece in self.cut(out):
                    if self.server.closed:
                        break
                    self.server.receive_data(piece)
                    self._drain_server()
            self._drain_server()
            back = self.server.data_to_send()
            if back:
                self.server_wire += back
                moved = True
                for piece in self.cut(back):
                    if self.client.closed:
                        break
                    self.client.receive_data(piece)
                    self._drain_client()
            moved = self._drain_client() or moved
            if not moved:
                return
        raise AssertionError("the two cores never went quiet")

    def _drain_server(self) -> None:
        while not self.server.closed:
            try:
                event = self.server.next_event()
            except RemoteProtocolError as exc:
                self.server_error = exc
                return
            if event is NEED_DATA:
                return
            if event is PAUSED:
                if self.server.pending is not None:
                    self.app.answer(self.server)
                    continue
                return  # waiting for TLS: the client's StartTLSReply triggers it
            self.server_events.append(event)
            if isinstance(event, StartTLS):
                self._server_tls_wanted = True
            self.app.handle(self.server, event)

    def _drain_client(self) -> bool:
        moved = False
        while not self.client.closed:
            event = self.client.next_event()
            if event is NEED_DATA or event is PAUSED:
                return moved
            moved = True
            self.client_events.append(event)
            if isinstance(event, StartTLSReply) and event.ready:
                assert self._server_tls_wanted, "client starts TLS, server did not agree"
                self._server_tls_wanted = False
                self.server.tls_started()
                self.client.tls_started()
            elif self.on_client_event is not None:
                self.on_client_event(event)
        return moved
