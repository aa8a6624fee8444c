"""STARTTLS injection (RFC 3207 §5; CVE-2011-0411 and the 2021 "NO STARTTLS" study) both ways,
over real TLS sockets with certificates from trustme.

* Against our servers: a client pipelines plaintext commands behind STARTTLS in the same TCP
  segment. Those bytes were sent before TLS, so a man in the middle could have put them there;
  they must be dropped, never executed inside the TLS session.
* Against our clients: a malicious server sends, right behind its ``220`` to STARTTLS and still
  in plaintext, replies meant to be read inside TLS (a fake EHLO reply advertising AUTH, fake
  ``250``/``354``). The client must discard them and read only replies that came through TLS.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from esmtp_core import ServerConfig

from ._adapters import RecordingHandler, adapter_params, running_server
from ._rawsmtp import PeerClosed, RawPeer

INJECTED = b"MAIL FROM:<injected@evil.example>\r\nRCPT TO:<victim@example.net>\r\n"


@pytest.mark.parametrize("kind", adapter_params())
def test_server_drops_plaintext_pipelined_behind_starttls(
    kind: str, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    handler = RecordingHandler()
    config = ServerConfig(hostname="mx.test")
    with running_server(kind, handler, config=config, tls_context=server_tls) as address:
        peer = RawPeer.connect(*address)
        try:
            assert peer.read_reply().code == 220
            # One segment: the STARTTLS and the commands an attacker slipped in behind it.
            peer.send(b"EHLO attacker.example\r\nSTARTTLS\r\n" + INJECTED)
            ehlo = peer.read_reply()
            assert ehlo.code == 250
            assert "STARTTLS" in ehlo.lines
            assert peer.read_reply().code == 220
            peer.start_tls(client_tls, "localhost")
            assert peer.leftover == b"", "the server wrote plaintext after its 220"
            # The first reply inside TLS must answer our EHLO, not an injected command.
            after = peer.command(b"EHLO attacker.example")
            assert after.code == 250
            assert after.lines[0].startswith("mx.test")
            # The injected MAIL was not executed: RCPT now has no transaction to join.
            assert peer.command(b"RCPT TO:<victim@example.net>").code == 503
            assert peer.command(b"QUIT").code == 221
        finally:
            peer.close()
        handler.wait_disconnects(1)
    assert ("MAIL", "injected@evil.example") not in handler.commands
    assert handler.commands == []


# --- a malicious server against our clients ---------------------------------------------------

#: What the attacker sends in plaintext right behind the 220 to STARTTLS: a fake EHLO reply
#: (offering AUTH PLAIN, which would lure credentials), then fake transaction replies.
FAKE = (
    b"250-evil.example\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"
    + b"250 2.1.0 fake sender ok\r\n" * 3
    + b"354 fake go ahead\r\n250 2.0.0 fake accepted\r\n"
)


class MaliciousServer:
    """A raw-socket SMTP server that injects :data:`FAKE` behind its ``220`` to STARTTLS, then
    behaves inside TLS (no AUTH, no PIPELINING) and records every line it received in TLS."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.tls_lines: list[bytes] = []
        self.message: bytes | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(10)
            plain = RawPeer(conn)
            plain.send(b"220 mx.legit ESMTP\r\n")
            assert plain.read_line().upper().startswith(b"EHLO")
            plain.send(b"250-mx.legit\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
            assert plain.read_line().upper() == b"STARTTLS\r\n"
            plain.send(b"220 2.0.0 Ready to start TLS\r\n" + FAKE)
            tls = RawPeer(self.context.wrap_socket(conn, server_side=True))
            self._session(tls)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.listener.close()

    def _session(self, peer: RawPeer) -> None:
        while True:
            try:
                line = peer.read_line()
            except PeerClosed:
                return  # a client may close without QUIT
            self.tls_lines.append(line)
            verb = line[:4].upper()
            if verb == b"EHLO":
                peer.send(b"250-mx.legit\r\n250 8BITMIME\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                peer.send(b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                peer.send(b"354 go on\r\n")
                body = bytearray()
                while not body.endswith(b"\r\n.\r\n"):
                    body += peer.read_line()
                self.message = bytes(body)
                peer.send(b"250 2.0.0 stored\r\n")
            elif verb == b"QUIT":
                peer.send(b"221 bye\r\n")
                return
            else:
                peer.send(b"500 5.5.1 what\r\n")

    def join(self) -> None:
        self.thread.join(15)
        if self.error is not None:
            raise self.error


def _client_kinds() -> Iterator[Any]:
    for kind in ("sockets", "threads", "asyncio", "anyio-asyncio", "anyio-trio"):
        module = "anyio" if kind.startswith("anyio") else kind
        missing = importlib.util.find_spec(f"transports.{module}") is None or (
            kind == "anyio-trio" and importlib.util.find_spec("trio") is None
        )
        yield pytest.param(kind, marks=pytest.mark.skipif(missing, reason=f"no {kind} client"))


def _send_with(kind: str, port: int, context: ssl.SSLContext) -> Any:
    """Send one message with client adapter ``kind`` (STARTTLS required); return
    ``(result, capabilities after TLS)``."""
    module = importlib.import_module(
        "transports.anyio" if kind.startswith("anyio") else f"transports.{kind}"
    )
    arguments: dict[str, Any] = {
        "tls": "starttls",
        "ssl_context": context,
        "server_hostname": "localhost",
        "timeout": 10,
    }
    message = b"Subject: over TLS\r\n\r\nhello\r\n"
    if kind in ("sockets", "threads"):
        with module.Client("127.0.0.1", port, **arguments) as client:
            result = client.send_message(message, "a@example.org", ["b@example.net"])
            return result, client.capabilities

    async def run() -> Any:
        async with module.Client("127.0.0.1", port, **arguments) as client:
            result = await client.send_message(message, "a@example.org", ["b@example.net"])
            return result, client.capabilities

    if kind == "asyncio":
        return asyncio.run(run())
    import anyio  # noqa: PLC0415  (optional dependency)

    runner: Callable[..., Any] = anyio.run
    return runner(run, backend=kind.split("-")[1])


@pytest.mark.parametrize("kind", _client_kinds())
def test_client_ignores_plaintext_replies_behind_220(
    kind: str, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    server = MaliciousServer(server_tls)
    result, capabilities = _send_with(kind, server.port, client_tls)
    server.join()
    assert result.ok
    # Inside TLS the client started over with EHLO and read the real reply, not the fake one.
    assert server.tls_lines[0].upper().startswith(b"EHLO")
    assert not capabilities.auth_mechanisms
    assert not capabilities.pipelining
    verbs = [line[:4].upper() for line in server.tls_lines]
    assert verbs[:4] == [b"EHLO", b"MAIL", b"RCPT", b"DATA"]
    assert server.message is not None
    assert server.message.endswith(b"hello\r\n.\r\n")
