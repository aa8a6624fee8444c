"""Our client adapters against hostile servers (raw sockets): never a hang, never a crash.

Each scenario is a scripted server that breaks RFC 5321 in one way: endless or malformed reply
lines, replies nobody asked for, a 354 to MAIL, a connection cut mid-reply or mid-body, silence,
or a reply trickled at one byte per second. Every client adapter must end with one of the
documented :mod:`transports.errors` exceptions, in bounded time, whatever the server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from transports import errors

from ._adapters import adapter_available
from ._rawsmtp import PeerClosed, RawPeer

CLIENTS = [
    pytest.param(kind, marks=pytest.mark.skipif(not adapter_available(kind), reason="missing"))
    for kind in ("sockets", "asyncio", "anyio-asyncio", "anyio-trio")
]
CLIENT_TIMEOUT = 2.0
#: How long the trickling server keeps going before it gives up itself.
TRICKLE_SECONDS = 10
Script = Callable[[RawPeer], None]


class ScriptedServer:
    """Accept one connection on a loopback port and run ``script`` on it."""

    def __init__(self, script: Script) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.script = script
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
        finally:
            self.listener.close()
        peer = RawPeer(conn, timeout=30)
        # The client going away mid-script is the expected end of most scenarios.
        with contextlib.suppress(OSError, PeerClosed):
            self.script(peer)
        peer.close()

    def join(self) -> None:
        self.thread.join(30)


def _send(kind: str, port: int) -> BaseException | None:
    """Try to send one message with client ``kind``; return the exception it raised."""
    module = importlib.import_module(
        "transports.anyio" if kind.startswith("anyio") else f"transports.{kind}"
    )
    message = b"Subject: t\r\n\r\nbody\r\n"
    try:
        if kind == "sockets":
            with module.Client("127.0.0.1", port, timeout=CLIENT_TIMEOUT) as client:
                client.send_message(message, "a@example.org", ["b@example.net"])
            return None

        async def run() -> None:
            async with module.Client("127.0.0.1", port, timeout=CLIENT_TIMEOUT) as client:
                await client.send_message(message, "a@example.org", ["b@example.net"])

        if kind == "asyncio":
            asyncio.run(run())
        else:
            import anyio  # noqa: PLC0415  (optional dependency)

            runner: Callable[..., Any] = anyio.run
            runner(run, backend=kind.split("-")[1])
    except BaseException as exc:
        return exc
    return None


# --- scenarios --------------------------------------------------------------------------------


def endless_line(peer: RawPeer) -> None:
    peer.send(b"220-")
    for _ in range(256):  # 16 MiB without a line ending, unless the client gives up first
        peer.send(b"x" * 65536)


def endless_multiline(peer: RawPeer) -> None:
    peer.send(b"220-hello\r\n")
    for _ in range(256):
        peer.send(b"220-more\r\n" * 6000)


def garbage_greeting(peer: RawPeer) -> None:
    peer.send(b"HELLO THERE, THIS IS NOT SMTP\r\n")
    peer.read_line()


def bare_lf_replies(peer: RawPeer) -> None:
    peer.send(b"220 mx.example\n")
    peer.read_line()
    peer.send(b"250 mx.example\n")
    peer.read_line()


def unsolicited_flood(peer: RawPeer) -> None:
    peer.send(b"220 mx.example\r\n" + b"250 2.0.0 ok\r\n" * 1000)
    peer.read_line()


def cut_mid_reply(peer: RawPeer) -> None:
    peer.send(b"220 mx.example\r\n")
    peer.read_line()
    peer.send(b"250-mx.example\r\n250-PIPEL")


def start_data_on_mail(peer: RawPeer) -> None:
    peer.send(b"220 mx.example\r\n")
    peer.read_line()
    peer.send(b"250 mx.example\r\n")
    peer.read_line()
    peer.send(b"354 go ahead\r\n")
    peer.read_line()


def shutdown_421_mid_transaction(peer: RawPeer) -> None:
    peer.send(b"220 mx.example\r\n")
    peer.read_line()
    peer.send(b"250 mx.example\r\n")
    peer.read_line()
    peer.send(b"250 ok\r\n")
    peer.read_line()
    peer.send(b"421 4.3.2 shutting down\r\n")


def cut_mid_body(peer: RawPeer) -> None:
    peer.send(b"220 mx.example\r\n")
    peer.read_line()
    peer.send(b"250 mx.example\r\n")
    for _ in range(3):  # MAIL, RCPT, DATA one at a time (no PIPELINING offered)
        line = peer.read_line()
        peer.send(b"354 go\r\n" if line.startswith(b"DATA") else b"250 ok\r\n")
    peer.read_line()  # the first body line, then hang up


def silence(peer: RawPeer) -> None:
    peer.sock.settimeout(30)
    with contextlib.suppress(TimeoutError):
        peer.sock.recv(1)  # until the client gives up


def trickle(peer: RawPeer) -> None:
    """One byte per second of an endless greeting (a slowloris against the client)."""
    peer.sock.settimeout(1.0)
    for _ in range(TRICKLE_SECONDS):
        peer.send(b"2")
        with contextlib.suppress(TimeoutError):  # the pace is this wait for the client
            if peer.sock.recv(1) == b"":
                return


SCENARIOS: dict[str, tuple[Script, type[BaseException]]] = {
    "endless_line": (endless_line, errors.SMTPProtocolError),
    "endless_multiline": (endless_multiline, errors.SMTPProtocolError),
    "garbage_greeting": (garbage_greeting, errors.SMTPProtocolError),
    "bare_lf_replies": (bare_lf_replies, errors.SMTPProtocolError),
    "unsolicited_flood": (unsolicited_flood, errors.SMTPProtocolError),
    "cut_mid_reply": (cut_mid_reply, errors.SMTPConnectionError),
    "start_data_on_mail": (start_data_on_mail, errors.SMTPProtocolError),
    "shutdown_421_mid_transaction": (shutdown_421_mid_transaction, errors.SMTPServerDisconnected),
    "cut_mid_body": (cut_mid_body, errors.SMTPConnectionError),
    "silence": (silence, errors.SMTPTimeoutError),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("kind", CLIENTS)
def test_client_fails_cleanly(kind: str, scenario: str) -> None:
    script, expected = SCENARIOS[scenario]
    server = ScriptedServer(script)
    started = time.monotonic()
    failure = _send(kind, server.port)
    elapsed = time.monotonic() - started
    server.join()
    if scenario == "shutdown_421_mid_transaction":
        # A 421 answering RCPT (RFC 5321 §3.8) may surface as the refusal it answers, as long
        # as the 421 is what the caller sees.
        assert isinstance(failure, errors.SMTPServerDisconnected | errors.SMTPReplyError)
        assert failure.reply is not None
        assert failure.reply.code == 421
    else:
        assert isinstance(failure, expected), repr(failure)
    assert elapsed < CLIENT_TIMEOUT + 5


def test_trickling_server_is_given_up_on() -> None:
    """A server sending one byte per second never lets a per-read timeout fire; the clients must
    still give up within a bounded time. All clients at once, to pay the wait only once."""
    outcomes: dict[str, tuple[float, BaseException | None]] = {}

    def one(kind: str) -> None:
        server = ScriptedServer(trickle)
        started = time.monotonic()
        failure = _send(kind, server.port)
        outcomes[kind] = (time.monotonic() - started, failure)
        server.join()

    kinds = [
        kind
        for kind in ("sockets", "asyncio", "anyio-asyncio", "anyio-trio")
        if adapter_available(kind)
    ]
    threads = [threading.Thread(target=one, args=(kind,)) for kind in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == len(kinds)
    slow = {k: f"{s:.1f} s, {f!r}" for k, (s, f) in outcomes.items() if s > 4 * CLIENT_TIMEOUT}
    assert not slow, slow
    for kind, (_, failure) in outcomes.items():
        assert isinstance(failure, errors.SMTPTimeoutError | errors.SMTPProtocolError), (
            kind,
            failure,
        )
