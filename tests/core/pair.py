"""``ConnectionPair``: a ClientConnection wired to a ServerConnection in memory (h11's idea).

Bytes are pumped both ways, each flight cut into pieces by a ``split`` function (hypothesis draws
the cut points), and the server's decisions are answered automatically: everything is accepted
except recipients listed in ``refuse``; AUTH checks ``password``; STARTTLS is "negotiated" by
telling both sides TLS started. Messages the server accepted are collected byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    AuthPasswordCheck,
    AuthSecretLookup,
    BodyChunk,
    ClientConfig,
    ClientConnection,
    ClientEvent,
    ClientState,
    EndOfMessage,
    Hello,
    MailFrom,
    MessageAborted,
    RcptTo,
    Reply,
    Reset,
    ServerConfig,
    ServerConnection,
    SessionEnded,
    StartTLS,
    Verify,
)

Splitter = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    """No splitting: one piece per flight."""
    return [data] if data else []


def random_splitter(rng: random.Random, max_piece: int = 64) -> Splitter:
    """Cut each flight into pieces of 1..max_piece octets chosen by ``rng``."""

    def split(data: bytes) -> list[bytes]:
        pieces = []
        start = 0
        while start < len(data):
            end = start + rng.randint(1, max_piece)
            pieces.append(data[start:end])
            start = end
        return pieces

    return split


class ConnectionPair:
    """A client and a server core talking to each other in memory."""

    def __init__(
        self,
        client_config: ClientConfig | None = None,
        server_config: ServerConfig | None = None,
        *,
        split_to_server: Splitter = whole,
        split_to_client: Splitter = whole,
        refuse: frozenset[str] = frozenset(),
        password: str = "secret",
    ) -> None:
        self.client = ClientConnection(client_config or ClientConfig())
        self.server = ServerConnection(server_config or ServerConfig(hostname="mx.test"))
        self.split_to_server = split_to_server
        self.split_to_client = split_to_client
        self.refuse = refuse
        self.password = password
        #: Messages the server accepted: (sender, recipients, body).
        self.messages: list[tuple[str, tuple[str, ...], bytes]] = []
        self.aborted: list[Reply] = []
        #: Every byte the client sent (to check it never emits a bare CR or LF).
        self.wire = bytearray()
        self._body = bytearray()
        self._sender = ""
        self._eof_sent = False
        self._ended = False
        self.server.greet()

    # --- server side ----------------------------------------------------------------------------

    def _run_server(self) -> None:
        server = self.server
        while True:
            event = server.next_event()
            if event is NEED_DATA:
                return
            if event is PAUSED:
                if server.pending is None:
                    return
                event = server.pending
            if isinstance(event, (Hello, RcptTo, Verify)):
                if isinstance(event, RcptTo) and event.address in self.refuse:
                    server.reject()
                else:
                    server.accept()
            elif isinstance(event, MailFrom):
                self._sender = event.address
                self._body.clear()
                server.accept()
            elif isinstance(event, BodyChunk):
                self._body += event.data
            elif isinstance(event, EndOfMessage):
                self.messages.append((self._sender, event.recipients, bytes(self._body)))
                self._body.clear()
                server.accept()
            elif isinstance(event, (MessageAborted, Reset)):
                if isinstance(event, MessageAborted):
                    self.aborted.append(event.reply)
                self._body.clear()
            elif isinstance(event, AuthPasswordCheck):
                if event.password == self.password:
                    server.accept()
                else:
                    server.reject()
            elif isinstance(event, AuthSecretLookup):
                server.provide_secret(self.password)
            elif isinstance(event, StartTLS):
                pass  # finished when the client saw its StartTLSReply (see pump)

    # --- both ways ------------------------------------------------------------------------------

    def pump(self) -> list[ClientEvent]:
        """Move bytes both ways until neither side has anything left to say; return the client
        events that came out (the caller reacts to them between pumps)."""
        out: list[ClientEvent] = []
        while True:
            to_server = self.client.data_to_send()
            self.wire += to_server
            for piece in self.split_to_server(to_server):
                self.server.receive_data(piece)
                self._run_server()
            self._run_server()
            to_client = self.server.data_to_send()
            for piece in self.split_to_client(to_client):
                self.client.receive_data(piece)
                out += self._client_drain()
            out += self._client_drain()
            handshake = self.client.state is ClientState.TLS_PENDING
            if handshake:  # the "TLS handshake": both sides learn it is done
                self.client.tls_started()
                self.server.tls_started()
            if self.server.closed and not self._eof_sent:
                self._eof_sent = True
                self.client.receive_data(b"")
                out += self._client_drain()
            if not (to_server or to_client or handshake):
                return out

    def _client_drain(self) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        if self._ended:
            return events  # SessionEnded was already reported once
        while True:
            event = self.client.next_event()
            if event is NEED_DATA or event is PAUSED:
                return events
            assert isinstance(event, ClientEvent)
            events.append(event)
            if isinstance(event, SessionEnded):
                self._ended = True
                return events

    def start(self) -> None:
        """Greeting and EHLO/LHLO; asserts both succeeded."""
        events = self.pump()
        assert [type(e).__name__ for e in events] == ["Greeting"], events
        self.client.hello()
        events = self.pump()
        assert len(events) == 1, events
        assert getattr(events[0], "ok", False), events
