"""No loss, no duplicate: ``esmtp serve`` SIGKILLed at random moments under load.

Twenty sessions send uniquely numbered messages to ``esmtp serve --maildir`` in a subprocess. A
killer thread SIGKILLs the server at random points of the run (when the acknowledged count passes
randomly drawn thresholds, so the kills land wherever the load happens to be) and restarts it at
once on the same port. Clients retry every message that was not acknowledged with ``250``.

What must hold (RFC 5321 §6.1: a ``250`` after the final dot means the server took
responsibility; RFC 1047 describes the one unavoidable duplicate window):

* every message acknowledged with 250 is in the Maildir, intact (a SHA-256 of the body rides in a
  header), and no file in ``new/`` is partial or corrupt;
* a message is stored more than once only if an attempt to send it was cut by a kill *after* its
  final dot left the client and *before* any reply came back (the RFC 1047 window between the
  server's fsync and its 250). An attempt cut before the final dot must store nothing.

The test counts those duplicates and prints the numbers. The default run sends 5,000 messages
with 8 kills (about ten seconds); ``ESMTP_SLOW=1`` adds 30,000 messages with 40 kills.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ._rawsmtp import PeerClosed, RawPeer, free_port
from ._servers import ServeProcess, maildir_messages

SESSIONS = 20
MESSAGE_ID_RE = re.compile(rb"^Message-ID: <m(\d+)@hostile\.test>\r$", re.MULTILINE)
CHECKSUM_RE = re.compile(rb"^X-Body-SHA256: ([0-9a-f]{64})\r$", re.MULTILINE)


def make_message(number: int) -> tuple[bytes, bytes]:
    """Message ``number`` as (wire bytes already dot-stuffed, the exact body)."""
    rng = random.Random(number)
    lines = [
        ("." if rng.random() < 0.2 else "")
        + f"line {i} of message {number} "
        + "x" * rng.randint(0, 120)
        for i in range(rng.randint(1, 40))
    ]
    body = "\r\n".join(lines).encode() + b"\r\n"
    digest = hashlib.sha256(body).hexdigest().encode()
    message = (
        b"Message-ID: <m%d@hostile.test>\r\nX-Body-SHA256: %s\r\nSubject: durability %d\r\n\r\n"
        % (number, digest, number)
        + body
    )
    stuffed = re.sub(rb"(?m)^\.", b"..", message)  # RFC 5321 §4.5.2 transparency
    return stuffed, body


@dataclass
class Ledger:
    """What the clients observed, shared by the session threads."""

    acked: set[int] = field(default_factory=set)
    #: Attempts cut after the final dot was sent and before any reply (the RFC 1047 window).
    in_window: Counter[int] = field(default_factory=Counter)
    #: Attempts cut before the final dot (must never store anything).
    cut_early: Counter[int] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: threading.Condition = field(default_factory=threading.Condition)
    errors: list[str] = field(default_factory=list)


def _session(port: int, numbers: list[int], ledger: Ledger, deadline: float) -> None:
    peer: RawPeer | None = None
    queue = list(numbers)
    while queue:
        if time.monotonic() > deadline:
            ledger.errors.append(f"deadline passed with {len(queue)} messages unsent")
            return
        number = queue[0]
        wire, _ = make_message(number)
        dot_sent = False
        try:
            if peer is None:
                peer = _open(port)
            for line in (b"MAIL FROM:<load@hostile.test>", b"RCPT TO:<sink@hostile.test>"):
                reply = peer.command(line)
                if reply.code != 250:
                    raise _Refused(reply.code)
            reply = peer.command(b"DATA")
            if reply.code != 354:
                raise _Refused(reply.code)
            peer.send(wire + b".\r\n")
            dot_sent = True
            reply = peer.read_reply()
            if reply.code != 250:
                raise _Refused(reply.code)
        except _Refused:
            with ledger.lock:
                ledger.refused[number] += 1
            if peer is not None:
                peer.close()
            peer = None
            continue
        except (OSError, PeerClosed, ValueError):
            with ledger.lock:
                (ledger.in_window if dot_sent else ledger.cut_early)[number] += 1
            if peer is not None:
                peer.close()
            peer = None
            continue
        queue.pop(0)
        with ledger.progress:
            ledger.acked.add(number)
            ledger.progress.notify_all()
    if peer is not None:
        with contextlib.suppress(OSError, PeerClosed, ValueError):
            peer.command(b"QUIT")
        peer.close()


class _Refused(Exception):
    """A 4xx/5xx reply (e.g. 421 from a server shutting down): retry on a new connection."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _open(port: int) -> RawPeer:
    deadline = time.monotonic() + 30
    while True:
        try:
            peer = RawPeer.connect("127.0.0.1", port, timeout=15)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # the server is restarting; the port reopens when it is ready
    greeting = peer.read_reply()
    if greeting.code != 220:
        peer.close()
        raise _Refused(greeting.code)
    reply = peer.command(b"EHLO load.hostile.test")
    if reply.code != 250:
        peer.close()
        raise _Refused(reply.code)
    return peer


def _killer(
    server: ServeProcess, ledger: Ledger, thresholds: list[int], kills: list[float]
) -> None:
    for threshold in thresholds:
        with ledger.progress:
            ledger.progress.wait_for(_reached(ledger, threshold), timeout=120)
        server.kill()
        kills.append(time.monotonic())
        server.start()


def _reached(ledger: Ledger, threshold: int) -> Callable[[], bool]:
    return lambda: len(ledger.acked) >= threshold


def run_load(tmp_path: Path, total: int, kill_count: int, seed: int) -> None:
    maildir = tmp_path / "maildir"
    port = free_port()
    rng = random.Random(seed)
    thresholds = sorted(rng.sample(range(total // 10, total * 9 // 10), kill_count))
    ledger = Ledger()
    kills: list[float] = []
    started = time.monotonic()
    with ServeProcess(port, maildir) as server:
        killer = threading.Thread(target=_killer, args=(server, ledger, thresholds, kills))
        killer.start()
        deadline = time.monotonic() + 600
        threads = [
            threading.Thread(
                target=_session,
                args=(port, list(range(i, total, SESSIONS)), ledger, deadline),
            )
            for i in range(SESSIONS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        killer.join()
    elapsed = time.monotonic() - started
    assert not ledger.errors, ledger.errors
    assert ledger.acked == set(range(total))
    assert len(kills) == kill_count

    copies: Counter[int] = Counter()
    for name, content in maildir_messages(maildir).items():
        ids = MESSAGE_ID_RE.findall(content)
        sums = CHECKSUM_RE.findall(content)
        assert len(ids) == 1, f"{name} is not one whole message"
        assert len(sums) == 1, f"{name} is not one whole message"
        number = int(ids[0])
        _, body = make_message(number)
        stored_body = content.split(b"\r\n\r\n", 1)[1]
        assert stored_body == body, f"{name}: body of message {number} differs"
        assert hashlib.sha256(stored_body).hexdigest().encode() == sums[0]
        copies[number] += 1

    missing = [n for n in range(total) if copies[n] == 0]
    assert not missing, f"acknowledged but not stored: {missing[:20]}"
    duplicates = {n: c - 1 for n, c in copies.items() if c > 1}
    outside_window = {n: d for n, d in duplicates.items() if d > ledger.in_window[n]}
    assert not outside_window, f"duplicates not explained by a cut after the dot: {outside_window}"
    window_total = sum(ledger.in_window.values())
    leftovers = len(list((maildir / "tmp").iterdir())) if (maildir / "tmp").is_dir() else 0
    print(
        f"\n{total} messages, {SESSIONS} sessions, {kill_count} kills, {elapsed:.1f} s: "
        f"{sum(duplicates.values())} duplicates; {window_total} attempts cut between the final "
        f"dot and the reply; {sum(ledger.cut_early.values())} attempts cut earlier (none stored); "
        f"{sum(ledger.refused.values())} refused and retried; {leftovers} partial files left "
        "in tmp/ (never in new/)"
    )
    # Each kill can cut at most one in-flight final dot per session.
    assert window_total <= kill_count * SESSIONS
    assert sum(duplicates.values()) <= window_total


def test_no_loss_no_duplicate_under_sigkill(tmp_path: Path) -> None:
    run_load(tmp_path, total=5000, kill_count=8, seed=1047)


@pytest.mark.slow
def test_no_loss_no_duplicate_under_sigkill_long(tmp_path: Path) -> None:
    run_load(tmp_path, total=30_000, kill_count=40, seed=5321)
