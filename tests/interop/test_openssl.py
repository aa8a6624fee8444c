"""``openssl s_client`` completes the TLS handshake with ``esmtp serve`` and sees our certificate.

RFC 3207 STARTTLS (``-starttls smtp``) and RFC 8314 implicit TLS, on every adapter; the chain is
verified against the test CA and the host name ``mx.test`` against the certificate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .ours import OurServer
from .peers import TestPKI, make_pki, run_s_client, same_certificate

pytestmark = [pytest.mark.interop, pytest.mark.needs("openssl")]


def test_starttls_handshake_and_certificate(serve_starttls: OurServer, pki: TestPKI) -> None:
    probe = run_s_client(serve_starttls.port, ca_file=pki.ca_file, servername="mx.test")
    assert probe.handshake_ok, probe.result.stdout + probe.result.stderr
    assert probe.verify_code == 0
    assert probe.leaf_pem is not None
    assert same_certificate(probe.leaf_pem, pki.cert_pem)


def test_implicit_tls_handshake_and_certificate(
    serve_implicit_tls: OurServer, pki: TestPKI
) -> None:
    probe = run_s_client(
        serve_implicit_tls.port, starttls=False, ca_file=pki.ca_file, servername="mx.test"
    )
    assert probe.handshake_ok, probe.result.stdout + probe.result.stderr
    assert probe.verify_code == 0
    assert probe.leaf_pem is not None
    assert same_certificate(probe.leaf_pem, pki.cert_pem)


def test_untrusted_ca_is_detected(serve_starttls: OurServer, work: Path) -> None:
    """The check above can fail: against another CA the verification does not pass."""
    other = make_pki(work / "other-ca")
    probe = run_s_client(serve_starttls.port, ca_file=other.ca_file, servername="mx.test")
    assert not probe.handshake_ok or probe.verify_code != 0
