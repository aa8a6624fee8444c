"""AUTH on the server core (RFC 4954): exchanges, cancel, errors, mechanism-agnostic plumbing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import ClassVar

import pytest
from server_helpers import drain, make, session, talk

from esmtp_core import (
    SERVER_MECHANISMS,
    Authenticated,
    AuthPasswordCheck,
    AuthSecretLookup,
    AuthTokenCheck,
    ChannelBinding,
    ClientCredentials,
    Hello,
    LocalProtocolError,
    RemoteProtocolError,
    Reply,
    SaslContext,
    ServerConfig,
    ServerConnection,
    ServerMechanism,
)
from esmtp_core._sasl import (
    CredentialAnswer,
    SaslChallenge,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
    ServerStep,
)
from esmtp_core._scram import ScramSha256Client
from esmtp_core._server_auth import advertised_auth_mechanisms


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def tls_session(**options: object) -> object:
    return session(tls_on_connect=True, **options)


def test_plain_with_initial_response() -> None:
    conn = session(tls_on_connect=True)
    conn.receive_data(b"AUTH PLAIN " + b64(b"\0alice\0secret") + b"\r\n")
    check = conn.next_event()
    assert isinstance(check, AuthPasswordCheck)
    assert (check.username, check.password, check.mechanism) == ("alice", "secret", "PLAIN")
    assert "secret" not in repr(check)
    conn.accept()
    assert conn.next_event() == Authenticated(mechanism="PLAIN", username="alice")
    assert conn.authenticated == "alice"
    assert conn.data_to_send() == b"235 2.7.0 Authentication successful\r\n"
    assert talk(conn, b"AUTH PLAIN\r\n") == b"503 5.5.1 Already authenticated\r\n"


def test_plain_with_challenge_and_wrong_password() -> None:
    conn = session(tls_on_connect=True)
    assert talk(conn, b"auth plain\r\n") == b"334 \r\n"
    conn.receive_data(b64(b"authz\0bob\0wrong") + b"\r\n")
    check = conn.next_event()
    assert isinstance(check, AuthPasswordCheck)
    assert check.authzid == "authz"
    conn.reject()
    assert conn.data_to_send() == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert conn.authenticated is None


def test_login_exchange() -> None:
    conn = session(tls_on_connect=True)
    assert talk(conn, b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    assert talk(conn, b64(b"carol") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    conn.receive_data(b64(b"pw") + b"\r\n")
    events = drain(conn)
    assert events[0] == AuthPasswordCheck(mechanism="LOGIN", username="carol", password="pw")
    assert events[1] == Authenticated(mechanism="LOGIN", username="carol")


def test_login_initial_response_is_username() -> None:
    conn = session(tls_on_connect=True)
    assert talk(conn, b"AUTH LOGIN " + b64(b"dave") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"


def test_reject_with_custom_reply() -> None:
    conn = session(tls_on_connect=True)
    conn.receive_data(b"AUTH PLAIN " + b64(b"\0u\0p") + b"\r\n")
    conn.next_event()
    conn.reject(Reply.make(454, "4.7.0", "Temporary authentication failure"))
    assert conn.data_to_send() == b"454 4.7.0 Temporary authentication failure\r\n"
    with pytest.raises(LocalProtocolError):
        conn.accept()


def test_send_reply_negative_is_reject() -> None:
    conn = session(tls_on_connect=True)
    conn.receive_data(b"AUTH PLAIN " + b64(b"\0u\0p") + b"\r\n")
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send_reply(Reply.make(235, "2.7.0", "ok"))
    conn.send_reply(Reply.make(535, "5.7.8", "no"))
    assert conn.data_to_send() == b"535 5.7.8 no\r\n"


@pytest.mark.parametrize(
    ("exchange", "reply"),
    [
        (b"AUTH PLAIN\r\n*\r\n", b"334 \r\n501 5.7.0 Authentication cancelled\r\n"),
        (b"AUTH PLAIN\r\n!!!\r\n", b"334 \r\n501 5.5.2 Cannot decode base64 response\r\n"),
        (b"AUTH PLAIN\r\n\xff\r\n", b"334 \r\n501 5.5.2 Cannot decode base64 response\r\n"),
        (b"AUTH PLAIN AAA\r\n", b"501 5.5.2 Cannot decode base64 response\r\n"),
        (b"AUTH PLAIN =\r\n", b"501 5.5.2 Malformed authentication response\r\n"),
        (
            b"AUTH PLAIN " + b64(b"no-nuls") + b"\r\n",
            b"501 5.5.2 Malformed authentication response\r\n",
        ),
        (b"AUTH FOO\r\n", b"504 5.5.4 Unrecognized authentication type\r\n"),
        (b"AUTH\r\n", b"501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"),
        (b"AUTH PLAIN a b\r\n", b"501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"),
        (b"AUTH CRAM-MD5\r\n", b"504 5.5.4 Unrecognized authentication type\r\n"),
    ],
)
def test_auth_errors(exchange: bytes, reply: bytes) -> None:
    conn = session(tls_on_connect=True)
    assert talk(conn, exchange) == reply
    assert talk(conn, b"NOOP\r\n") == b"250 2.0.0 OK\r\n"  # the session stays usable


def test_auth_needs_tls_by_default() -> None:
    conn = session()
    out = talk(conn, b"EHLO c\r\n")
    assert b"AUTH" not in out
    assert talk(conn, b"AUTH PLAIN\r\n") == (
        b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    )
    conn = session(auth_require_tls=False)
    assert talk(conn, b"EHLO c\r\n").endswith(b"250-DSN\r\n250 AUTH PLAIN LOGIN\r\n")
    assert talk(conn, b"AUTH PLAIN\r\n") == b"334 \r\n"


def test_auth_sequencing() -> None:
    conn = session(tls_on_connect=True)
    talk(conn, b"MAIL FROM:<a@example.org>\r\n")
    assert (
        talk(conn, b"AUTH PLAIN\r\n") == b"503 5.5.1 AUTH not allowed during a mail transaction\r\n"
    )
    conn = session(tls_on_connect=True, auth_mechanisms=())
    assert talk(conn, b"AUTH PLAIN\r\n") == b"502 5.5.1 AUTH not available\r\n"
    conn = session(tls_on_connect=True)
    talk(conn, b"HELO c\r\n")
    assert talk(conn, b"AUTH PLAIN\r\n") == (
        b"503 5.5.1 Send EHLO first: AUTH is a service extension\r\n"
    )


def test_auth_required_for_mail() -> None:
    conn = session(tls_on_connect=True, auth_required=True)
    assert talk(conn, b"MAIL FROM:<a@example.org>\r\n") == b"530 5.7.0 Authentication required\r\n"
    talk(conn, b"AUTH PLAIN " + b64(b"\0u\0p") + b"\r\n")
    assert talk(conn, b"MAIL FROM:<a@example.org>\r\n") == b"250 2.1.0 Sender OK\r\n"


def test_auth_response_line_limit() -> None:
    conn = session(tls_on_connect=True, max_auth_line_length=100)
    talk(conn, b"AUTH PLAIN\r\n")
    assert talk(conn, b"A" * 150 + b"\r\nNOOP\r\n") == (
        b"500 5.5.6 Authentication exchange line is too long\r\n250 2.0.0 OK\r\n"
    )


def test_failed_auth_counts_toward_error_limit() -> None:
    conn = session(tls_on_connect=True, max_errors=2)
    conn.receive_data(b"AUTH PLAIN " + b64(b"\0u\0p") + b"\r\n")
    conn.next_event()
    conn.reject()
    conn.receive_data(b"AUTH PLAIN " + b64(b"\0u\0p") + b"\r\n")
    conn.next_event()
    conn.reject()
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.closed
    assert conn.data_to_send().endswith(b"421 4.7.0 Too many errors, closing connection\r\n")


def test_cram_md5_secret_lookup() -> None:
    conn = session(tls_on_connect=True, auth_mechanisms=("CRAM-MD5",))
    out = talk(conn, b"AUTH CRAM-MD5\r\n")
    assert out.startswith(b"334 ")
    challenge = base64.b64decode(out[4:-2])
    digest = hmac.new(b"tanstaaftanstaaf", challenge, hashlib.md5).hexdigest()
    conn.receive_data(b64(b"tim " + digest.encode()) + b"\r\n")
    lookup = conn.next_event()
    assert lookup == AuthSecretLookup(mechanism="CRAM-MD5", username="tim")
    with pytest.raises(LocalProtocolError):
        conn.accept()
    conn.provide_secret("tanstaaftanstaaf")
    assert conn.next_event() == Authenticated(mechanism="CRAM-MD5", username="tim")
    assert conn.data_to_send() == b"235 2.7.0 Authentication successful\r\n"


def test_secret_lookup_unknown_user() -> None:
    conn = session(tls_on_connect=True, auth_mechanisms=("CRAM-MD5",))
    out = talk(conn, b"AUTH CRAM-MD5\r\n")
    conn.receive_data(b64(b"nobody " + b"0" * 32) + b"\r\n")
    conn.next_event()
    conn.reject()
    assert conn.data_to_send() == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert out


class _ThreeRounds(ServerMechanism):
    """A test mechanism: challenge, ask, challenge, ask, then success."""

    name: ClassVar[str] = "X-THREE-ROUNDS"

    def __init__(self, context: object) -> None:
        super().__init__(context)  # type: ignore[arg-type]
        self.round = 0

    def start(self, initial_response: bytes | None) -> ServerStep:
        return SaslChallenge(b"round0:" + (initial_response or b""))

    def respond(self, response: bytes) -> ServerStep:
        if response == b"boom":
            raise ValueError("mechanism bug")
        self.round += 1
        return SaslNeedsCredentials(
            AuthPasswordCheck(mechanism=self.name, username="u", password=response.decode())
        )

    def resume(self, answer: CredentialAnswer) -> ServerStep:
        if answer is not True:
            return SaslFailure()
        if self.round < 2:
            return SaslChallenge(b"round%d" % self.round)
        return SaslSuccess("u", "admin")


def test_mechanism_agnostic_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SERVER_MECHANISMS, "X-THREE-ROUNDS", _ThreeRounds)
    conn = session(tls_on_connect=True, auth_mechanisms=("PLAIN", "x-three-rounds"))
    assert b"250-AUTH PLAIN X-THREE-ROUNDS\r\n" in talk(conn, b"EHLO c\r\n")
    assert talk(conn, b"AUTH X-THREE-ROUNDS =\r\n") == b"334 " + b64(b"round0:") + b"\r\n"
    conn.receive_data(b64(b"one") + b"\r\n")
    assert conn.next_event() == AuthPasswordCheck(
        mechanism="X-THREE-ROUNDS", username="u", password="one"
    )
    conn.accept()
    assert conn.data_to_send() == b"334 " + b64(b"round1") + b"\r\n"
    conn.receive_data(b64(b"two") + b"\r\n")
    assert isinstance(conn.next_event(), AuthPasswordCheck)
    conn.accept()
    assert conn.next_event() == Authenticated(
        mechanism="X-THREE-ROUNDS", username="u", authzid="admin"
    )
    assert conn.data_to_send() == b"235 2.7.0 Authentication successful\r\n"


def test_mechanism_exception_becomes_454(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SERVER_MECHANISMS, "X-THREE-ROUNDS", _ThreeRounds)
    conn = session(tls_on_connect=True, auth_mechanisms=("X-THREE-ROUNDS",))
    talk(conn, b"AUTH X-THREE-ROUNDS\r\n")
    assert talk(conn, b64(b"boom") + b"\r\n") == b"454 4.7.0 Temporary authentication failure\r\n"


def test_shutdown_during_exchange_waits_for_its_end() -> None:
    conn = session(tls_on_connect=True)
    talk(conn, b"AUTH PLAIN\r\n")
    conn.start_shutdown()
    assert not conn.closed
    assert talk(conn, b"*\r\nNOOP\r\n") == (
        b"501 5.7.0 Authentication cancelled\r\n421 4.3.2 mx.example Service shutting down\r\n"
    )
    assert conn.closed


# --- SCRAM channel-binding flag against what the EHLO reply really offered (RFC 5802 §6) -------

BINDING = ChannelBinding("tls-exporter", bytes(range(32)))


def _scram_exchange(conn: ServerConnection, client: ScramSha256Client) -> bytes:
    """Run a SCRAM-SHA-256 exchange for alice (password "pencil") and return the final reply."""
    out = talk(conn, b"AUTH SCRAM-SHA-256 " + b64(client.initial_response()) + b"\r\n", None)
    if not out:  # the lookup is pending
        assert isinstance(conn.pending, AuthSecretLookup)
        conn.provide_secret("pencil")
        out = conn.data_to_send()
    while out.startswith(b"334 "):
        answer = client.respond(base64.b64decode(out[4:-2]))
        out = talk(conn, b64(answer) + b"\r\n")
    return out


def _bound_session(offered: tuple[str, ...]) -> ServerConnection:
    conn = make(tls_on_connect=True, auth_mechanisms=offered)
    conn.tls_started(BINDING)
    talk(conn, b"EHLO client\r\n")
    return conn


def test_scram_y_flag_accepted_when_no_plus_was_advertised() -> None:
    # The server can bind but offers no -PLUS name: a binding-capable client says "y" (it saw
    # no -PLUS offer), which is no downgrade, so the exchange succeeds.
    conn = _bound_session(("SCRAM-SHA-256", "PLAIN"))
    context = SaslContext(channel_binding=BINDING, advertised_mechanisms=("SCRAM-SHA-256", "PLAIN"))
    client = ScramSha256Client(ClientCredentials(username="alice", password="pencil"), context)
    assert client.initial_response().startswith(b"y,,")
    client = ScramSha256Client(ClientCredentials(username="alice", password="pencil"), context)
    assert _scram_exchange(conn, client) == b"235 2.7.0 Authentication successful\r\n"
    assert client.complete
    assert conn.authenticated == "alice"


def test_scram_y_flag_refused_when_plus_was_advertised() -> None:
    # The EHLO reply offered SCRAM-SHA-256-PLUS; a client saying "y" claims it saw none: someone
    # stripped the offer on the way (a downgrade), so the exchange fails before any lookup.
    conn = _bound_session(("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"))
    context = SaslContext(channel_binding=BINDING, advertised_mechanisms=("SCRAM-SHA-256",))
    client = ScramSha256Client(ClientCredentials(username="alice", password="pencil"), context)
    assert _scram_exchange(conn, client) == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert conn.authenticated is None


def test_advertised_mechanisms_come_from_the_reply_sent() -> None:
    # An application answering EHLO with its own capability list is taken at its word.
    conn = make(tls_on_connect=True, auth_mechanisms=("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"))
    conn.tls_started(BINDING)
    conn.receive_data(b"EHLO client\r\n")
    assert isinstance(conn.next_event(), Hello)
    conn.send_reply(Reply.make(250, None, "mx.example", "auth=scram-sha-256", "AUTH SCRAM-SHA-256"))
    assert conn.data_to_send().endswith(b"250 AUTH SCRAM-SHA-256\r\n")
    context = SaslContext(channel_binding=BINDING, advertised_mechanisms=("SCRAM-SHA-256",))
    client = ScramSha256Client(ClientCredentials(username="alice", password="pencil"), context)
    assert _scram_exchange(conn, client) == b"235 2.7.0 Authentication successful\r\n"


def test_advertised_auth_mechanisms_parsing() -> None:
    reply = Reply.make(
        250, None, "AUTH not-a-keyword", "SIZE", "AUTH=login plain", "auth PLAIN  CRAM-MD5"
    )
    assert advertised_auth_mechanisms(reply) == ("LOGIN", "PLAIN", "CRAM-MD5")
    assert advertised_auth_mechanisms(Reply.make(250, None, "mx.example")) == ()


# --- ServerConfig.scram_iterations -------------------------------------------------------------


def _server_first(conn: ServerConnection, answer: str | None) -> bytes:
    first = b"n,,n=" + (b"alice" if answer else b"nobody") + b",r=fyko+d2lbbFgONRv9qkxdawL"
    talk(conn, b"AUTH SCRAM-SHA-256 " + b64(first) + b"\r\n", None)
    assert isinstance(conn.pending, AuthSecretLookup)
    conn.provide_secret(answer)
    out = conn.data_to_send()
    assert out.startswith(b"334 ")
    return base64.b64decode(out[4:-2])


@pytest.mark.parametrize("answer", ["pencil", None])
def test_scram_iterations_from_config(answer: str | None) -> None:
    # Both a plain-password answer and an unknown user announce the configured count.
    conn = session(tls_on_connect=True, auth_mechanisms=("SCRAM-SHA-256",), scram_iterations=5000)
    assert _server_first(conn, answer).endswith(b",i=5000")
    conn = session(tls_on_connect=True, auth_mechanisms=("SCRAM-SHA-256",))
    assert _server_first(conn, answer).endswith(b",i=4096")


def test_scram_iterations_config_round_trip() -> None:
    conn = session(tls_on_connect=True, auth_mechanisms=("SCRAM-SHA-256",), scram_iterations=8192)
    client = ScramSha256Client(
        ClientCredentials(username="alice", password="pencil"), SaslContext()
    )
    assert _scram_exchange(conn, client) == b"235 2.7.0 Authentication successful\r\n"


@pytest.mark.parametrize("value", [0, -1, True])
def test_scram_iterations_validated(value: int) -> None:
    with pytest.raises(ValueError, match="scram_iterations"):
        ServerConfig(scram_iterations=value)


# --- reject(reply) on SCRAM and OAuth queries: the application's reply ends the exchange -------

TEMPORARY = Reply.make(454, "4.7.0", "Directory unavailable")
DEFAULT_535 = b"535 5.7.8 Authentication credentials invalid\r\n"


@pytest.mark.parametrize(
    ("reply", "final"), [(TEMPORARY, b"454 4.7.0 Directory unavailable\r\n"), (None, DEFAULT_535)]
)
def test_scram_lookup_rejected_with_reply(reply: Reply | None, final: bytes) -> None:
    # The exchange carries on with a made-up record (the client cannot tell a rejected user from a
    # wrong password by where it fails); the application's reply replaces the final 535.
    conn = session(tls_on_connect=True, auth_mechanisms=("SCRAM-SHA-256",))
    client = ScramSha256Client(
        ClientCredentials(username="alice", password="pencil"), SaslContext()
    )
    talk(conn, b"AUTH SCRAM-SHA-256 " + b64(client.initial_response()) + b"\r\n", None)
    assert isinstance(conn.pending, AuthSecretLookup)
    conn.reject(reply)
    out = conn.data_to_send()
    assert out.startswith(b"334 ")
    assert talk(conn, b64(client.respond(base64.b64decode(out[4:-2]))) + b"\r\n") == final
    assert conn.authenticated is None
    assert talk(conn, b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


@pytest.mark.parametrize(
    ("mechanism", "initial", "dummy"),
    [
        ("XOAUTH2", b"user=alice\x01auth=Bearer ya29.bad\x01\x01", b""),
        ("OAUTHBEARER", b"n,a=alice,\x01auth=Bearer ya29.bad\x01\x01", b"\x01"),
    ],
)
@pytest.mark.parametrize(
    ("reply", "final"), [(TEMPORARY, b"454 4.7.0 Directory unavailable\r\n"), (None, DEFAULT_535)]
)
def test_token_check_rejected_with_reply(
    mechanism: str, initial: bytes, dummy: bytes, reply: Reply | None, final: bytes
) -> None:
    # RFC 7628 §3.2.2: the error JSON goes first as a challenge; after the client's dummy
    # response the application's reply (not the default 535) ends the exchange.
    conn = session(tls_on_connect=True, auth_mechanisms=(mechanism,))
    talk(conn, f"AUTH {mechanism} ".encode() + b64(initial) + b"\r\n", None)
    assert isinstance(conn.pending, AuthTokenCheck)
    conn.reject(reply)
    out = conn.data_to_send()
    assert out.startswith(b"334 ")
    assert b"status" in base64.b64decode(out[4:-2])
    assert talk(conn, (b64(dummy) if dummy else b"") + b"\r\n") == final
    assert conn.authenticated is None


def test_token_check_reply_does_not_hide_a_malformed_dummy_response() -> None:
    conn = session(tls_on_connect=True, auth_mechanisms=("OAUTHBEARER",))
    initial = b"n,a=alice,\x01auth=Bearer ya29.bad\x01\x01"
    talk(conn, b"AUTH OAUTHBEARER " + b64(initial) + b"\r\n", None)
    conn.reject(TEMPORARY)
    assert conn.data_to_send().startswith(b"334 ")
    assert talk(conn, b64(b"junk") + b"\r\n") == b"501 5.5.2 Malformed authentication response\r\n"


def test_cram_md5_lookup_rejected_with_reply_at_once() -> None:
    conn = session(tls_on_connect=True, auth_mechanisms=("CRAM-MD5",))
    talk(conn, b"AUTH CRAM-MD5\r\n")
    conn.receive_data(b64(b"tim " + b"0" * 32) + b"\r\n")
    assert isinstance(conn.next_event(), AuthSecretLookup)
    conn.reject(TEMPORARY)
    assert conn.data_to_send() == b"454 4.7.0 Directory unavailable\r\n"
