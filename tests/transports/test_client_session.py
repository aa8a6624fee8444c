"""Session-level behaviour of every client adapter: the TLS policy (RFC 3207: required STARTTLS is
never a silent plaintext fallback), credentials only under TLS, authentication failures, timeouts,
misbehaving servers, and the thread pool helper."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from email.message import EmailMessage

import pytest
import trustme
from _client_harness import CLIENTS, ScriptedServer, open_client, scripted_server
from _transport_harness import Recorder, run_server

from esmtp_core import ServerConfig
from transports.errors import (
    SMTPAuthenticationError,
    SMTPClientError,
    SMTPGreetingError,
    SMTPProtocolError,
    SMTPRecipientsRefused,
    SMTPReplyError,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
)
from transports.threads import Outgoing, send_messages
from transports.tls import server_end_point_binding

SERVER = "threads"
TEXT = b"Subject: session\r\n\r\nbody\r\n"


@pytest.fixture(params=CLIENTS)
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_required_starttls_not_offered_is_an_error(client_kind: str, recorder: Recorder) -> None:
    with run_server(SERVER, recorder) as running:
        with pytest.raises(SMTPTLSError, match="does not offer STARTTLS") as raised, open_client(
            client_kind, running.host, running.port, tls="starttls"
        ):
            pytest.fail("connected in plaintext although STARTTLS was required")
        assert not isinstance(raised.value, SMTPReplyError)
        # opportunistic: carries on in plaintext, and says why
        with open_client(
            client_kind, running.host, running.port, tls="starttls-opportunistic"
        ) as client:
            assert not client.tls_active
            assert client.tls_skipped == "STARTTLS not offered"
            assert client.send_message(TEXT, "a@example.org", ["b@example.net"]).ok
    (stored,) = recorder.messages
    assert not stored.tls


def test_opportunistic_starttls_when_offered(
    client_kind: str, recorder: Recorder, server_tls: ssl.SSLContext
) -> None:
    # Opportunistic TLS does not verify by default (RFC 7435): the test CA is not trusted here.
    with run_server(SERVER, recorder, tls_context=server_tls) as running, open_client(
        client_kind, running.host, running.port, tls="starttls-opportunistic"
    ) as client:
        assert client.tls_active
        assert client.tls_skipped is None
        assert client.send_message(TEXT, "a@example.org", ["b@example.net"]).ok
    assert recorder.messages[0].tls


def test_certificate_is_verified(
    client_kind: str, recorder: Recorder, server_tls: ssl.SSLContext
) -> None:
    # The default context trusts the system store only, not the test CA.
    with run_server(SERVER, recorder, tls_context=server_tls) as running, pytest.raises(
        SMTPTLSError, match="handshake"
    ), open_client(client_kind, "localhost", running.port, tls="starttls"):
        pytest.fail("an untrusted certificate was accepted")


def test_manual_starttls(
    client_kind: str, recorder: Recorder, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    with run_server(SERVER, recorder, tls_context=server_tls) as running, open_client(
        client_kind, "localhost", running.port, ssl_context=client_tls
    ) as client:
        assert client.capabilities.starttls
        assert not client.tls_active
        assert client.starttls().code == 220
        assert client.tls_active
        assert client.capabilities.auth_mechanisms  # EHLO again after TLS (RFC 3207 §4.2)


def test_credentials_need_tls(client_kind: str, recorder: Recorder) -> None:
    config = ServerConfig(auth_require_tls=False)
    with run_server(SERVER, recorder, config=config) as running:
        with open_client(client_kind, running.host, running.port) as client:
            assert client.capabilities.auth_mechanisms
            with pytest.raises(SMTPTLSError, match="without TLS"):
                client.login("alice", "wonderland")
            assert client.noop().code == 250  # nothing was sent
        with open_client(
            client_kind, running.host, running.port, allow_insecure_auth=True
        ) as client:
            client.login("alice", "wonderland")
            assert client.authenticated == "PLAIN"


def test_wrong_password(
    client_kind: str, recorder: Recorder, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    with run_server(SERVER, recorder, tls_context=server_tls) as running, open_client(
        client_kind, "localhost", running.port, tls="starttls", ssl_context=client_tls
    ) as client:
        with pytest.raises(SMTPAuthenticationError) as failed:
            client.login("alice", "not the password")
        assert failed.value.code == 535
        assert client.authenticated is None
        client.login("alice", "wonderland", mechanism="LOGIN")  # the session goes on
        assert client.authenticated == "LOGIN"


class _TokenHandler(Recorder):
    def check_token(self, session: object, mechanism: str, username: str, token: str) -> bool:
        return (username, token) == ("alice", "ya29.token")


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_login_with_a_bearer_token(
    client_kind: str,
    mechanism: str,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    config = ServerConfig(auth_mechanisms=(mechanism, "PLAIN"))
    with run_server(SERVER, _TokenHandler(), tls_context=server_tls, config=config) as running, (
        open_client(
            client_kind, "localhost", running.port, tls="starttls", ssl_context=client_tls
        )
    ) as client:
        with pytest.raises(SMTPAuthenticationError):
            client.login("alice", token="expired")
        client.login("alice", token="ya29.token")  # no mechanism given: the token picks it
        assert client.authenticated == mechanism


class _ScramHandler(Recorder):
    def lookup_secret(self, session: object, mechanism: str, username: str) -> str | None:
        return "wonderland" if username == "alice" else None


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
def test_scram_plus_binds_to_the_tls_channel(
    client_kind: str,
    implicit: bool,
    tls_ca: trustme.CA,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    """SCRAM-SHA-256-PLUS (RFC 5802 §6, RFC 7677) with tls-server-end-point (RFC 5929)."""
    leaf_pem = server_tls_leaf(tls_ca)
    config = ServerConfig(auth_mechanisms=("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"))
    with run_server(
        SERVER,
        _ScramHandler(),
        tls_context=leaf_pem[0],
        implicit_tls=implicit,
        channel_binding=server_end_point_binding(leaf_pem[1]),
        config=config,
    ) as running, open_client(
        client_kind,
        "localhost",
        running.port,
        tls="implicit" if implicit else "starttls",
        ssl_context=client_tls,
    ) as client:
        client.login("alice", "wonderland")
        assert client.authenticated == "SCRAM-SHA-256-PLUS"


def server_tls_leaf(ca: trustme.CA) -> tuple[ssl.SSLContext, bytes]:
    """A server context and its certificate (PEM) for localhost."""
    leaf = ca.issue_cert("localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context, leaf.cert_chain_pems[0].bytes()


def _silent(sock: socket.socket, server: ScriptedServer) -> None:
    server.done.wait()


def _stall_after_ehlo(sock: socket.socket, server: ScriptedServer) -> None:
    sock.sendall(b"220 stall.test ESMTP\r\n")
    server.read_until(sock, b"\r\n")
    sock.sendall(b"250-stall.test\r\n250 PIPELINING\r\n")
    server.done.wait()  # MAIL never gets a reply


@pytest.mark.parametrize("script", [_silent, _stall_after_ehlo], ids=["greeting", "mail"])
def test_read_timeout(client_kind: str, script: object) -> None:
    with scripted_server(script) as server:  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(SMTPTimeoutError), open_client(
            client_kind, "127.0.0.1", server.port, timeout=0.3
        ) as client:
            client.send_message(TEXT, "a@example.org", ["b@example.net"])
        assert time.monotonic() - started < 5
        assert isinstance(SMTPTimeoutError("x"), TimeoutError)


def test_connect_timeout(client_kind: str) -> None:
    """A listener whose backlog is full drops further SYNs (Linux): connecting hangs."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
                fillers.append(filler)
            started = time.monotonic()
            with pytest.raises(SMTPTimeoutError, match=r"connecting|no reply"), open_client(
                client_kind, "127.0.0.1", port, connect_timeout=0.3, timeout=0.3
            ):
                pytest.fail("connected to a listener that never accepts")
            assert time.monotonic() - started < 5
        finally:
            for filler in fillers:
                filler.close()


def test_greeting_refused(client_kind: str) -> None:
    def refuse(sock: socket.socket, server: ScriptedServer) -> None:
        sock.sendall(b"554 5.3.2 no service for you\r\n")

    with scripted_server(refuse) as server:
        with pytest.raises(SMTPGreetingError) as refused, open_client(
            client_kind, "127.0.0.1", server.port
        ):
            pytest.fail("connected to a server that refused the session")
        assert refused.value.code == 554
        assert refused.value.reply.enhanced == "5.3.2"


def test_server_vanishes(client_kind: str) -> None:
    def vanish(sock: socket.socket, server: ScriptedServer) -> None:
        sock.sendall(b"220 gone.test ESMTP\r\n")
        server.read_until(sock, b"\r\n")
        sock.sendall(b"250 gone.test\r\n")
        server.read_until(sock, b"MAIL")
        sock.shutdown(socket.SHUT_RDWR)

    with scripted_server(vanish) as server, open_client(
        client_kind, "127.0.0.1", server.port
    ) as client:
        with pytest.raises(SMTPServerDisconnected):
            client.send_message(TEXT, "a@example.org", ["b@example.net"])
        assert not client.connected


def test_server_breaks_the_protocol(client_kind: str) -> None:
    def garbage(sock: socket.socket, server: ScriptedServer) -> None:
        sock.sendall(b"hello, I am not an SMTP server\r\n")

    with scripted_server(garbage) as server, pytest.raises(SMTPProtocolError), open_client(
        client_kind, "127.0.0.1", server.port
    ):
        pytest.fail("accepted a garbage greeting")


def test_connection_refused(client_kind: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(SMTPClientError, match="cannot connect"), open_client(
        client_kind, "127.0.0.1", port
    ):
        pytest.fail("connected to a closed port")


def test_quit_and_context_manager(client_kind: str, recorder: Recorder) -> None:
    with run_server(SERVER, recorder) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        assert client.connected
        reply = client.quit()
        assert reply is not None
        assert reply.code == 221
        assert not client.connected
        assert client.quit() is None  # twice is harmless
        with pytest.raises(SMTPClientError, match="not connected"):
            client.noop()
    recorder.wait_for(lambda: recorder.disconnects == 1)


def test_send_messages_pool(recorder: Recorder) -> None:
    messages: list[EmailMessage | Outgoing] = []
    for number in range(12):
        message = EmailMessage()
        message["From"] = "a@example.org"
        message["To"] = f"rcpt{number}@example.net"
        message["Subject"] = f"pool {number}"
        message.set_content(f"message {number}\n")
        messages.append(message)
    messages.append(Outgoing(TEXT, "a@example.org", ["nobody@example.net"]))
    with run_server(SERVER, recorder) as running:
        results = send_messages(messages, running.host, running.port, connections=3, timeout=10)
    *sent, refused = results
    assert all(not isinstance(r, Exception) and r.ok for r in sent), results
    assert isinstance(refused, SMTPRecipientsRefused)
    assert sorted(m.rcpt_to[0] for m in recorder.messages) == sorted(
        f"rcpt{n}@example.net" for n in range(12)
    )
    # One session per worker at most, not one per message. A worker may find the queue empty
    # when it starts (the others were faster): fewer sessions are fine, more are not.
    recorder.wait_for(lambda: recorder.disconnects == recorder.connects)
    assert 1 <= recorder.connects <= 3
