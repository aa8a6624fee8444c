"""Every client adapter against servers nobody here wrote: Postfix's ``smtp-sink`` (started on a
loopback port by the test, through the interop helpers) and aiosmtpd."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from _client_harness import CLIENTS, open_client

from tests.interop.peers import (
    TestPKI,
    make_pki,
    make_workdir,
    need_program,
    smtp_sink,
    strip_trace_headers,
    wait_for_maildir,
)
from tests.interop.standin import aiosmtpd_maildir_server
from transports.errors import SMTPAuthenticationError, SMTPRecipientsRefused

MESSAGE = (
    b"From: Sender <sender@client.test>\r\n"
    b"To: rcpt@server.test\r\n"
    b"Subject: peers caf\xc3\xa9\r\n"
    b"\r\n"
    b"Line one\r\n"
    b".starts with a dot\r\n"
    b".\r\n"
    b"8-bit: caf\xc3\xa9\r\n"
)


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


@pytest.fixture(params=CLIENTS)
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def work() -> Iterator[Path]:
    path = make_workdir("esmtp-client-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    path = make_workdir("esmtp-client-pki-")
    yield make_pki(path)
    shutil.rmtree(path, ignore_errors=True)


# --- Postfix smtp-sink --------------------------------------------------------------------------


@pytest.fixture
def sink_program() -> None:
    need_program("smtp-sink")


@pytest.mark.usefixtures("sink_program")
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_smtp_sink(client_kind: str, work: Path, pipelining: bool) -> None:
    extra = [] if pipelining else ["-p"]
    with smtp_sink(work, dump=True, extra_args=extra) as sink, open_client(
        client_kind, "127.0.0.1", sink.port, local_hostname="client.test"
    ) as client:
        assert client.capabilities.pipelining is pipelining
        result = client.send_message(MESSAGE, "sender@client.test", ["one@a.test", "two@b.test"])
        assert result.accepted == ("one@a.test", "two@b.test")
        [captured] = sink.wait_for_messages(1)
    assert captured.helo == "client.test"
    # 8-bit content with 8BITMIME offered; no SIZE parameter since smtp-sink offers no SIZE.
    assert captured.mail_args.split() == ["<sender@client.test>", "BODY=8BITMIME"]
    assert captured.rcpt_args == ("<one@a.test>", "<two@b.test>")
    assert captured.content == lf(MESSAGE)


@pytest.mark.usefixtures("sink_program")
def test_smtp_sink_lmtp(client_kind: str, work: Path) -> None:
    with smtp_sink(work, dump=True, extra_args=["-L"]) as sink, open_client(
        client_kind, "127.0.0.1", sink.port, lmtp=True
    ) as client:
        result = client.send_message(MESSAGE, "sender@client.test", ["one@a.test", "two@b.test"])
        # One reply per recipient after the data (RFC 2033 §4.2).
        assert [rcpt for rcpt, _ in result.transaction.data_replies] == ["one@a.test", "two@b.test"]
        assert result.ok
        [captured] = sink.wait_for_messages(1)
    assert captured.content == lf(MESSAGE)


@pytest.mark.usefixtures("sink_program")
def test_smtp_sink_helo_fallback_and_refusals(client_kind: str, work: Path) -> None:
    # -e: no ESMTP (EHLO refused, HELO fallback, RFC 5321 §3.2); -f RCPT: hard-reject RCPT.
    with smtp_sink(work, extra_args=["-e", "-f", "RCPT"]) as sink, open_client(
        client_kind, "127.0.0.1", sink.port
    ) as client:
        assert client.capabilities.keywords == ()
        with pytest.raises(SMTPRecipientsRefused) as refused:
            client.send_message(MESSAGE, "sender@client.test", ["one@a.test", "two@b.test"])
        assert set(refused.value.refused) == {"one@a.test", "two@b.test"}
        assert refused.value.code >= 500
        assert client.noop().code == 250


@pytest.mark.usefixtures("sink_program")
def test_smtp_sink_auth_quirk_and_dsn(client_kind: str, work: Path) -> None:
    with smtp_sink(work, dump=True) as sink, open_client(
        client_kind, "127.0.0.1", sink.port, allow_insecure_auth=True
    ) as client:
        # smtp-sink answers AUTH with "250 2.0.0 Ok", not RFC 4954's 235: not a success.
        with pytest.raises(SMTPAuthenticationError) as auth:
            client.login("user", "password")
        assert auth.value.code == 250
        assert client.authenticated is None
        message = EmailMessage()
        message["From"] = "sender@client.test"
        message["To"] = "one@a.test"
        message["Subject"] = "dsn"
        message.set_content("body\n")
        assert client.send_message(message, envid="ENV1").ok
        [captured] = sink.wait_for_messages(1)
    assert "ENVID=ENV1" in captured.mail_args


# --- aiosmtpd -----------------------------------------------------------------------------------


def test_aiosmtpd_plain_smtputf8(client_kind: str, work: Path) -> None:
    maildir = work / "Maildir"
    with aiosmtpd_maildir_server(maildir) as server, open_client(
        client_kind, "127.0.0.1", server.port
    ) as client:
        assert client.capabilities.smtputf8
        assert not client.capabilities.chunking  # aiosmtpd has no BDAT: DATA is used
        result = client.send_message(MESSAGE, "s\u00e9nder@client.test", ["one@a.test"])
        assert result.ok
        [stored] = wait_for_maildir(maildir, 1)
    assert strip_trace_headers(stored) == MESSAGE
    [envelope] = server.envelopes
    assert envelope["mail_from"] == "s\u00e9nder@client.test"
    assert "SMTPUTF8" in envelope["mail_options"]
    assert "BODY=8BITMIME" in envelope["mail_options"]


def test_aiosmtpd_starttls_auth(client_kind: str, work: Path, pki: TestPKI) -> None:
    maildir = work / "Maildir"
    users = {"alice": "wonderland"}
    with aiosmtpd_maildir_server(maildir, pki=pki, users=users) as server, open_client(
        client_kind,
        "localhost",
        server.port,
        tls="starttls",
        ssl_context=pki.client_context(),
    ) as client:
        assert client.tls_active
        client.login("alice", "wonderland")
        assert client.authenticated in ("PLAIN", "LOGIN")
        assert client.send_message(MESSAGE, "sender@client.test", ["one@a.test"]).ok
        [stored] = wait_for_maildir(maildir, 1)
    assert strip_trace_headers(stored) == MESSAGE


def test_aiosmtpd_implicit_tls(client_kind: str, work: Path, pki: TestPKI) -> None:
    maildir = work / "Maildir"
    with aiosmtpd_maildir_server(maildir, pki=pki, implicit_tls=True) as server, open_client(
        client_kind,
        "localhost",
        server.port,
        tls="implicit",
        ssl_context=pki.client_context(),
    ) as client:
        assert client.tls_active
        assert client.send_message(MESSAGE, "sender@client.test", ["one@a.test"]).ok
        [stored] = wait_for_maildir(maildir, 1)
    assert strip_trace_headers(stored) == MESSAGE
