"""Every adapter's server against Python's smtplib: plain, LMTP, STARTTLS, implicit TLS, AUTH,
an async handler, 50+ concurrent sessions, and a Maildir-storing handler."""

from __future__ import annotations

import importlib
import smtplib
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _transport_harness import ASYNC_ADAPTERS, WAIT, AsyncRecorder, Recorder, run_server

from esmtp_core import Reply, ServerConfig
from transports.handler import Envelope, MessageResult, Session
from transports.storage import Maildir, StoringHandler

BODY = (
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\n"
    b"Hello.\r\n.leading dot\r\n..two dots\r\n\r\nlast line\r\n"
)


def test_plain_session(adapter: str, recorder: Recorder) -> None:
    with run_server(adapter, recorder) as running, smtplib.SMTP(
        running.host, running.port, timeout=WAIT
    ) as client:
        code, _ = client.ehlo("client.test")
        assert code == 250
        assert not client.has_extn("starttls")
        refused = client.sendmail("a@example.org", ["b@example.net", "c@example.net"], BODY)
        assert refused == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.org", ["nobody@example.net"], BODY)
        client.sendmail("<>", ["b@example.net", "nobody@example.net"], BODY)
    first, second = recorder.messages
    assert first.content == BODY  # smtplib dot-stuffs; the server must undo it byte for byte
    assert (first.mail_from, first.rcpt_to) == ("a@example.org", ["b@example.net", "c@example.net"])
    assert (second.mail_from, second.rcpt_to) == ("", ["b@example.net"])
    assert first.hello == "client.test"
    assert not first.tls


def test_lmtp_session(adapter: str, recorder: Recorder) -> None:
    config = ServerConfig(hostname="lmtp.test", lmtp=True)
    with run_server(adapter, recorder, config=config) as running:
        client = smtplib.LMTP(running.host, running.port, timeout=WAIT)  # type: ignore[arg-type]
        try:
            assert client.ehlo_or_helo_if_needed() is None
            refused = client.sendmail("a@example.org", ["b@example.net", "c@example.net"], BODY)
            assert refused == {}
        finally:
            client.quit()
    (message,) = recorder.messages
    assert message.content == BODY
    assert message.rcpt_to == ["b@example.net", "c@example.net"]


class PerRecipient(Recorder):
    """LMTP: delivers to every recipient except those named ``full@...`` (mailbox full)."""

    def message(self, session: Session, envelope: Envelope, content: bytes) -> MessageResult:
        super().message(session, envelope, content)
        return [
            Reply.make(452, "4.2.2", "Mailbox full") if rcpt.startswith("full@") else None
            for rcpt in envelope.rcpt_to
        ]


def test_lmtp_one_reply_per_recipient(adapter: str) -> None:
    handler = PerRecipient()
    config = ServerConfig(hostname="lmtp.test", lmtp=True)
    with run_server(adapter, handler, config=config) as running:
        client = smtplib.LMTP(running.host, running.port, timeout=WAIT)  # type: ignore[arg-type]
        try:
            client.ehlo_or_helo_if_needed()
            client.mail("a@example.org")
            for rcpt in ("b@example.net", "full@example.net", "c@example.net"):
                assert client.rcpt(rcpt)[0] == 250
            client.send(b"DATA\r\n")
            assert client.getreply()[0] == 354
            client.send(BODY.replace(b"\r\n.", b"\r\n..") + b".\r\n")
            codes = [client.getreply()[0] for _ in range(3)]  # RFC 2033 §4.2: in RCPT order
            assert codes == [250, 452, 250]
        finally:
            client.quit()
    (message,) = handler.messages
    assert message.content == BODY


def test_starttls(
    adapter: str, recorder: Recorder, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    with run_server(adapter, recorder, tls_context=server_tls) as running, smtplib.SMTP(
        "localhost", running.port, timeout=WAIT
    ) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # AUTH only after TLS by default
        client.starttls(context=client_tls)
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        client.sendmail("a@example.org", ["b@example.net"], BODY)
    (message,) = recorder.messages
    assert message.tls
    assert message.content == BODY


def test_implicit_tls(
    adapter: str, recorder: Recorder, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    with run_server(adapter, recorder, tls_context=server_tls, implicit_tls=True) as running:
        client = smtplib.SMTP_SSL("localhost", running.port, timeout=WAIT, context=client_tls)
        with client:
            client.ehlo()
            assert not client.has_extn("starttls")
            client.login("alice", "wonderland")
            client.sendmail("a@example.org", ["b@example.net"], BODY)
    (message,) = recorder.messages
    assert message.tls
    assert message.user == "alice"


def test_auth(
    adapter: str, recorder: Recorder, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    config = ServerConfig(hostname="mx.test", auth_required=True)
    with run_server(adapter, recorder, config=config, tls_context=server_tls) as running:
        with smtplib.SMTP("localhost", running.port, timeout=WAIT) as client:
            client.starttls(context=client_tls)
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("a@example.org", ["b@example.net"], BODY)
            assert refused.value.smtp_code == 530
            with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
                client.login("alice", "wrong")
            assert failed.value.smtp_code == 535
        for mechanism in ("PLAIN", "LOGIN"):
            with smtplib.SMTP("localhost", running.port, timeout=WAIT) as client:
                client.starttls(context=client_tls)
                client.ehlo()
                client.user, client.password = "alice", "wonderland"
                code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
                assert code == 235
                client.sendmail("a@example.org", ["b@example.net"], BODY)
    assert [m.user for m in recorder.messages] == ["alice", "alice"]


@pytest.mark.parametrize("kind", ASYNC_ADAPTERS)
def test_async_handler(kind: str) -> None:
    handler = AsyncRecorder()
    with run_server(kind, handler) as running, smtplib.SMTP(
        running.host, running.port, timeout=WAIT
    ) as client:
        client.sendmail("a@example.org", ["b@example.net"], BODY)
    assert handler.messages == [BODY]


def test_concurrent_sessions(adapter: str, recorder: Recorder) -> None:
    sessions = 60

    def send(number: int) -> None:
        with smtplib.SMTP(running.host, running.port, timeout=WAIT) as client:
            body = BODY + f"message {number}\r\n".encode()
            client.sendmail(f"s{number}@example.org", ["b@example.net"], body)

    with run_server(adapter, recorder, max_connections=sessions) as running, ThreadPoolExecutor(
        sessions
    ) as pool:
        list(pool.map(send, range(sessions)))
    assert sorted(m.mail_from for m in recorder.messages) == sorted(
        f"s{n}@example.org" for n in range(sessions)
    )
    for message in recorder.messages:
        number = message.mail_from[1:].split("@")[0]
        assert message.content == BODY + f"message {number}\r\n".encode()


def test_storing_handler_maildir(adapter: str, tmp_path: Path) -> None:
    handler = StoringHandler(Maildir(tmp_path / "md"))
    with run_server(adapter, handler) as running, smtplib.SMTP(
        running.host, running.port, timeout=WAIT
    ) as client:
        client.ehlo("client.test")
        client.sendmail("a@example.org", ["b@example.net"], BODY)
    (name,) = list((tmp_path / "md" / "new").iterdir())
    content = name.read_bytes()
    assert content.startswith(b"Return-Path: <a@example.org>\r\nReceived: from client.test ")
    assert b"with ESMTP id " in content
    assert content.endswith(b"\r\n" + BODY)
    assert list((tmp_path / "md" / "tmp").iterdir()) == []


def _ipv6_loopback() -> bool:
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback(adapter: str, tmp_path: Path) -> None:
    handler = StoringHandler(Maildir(tmp_path))
    with run_server(adapter, handler, host="::1") as running, smtplib.SMTP(
        "::1", running.port, timeout=WAIT
    ) as client:
        client.sendmail("a@example.org", ["b@example.net"], BODY)
    (name,) = list((tmp_path / "new").iterdir())
    assert b"([IPv6:::1])" in name.read_bytes()


@pytest.mark.parametrize("module", ["transports.threads", "transports.sockets"])
def test_blocking_adapters_refuse_an_async_handler(module: str) -> None:
    server_class = importlib.import_module(module).Server
    with pytest.raises(TypeError, match="AsyncHandler"):
        server_class(AsyncRecorder(), port=0)
