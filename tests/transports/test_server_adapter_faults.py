"""Every adapter's server when things go wrong: a client vanishing mid-DATA, a raising handler,
an idle client, too many connections, and a graceful shutdown with a transaction in flight."""

from __future__ import annotations

import contextlib
import smtplib
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from _transport_harness import WAIT, RawPeer, Recorder, run_server

from esmtp_core import Reply, ServerConnection
from transports.handler import Session
from transports.storage import Maildir, StoringHandler


def _open(peer: RawPeer) -> None:
    assert peer.reply()[0] == 220
    assert peer.command(b"EHLO client.test\r\n")[0] == 250


def test_disconnect_mid_data_stores_nothing(adapter: str, tmp_path: Path) -> None:
    recorder = Recorder()
    storing = StoringHandler(Maildir(tmp_path))
    for handler in (recorder, storing):
        with run_server(adapter, handler) as running:
            peer = RawPeer(running.host, running.port)
            _open(peer)
            assert peer.command(b"MAIL FROM:<a@example.org>\r\n")[0] == 250
            assert peer.command(b"RCPT TO:<b@example.net>\r\n")[0] == 250
            assert peer.command(b"DATA\r\n")[0] == 354
            peer.send(b"Subject: partial\r\n\r\nsome of the body\r\n" * 100)
            peer.close()
            if handler is recorder:
                recorder.wait_for(lambda: recorder.disconnects == 1)
    assert recorder.messages == []
    assert recorder.aborted == 1
    # The storing server was shut down, so its disconnect hook has run: nothing anywhere.
    for sub in ("tmp", "new", "cur"):
        assert list((tmp_path / sub).iterdir()) == []


def test_raising_handler_gets_451_and_server_keeps_serving(
    adapter: str, recorder: Recorder
) -> None:
    with run_server(adapter, recorder) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        assert peer.command(b"MAIL FROM:<boom@example.com>\r\n")[:1] == (451,)
        assert peer.command(b"MAIL FROM:<a@example.org>\r\n")[0] == 250
        assert peer.command(b"RCPT TO:<b@example.net>\r\n")[0] == 250
        assert peer.command(b"DATA\r\n")[0] == 354
        code, text = peer.command(b"X-Fail: yes\r\n\r\nbody\r\n.\r\n")
        assert code == 451
        assert text.startswith("4.3.0")
        assert peer.command(b"QUIT\r\n")[0] == 221
        peer.close()
        with smtplib.SMTP(running.host, running.port, timeout=WAIT) as client:
            client.sendmail("a@example.org", ["b@example.net"], b"Subject: fine\r\n\r\nok\r\n")
    assert len(recorder.messages) == 1


class Gatekeeper(Recorder):
    """Its connect hook accepts, refuses with 554 or raises, as the test sets ``mode``."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"

    def connect(self, session: Session) -> Reply | None:
        if self.mode == "refuse":
            return Reply.make(554, "5.7.1", "No service for you")
        if self.mode == "raise":
            raise RuntimeError("connect hook failure requested by the test")
        return None


def test_connect_hook_refuses_or_fails(adapter: str) -> None:
    handler = Gatekeeper()
    with run_server(adapter, handler) as running:
        handler.mode = "refuse"
        peer = RawPeer(running.host, running.port)
        code, text = peer.reply()
        assert (code, text.endswith("No service for you")) == (554, True)
        assert peer.command(b"MAIL FROM:<a@example.org>\r\n")[0] == 503
        assert peer.command(b"QUIT\r\n")[0] == 221
        peer.close()
        handler.mode = "raise"
        peer = RawPeer(running.host, running.port)
        assert peer.reply()[0] == 421
        assert peer.at_eof()
        peer.close()
        handler.mode = "ok"
        with smtplib.SMTP(running.host, running.port, timeout=WAIT) as client:
            client.sendmail("a@example.org", ["b@example.net"], b"Subject: ok\r\n\r\nfine\r\n")
    assert len(handler.messages) == 1


def test_idle_timeout(adapter: str, recorder: Recorder) -> None:
    with run_server(adapter, recorder, timeout=0.3) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        code, text = peer.reply()  # nothing sent: the server gives up on us
        assert code == 421
        assert text.startswith("4.4.2")
        assert peer.at_eof()
        peer.close()


def test_command_trickle_is_cut(adapter: str, recorder: Recorder) -> None:
    """Slowloris: bytes keep coming, but no command completes within the timeout."""
    with run_server(adapter, recorder, timeout=0.6) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        started = time.monotonic()
        peer.sock.settimeout(0.1)  # the trickle's pace is this wait for the server
        said = b""
        while time.monotonic() - started < WAIT and not said:
            peer.send(b"N")
            with contextlib.suppress(TimeoutError):
                said = peer.sock.recv(100)
        assert said.startswith(b"421 4.4.2")
        assert time.monotonic() - started < 3
        peer.close()


def test_data_timeout(adapter: str, recorder: Recorder) -> None:
    with run_server(adapter, recorder, timeout=5, data_timeout=0.3) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        peer.command(b"MAIL FROM:<a@example.org>\r\n")
        peer.command(b"RCPT TO:<b@example.net>\r\n")
        assert peer.command(b"DATA\r\n")[0] == 354
        started = time.monotonic()
        peer.send(b"Subject: slow\r\n\r\n")  # small: the core may not even pass it on yet
        assert peer.reply()[0] == 421
        assert time.monotonic() - started < 3  # the DATA clock, not the 5 s command timeout
        peer.close()
        recorder.wait_for(lambda: recorder.disconnects == 1)
    assert recorder.messages == []


def test_connection_limit(adapter: str, recorder: Recorder) -> None:
    with run_server(adapter, recorder, max_connections=2) as running:
        first = RawPeer(running.host, running.port)
        second = RawPeer(running.host, running.port)
        _open(first)
        _open(second)
        third = RawPeer(running.host, running.port)
        code, text = third.reply()
        assert code == 421
        assert text.split()[0] == "4.7.0" or "4.7.0" in text
        assert third.at_eof()
        for peer in (first, second, third):
            peer.close()


def test_graceful_shutdown(adapter: str, recorder: Recorder) -> None:
    with run_server(adapter, recorder) as running:
        busy = RawPeer(running.host, running.port)  # connected first: told first
        _open(busy)
        busy.command(b"MAIL FROM:<a@example.org>\r\n")
        busy.command(b"RCPT TO:<b@example.net>\r\n")
        assert busy.command(b"DATA\r\n")[0] == 354
        busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        idle = RawPeer(running.host, running.port)
        _open(idle)
        stopping = running.begin_shutdown()
        # The idle session is told at once; by then the busy one has been asked to stop too.
        assert idle.reply()[0] == 421
        assert idle.at_eof()
        # The transaction in flight still completes...
        assert busy.command(b"second half\r\n.\r\n")[0] == 250
        # ...and then the session ends with 421 at once, the session being idle again.
        assert busy.reply()[0] == 421
        assert busy.at_eof()
        if isinstance(stopping, Future):
            stopping.result(WAIT)
        else:
            stopping.join(WAIT)
            assert not stopping.is_alive()
        for peer in (busy, idle):
            peer.close()
    (message,) = recorder.messages
    assert message.content == b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"


def test_shutdown_cuts_what_outlives_the_grace_period(adapter: str, recorder: Recorder) -> None:
    with run_server(adapter, recorder) as running:
        stuck = RawPeer(running.host, running.port)
        _open(stuck)
        stuck.command(b"MAIL FROM:<a@example.org>\r\n")
        stuck.command(b"RCPT TO:<b@example.net>\r\n")
        assert stuck.command(b"DATA\r\n")[0] == 354
        # Over 1 KiB, so that the core hands the body to the handler (it batches less).
        stuck.send(b"Subject: never finished\r\n\r\n" + (b"x" * 98 + b"\r\n") * 30)
        started = time.monotonic()
        stopping = running.begin_shutdown(0.3)
        with contextlib.suppress(ConnectionResetError):
            assert stuck.at_eof()  # cut, without a reply: its transaction never ended
        if isinstance(stopping, Future):
            stopping.result(WAIT)
        else:
            stopping.join(WAIT)
        assert time.monotonic() - started < 5
        stuck.close()
    assert recorder.messages == []
    assert recorder.aborted == 1


def test_internal_error_costs_one_connection_only(
    adapter: str, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ServerConnection.receive_data

    def receive_data(self: ServerConnection, data: bytes) -> None:
        if b"CRASH" in data:
            raise RuntimeError("simulated bug below the adapter")
        real(self, data)

    monkeypatch.setattr(ServerConnection, "receive_data", receive_data)
    with run_server(adapter, recorder) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        peer.send(b"CRASH\r\n")
        assert peer.at_eof()
        peer.close()
        recorder.wait_for(lambda: recorder.disconnects == 1)
        with smtplib.SMTP(running.host, running.port, timeout=WAIT) as client:
            client.sendmail("a@example.org", ["b@example.net"], b"Subject: ok\r\n\r\nfine\r\n")
    assert len(recorder.messages) == 1
