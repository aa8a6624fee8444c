"""Fixtures for the interop tests: a test CA, scratch directories, a shared Postfix on hold.

``@pytest.mark.needs("swaks", ...)`` names the programs a test runs; a missing one skips the test
with the reason (or fails it in CI, where issue 8 forbids skipping).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .messages import PASSWORD, USER
from .ours import TRANSPORTS, OurServer, esmtp_serve
from .peers import (
    PeerUnavailable,
    PostfixInstance,
    TestPKI,
    free_port,
    in_ci,
    make_pki,
    make_workdir,
    need_program,
    postfix_instance,
    skip_or_fail,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*programs): third-party programs the test runs")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Report a test that hit :class:`PeerUnavailable` as skipped (outside CI) with the reason."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if call.excinfo is not None and call.excinfo.errisinstance(PeerUnavailable) and not in_ci():
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")


@pytest.fixture(autouse=True)
def _needed_programs(request: pytest.FixtureRequest) -> None:
    for marker in request.node.iter_markers("needs"):
        for program in marker.args:
            need_program(program)


@pytest.fixture
def work() -> Iterator[Path]:
    """A scratch directory other users can read (Postfix and smtp-sink run as ``postfix``)."""
    path = make_workdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pki() -> Iterator[TestPKI]:
    """One CA and server certificate (localhost, 127.0.0.1, mx.test) for the whole session."""
    path = make_workdir("esmtp-pki-")
    yield make_pki(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postfix_hold(pki: TestPKI) -> Iterator[PostfixInstance]:
    """A Postfix smtpd (STARTTLS, SMTPUTF8, CHUNKING, DSN) that puts every message on hold.

    Shared by the session to pay Postfix's ~2 s start once; tests tell their messages apart by
    a unique envelope sender.
    """
    try:
        need_program("postfix")
        with postfix_instance(mode="hold", pki=pki, hostname="postfix-hold.test") as instance:
            yield instance
    except PeerUnavailable as exc:
        skip_or_fail(str(exc))


@pytest.fixture(scope="session")
def serve_root() -> Iterator[Path]:
    """Working directory shared by the session's ``esmtp serve`` processes."""
    path = make_workdir("esmtp-serve-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def serve_ports() -> dict[str, int]:
    """The STARTTLS servers' ports, chosen up front so the Postfix relay can route to each."""
    return {transport: free_port() for transport in TRANSPORTS}


@pytest.fixture(scope="session", params=TRANSPORTS)
def serve_starttls(
    request: pytest.FixtureRequest, serve_root: Path, pki: TestPKI, serve_ports: dict[str, int]
) -> Iterator[OurServer]:
    """``esmtp serve --tls-cert/--tls-key --auth-file`` on each adapter in turn (STARTTLS).

    AUTH is offered only after STARTTLS (the default); MAIL does not require AUTH, so plain
    sessions work too. Session-scoped: pytest groups the tests by adapter, one server at a time.
    """
    transport: str = request.param
    with esmtp_serve(
        serve_root,
        transport=transport,
        pki=pki,
        users={USER: PASSWORD},
        port=serve_ports[transport],
    ) as server:
        yield server


@pytest.fixture(scope="session", params=TRANSPORTS)
def serve_implicit_tls(
    request: pytest.FixtureRequest, serve_root: Path, pki: TestPKI
) -> Iterator[OurServer]:
    """``esmtp serve --implicit-tls`` (RFC 8314 port-465 style) on each adapter in turn."""
    transport: str = request.param
    with esmtp_serve(
        serve_root, transport=transport, pki=pki, implicit_tls=True, users={USER: PASSWORD}
    ) as server:
        yield server


@pytest.fixture(scope="session")
def postfix_relay(pki: TestPKI, serve_ports: dict[str, int]) -> Iterator[PostfixInstance]:
    """A Postfix that relays ``user@PORT.port.test`` to ``127.0.0.1:PORT`` over STARTTLS with the
    server certificate pinned (``smtp_tls_security_level = fingerprint``), so a plaintext
    fallback or a wrong certificate defers the mail instead of delivering it."""
    try:
        need_program("postfix")
        with postfix_instance(
            mode="relay",
            relay_tls="fingerprint",
            relay_fingerprint=pki.sha256_fingerprint,
            route_ports=list(serve_ports.values()),
            hostname="postfix-relay.test",
        ) as instance:
            yield instance
    except PeerUnavailable as exc:
        skip_or_fail(str(exc))
