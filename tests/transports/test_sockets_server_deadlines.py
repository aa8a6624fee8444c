"""The selector loop (sockets, and threads which runs the same loop) reads no clock per round
trip: it only asks the connections for their deadlines once the earliest one may have fallen
due. These tests pin what that must not break: an idle session is cut on time while other
sessions keep the loop busy, and a timeout shorter than the others (DATA, TLS handshake) is not
missed because a longer one was the nearest when the loop last looked."""

from __future__ import annotations

import select
import ssl
import time

import pytest
from _transport_harness import WAIT, RawPeer, Recorder, run_server

LOOP_ADAPTERS = ["sockets", "threads"]


def _open(peer: RawPeer) -> None:
    assert peer.reply()[0] == 220
    assert peer.command(b"EHLO client.test\r\n")[0] == 250


@pytest.mark.parametrize("adapter", LOOP_ADAPTERS)
def test_idle_session_is_cut_while_others_keep_the_loop_busy(adapter: str) -> None:
    recorder = Recorder()
    with run_server(adapter, recorder, timeout=0.5) as running:
        idle = RawPeer(running.host, running.port)
        _open(idle)
        busy = RawPeer(running.host, running.port)
        _open(busy)
        started = time.monotonic()
        # The busy session's round trips keep select() returning at once; the idle one's 421
        # must come anyway, after its own 0.5 s.
        while not select.select([idle.sock], [], [], 0.02)[0]:
            assert time.monotonic() - started < WAIT, "the idle session was never cut"
            assert busy.command(b"NOOP\r\n")[0] == 250
        code = idle.reply()[0]
        elapsed = time.monotonic() - started
        assert code == 421
        assert 0.4 < elapsed < 3.0
        busy.close()
        idle.close()


@pytest.mark.parametrize("adapter", LOOP_ADAPTERS)
def test_short_data_timeout_is_not_missed_behind_a_long_command_timeout(adapter: str) -> None:
    recorder = Recorder()
    with run_server(adapter, recorder, timeout=60, data_timeout=0.5) as running:
        other = RawPeer(running.host, running.port)
        _open(other)  # its deadline (60 s away) is the nearest when the loop last looked
        peer = RawPeer(running.host, running.port)
        _open(peer)
        assert peer.command(b"MAIL FROM:<a@example.org>\r\n")[0] == 250
        assert peer.command(b"RCPT TO:<b@example.net>\r\n")[0] == 250
        started = time.monotonic()
        assert peer.command(b"DATA\r\n")[0] == 354
        peer.send(b"Subject: slow\r\n\r\n")
        assert peer.reply()[0] == 421
        assert time.monotonic() - started < 3.0
        peer.close()
        other.close()


@pytest.mark.parametrize("adapter", LOOP_ADAPTERS)
def test_short_handshake_timeout_is_not_missed(adapter: str, server_tls: ssl.SSLContext) -> None:
    recorder = Recorder()
    with run_server(
        adapter, recorder, timeout=60, tls_context=server_tls, tls_handshake_timeout=0.5
    ) as running:
        other = RawPeer(running.host, running.port)
        _open(other)
        peer = RawPeer(running.host, running.port)
        _open(peer)
        started = time.monotonic()
        assert peer.command(b"STARTTLS\r\n")[0] == 220
        assert peer.at_eof()  # no handshake started: cut after 0.5 s, not 60
        assert time.monotonic() - started < 3.0
        peer.close()
        other.close()
