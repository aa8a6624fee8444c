"""Shared fixtures for the transport tests: a recording handler and a way to run any adapter's
server on an ephemeral loopback port (TLS contexts come from tests/conftest.py)."""

from __future__ import annotations

import pytest
from _transport_harness import ADAPTERS, Recorder


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """Every server adapter: asyncio, anyio on asyncio, anyio on trio, threads, sockets."""
    return str(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
