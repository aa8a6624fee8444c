"""Shared fixtures for the transport tests: TLS certificates (trustme), a recording handler and
a way to run any adapter's server on an ephemeral loopback port."""

from __future__ import annotations

import ssl

import pytest
import trustme
from _transport_harness import ADAPTERS, Recorder


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


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """Every server adapter: asyncio, anyio on asyncio, anyio on trio, threads, sockets."""
    return str(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
