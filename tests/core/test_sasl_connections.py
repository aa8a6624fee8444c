"""AUTH through both connections, in memory: a ClientConnection talking to a ServerConnection
for every SASL mechanism, success and failure, with an application answering the server's
queries — plus a session that stays usable after a failure, automatic mechanism choice, and two
attacks on the bytes in between (a stripped -PLUS offer, a forged SCRAM server signature)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from sasl_helpers import BINDING, TOKEN_MECHANISMS, answer_query, credentials

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    Authenticated,
    AuthPasswordCheck,
    AuthSecretLookup,
    AuthTokenCheck,
    ClientConfig,
    ClientConnection,
    ClientCredentials,
    SaslError,
    ServerConfig,
    ServerConnection,
    StartTLS,
)
from esmtp_core._client_events import AuthResult, ClientEvent, CommandReply, EhloReply, Greeting

ALL_MECHANISMS = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
    "XOAUTH2",
    "OAUTHBEARER",
)

Tamper = Callable[[bytes], bytes]


class Session:
    """A client and a server wired together in memory, with a server-side application."""

    def __init__(
        self,
        *,
        tls: bool,
        store_secrets: bool = False,
        offered: tuple[str, ...] = ALL_MECHANISMS,
        tamper: Tamper | None = None,
    ) -> None:
        self.server = ServerConnection(
            ServerConfig(
                hostname="mx.example",
                starttls=tls,
                auth_mechanisms=tuple(offered),
                auth_require_tls=False,
            )
        )
        self.client = ClientConnection(
            ClientConfig(local_hostname="client.example", allow_insecure_auth=True)
        )
        self.store_secrets = store_secrets
        self.server_events: list[object] = []
        self.client_events: list[ClientEvent] = []
        #: Rewrites server-to-client bytes (a man in the middle); identity by default.
        self.tamper: Tamper = tamper or (lambda data: data)
        #: Everything the client sent, for assertions on the wire format.
        self.client_bytes = bytearray()
        self.server.greet()
        self.pump()
        assert isinstance(self.client_events[-1], Greeting)
        self.client.ehlo()
        self.pump()
        assert isinstance(self.client_events[-1], EhloReply)
        if tls:
            self.client.starttls()
            self.pump()
            self.client.tls_started(BINDING)
            self.client.ehlo()
            self.pump()

    def answer(self, event: object) -> None:
        server = self.server
        if isinstance(event, AuthSecretLookup):
            server.provide_secret(answer_query(event, store_secrets=self.store_secrets))
        elif isinstance(event, (AuthPasswordCheck, AuthTokenCheck)):
            if answer_query(event, store_secrets=self.store_secrets):
                server.accept()
            else:
                server.reject()
        elif isinstance(event, StartTLS):
            server.tls_started(BINDING)
        elif server.pending is not None:
            server.accept()

    def pump(self) -> None:
        """Run both sides until no bytes move."""
        for _ in range(100):
            moved = False
            while True:
                event = self.server.next_event()
                if event is NEED_DATA or event is PAUSED:
                    break
                self.server_events.append(event)
                self.answer(event)
            data = self.server.data_to_send()
            if data:
                moved = True
                self.client.receive_data(self.tamper(data))
            while True:
                client_event = self.client.next_event()
                if client_event is NEED_DATA or client_event is PAUSED:
                    break
                self.client_events.append(client_event)
            data = self.client.data_to_send()
            if data:
                moved = True
                self.client_bytes += data
                self.server.receive_data(data)
            if not moved:
                return
        raise AssertionError("the two connections never settled")

    def auth(self, credentials: ClientCredentials, mechanism: str | None = None) -> AuthResult:
        self.client.auth(credentials, mechanism)
        self.pump()
        results = [event for event in self.client_events if isinstance(event, AuthResult)]
        assert results, self.client_events
        return results[-1]


@pytest.mark.parametrize("store_secrets", [False, True])
@pytest.mark.parametrize("name", ALL_MECHANISMS)
def test_auth_succeeds(name: str, store_secrets: bool) -> None:
    session = Session(tls=name.endswith("-PLUS"), store_secrets=store_secrets)
    result = session.auth(credentials(name), name)
    assert result.reply.code == 235, result
    assert result.error is None
    assert session.server.authenticated == "alice"
    authenticated = [e for e in session.server_events if isinstance(e, Authenticated)]
    assert len(authenticated) == 1
    assert authenticated[0].username == "alice"
    assert session.client.authenticated is not None


@pytest.mark.parametrize("name", ALL_MECHANISMS)
@pytest.mark.parametrize("who", ["wrong secret", "unknown user"])
def test_auth_fails_and_session_stays_usable(name: str, who: str) -> None:
    session = Session(tls=name.endswith("-PLUS"))
    bad = (
        credentials(name, wrong=True)
        if who == "wrong secret"
        else credentials(name, username="mallory")
    )
    result = session.auth(bad, name)
    assert result.reply.code == 535, result
    assert result.reply.enhanced == "5.7.8"
    assert session.server.authenticated is None
    assert session.client.authenticated is None
    # The session goes on: NOOP works and a second AUTH with the right secret succeeds.
    session.client.noop()
    session.pump()
    assert isinstance(session.client_events[-1], CommandReply)
    assert session.client_events[-1].reply.code == 250
    assert session.auth(credentials(name), name).reply.code == 235
    assert session.server.authenticated == "alice"


@pytest.mark.parametrize(
    ("tls", "expected"), [(False, "SCRAM-SHA-256"), (True, "SCRAM-SHA-256-PLUS")]
)
def test_client_picks_the_strongest_mechanism(tls: bool, expected: str) -> None:
    session = Session(tls=tls)
    result = session.auth(credentials("PLAIN"))
    assert result.mechanism == expected
    assert result.reply.code == 235


def test_client_picks_a_token_mechanism_for_a_token() -> None:
    session = Session(tls=False)
    result = session.auth(credentials("OAUTHBEARER"))
    assert result.mechanism in TOKEN_MECHANISMS
    assert result.reply.code == 235


def test_stripped_plus_offer_is_detected() -> None:
    # A man in the middle removes the -PLUS names from the EHLO reply after STARTTLS; the client,
    # which can bind, falls back to SCRAM-SHA-256 with the "y" flag, and the server refuses.
    session = Session(tls=True, tamper=lambda data: data.replace(b"-PLUS", b""))
    assert "SCRAM-SHA-256-PLUS" not in session.client.capabilities.auth_mechanisms
    result = session.auth(credentials("SCRAM-SHA-256"))
    assert result.mechanism == "SCRAM-SHA-256"
    initial = base64.b64encode(b"y,,n=alice,r=")  # "y": could bind, saw no -PLUS offer
    assert b"AUTH SCRAM-SHA-256 " + initial[:16] in session.client_bytes
    assert result.reply.code == 535
    assert session.server.authenticated is None


def test_forged_server_signature_is_refused_by_the_client() -> None:
    session = Session(tls=False)

    def forge(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        for index, line in enumerate(lines):
            if line.startswith(b"334 ") and base64.b64decode(line[4:]).startswith(b"v="):
                lines[index] = b"334 " + base64.b64encode(b"v=" + base64.b64encode(bytes(32)))
        return b"\r\n".join(lines)

    session.tamper = forge
    result = session.auth(credentials("SCRAM-SHA-256"), "SCRAM-SHA-256")
    assert isinstance(result.error, SaslError)
    assert "signature" in str(result.error)
    assert session.client_bytes.endswith(b"*\r\n")  # the client cancelled (RFC 4954 §4)
    assert result.reply.code == 501
    assert session.client.authenticated is None


def test_choosing_scram_without_plus_under_tls_is_fine() -> None:
    # The control case for the downgrade test: the client saw the -PLUS offer and chose not to
    # bind (an explicit choice), so it says "n" and the server accepts.
    session = Session(tls=True)
    result = session.auth(credentials("SCRAM-SHA-256"), "SCRAM-SHA-256")
    assert b"AUTH SCRAM-SHA-256 " + base64.b64encode(b"n,,n=alice,r=")[:16] in session.client_bytes
    assert result.reply.code == 235
