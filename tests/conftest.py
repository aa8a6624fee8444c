"""Fixtures shared by every test directory: a throwaway certificate authority (trustme) and the
server and client TLS contexts built from it."""

from __future__ import annotations

import ssl

import pytest
import trustme


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(tls_ca: trustme.CA) -> ssl.SSLContext:
    """Server context with a certificate for localhost and 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(tls_ca: trustme.CA) -> ssl.SSLContext:
    """Client context trusting the test CA (host name checks on)."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context
