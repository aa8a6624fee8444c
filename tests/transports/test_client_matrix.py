"""Every adapter's client against every adapter's server: plain, STARTTLS + AUTH, implicit TLS
+ AUTH (5 clients x 5 servers x 3 modes)."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import pytest
from _client_harness import CLIENTS, open_client
from _transport_harness import ADAPTERS, Recorder, run_server

from esmtp_core import ServerConfig


@pytest.fixture(params=CLIENTS)
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.org>"
    message["To"] = "bob@example.net, nobody@example.net"
    message["Cc"] = "carol@example.net"
    message["Bcc"] = "dave@example.net"
    message["Subject"] = "matrix"
    message.set_content("Hello.\n.leading dot\n..two\n")
    return message


@pytest.mark.parametrize("server_kind", ADAPTERS)
def test_plain(client_kind: str, server_kind: str, recorder: Recorder) -> None:
    with run_server(server_kind, recorder) as running, open_client(
        client_kind, running.host, running.port, local_hostname="client.test"
    ) as client:
        assert client.capabilities.pipelining
        assert not client.tls_active
        result = client.send_message(_message())
        assert result.accepted == ("bob@example.net", "carol@example.net", "dave@example.net")
        assert list(result.refused) == ["nobody@example.net"]
        assert result.refused["nobody@example.net"].code == 550
        assert not result.ok
        assert client.noop().code == 250
    (stored,) = recorder.messages
    assert stored.mail_from == "alice@example.org"
    assert stored.rcpt_to == ["bob@example.net", "carol@example.net", "dave@example.net"]
    assert stored.hello == "client.test"
    assert b"Bcc" not in stored.content
    assert b"\r\n.leading dot\r\n..two\r\n" in stored.content


@pytest.mark.parametrize("server_kind", ADAPTERS)
def test_starttls_and_auth(
    client_kind: str,
    server_kind: str,
    recorder: Recorder,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    with run_server(server_kind, recorder, tls_context=server_tls) as running, open_client(
        client_kind, "localhost", running.port, tls="starttls", ssl_context=client_tls
    ) as client:
        assert client.tls_active
        assert client.ssl_object is not None
        assert "PLAIN" in client.capabilities.auth_mechanisms  # offered only after TLS
        assert not client.capabilities.starttls
        client.login("alice", "wonderland")
        assert client.authenticated == "PLAIN"
        result = client.send_message(b"Subject: tls\r\n\r\nbody\r\n", "a@example.org", ["b@x.net"])
        assert result.ok
    (stored,) = recorder.messages
    assert stored.tls
    assert stored.user == "alice"
    assert stored.content == b"Subject: tls\r\n\r\nbody\r\n"


@pytest.mark.parametrize("server_kind", ADAPTERS)
def test_implicit_tls_and_auth(
    client_kind: str,
    server_kind: str,
    recorder: Recorder,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    config = ServerConfig(hostname="mx.test", auth_mechanisms=("LOGIN",))
    with run_server(
        server_kind, recorder, tls_context=server_tls, implicit_tls=True, config=config
    ) as running, open_client(
        client_kind, "127.0.0.1", running.port, tls="implicit", ssl_context=client_tls
    ) as client:
        assert client.tls_active
        assert client.greeting is not None
        assert client.greeting.code == 220
        client.login("alice", "wonderland")
        assert client.authenticated == "LOGIN"
        result = client.send_message(b"Subject: 465\r\n\r\nbody\r\n", "", ["b@x.net"])
        assert result.accepted == ("b@x.net",)
    (stored,) = recorder.messages
    assert stored.tls
    assert stored.user == "alice"
    assert stored.mail_from == ""
