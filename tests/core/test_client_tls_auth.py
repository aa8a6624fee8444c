"""Client core: STARTTLS (RFC 3207) with the response-injection defence, AUTH (RFC 4954)."""

from __future__ import annotations

import base64

import pytest
from client_helpers import FULL_EHLO, events, one, ready

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    AuthResult,
    ChannelBinding,
    ClientConfig,
    ClientConnection,
    ClientCredentials,
    ClientState,
    CommandReply,
    EhloReply,
    Greeting,
    LocalProtocolError,
    RemoteProtocolError,
    SaslError,
    StartTLSReply,
)

CREDS = ClientCredentials(username="alice", password="wonderland")


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


# --- STARTTLS -----------------------------------------------------------------------------------


def test_starttls_then_new_ehlo() -> None:
    conn = ready()
    conn.starttls()
    assert conn.data_to_send() == b"STARTTLS\r\n"
    event = one(conn, b"220 2.0.0 Ready to start TLS\r\n")
    assert isinstance(event, StartTLSReply)
    assert event.ready
    assert conn.state is ClientState.TLS_PENDING
    assert conn.next_event() is PAUSED
    with pytest.raises(LocalProtocolError):
        conn.noop()
    conn.tls_started()
    assert conn.tls_active
    assert conn.state is ClientState.GREETED
    assert conn.capabilities.keywords == ()
    with pytest.raises(LocalProtocolError):
        conn.mail("a@x.org")  # RFC 3207 §4.2: EHLO again first
    conn.ehlo()
    assert conn.data_to_send() == b"EHLO localhost\r\n"
    reply = one(conn, b"250-mx\r\n250 AUTH PLAIN\r\n")
    assert isinstance(reply, EhloReply)
    assert not conn.capabilities.starttls
    with pytest.raises(LocalProtocolError):
        conn.starttls()


def test_starttls_injection_in_the_same_segment_is_discarded() -> None:
    """The "NO STARTTLS" attack: plaintext sent behind the 220 must never be read as a reply
    inside TLS (CVE-2011-0411 and friends)."""
    conn = ready()
    conn.starttls()
    conn.data_to_send()
    injected = b"220 Ready\r\n250-evil.example\r\n250 AUTH PLAIN\r\n"
    assert [type(e) for e in events(conn, injected)] == [StartTLSReply]
    conn.receive_data(b"250 more plaintext before the handshake\r\n")  # also discarded
    conn.tls_started()
    assert conn.next_event() is NEED_DATA
    conn.ehlo()
    conn.data_to_send()
    reply = one(conn, b"250-real.example\r\n250 SIZE 10\r\n")
    assert isinstance(reply, EhloReply)
    assert reply.capabilities.server_name == "real.example"
    assert conn.capabilities.auth_mechanisms == ()


def test_starttls_injection_of_a_partial_reply_is_discarded() -> None:
    conn = ready()
    conn.starttls()
    conn.data_to_send()
    events(conn, b"220 Ready\r\n250-half of a rep")
    conn.tls_started()
    conn.ehlo()
    conn.data_to_send()
    assert isinstance(one(conn, b"250 clean\r\n"), EhloReply)


def test_starttls_refused() -> None:
    conn = ready()
    conn.starttls()
    conn.data_to_send()
    event = one(conn, b"454 4.7.0 TLS not available\r\n")
    assert isinstance(event, StartTLSReply)
    assert not event.ready
    assert conn.state is ClientState.READY
    with pytest.raises(LocalProtocolError):
        conn.tls_started()


def test_starttls_not_offered_or_in_transaction() -> None:
    conn = ready(b"250 mx\r\n")
    with pytest.raises(LocalProtocolError):
        conn.starttls()
    conn = ready()
    conn.mail("a@x.org")
    with pytest.raises(LocalProtocolError):
        conn.starttls()


def test_implicit_tls_has_no_starttls() -> None:
    conn = ready(tls_on_connect=True)
    assert conn.tls_active
    with pytest.raises(LocalProtocolError):
        conn.starttls()


# --- AUTH ---------------------------------------------------------------------------------------


def tls_ready(ehlo: bytes = FULL_EHLO, **config: object) -> ClientConnection:
    return ready(ehlo, tls_on_connect=True, **config)


def test_auth_refused_without_tls() -> None:
    conn = ready()
    with pytest.raises(LocalProtocolError, match="TLS"):
        conn.auth(CREDS)
    assert conn.data_to_send() == b""
    insecure = ready(allow_insecure_auth=True)
    insecure.auth(CREDS, "PLAIN")
    assert insecure.data_to_send().startswith(b"AUTH PLAIN ")


def test_auth_plain_initial_response() -> None:
    conn = tls_ready()
    conn.auth(CREDS, "plain")
    assert conn.data_to_send() == b"AUTH PLAIN " + b64(b"\0alice\0wonderland") + b"\r\n"
    with pytest.raises(LocalProtocolError):
        conn.noop()  # AUTH ends a group and decides what follows
    result = one(conn, b"235 2.7.0 Authentication successful\r\n")
    assert isinstance(result, AuthResult)
    assert result.ok
    assert result.mechanism == "PLAIN"
    assert conn.authenticated == "PLAIN"
    with pytest.raises(LocalProtocolError):
        conn.auth(CREDS)


def test_auth_plain_empty_challenge() -> None:
    """A server that ignores the initial response and sends an empty 334 gets it again."""
    conn = tls_ready()
    conn.auth(CREDS, "PLAIN")
    conn.data_to_send()
    assert events(conn, b"334 \r\n") == []
    assert conn.data_to_send() == b64(b"\0alice\0wonderland") + b"\r\n"
    assert one(conn, b"235 ok\r\n").ok  # type: ignore[attr-defined]


def test_auth_login_exchange() -> None:
    conn = tls_ready()
    conn.auth(CREDS, "LOGIN")
    assert conn.data_to_send() == b"AUTH LOGIN\r\n"
    assert events(conn, b"334 " + b64(b"Username:") + b"\r\n") == []
    assert conn.data_to_send() == b64(b"alice") + b"\r\n"
    assert events(conn, b"334 " + b64(b"Password:") + b"\r\n") == []
    assert conn.data_to_send() == b64(b"wonderland") + b"\r\n"
    result = one(conn, b"535 5.7.8 Authentication credentials invalid\r\n")
    assert isinstance(result, AuthResult)
    assert not result.ok
    assert result.error is None
    assert result.reply.enhanced == "5.7.8"
    assert conn.authenticated is None
    conn.noop()  # the session goes on


def test_auth_bad_base64_challenge_is_cancelled() -> None:
    conn = tls_ready()
    conn.auth(CREDS, "LOGIN")
    conn.data_to_send()
    assert events(conn, b"334 !!!not base64!!!\r\n") == []
    assert conn.data_to_send() == b"*\r\n"
    result = one(conn, b"501 5.7.0 cancelled\r\n")
    assert isinstance(result, AuthResult)
    assert isinstance(result.error, SaslError)
    assert not result.ok


def test_auth_challenge_the_mechanism_rejects_is_cancelled() -> None:
    conn = tls_ready()
    conn.auth(CREDS, "LOGIN")
    conn.data_to_send()
    events(conn, b"334 " + b64(b"Username:") + b"\r\n")
    events(conn, b"334 " + b64(b"Password:") + b"\r\n")
    conn.data_to_send()
    assert events(conn, b"334 " + b64(b"What else?") + b"\r\n") == []
    assert conn.data_to_send() == b"*\r\n"
    with pytest.raises(RemoteProtocolError):  # a server that keeps challenging after "*"
        events(conn, b"334 \r\n")


def test_auth_235_after_cancel_is_not_success() -> None:
    conn = tls_ready()
    conn.auth(CREDS, "LOGIN")
    conn.data_to_send()
    events(conn, b"334 ###\r\n")
    result = one(conn, b"235 ok whatever\r\n")
    assert isinstance(result, AuthResult)
    assert not result.ok
    assert conn.authenticated is None


def test_auth_mechanism_not_offered_or_unknown() -> None:
    conn = tls_ready()
    with pytest.raises(LocalProtocolError):
        conn.auth(CREDS, "CRAM-MD5")
    conn = tls_ready(b"250-mx\r\n250 AUTH NTLM\r\n")
    with pytest.raises(LocalProtocolError):
        conn.auth(CREDS, "NTLM")
    with pytest.raises(LocalProtocolError):
        conn.auth(CREDS)
    conn = tls_ready(b"250 mx\r\n")
    with pytest.raises(LocalProtocolError):
        conn.auth(CREDS)


def test_auth_automatic_choice_prefers_the_strongest() -> None:
    conn = tls_ready(b"250-mx\r\n250 AUTH LOGIN PLAIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256\r\n")
    conn.auth(CREDS)
    assert conn.data_to_send().startswith(b"AUTH SCRAM-SHA-256 ")
    conn = tls_ready(b"250-mx\r\n250 AUTH LOGIN PLAIN\r\n")
    conn.auth(CREDS)
    assert conn.data_to_send().startswith(b"AUTH PLAIN ")
    conn = tls_ready(b"250-mx\r\n250 AUTH LOGIN PLAIN\r\n", auth_preference=("LOGIN",))
    conn.auth(CREDS)
    assert conn.data_to_send() == b"AUTH LOGIN\r\n"


def test_auth_token_uses_oauth() -> None:
    conn = tls_ready(b"250-mx\r\n250 AUTH PLAIN XOAUTH2 OAUTHBEARER\r\n")
    conn.auth(ClientCredentials(username="alice", token="tok123"))
    assert conn.data_to_send().startswith(b"AUTH OAUTHBEARER ")


def test_auth_235_before_the_server_proved_itself() -> None:
    """SCRAM: a 235 before the server signature was checked is an impostor, not a success."""
    conn = tls_ready(b"250-mx\r\n250 AUTH SCRAM-SHA-256\r\n")
    conn.auth(CREDS)
    assert conn.data_to_send().startswith(b"AUTH SCRAM-SHA-256 ")
    result = one(conn, b"235 2.7.0 trust me\r\n")
    assert isinstance(result, AuthResult)
    assert isinstance(result.error, SaslError)
    assert not result.ok
    assert conn.authenticated is None


def test_auth_in_transaction_refused() -> None:
    conn = tls_ready()
    conn.mail("a@x.org")
    with pytest.raises(LocalProtocolError):
        conn.auth(CREDS)


def test_auth_with_cram_md5_exchange() -> None:
    conn = tls_ready(b"250-mx\r\n250 AUTH CRAM-MD5\r\n")
    conn.auth(CREDS)
    assert conn.data_to_send() == b"AUTH CRAM-MD5\r\n"
    challenge = b"<1896.697170952@postoffice.example.net>"
    events(conn, b"334 " + b64(challenge) + b"\r\n")
    answer = base64.b64decode(conn.data_to_send())
    assert answer.startswith(b"alice ")
    assert len(answer) == len(b"alice ") + 32
    assert one(conn, b"235 2.7.0 ok\r\n").ok  # type: ignore[attr-defined]


def test_auth_refused_outright_is_an_auth_result() -> None:
    conn = tls_ready()
    conn.auth(CREDS, "PLAIN")
    conn.data_to_send()
    result = one(conn, b"504 5.5.4 unrecognized\r\n")
    assert isinstance(result, AuthResult)
    assert not result.ok


def test_greeting_type_exported() -> None:
    conn = ClientConnection(ClientConfig())
    assert isinstance(one(conn, b"220 x\r\n"), Greeting)
    assert CommandReply.__name__ == "CommandReply"


PLUS_EHLO = b"250-mx\r\n250 AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256\r\n"
BINDING = ChannelBinding("tls-exporter", b"\x01" * 32)


def test_implicit_tls_channel_binding_feeds_plus_mechanisms() -> None:
    without = ready(PLUS_EHLO, tls_on_connect=True)
    without.auth(CREDS)
    assert without.data_to_send().startswith(b"AUTH SCRAM-SHA-256 ")  # nothing to bind to
    conn = ready(PLUS_EHLO, tls_on_connect=True)
    conn.set_channel_binding(BINDING)
    assert conn.state is ClientState.READY  # nothing else changes
    assert conn.capabilities.auth_mechanisms == ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")
    conn.auth(CREDS)
    verb, mechanism, initial = conn.data_to_send().split()
    assert (verb, mechanism) == (b"AUTH", b"SCRAM-SHA-256-PLUS")
    assert base64.b64decode(initial).startswith(b"p=tls-exporter,,n=alice,")


def test_tls_started_with_implicit_tls_only_sets_the_binding() -> None:
    """Kept for compatibility: the same as ``set_channel_binding``; without any TLS it is a
    misuse."""
    conn = ready(PLUS_EHLO, tls_on_connect=True)
    conn.tls_started(BINDING)
    assert conn.state is ClientState.READY
    conn.auth(CREDS)
    assert conn.data_to_send().startswith(b"AUTH SCRAM-SHA-256-PLUS ")
    plain = ready()
    with pytest.raises(LocalProtocolError):
        plain.tls_started()


def test_set_channel_binding_refusals() -> None:
    plain = ready(PLUS_EHLO, allow_insecure_auth=True)
    with pytest.raises(LocalProtocolError, match="without TLS"):
        plain.set_channel_binding(BINDING)
    conn = ready(PLUS_EHLO, tls_on_connect=True)
    conn.auth(CREDS)
    with pytest.raises(LocalProtocolError, match="AUTH"):  # queued: the choice is made
        conn.set_channel_binding(BINDING)
    conn.data_to_send()
    with pytest.raises(LocalProtocolError, match="AUTH"):  # in flight
        conn.set_channel_binding(BINDING)
    one(conn, b"535 5.7.8 no\r\n")
    conn.set_channel_binding(BINDING)  # a failed AUTH may be retried, now with -PLUS
    conn.auth(CREDS)
    assert conn.data_to_send().startswith(b"AUTH SCRAM-SHA-256-PLUS ")
    closed = ready(PLUS_EHLO, tls_on_connect=True)
    closed.receive_data(b"")
    assert closed.next_event() is not NEED_DATA
    with pytest.raises(LocalProtocolError, match="closed"):
        closed.set_channel_binding(BINDING)


def test_set_channel_binding_after_starttls() -> None:
    conn = ready(b"250-mx\r\n250 STARTTLS\r\n")
    conn.starttls()
    conn.data_to_send()
    one(conn, b"220 go\r\n")
    conn.tls_started()
    conn.set_channel_binding(BINDING)
    conn.ehlo()
    conn.data_to_send()
    one(conn, PLUS_EHLO)
    conn.auth(CREDS)
    assert b"SCRAM-SHA-256-PLUS" in conn.data_to_send()
