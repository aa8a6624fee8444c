"""``python -m transports serve`` as a real subprocess: store, log, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import smtplib
import ssl
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from _cli_harness import WAIT, ServeProcess, serve_process

from transports.cli import main

BODY = b"Subject: cli\r\n\r\nbody line\r\n.dotted\r\n"


def _unverified() -> ssl.SSLContext:
    # --self-signed: nothing to verify against (that is the point of the option).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def serve(*args: str) -> AbstractContextManager[ServeProcess]:
    # stdout is a pipe: --stdout tests read the stored messages from it.
    return serve_process(*args, stdout=subprocess.PIPE)


@pytest.mark.parametrize("transport", ["asyncio", "anyio", "trio", "threads", "sockets"])
def test_serve_maildir_and_sigterm(transport: str, tmp_path: Path) -> None:
    maildir = tmp_path / "md"
    with serve("--transport", transport, "--maildir", str(maildir), "--hostname", "mx.test") as s:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
            code, banner = client.ehlo("client.test")
            assert code == 250
            assert banner.startswith(b"mx.test")
            client.sendmail("a@example.org", ["b@example.net"], BODY)
        s.wait_line(r"accepted message <a@example\.org> -> <b@example\.net>")
        s.wait_line(r"connection \d+ from 127\.0\.0\.1:\d+ closed")
        assert s.stop() == 0
    (stored,) = list((maildir / "new").iterdir())
    content = stored.read_bytes()
    assert content.startswith(b"Return-Path: <a@example.org>\r\nReceived: from client.test ")
    assert b"by mx.test with ESMTP id " in content
    assert content.endswith(b"\r\n" + BODY)


@pytest.mark.parametrize("transport", ["asyncio", "anyio", "trio", "threads", "sockets"])
def test_serve_stops_on_sigint(transport: str, tmp_path: Path) -> None:
    with serve("--transport", transport, "--maildir", str(tmp_path / "md")) as s:
        assert s.stop(signal.SIGINT) == 0


def test_serve_self_signed_starttls_with_auth(tmp_path: Path) -> None:
    auth = tmp_path / "users"
    auth.write_text("# test users\nalice:wonder:land\n")
    maildir = tmp_path / "md"
    args = ["--maildir", str(maildir), "--self-signed", "--auth-file", str(auth), "--require-auth"]
    with serve(*args) as s:
        insecure = _unverified()
        with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
            client.starttls(context=insecure)
            with pytest.raises(smtplib.SMTPSenderRefused):
                client.sendmail("a@example.org", ["b@example.net"], BODY)
            offered = client.esmtp_features["auth"].split()
            assert offered == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]
            client.login("alice", "wonder:land")  # smtplib picks CRAM-MD5 first
            client.sendmail("a@example.org", ["b@example.net"], BODY)
        with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
            client.starttls(context=insecure)
            client.ehlo()
            client.user, client.password = "alice", "wonder:land"
            assert client.auth("PLAIN", client.auth_plain)[0] == 235
        with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
            client.starttls(context=insecure)
            client.ehlo()
            client.user, client.password = "alice", "wrong"
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.auth("LOGIN", client.auth_login)
        assert s.stop() == 0
    (stored,) = list((maildir / "new").iterdir())
    assert b" with ESMTPSA id " in stored.read_bytes()


def test_serve_implicit_tls_lmtp_stdout() -> None:
    with serve("--self-signed", "--implicit-tls", "--lmtp", "--stdout") as s:
        insecure = _unverified()
        client = smtplib.SMTP_SSL("127.0.0.1", s.port, timeout=WAIT, context=insecure)
        with client:
            code, _ = client.docmd("LHLO", "client.test")
            assert code == 250
            client.ehlo_resp = b"x"  # sendmail must not send EHLO to an LMTP server
            client.mail("a@example.org")
            client.rcpt("b@example.net")
            client.rcpt("c@example.net")
            client.send(b"DATA\r\n")
            assert client.getreply()[0] == 354
            client.send(BODY.replace(b"\r\n.", b"\r\n..") + b".\r\n")  # dot-stuffed
            assert client.getreply()[0] == 250  # one reply per recipient (RFC 2033 §4.2)
            assert client.getreply()[0] == 250
        assert s.stop() == 0
        assert s.proc.stdout is not None
        out = s.proc.stdout.read()
    assert b" with LMTPS id " in out
    assert out.endswith(BODY)


def test_serve_mbox(tmp_path: Path) -> None:
    box = tmp_path / "box"
    with serve("--mbox", str(box), "--transport", "threads") as s:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
            client.sendmail("a@example.org", ["b@example.net"], b"Subject: m\r\n\r\nFrom here\r\n")
        assert s.stop() == 0
    assert b"\r\n>From here\r\n" in box.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--implicit-tls"], "--implicit-tls needs"),
        (["--require-auth"], "--require-auth needs --auth-file"),
        (["--tls-key", "k.pem"], "--tls-key needs --tls-cert"),
        (["--listen", "nonsense"], "HOST:PORT"),
        (["--maildir", "a", "--stdout"], "not allowed with"),
    ],
)
def test_serve_usage_errors(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "transports", "serve", *args],
        capture_output=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_missing_command_module_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installation without a command's module (``send`` is optional) says so in one line;
    ``None`` in ``sys.modules`` makes the import fail as a missing module would."""
    monkeypatch.setitem(sys.modules, "transports._send_cli", None)
    assert main(["send", "--server", "127.0.0.1:1"]) == 2
    error = capsys.readouterr().err
    assert "esmtp send: this command is not available" in error
    assert "transports._send_cli is missing" in error


def test_missing_dependency_of_a_command_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the command's own module counts as "not available": a module it imports that is
    missing is a real error and must surface, not be reported as an absent command."""
    monkeypatch.delitem(sys.modules, "transports._send_cli", raising=False)
    monkeypatch.setitem(sys.modules, "transports._client_driver", None)
    with pytest.raises(ModuleNotFoundError) as missing:
        main(["send", "--server", "127.0.0.1:1"])
    assert missing.value.name == "transports._client_driver"


def test_serve_limits(tmp_path: Path) -> None:
    args = ["--maildir", str(tmp_path), "--max-size", "2000", "--max-recipients", "2"]
    with serve(*args, "--timeout", "0.5", "--transport", "sockets") as s:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "2000"
            with pytest.raises(smtplib.SMTPSenderRefused) as too_big:
                client.sendmail("a@example.org", ["b@example.net"], BODY + b"x" * 3000)
            assert too_big.value.smtp_code == 552
            refused = client.sendmail("a@example.org", ["b@x.net", "c@x.net", "d@x.net"], BODY)
            assert refused["d@x.net"][0] == 452
            # Now say nothing: the 0.5 s timeout ends the session with 421.
            client.sock.settimeout(WAIT)
            assert client.getreply()[0] == 421
        assert s.stop() == 0


@pytest.mark.parametrize("transport", ["asyncio", "trio", "threads", "sockets"])
def test_serve_address_in_use_is_one_line(transport: str, tmp_path: Path) -> None:
    with serve("--maildir", str(tmp_path)) as first:
        result = subprocess.run(
            [sys.executable, "-m", "transports", "serve", "--transport", transport,
             "--listen", f"127.0.0.1:{first.port}", "--maildir", str(tmp_path)],
            capture_output=True,
            timeout=WAIT,
            check=False,
        )
        assert first.stop() == 0
    assert result.returncode == 1
    assert b"cannot serve on 127.0.0.1:" in result.stderr
    assert b"Traceback" not in result.stderr
