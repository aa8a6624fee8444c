"""The threads server hands a turn that blocks in the handler to a thread of its own: a blocking
handler in one session must not stall the others, and the blocked session must carry on
correctly (in order, one turn at a time) once its handler returns, through a shutdown too."""

from __future__ import annotations

import contextlib
import smtplib
import threading
import time
from dataclasses import dataclass, field

import pytest
from _transport_harness import WAIT, RawPeer, Recorder, run_server

from esmtp_core import MailParams, RcptParams, Reply
from transports.handler import Session
from transports.threads import Server as ThreadsServer

BLOCKING_SENDER = "slow@example.org"


@dataclass
class BlockingRecorder(Recorder):
    """``mail`` from :data:`BLOCKING_SENDER` blocks until :attr:`release` is set (as an
    ``fsync`` or a database call would); every hook call is logged with its session."""

    release: threading.Event = field(default_factory=threading.Event)
    blocked: threading.Event = field(default_factory=threading.Event)
    calls: list[tuple[int, str]] = field(default_factory=list)
    #: Sessions with a hook call running right now (one at a time per session, or a bug).
    running: set[int] = field(default_factory=set)
    overlaps: int = 0

    def _enter(self, session: Session, name: str) -> None:
        with self.condition:
            if session.id in self.running:
                self.overlaps += 1
            self.running.add(session.id)
            self.calls.append((session.id, name))
            self.condition.notify_all()

    def _leave(self, session: Session) -> None:
        with self.condition:
            self.running.discard(session.id)

    def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        self._enter(session, "mail")
        try:
            if address == BLOCKING_SENDER:
                self.blocked.set()
                assert self.release.wait(WAIT), "the test never released the handler"
            return super().mail(session, address, params)
        finally:
            self._leave(session)

    def rcpt(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        self._enter(session, "rcpt")
        try:
            return super().rcpt(session, address, params)
        finally:
            self._leave(session)


def _open(peer: RawPeer) -> None:
    assert peer.reply()[0] == 220
    assert peer.command(b"EHLO client.test\r\n")[0] == 250


def _send_other(running: object, subject: str) -> None:
    host, port = running.host, running.port  # type: ignore[attr-defined]
    with smtplib.SMTP(host, port, timeout=WAIT) as client:
        client.sendmail("a@example.org", ["b@example.net"], f"Subject: {subject}\r\n\r\nok\r\n")


def test_blocking_handler_does_not_stall_another_session() -> None:
    handler = BlockingRecorder()
    with run_server("threads", handler) as running:
        slow = RawPeer(running.host, running.port)
        _open(slow)
        # Pipelined: the RCPT waits behind the blocked MAIL and must not run beside it.
        slow.send(f"MAIL FROM:<{BLOCKING_SENDER}>\r\nRCPT TO:<b@example.net>\r\n".encode())
        assert handler.blocked.wait(WAIT)
        started = time.monotonic()
        _send_other(running, "while the other one blocks")  # smtplib's timeout bounds this
        assert time.monotonic() - started < WAIT / 2
        with handler.condition:
            assert [m.content for m in handler.messages] == [
                b"Subject: while the other one blocks\r\n\r\nok\r\n"
            ]
        handler.release.set()
        assert slow.reply()[0] == 250
        assert slow.reply()[0] == 250
        assert slow.command(b"DATA\r\n")[0] == 354
        assert slow.command(b"Subject: late\r\n\r\nstill fine\r\n.\r\n")[0] == 250
        assert slow.command(b"QUIT\r\n")[0] == 221
        slow.close()
        # The session that was handed off is served again like any other.
        _send_other(running, "afterwards")
    assert handler.overlaps == 0
    slow_id = next(sid for sid, name in handler.calls if name == "mail")
    assert [name for sid, name in handler.calls if sid == slow_id] == ["mail", "rcpt"]
    assert len(handler.messages) == 3


def test_many_sessions_blocked_at_once() -> None:
    handler = BlockingRecorder()
    sessions = 4
    with run_server("threads", handler) as running:
        peers = [RawPeer(running.host, running.port) for _ in range(sessions)]
        for peer in peers:
            _open(peer)
            peer.send(f"MAIL FROM:<{BLOCKING_SENDER}>\r\n".encode())
        handler.wait_for(lambda: sum(name == "mail" for _, name in handler.calls) == sessions)
        _send_other(running, "beside four blocked sessions")
        handler.release.set()
        for peer in peers:
            assert peer.reply()[0] == 250
            assert peer.command(b"QUIT\r\n")[0] == 221
            peer.close()
    assert handler.overlaps == 0


def test_graceful_shutdown_waits_for_a_blocked_turn() -> None:
    handler = BlockingRecorder()
    with run_server("threads", handler) as running:
        slow = RawPeer(running.host, running.port)
        _open(slow)
        slow.send(f"MAIL FROM:<{BLOCKING_SENDER}>\r\n".encode())
        assert handler.blocked.wait(WAIT)
        stopping = running.begin_shutdown()
        assert isinstance(stopping, threading.Thread)
        handler.release.set()
        # The transaction the blocked MAIL opened is finished, then the session gets 421.
        assert slow.reply()[0] == 250
        assert slow.command(b"RCPT TO:<b@example.net>\r\n")[0] == 250
        assert slow.command(b"DATA\r\n")[0] == 354
        assert slow.command(b"Subject: in flight\r\n\r\nbody\r\n.\r\n")[0] == 250
        assert slow.reply()[0] == 421
        assert slow.at_eof()
        stopping.join(WAIT)
        assert not stopping.is_alive()
        slow.close()
    assert [m.content for m in handler.messages] == [b"Subject: in flight\r\n\r\nbody\r\n"]
    assert handler.disconnects == 1


def test_grace_period_over_cuts_a_blocked_session() -> None:
    handler = BlockingRecorder()
    with run_server("threads", handler) as running:
        slow = RawPeer(running.host, running.port)
        _open(slow)
        slow.send(f"MAIL FROM:<{BLOCKING_SENDER}>\r\n".encode())
        assert handler.blocked.wait(WAIT)
        stopping = running.begin_shutdown(0.2)
        assert isinstance(stopping, threading.Thread)
        with contextlib.suppress(ConnectionResetError):
            assert slow.at_eof()  # cut when the grace period ends, the handler still blocked
        # shutdown() waits for the handler call, which still returns normally.
        assert stopping.is_alive()
        handler.release.set()
        stopping.join(WAIT)
        assert not stopping.is_alive()
        slow.close()
    assert handler.disconnects == 1


@dataclass
class GatedRecorder(BlockingRecorder):
    """Also: ``mail`` from :data:`GATE_SENDER` holds the loop until :attr:`gate` is set (too
    briefly to be handed off), so that what arrives meanwhile is served in one round."""

    gate: threading.Event = field(default_factory=threading.Event)
    gated: threading.Event = field(default_factory=threading.Event)

    def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        if address == GATE_SENDER:
            self.gated.set()
            assert self.gate.wait(WAIT)
            return None
        return super().mail(session, address, params)


GATE_SENDER = "gate@example.org"


def test_replies_of_a_round_go_out_when_a_later_turn_of_it_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Looks 0.3 s apart: the gate's few milliseconds are never seen twice; the blocking MAIL is.
    monkeypatch.setattr(ThreadsServer, "handoff_after", 0.3)
    monkeypatch.setattr(ThreadsServer, "handoff_after_max", 0.3)
    handler = GatedRecorder()
    with run_server("threads", handler) as running:
        gate, quick, slow = (RawPeer(running.host, running.port) for _ in range(3))
        for peer in (gate, quick, slow):
            _open(peer)
        gate.send(f"MAIL FROM:<{GATE_SENDER}>\r\n".encode())
        assert handler.gated.wait(WAIT)
        # Both become readable while the loop thread is held: one round serves them, quick's
        # turn first (it queues its reply), then slow's, which blocks and is handed off.
        quick.send(b"NOOP\r\n")
        slow.send(f"MAIL FROM:<{BLOCKING_SENDER}>\r\n".encode())
        handler.gate.set()
        assert gate.reply()[0] == 250
        assert handler.blocked.wait(WAIT)
        assert quick.reply()[0] == 250  # not held back until the blocked turn ends
        handler.release.set()
        assert slow.reply()[0] == 250
        for peer in (gate, quick, slow):
            assert peer.command(b"QUIT\r\n")[0] == 221
            peer.close()
