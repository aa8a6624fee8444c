"""SMTP smuggling (2023) against every server adapter, over real loopback sockets.

A client ends its DATA with a fake end-of-data sequence built from bare LF / bare CR, optionally
followed by a whole pipelined second transaction, and only then the real ``CRLF.CRLF``. A server
that takes the fake ending for the end of data (RFC 5321 §4.1.1.4 allows only ``CRLF . CRLF``)
stores two messages, the second forged. Ours must store at most one message, never execute the
smuggled MAIL/RCPT, and answer the sequence with exactly one reply for the end of data: ``550``
under the default bare-line-ending policy (reject), ``250`` under the normalising policy (the
whole thing, smuggled commands included, is one message body with CRLF line endings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esmtp_core import BareLineEndingPolicy, ServerConfig

from ._adapters import RecordingHandler, adapter_params, running_server
from ._rawsmtp import PeerClosed, RawPeer, free_port
from ._servers import ServeProcess, maildir_messages

#: The end-of-data variants of the SMTP smuggling research (SEC Consult, 2023).
VARIANTS = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r.\n",
    b"\n.\r",
]
LEGIT_SENDER = "alice@example.org"
LEGIT_RCPT = "bob@example.net"
HEADERS = b"From: alice@example.org\r\nSubject: smuggling\r\n\r\nbefore"
SMUGGLED = (
    b"MAIL FROM:<evil@attacker.example>\r\n"
    b"RCPT TO:<victim@example.net>\r\n"
    b"DATA\r\n"
    b"From: ceo@example.org\r\n\r\nforged body"
)


def _session(address: tuple[str, int], body: bytes) -> list[int]:
    """One transaction whose body is ``body``; returns the reply codes after the 354."""
    peer = RawPeer.connect(*address)
    try:
        assert peer.read_reply().code == 220
        assert peer.command(b"EHLO attacker.example").code == 250
        peer.send(
            f"MAIL FROM:<{LEGIT_SENDER}>\r\nRCPT TO:<{LEGIT_RCPT}>\r\nDATA\r\n".encode()
        )
        assert [peer.read_reply().code for _ in range(3)] == [250, 250, 354]
        peer.send(body + b"\r\n.\r\nQUIT\r\n")
        codes = []
        while True:
            try:
                codes.append(peer.read_reply().code)
            except (PeerClosed, ConnectionResetError):
                break
            if codes[-1] in (221, 421):
                break
        return codes
    finally:
        peer.close()


def _bare(content: bytes) -> bool:
    return content.count(b"\r") != content.count(b"\r\n") or content.count(b"\n") != content.count(
        b"\r\n"
    )


@pytest.mark.parametrize("policy", [BareLineEndingPolicy.REJECT, BareLineEndingPolicy.NORMALIZE])
@pytest.mark.parametrize("kind", adapter_params())
def test_smuggling_variants(kind: str, policy: BareLineEndingPolicy) -> None:
    handler = RecordingHandler()
    config = ServerConfig(hostname="mx.test", bare_line_endings=policy)
    options: dict[str, Any] = {"config": config, "timeout": 10}
    cases = [(variant, behind) for variant in VARIANTS for behind in (False, True)]
    with running_server(kind, handler, **options) as address:
        for number, (variant, behind) in enumerate(cases):
            body = HEADERS + variant + (SMUGGLED if behind else b"after")
            codes = _session(address, body)
            label = f"{variant!r} {'with' if behind else 'without'} pipelined commands"
            if policy is BareLineEndingPolicy.REJECT:
                assert len(codes) == 2, (label, codes)
                assert 500 <= codes[0] < 600, (label, codes)
                assert codes[1] == 221, (label, codes)
                assert handler.messages == [], label
            else:
                assert codes == [250, 221], (label, codes)
                assert len(handler.messages) == number + 1, label
                message = handler.messages[-1]
                assert message.sender == LEGIT_SENDER, label
                assert message.recipients == (LEGIT_RCPT,), label
                assert message.content.startswith(HEADERS), label
                assert not _bare(message.content), (label, message.content)
                if behind:
                    assert b"MAIL FROM:<evil@attacker.example>\r\n" in message.content, label
            # Never a command from inside DATA: only the legitimate envelope was executed.
            assert handler.commands == [("MAIL", LEGIT_SENDER), ("RCPT", LEGIT_RCPT)] * (
                number + 1
            ), label
        handler.wait_disconnects(len(cases))


@pytest.mark.parametrize("transport", ["asyncio", "anyio", "trio", "threads", "sockets"])
def test_smuggling_against_esmtp_serve_maildir(tmp_path: Path, transport: str) -> None:
    """End to end: ``esmtp serve`` (default policy) stores nothing for any variant, and a clean
    message sent afterwards on the same server is stored exactly once."""
    maildir = tmp_path / "maildir"
    port = free_port()
    with ServeProcess(port, maildir, "--transport", transport):
        for variant in VARIANTS:
            for behind in (False, True):
                body = HEADERS + variant + (SMUGGLED if behind else b"after")
                codes = _session(("127.0.0.1", port), body)
                assert len(codes) == 2, (variant, behind, codes)
                assert codes[0] >= 500, (variant, behind, codes)
        assert _session(("127.0.0.1", port), HEADERS + b"\r\nclean") == [250, 221]
    stored = maildir_messages(maildir)
    assert len(stored) == 1, list(stored)
    content = next(iter(stored.values()))
    assert content.endswith(HEADERS + b"\r\nclean\r\n")
    assert b"evil@attacker.example" not in content
