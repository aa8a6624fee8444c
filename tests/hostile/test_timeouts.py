"""Slow and silent clients are cut by timeouts (RFC 5321 §4.5.3.2), on every server adapter.

Servers run with a 2-second command timeout and a 3-second DATA timeout. Each scenario runs
against all adapters at once (one thread each) so the suite pays its wall time only once:

* a silent client gets ``421 4.4.2`` and is closed after about 2 s;
* a client trickling its message body at one byte per second is cut by the DATA timeout;
* a client trickling a command line at one byte per second (slowloris) must be cut too: a timeout
  that only measures silence never fires for it.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from esmtp_core import ServerConfig

from ._adapters import ADAPTERS, RecordingHandler, adapter_available, running_server
from ._rawsmtp import RawPeer

TIMEOUT = 2.0
DATA_TIMEOUT = 3.0
#: How long a trickling client keeps going before the test declares it was never cut.
PATIENCE = 8.0


def _trickle(peer: RawPeer, first: bytes, byte: bytes) -> tuple[float, bytes]:
    """Send ``first``, then one ``byte`` per second, waiting for the server in between; return
    (seconds until the server spoke or closed, what it said)."""
    sock = peer.sock
    started = time.monotonic()
    peer.send(first)
    while time.monotonic() - started < PATIENCE:
        sock.settimeout(1.0)  # the one-second pace is this wait for the server
        try:
            data = sock.recv(4096)
        except TimeoutError:
            try:
                peer.send(byte)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started, b""
            continue
        except ConnectionResetError:
            return time.monotonic() - started, b""
        return time.monotonic() - started, data
    return time.monotonic() - started, b"(never cut)"


def _greeted(peer: RawPeer) -> None:
    assert peer.read_reply().code == 220


def _silent(peer: RawPeer) -> tuple[float, bytes]:
    """Say nothing at all (before a TLS handshake too: the server must not wait for ever)."""
    started = time.monotonic()
    peer.sock.settimeout(PATIENCE)
    try:
        data = peer.sock.recv(4096)
    except TimeoutError:
        data = b"(never cut)"
    except ConnectionResetError:
        data = b""  # closed with a reset: cut all the same
    return time.monotonic() - started, data


def _silent_after_greeting(peer: RawPeer) -> tuple[float, bytes]:
    _greeted(peer)
    return _silent(peer)


def _silent_after_starttls(peer: RawPeer) -> tuple[float, bytes]:
    """Accept the server's 220 to STARTTLS, then never start the handshake."""
    _greeted(peer)
    assert peer.command(b"EHLO slow.example").code == 250
    assert peer.command(b"STARTTLS").code == 220
    return _silent(peer)


def _plaintext_to_implicit_tls(peer: RawPeer) -> tuple[float, bytes]:
    """Speak plaintext SMTP to a port that expects a TLS ClientHello."""
    peer.send(b"EHLO plain.example\r\n")
    return _silent(peer)


def _data_trickle(peer: RawPeer) -> tuple[float, bytes]:
    _greeted(peer)
    assert peer.command(b"EHLO slow.example").code == 250
    peer.send(b"MAIL FROM:<slow@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
    assert [peer.read_reply().code for _ in range(3)] == [250, 250, 354]
    return _trickle(peer, b"S", b"x")


def _command_trickle(peer: RawPeer) -> tuple[float, bytes]:
    _greeted(peer)
    return _trickle(peer, b"E", b"H")


def _run_everywhere(
    scenario: Callable[[RawPeer], tuple[float, bytes]], **options: Any
) -> dict[str, Any]:
    """Run ``scenario`` against every adapter concurrently (servers built with ``options``);
    return each one's outcome."""
    results: dict[str, Any] = {}

    def one(kind: str) -> None:
        handler = RecordingHandler()
        config = ServerConfig(hostname="mx.test")
        try:
            with running_server(
                kind,
                handler,
                config=config,
                timeout=TIMEOUT,
                data_timeout=DATA_TIMEOUT,
                tls_handshake_timeout=TIMEOUT,
                **options,
            ) as address:
                peer = RawPeer.connect(*address)
                try:
                    results[kind] = scenario(peer)
                finally:
                    peer.close()
        except BaseException as exc:
            results[kind] = exc

    threads = [
        threading.Thread(target=one, args=(kind,)) for kind in ADAPTERS if adapter_available(kind)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE + 30)
    return results


def _assert_cut(results: dict[str, Any], within: float) -> None:
    failures = {}
    for kind, outcome in results.items():
        if isinstance(outcome, BaseException):
            failures[kind] = repr(outcome)
            continue
        seconds, said = outcome
        if not (said.startswith(b"421") or said == b"") or seconds > within:
            failures[kind] = f"after {seconds:.1f} s: {said[:60]!r}"
    assert not failures, failures
    assert results


def test_silent_client_is_cut() -> None:
    _assert_cut(_run_everywhere(_silent_after_greeting), within=TIMEOUT + 2.0)


def test_client_never_starting_the_starttls_handshake_is_cut(server_tls: ssl.SSLContext) -> None:
    results = _run_everywhere(_silent_after_starttls, tls_context=server_tls)
    _assert_cut(results, within=TIMEOUT + 2.0)


def test_silent_client_on_implicit_tls_is_cut(server_tls: ssl.SSLContext) -> None:
    results = _run_everywhere(_silent, tls_context=server_tls, implicit_tls=True)
    _assert_cut(results, within=TIMEOUT + 2.0)


def test_plaintext_on_implicit_tls_is_closed(server_tls: ssl.SSLContext) -> None:
    results = _run_everywhere(
        _plaintext_to_implicit_tls, tls_context=server_tls, implicit_tls=True
    )
    # No SMTP reply can be sent before TLS: the server just closes (a TLS alert may come first).
    failures = {
        kind: outcome
        for kind, outcome in results.items()
        if isinstance(outcome, BaseException) or outcome[1].startswith(b"(never")
        or outcome[0] > TIMEOUT + 2.0
    }
    assert not failures, failures


def test_body_trickling_one_byte_per_second_is_cut() -> None:
    _assert_cut(_run_everywhere(_data_trickle), within=DATA_TIMEOUT + 2.0)


def test_command_line_trickling_one_byte_per_second_is_cut() -> None:
    """Found by this suite: the command timeout first measured only silence between reads
    (fixed in 6152b11: it now runs from the last reply)."""
    _assert_cut(_run_everywhere(_command_trickle), within=TIMEOUT + 3.0)


def test_socket_helpers_are_sane() -> None:
    """The trickle helper reports a server that closes at once as cut, promptly."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    accepted.close()
    seconds, said = _trickle(RawPeer(client), b"x", b"y")
    assert said == b""
    assert seconds < 2
    client.close()
    listener.close()
