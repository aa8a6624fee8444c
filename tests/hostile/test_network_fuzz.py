"""Hostile byte streams over real sockets against every server adapter (hypothesis).

The cores are fuzzed in memory (``fuzz/``, ``test_server_properties.py``); this checks the
adapters around them: for generated client sessions (well-formed and broken commands, bodies
with bare line endings, AUTH, BDAT with wrong counts, garbage), each sent in one go and then
half-closed, the server answers only with well-formed reply lines (RFC 5321 §4.2), closes the
connection, logs no internal error, and keeps serving: a clean session still works afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esmtp_core import ServerConfig
from fuzz.harness import check_reply_bytes

from ._adapters import RecordingHandler, adapter_params, running_server
from ._rawsmtp import RawPeer
from ._sessions import SESSION, examples

STREAMS = st.one_of(
    SESSION,
    st.binary(max_size=300),
    st.tuples(SESSION, st.binary(max_size=60)).map(lambda parts: parts[0] + parts[1]),
)


def _exchange(address: tuple[str, int], stream: bytes) -> bytes:
    """Send ``stream``, half-close, and collect everything until the server closes."""
    with socket.create_connection(address, timeout=15) as sock:
        # The server may have cut the session already (error limit, QUIT).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(stream)
            sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return bytes(received)


@pytest.mark.parametrize("kind", adapter_params())
def test_adapter_survives_hostile_streams(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(
        hostname="mx.test",
        auth_require_tls=False,
        extra_commands=frozenset({"XCLIENT"}),
        max_message_size=2000,
        max_errors=10,
    )
    handler = RecordingHandler()
    caplog.set_level(logging.WARNING, logger="transports")
    with running_server(kind, handler, config=config, timeout=10) as address:

        @settings(
            max_examples=examples(40),
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(stream=STREAMS)
        def one_session(stream: bytes) -> None:
            received = _exchange(address, stream)
            assert received.startswith(b"220 "), received[:80]
            check_reply_bytes(received)

        one_session()
        # Still serving, and serving correctly.
        peer = RawPeer.connect(*address)
        try:
            assert peer.read_reply().code == 220
            assert peer.command(b"EHLO clean.example").code == 250
            assert peer.command(b"MAIL FROM:<a@example.org>").code == 250
            assert peer.command(b"RCPT TO:<b@example.net>").code == 250
            assert peer.command(b"DATA").code == 354
            peer.send(b"Subject: clean\r\n\r\nbody\r\n.\r\n")
            assert peer.read_reply().code == 250
            assert peer.command(b"QUIT").code == 221
        finally:
            peer.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
