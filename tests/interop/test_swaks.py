"""swaks (a real SMTP client nobody here wrote) against ``esmtp serve`` on every adapter.

Issue 8: plain, STARTTLS, implicit TLS, AUTH PLAIN/LOGIN/CRAM-MD5, PIPELINING, 8BITMIME bodies and
dot lines, each message checked in the Maildir byte for byte: the stored file is exactly the
``Return-Path`` and ``Received`` fields (RFC 5321 §4.4) followed by the message swaks sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .messages import DOT_HEAVY_BODY, PASSWORD, USER, message, unique_tag
from .ours import OurServer
from .peers import TestPKI, run_swaks, strip_trace_headers

pytestmark = [pytest.mark.interop, pytest.mark.needs("swaks")]


def stored_exactly(server: OurServer, sent: bytes, tag: str) -> bytes:
    """The one stored message tagged ``tag``, after asserting it is ``sent`` byte for byte."""
    [stored] = server.wait_for_marked(f"<{tag}@client.test>".encode())
    assert strip_trace_headers(stored) == sent
    return stored


def test_plain_pipelined_8bit(serve_starttls: OurServer, work: Path) -> None:
    tag = unique_tag("swaks-plain")
    sent = message(tag)
    result = run_swaks(serve_starttls.port, data=sent, directory=work, pipeline=True)
    result.check()
    # RFC 2920: swaks only pipelines when the EHLO reply offers it; 8BITMIME per RFC 6152.
    assert "PIPELINING" in result.stdout
    assert "8BITMIME" in result.stdout
    stored_exactly(serve_starttls, sent, tag)


def test_dot_lines_survive(serve_starttls: OurServer, work: Path) -> None:
    tag = unique_tag("swaks-dots")
    sent = message(tag, body=DOT_HEAVY_BODY)
    run_swaks(serve_starttls.port, data=sent, directory=work).check()
    stored_exactly(serve_starttls, sent, tag)


def test_several_recipients(serve_starttls: OurServer, work: Path) -> None:
    tag = unique_tag("swaks-rcpts")
    sent = message(tag)
    recipients = ["one@server.test", "two@server.test", "three@server.test"]
    run_swaks(
        serve_starttls.port, data=sent, directory=work, recipients=recipients, pipeline=True
    ).check()
    stored_exactly(serve_starttls, sent, tag)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_starttls_verified_auth(
    serve_starttls: OurServer, pki: TestPKI, work: Path, mechanism: str
) -> None:
    tag = unique_tag(f"swaks-{mechanism.lower()}")
    sent = message(tag)
    result = run_swaks(
        serve_starttls.port,
        data=sent,
        directory=work,
        tls="starttls",
        ca_file=pki.ca_file,
        auth=mechanism,
        user=USER,
        password=PASSWORD,
        pipeline=True,
    )
    result.check()
    stored = stored_exactly(serve_starttls, sent, tag)
    # RFC 3848: a session with STARTTLS and AUTH is recorded as ESMTPSA.
    assert b"ESMTPSA" in stored.split(b"\r\n\r\n", 1)[0]


def test_wrong_password_is_refused(serve_starttls: OurServer, pki: TestPKI, work: Path) -> None:
    tag = unique_tag("swaks-badpw")
    result = run_swaks(
        serve_starttls.port,
        data=message(tag),
        directory=work,
        tls="starttls",
        ca_file=pki.ca_file,
        auth="PLAIN",
        user=USER,
        password="not-the-password",
    )
    assert result.returncode != 0
    assert "535" in result.stdout  # RFC 4954 §6: authentication credentials invalid
    assert not [m for m in serve_starttls.messages() if tag.encode() in m]


def test_no_auth_before_starttls(serve_starttls: OurServer, work: Path) -> None:
    """RFC 4954 §4 and the CLI default: credentials are not accepted over plaintext."""
    result = run_swaks(
        serve_starttls.port,
        data=message("never"),
        directory=work,
        auth="PLAIN",
        user=USER,
        password=PASSWORD,
    )
    assert result.returncode != 0


def test_implicit_tls_auth(serve_implicit_tls: OurServer, pki: TestPKI, work: Path) -> None:
    tag = unique_tag("swaks-implicit")
    sent = message(tag, body=DOT_HEAVY_BODY)
    run_swaks(
        serve_implicit_tls.port,
        data=sent,
        directory=work,
        tls="implicit",
        ca_file=pki.ca_file,
        auth="PLAIN",
        user=USER,
        password=PASSWORD,
        pipeline=True,
    ).check()
    stored_exactly(serve_implicit_tls, sent, tag)


def test_repeated_starttls_sessions(serve_starttls: OurServer, pki: TestPKI, work: Path) -> None:
    """Many short STARTTLS sessions in a row: the handshake must never stall.

    The client sends its TLS ClientHello right after the 220 to STARTTLS; a server that lets
    those bytes land in a plaintext read buffer before switching to TLS hangs the handshake
    (RFC 3207 §4: the TLS negotiation starts immediately after the 220). Such a race shows up
    as an intermittent stall, hence the repetition; swaks is given a short timeout.
    """
    tag = unique_tag("swaks-repeat")
    sessions = 15
    for number in range(sessions):
        sent = message(f"{tag}-{number}")
        result = run_swaks(
            serve_starttls.port,
            data=sent,
            directory=work,
            tls="starttls",
            ca_file=pki.ca_file,
            auth="PLAIN",
            user=USER,
            password=PASSWORD,
            pipeline=True,
            timeout=5,
        )
        assert result.returncode == 0, f"session {number}: {result.stdout[-2000:]}"
    assert len(serve_starttls.wait_for_marked(f"<{tag}-".encode(), count=sessions)) == sessions
