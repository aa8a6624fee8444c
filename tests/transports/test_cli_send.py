"""``esmtp send`` against ``esmtp serve`` (a real subprocess): delivery, exit codes, one-line
errors. Most sends run in-process through ``transports.cli.main`` (fast); a few run as real
``python -m transports send`` processes to check the exit status and that no traceback leaks."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from _cli_harness import WAIT, ServeProcess, serve_process
from _client_harness import open_client

from transports.cli import main

MESSAGE = b"Subject: cli send\r\nFrom: a@example.org\r\n\r\nbody\r\n.dot line\r\n"


@dataclass
class Serve:
    process: ServeProcess
    maildir: Path

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stored(self, count: int) -> list[bytes]:
        """The messages in the Maildir, trace headers removed (waits for ``count``)."""
        files: list[Path] = []
        for _ in range(200):
            files = sorted((self.maildir / "new").glob("*"))
            if len(files) >= count:
                break
            self.process.next_line(r"accepted message")
        return [_strip_trace(path.read_bytes()) for path in files]


def _strip_trace(data: bytes) -> bytes:
    # Return-Path and Received (folded over continuation lines) come first (RFC 5321 §4.4).
    trace = rb"Return-Path: [^\r\n]*\r\n(Received: [^\r\n]*\r\n([ \t][^\r\n]*\r\n)*)"
    match = re.match(trace, data)
    assert match is not None, data[:200]
    return data[match.end() :]


@contextlib.contextmanager
def serve(tmp: Path, *args: str) -> Iterator[Serve]:
    maildir = tmp / f"maildir-{len(list(tmp.iterdir()))}"
    with serve_process("--maildir", str(maildir), "--hostname", "mx.test", *args) as process:
        yield Serve(process, maildir)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-send")


@pytest.fixture(scope="module")
def plain(tmp: Path) -> Iterator[Serve]:
    with serve(tmp, "--max-recipients", "2", "--max-size", "4096") as running:
        yield running


@pytest.fixture(scope="module")
def certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """(ca, cert, key) PEM files for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca.cert_pem.write_to_path(str(paths[0]))
    leaf.cert_chain_pems[0].write_to_path(str(paths[1]))
    leaf.private_key_pem.write_to_path(str(paths[2]))
    return paths


@pytest.fixture(scope="module")
def tls(tmp: Path, certificate: tuple[Path, Path, Path]) -> Iterator[Serve]:
    auth = tmp / "users"
    auth.write_text("alice:s3cret p\u00e4ss\n", encoding="utf-8")
    _, cert, key = certificate
    with serve(tmp, "--tls-cert", str(cert), "--tls-key", str(key), "--auth-file", str(auth)) as s:
        yield s


def send(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``esmtp send`` in-process; (exit status, stderr)."""
    status = main(["send", "--timeout", "10", *args])
    return status, capsys.readouterr().err


@pytest.fixture
def message_file(tmp_path: Path) -> Path:
    path = tmp_path / "message.eml"
    path.write_bytes(MESSAGE)
    return path


@pytest.mark.parametrize("transport", ["sockets", "threads", "asyncio", "anyio", "trio"])
def test_send_every_transport(
    transport: str, plain: Serve, message_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(plain.stored(0))
    status, err = send(
        capsys, "--server", plain.server, "--transport", transport,
        "--from", "a@example.org", "--to", f"{transport}@example.net", str(message_file),
    )
    assert (status, err) == (0, "")
    assert plain.stored(before + 1)[-1] == MESSAGE


def test_partial_refusal_exit_1(
    plain: Serve, message_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = send(
        capsys, "--server", plain.server, "--from", "a@example.org",
        "--to", "one@example.net", "--to", "two@example.net", "--to", "three@example.net",
        str(message_file),
    )
    assert status == 1
    assert re.search(r"refused for <three@example\.net>: 452 4\.5\.3", err), err
    assert "accepted for <one@example.net>" in err


def test_lf_file_is_sent_as_crlf_and_binary_byte_exact(
    plain: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(plain.stored(0))
    text = tmp_path / "lf.eml"
    text.write_bytes(b"Subject: lf\n\nline\n")
    binary = tmp_path / "binary.eml"
    binary.write_bytes(b"Subject: bin\r\n\r\n\x00 bare LF\n no final CRLF")
    for path, extra in ((text, []), (binary, ["--binary"])):
        status, err = send(
            capsys, "--server", plain.server, "--from", "", "--to", "b@example.net",
            *extra, str(path),
        )
        assert (status, err) == (0, "")
    assert plain.stored(before + 2)[-2:] == [
        b"Subject: lf\r\n\r\nline\r\n",
        b"Subject: bin\r\n\r\n\x00 bare LF\n no final CRLF",
    ]


def test_too_large_exit_1(plain: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.eml"
    big.write_bytes(b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n")
    status, err = send(
        capsys, "--server", plain.server, "--from", "a@example.org", "--to", "b@example.net",
        str(big),
    )
    assert status == 1
    assert "SIZE" in err
    assert err.count("\n") == 1


def test_starttls_required_but_not_offered_exit_3(
    plain: Serve, message_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = send(
        capsys, "--server", plain.server, "--starttls", "--from", "a@example.org",
        "--to", "b@example.net", str(message_file),
    )
    assert status == 3
    assert "does not offer STARTTLS" in err
    assert err.count("\n") == 1


def test_credentials_refused_without_tls(
    tls: Serve, message_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = send(
        capsys, "--server", tls.server, "--user", "alice", "--password", "x",
        "--from", "a@example.org", "--to", "b@example.net", str(message_file),
    )
    assert status == 3
    assert "without TLS" in err


@pytest.mark.parametrize("transport", ["sockets", "trio"])
def test_starttls_and_auth(
    transport: str,
    tls: Serve,
    certificate: tuple[Path, Path, Path],
    message_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = len(tls.stored(0))
    monkeypatch.setenv("ESMTP_PASSWORD", "s3cret p\u00e4ss")
    status, err = send(
        capsys, "--server", tls.server, "--transport", transport, "--starttls",
        "--cafile", str(certificate[0]), "--user", "alice",
        "--from", "a@example.org", "--to", "b@example.net", str(message_file),
    )
    assert (status, err) == (0, "")
    assert tls.stored(before + 1)[-1] == MESSAGE
    status, err = send(
        capsys, "--server", tls.server, "--transport", transport, "--starttls",
        "--cafile", str(certificate[0]), "--user", "alice", "--password", "wrong",
        "--from", "a@example.org", "--to", "b@example.net", str(message_file),
    )
    assert status == 1
    assert "535" in err


def test_untrusted_certificate_exit_3(
    tls: Serve, message_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = send(
        capsys, "--server", tls.server, "--starttls", "--from", "a@example.org",
        "--to", "b@example.net", str(message_file),
    )
    assert status == 3
    assert "handshake" in err
    # --insecure: no verification (test servers only)
    status, err = send(
        capsys, "--server", tls.server, "--starttls", "--insecure", "--from", "a@example.org",
        "--to", "b@example.net", str(message_file),
    )
    assert (status, err) == (0, "")


def test_implicit_tls_and_lmtp(
    tmp: Path,
    certificate: tuple[Path, Path, Path],
    message_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ca, cert, key = certificate
    with serve(tmp, "--tls-cert", str(cert), "--tls-key", str(key), "--implicit-tls") as s:
        status, err = send(
            capsys, "--server", s.server, "--tls", "--cafile", str(ca),
            "--from", "a@example.org", "--to", "b@example.net", str(message_file),
        )
        assert (status, err) == (0, "")
        assert s.stored(1) == [MESSAGE]
    with serve(tmp, "--lmtp") as s:
        status, err = send(
            capsys, "--server", s.server, "--lmtp", "--transport", "asyncio",
            "--from", "a@example.org", "--to", "b@example.net", "--to", "c@example.net",
            str(message_file),
        )
        assert (status, err) == (0, "")
        assert s.stored(1) == [MESSAGE]


def test_usage_errors_exit_2(message_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = send(
        capsys, "--server", "127.0.0.1:25", "--password", "x", "--from", "a@example.org",
        "--to", "b@example.net", str(message_file),
    )
    assert status == 2
    assert "--password needs --user" in err
    status, err = send(
        capsys, "--server", "127.0.0.1:25", "--helo", "two words", "--from", "a@example.org",
        "--to", "b@example.net", str(message_file),
    )
    assert (status, err.count("\n")) == (2, 1)
    with pytest.raises(SystemExit) as exited:
        main(["send", "--server", "nonsense", "--from", "a", "--to", "b"])
    assert exited.value.code == 2


def _run_cli(*args: str, stdin: bytes = MESSAGE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "transports", "send", "--timeout", "10", *args],
        input=stdin,
        capture_output=True,
        timeout=WAIT,
        check=False,
    )


def test_subprocess_exit_codes_and_stdin(plain: Serve) -> None:
    before = len(plain.stored(0))
    done = _run_cli("--server", plain.server, "--from", "a@example.org", "--to", "s@example.net")
    assert (done.returncode, done.stderr) == (0, b"")
    assert plain.stored(before + 1)[-1] == MESSAGE
    # Nothing listens on a port we just closed: one line, exit 3, no traceback.
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    done = _run_cli("--server", f"127.0.0.1:{port}", "--from", "a@x.org", "--to", "b@x.org", "-")
    assert done.returncode == 3
    assert done.stderr.count(b"\n") == 1
    assert b"cannot connect" in done.stderr
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize("kind", ["sockets", "anyio-trio"])
def test_client_picks_scram_plus_from_serve(
    kind: str, tls: Serve, certificate: tuple[Path, Path, Path]
) -> None:
    """``esmtp serve`` offers SCRAM-SHA-256-PLUS with a certificate: the client binds to the TLS
    channel (tls-server-end-point, RFC 5929) and picks it over PLAIN (RFC 5802, 7677)."""
    context = ssl.create_default_context(cafile=str(certificate[0]))
    with open_client(kind, "127.0.0.1", tls.port, tls="starttls", ssl_context=context) as client:
        assert "SCRAM-SHA-256-PLUS" in client.capabilities.auth_mechanisms
        client.login("alice", "s3cret p\u00e4ss")
        assert client.authenticated == "SCRAM-SHA-256-PLUS"
