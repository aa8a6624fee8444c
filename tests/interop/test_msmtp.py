"""msmtp (GnuTLS and GNU SASL underneath) submitting through ``esmtp serve`` on every adapter.

Issue 8: STARTTLS and AUTH SCRAM (RFC 5802/7677) or PLAIN (RFC 4616). msmtp converts LF to CRLF
and dot-stuffs, so a message handed to it with LF line endings must be stored with CRLF, exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .messages import DOT_HEAVY_BODY, PASSWORD, USER, lf, message, unique_tag
from .ours import OurServer
from .peers import TestPKI, run_msmtp, strip_trace_headers

pytestmark = [pytest.mark.interop, pytest.mark.needs("msmtp")]


@pytest.mark.parametrize("mechanism", ["scram-sha-256", "plain"])
def test_msmtp_starttls_auth(
    serve_starttls: OurServer, pki: TestPKI, work: Path, mechanism: str
) -> None:
    tag = unique_tag(f"msmtp-{mechanism}")
    sent = message(tag, body=DOT_HEAVY_BODY)
    recipients = ["one@server.test", "two@server.test"]
    result = run_msmtp(
        serve_starttls.port,
        work,
        message=lf(sent),
        recipients=recipients,
        tls="starttls",
        ca_file=pki.ca_file,
        auth=mechanism,
        user=USER,
        password=PASSWORD,
    )
    result.check()
    [stored] = serve_starttls.wait_for_marked(f"<{tag}@client.test>".encode())
    assert strip_trace_headers(stored) == sent
    assert b"ESMTPSA" in stored.split(b"\r\n\r\n", 1)[0]


def test_msmtp_wrong_password_fails(serve_starttls: OurServer, pki: TestPKI, work: Path) -> None:
    result = run_msmtp(
        serve_starttls.port,
        work,
        message=lf(message("msmtp-never")),
        tls="starttls",
        ca_file=pki.ca_file,
        auth="scram-sha-256",
        user=USER,
        password="wrong",
    )
    assert result.returncode != 0
