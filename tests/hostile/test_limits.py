"""Limits under load over loopback: memory, connections, timeouts and floods.

* A client streaming DATA far beyond the advertised SIZE (RFC 1870) to ``esmtp serve`` in a
  subprocess: the server's resident memory (VmRSS from /proc) stays flat while the bytes flow,
  and the message is refused with ``552`` after the final dot. 256 MiB per transport by default,
  1 GiB with ``ESMTP_SLOW=1``.
* 1,000 concurrent idle connections on the asyncio server with ``max_connections=1000``: all get
  their 220; connections beyond the limit get ``421`` and are closed; capacity comes back when
  clients leave.
* Command floods (RFC 5321 §4.5.3 limits): 10,000 unknown commands are cut after the configured
  error count with ``421``; 10,000 NOOPs are cut by the command limit.

Slow clients and timeouts are in ``test_timeouts.py``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from esmtp_core import ServerConfig

from ._adapters import RecordingHandler, adapter_params, running_server
from ._rawsmtp import PeerClosed, RawPeer, free_port
from ._servers import ServeProcess, raise_nofile

MIB = 1024 * 1024
#: The CLI's --transport names.
CLI_TRANSPORTS = ["asyncio", "anyio", "trio", "threads", "sockets"]


def _stream_beyond_size(tmp_path: Path, transport: str, total_mib: int) -> None:
    port = free_port()
    maildir = tmp_path / f"maildir-{transport}"
    with ServeProcess(port, maildir, "--max-size", str(MIB), "--transport", transport) as server:
        peer = RawPeer.connect("127.0.0.1", port, timeout=60)
        try:
            assert peer.read_reply().code == 220
            assert peer.command(b"EHLO streamer.example").code == 250
            # No SIZE= declared: the client lies by omission and just streams.
            assert peer.command(b"MAIL FROM:<big@example.org>").code == 250
            assert peer.command(b"RCPT TO:<sink@example.net>").code == 250
            assert peer.command(b"DATA").code == 354
            block = (b"x" * 998 + b"\r\n") * 1049  # 1 MiB of 1,000-octet lines (the limit)
            samples: list[int] = []
            for sent in range(total_mib):
                peer.send(block)
                if sent % 16 == 15:
                    samples.append(server.rss_kib())
            peer.send(b".\r\n")
            reply = peer.read_reply()
            assert reply.code == 552, reply  # RFC 1870 §6.1 / RFC 3463 5.3.4
            assert peer.command(b"QUIT").code == 221
        finally:
            peer.close()
        # Flat: after the first samples (buffers warm up), growth stays within a few MiB
        # while hundreds of MiB go through.
        warm = samples[1]
        growth_kib = max(samples) - warm
        print(f"\n{transport}: {total_mib} MiB streamed, RSS samples (KiB) {samples}")
        assert growth_kib < 16 * 1024, (transport, samples)
        assert max(samples) < 200 * 1024, (transport, samples)
    assert not any((maildir / "new").iterdir()), "the oversized message was stored"


@pytest.mark.parametrize("transport", CLI_TRANSPORTS)
def test_data_beyond_size_keeps_rss_flat(tmp_path: Path, transport: str) -> None:
    _stream_beyond_size(tmp_path, transport, 256)


@pytest.mark.slow
@pytest.mark.parametrize("transport", CLI_TRANSPORTS)
def test_data_beyond_size_keeps_rss_flat_1gib(tmp_path: Path, transport: str) -> None:
    _stream_beyond_size(tmp_path, transport, 1024)


def _bdat_beyond_size(tmp_path: Path, transport: str, total_mib: int) -> None:
    """One RFC 3030 chunk far beyond SIZE: the server must consume every octet it announced
    (never parse them as commands, go-smtp #315) with flat RSS, refuse it, and stay in step."""
    port = free_port()
    maildir = tmp_path / f"maildir-bdat-{transport}"
    with ServeProcess(port, maildir, "--max-size", str(MIB), "--transport", transport) as server:
        peer = RawPeer.connect("127.0.0.1", port, timeout=60)
        try:
            assert peer.read_reply().code == 220
            assert peer.command(b"EHLO streamer.example").code == 250
            assert peer.command(b"MAIL FROM:<big@example.org>").code == 250
            assert peer.command(b"RCPT TO:<sink@example.net>").code == 250
            # The chunk's content looks like commands: a server that stopped counting octets
            # after refusing would execute them.
            block = (b"RSET\r\nMAIL FROM:<evil@x>\r\n" * 40_330)[:MIB]
            peer.send(b"BDAT %d LAST\r\n" % (total_mib * MIB))
            samples: list[int] = []
            for sent in range(total_mib):
                peer.send(block)
                if sent % 16 == 15:
                    samples.append(server.rss_kib())
            reply = peer.read_reply()
            assert reply.code == 552, reply
            assert peer.command(b"NOOP").code == 250  # the very next reply: still in step
            assert peer.command(b"QUIT").code == 221
        finally:
            peer.close()
        print(f"\n{transport}: BDAT of {total_mib} MiB, RSS samples (KiB) {samples}")
        assert max(samples) - samples[1] < 16 * 1024, (transport, samples)
    assert not any((maildir / "new").iterdir()), "the oversized message was stored"


@pytest.mark.parametrize("transport", CLI_TRANSPORTS)
def test_bdat_beyond_size_keeps_rss_flat_and_in_step(tmp_path: Path, transport: str) -> None:
    _bdat_beyond_size(tmp_path, transport, 128)


def test_large_accepted_message_keeps_rss_flat(tmp_path: Path) -> None:
    """Within the limit too: a 128 MiB message is streamed to disk, not collected in memory."""
    port = free_port()
    maildir = tmp_path / "maildir"
    with ServeProcess(port, maildir, "--max-size", "0") as server:
        peer = RawPeer.connect("127.0.0.1", port, timeout=60)
        try:
            assert peer.read_reply().code == 220
            assert peer.command(b"EHLO streamer.example").code == 250
            assert peer.command(b"MAIL FROM:<big@example.org>").code == 250
            assert peer.command(b"RCPT TO:<sink@example.net>").code == 250
            assert peer.command(b"DATA").code == 354
            block = (b"y" * 998 + b"\r\n") * 1049
            samples = []
            for sent in range(128):
                peer.send(block)
                if sent % 16 == 15:
                    samples.append(server.rss_kib())
            peer.send(b".\r\n")
            assert peer.read_reply().code == 250
        finally:
            peer.close()
        print(f"\naccepted 128 MiB, RSS samples (KiB) {samples}")
        assert max(samples) - samples[1] < 16 * 1024, samples
    stored = list((maildir / "new").iterdir())
    assert len(stored) == 1
    assert stored[0].stat().st_size > 128 * MIB


def test_idle_connections_beyond_the_limit_get_421() -> None:
    limit, extra = 1000, 50
    assert raise_nofile(2 * (limit + extra) + 200) >= 2 * (limit + extra) + 100
    handler = RecordingHandler()
    config = ServerConfig(hostname="mx.test")
    with running_server(
        "asyncio", handler, config=config, max_connections=limit, timeout=120
    ) as address:
        peers: list[RawPeer] = []
        try:
            for _ in range(limit):
                peer = RawPeer.connect(*address, timeout=30)
                peers.append(peer)
            # Every one of them is being served (the greeting arrives).
            for peer in peers:
                assert peer.read_reply().code == 220
            for _ in range(extra):
                peer = RawPeer.connect(*address, timeout=30)
                reply = peer.read_reply()
                assert reply.code == 421, reply
                assert peer.read_until_closed(limit=10) == b""  # and then the server closes
                peer.close()
            # Leaving frees capacity: ten go, ten new ones are served.
            for peer in peers[:10]:
                assert peer.command(b"QUIT").code == 221
                peer.close()
            handler.wait_disconnects(10)
            for index in range(10):
                peer = RawPeer.connect(*address, timeout=30)
                assert peer.read_reply().code == 220
                peers[index] = peer
            # The idle ones are all still alive and answer.
            for peer in peers[::50]:
                assert peer.command(b"NOOP").code == 250
        finally:
            for peer in peers:
                peer.close()


def _flood(address: tuple[str, int], line: bytes, count: int) -> tuple[list[int], float]:
    """Send ``count`` copies of ``line`` in one go (after EHLO) while a reader thread collects
    every reply until the server closes; return the reply codes and the seconds it took."""
    peer = RawPeer.connect(*address, timeout=30)
    codes: list[int] = []
    failure: list[BaseException] = []

    def read() -> None:
        try:
            while True:
                codes.append(peer.read_reply().code)
        except (PeerClosed, ConnectionResetError):
            return
        except BaseException as exc:
            failure.append(exc)

    started = time.monotonic()
    try:
        assert peer.read_reply().code == 220
        assert peer.command(b"EHLO flooder.example").code == 250
        reader = threading.Thread(target=read)
        reader.start()
        # The server may cut us while we are still sending: that is the point.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            peer.send(line * count + b"QUIT\r\n")
        reader.join(60)
        assert not reader.is_alive(), "the server neither answered nor closed"
    finally:
        peer.close()
    assert not failure, failure
    return codes, time.monotonic() - started


@pytest.mark.parametrize("kind", adapter_params())
def test_unknown_command_flood_is_cut(kind: str) -> None:
    config = ServerConfig(hostname="mx.test", max_errors=20)
    with running_server(kind, RecordingHandler(), config=config) as address:
        codes, seconds = _flood(address, b"XYZZY plugh\r\n", 10_000)
    assert codes[-1] == 421, codes[-5:]
    assert len(codes) <= 21, len(codes)
    assert all(500 <= code < 600 for code in codes[:-1])
    assert seconds < 30


@pytest.mark.parametrize("kind", adapter_params())
def test_noop_flood_is_cut_by_the_command_limit(kind: str) -> None:
    config = ServerConfig(hostname="mx.test", max_commands=1000)
    with running_server(kind, RecordingHandler(), config=config) as address:
        codes, seconds = _flood(address, b"NOOP\r\n", 10_000)
    assert codes[-1] == 421, codes[-5:]
    assert 990 <= len(codes) <= 1001, len(codes)
    assert set(codes[:-1]) == {250}
    assert seconds < 30


@pytest.mark.parametrize("kind", adapter_params())
def test_noop_flood_within_default_limits_is_answered(kind: str) -> None:
    """Under the default command limit (100,000) the flood is simply answered, in order and
    promptly: pipelining 10,000 commands must not stall or drop any reply."""
    with running_server(kind, RecordingHandler(), config=ServerConfig(hostname="mx.test")) as (
        address
    ):
        codes, seconds = _flood(address, b"NOOP\r\n", 10_000)
    assert codes == [250] * 10_000 + [221]
    assert seconds < 30


@pytest.mark.parametrize("kind", adapter_params())
def test_connection_limit_on_every_adapter(kind: str) -> None:
    """The same limit, smaller, on every adapter: 50 served, the next 10 get 421 and a close."""
    limit, extra = 50, 10
    handler = RecordingHandler()
    peers: list[RawPeer] = []
    config = ServerConfig(hostname="mx.test")
    with running_server(
        kind, handler, config=config, max_connections=limit, timeout=60
    ) as address:
        try:
            for _ in range(limit):
                peers.append(RawPeer.connect(*address, timeout=30))
            for peer in peers:
                assert peer.read_reply().code == 220
            for _ in range(extra):
                peer = RawPeer.connect(*address, timeout=30)
                assert peer.read_reply().code == 421
                assert peer.read_until_closed(limit=10) == b""
                peer.close()
            assert peers[-1].command(b"NOOP").code == 250
        finally:
            for peer in peers:
                peer.close()
