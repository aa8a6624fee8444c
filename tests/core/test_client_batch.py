"""Transactions queued back to back (RFC 2920 §3.1: the end of data may open the next pipelined
group): the next MAIL leaves in the flight of the previous final dot or BDAT LAST, replies are
still matched in order, every transaction gets its own TransactionResult in order, failures and
a 421 in the middle are reported per transaction, and without PIPELINING nothing changes."""

from __future__ import annotations

from client_helpers import events, ready

from esmtp_core import ClientEvent, SessionEnded, TransactionResult

PIPE_ONLY = b"250-mx\r\n250 PIPELINING\r\n"
PIPE_CHUNKING = b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
NOTHING = b"250 mx\r\n"


def results(got: list[ClientEvent]) -> list[TransactionResult]:
    assert all(isinstance(e, TransactionResult) for e in got), got
    return [e for e in got if isinstance(e, TransactionResult)]


def test_data_transactions_share_flights_and_results_come_in_order() -> None:
    conn = ready(PIPE_ONLY)
    for i in range(3):
        conn.send_message("a@x.org", [f"r{i}@x.org"], b"m%d\r\n" % i)
    # DATA ends a group (RFC 2920 §3.1): the first flight is the first envelope only.
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\nRCPT TO:<r0@x.org>\r\nDATA\r\n"
    assert events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n") == []
    # The body, its final dot and the next envelope: one flight, no wait for the dot's reply.
    assert conn.data_to_send() == (
        b"m0\r\n.\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<r1@x.org>\r\nDATA\r\n"
    )
    got = results(events(conn, b"250 first\r\n250 ok\r\n250 ok\r\n354 go\r\n"))
    assert [r.data_replies[0][1].text for r in got] == ["first"]
    assert conn.data_to_send() == (
        b"m1\r\n.\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<r2@x.org>\r\nDATA\r\n"
    )
    got = results(events(conn, b"250 second\r\n250 ok\r\n250 ok\r\n354 go\r\n"))
    assert conn.data_to_send() == b"m2\r\n.\r\n"
    got += results(events(conn, b"250 third\r\n"))
    assert [(r.recipients, r.data_replies[0][1].text) for r in got] == [
        (("r1@x.org",), "second"),
        (("r2@x.org",), "third"),
    ]
    assert not conn.in_transaction


def test_refused_end_of_data_does_not_touch_the_next_transaction() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"one\r\n")
    conn.send_message("a@x.org", ["c@x.org"], b"two\r\n")
    conn.data_to_send()
    events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert conn.data_to_send().startswith(b"one\r\n.\r\nMAIL FROM:")
    # The dot is refused: the server's transaction is over (RFC 5321 §4.1.1.4), so no RSET.
    got = results(events(conn, b"554 5.7.1 spam\r\n250 ok\r\n250 ok\r\n354 go\r\n"))
    assert len(got) == 1
    assert not got[0].ok
    assert got[0].data_replies[0][1].code == 554
    assert conn.data_to_send() == b"two\r\n.\r\n"
    second = results(events(conn, b"250 queued\r\n"))
    assert len(second) == 1
    assert second[0].ok


def test_refused_recipients_reset_before_the_next_mail() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"one\r\n")
    conn.send_message("a@x.org", ["c@x.org"], b"two\r\n")
    assert conn.data_to_send().endswith(b"DATA\r\n")
    # Every RCPT refused, DATA refused: the next MAIL was held behind DATA (it ends a group),
    # so the RSET for the server's open transaction still goes first.
    got = results(events(conn, b"250 ok\r\n550 no\r\n554 no valid recipients\r\n"))
    assert len(got) == 1
    assert not got[0].ok
    assert conn.data_to_send() == (b"RSET\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<c@x.org>\r\nDATA\r\n")
    assert events(conn, b"250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n") == []
    assert conn.data_to_send() == b"two\r\n.\r\n"
    assert results(events(conn, b"250 queued\r\n"))[0].ok


def test_lone_dot_after_refused_recipients_then_next_transaction() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"secret\r\n")
    conn.send_message("a@x.org", ["c@x.org"], b"two\r\n")
    conn.data_to_send()
    # RFC 2920 §3.1: every RCPT failed, yet 354: the lone dot ends the empty message, the body
    # never leaves, and the next envelope follows in the same flight (the dot ends the
    # server's transaction: no RSET).
    assert events(conn, b"250 ok\r\n550 no\r\n354 go\r\n") == []
    assert conn.data_to_send() == (b".\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<c@x.org>\r\nDATA\r\n")
    got = results(events(conn, b"554 no message\r\n250 ok\r\n250 ok\r\n354 go\r\n"))
    assert len(got) == 1
    assert not got[0].ok
    assert conn.data_to_send() == b"two\r\n.\r\n"
    assert results(events(conn, b"250 queued\r\n"))[0].ok


def test_bdat_transactions_in_one_flight_with_rset_between() -> None:
    conn = ready(PIPE_CHUNKING)
    for i in range(3):
        conn.send_message("a@x.org", [f"r{i}@x.org"], b"m%d\r\n" % i)
    flight = conn.data_to_send()
    # RFC 3030 §2: after a refused BDAT the state is unknown until RSET; the next MAIL has
    # left before the reply can tell, so an RSET always precedes it.
    assert flight == b"".join(
        (b"RSET\r\n" if i else b"")
        + b"MAIL FROM:<a@x.org>\r\nRCPT TO:<r%d@x.org>\r\nBDAT 4 LAST\r\nm%d\r\n" % (i, i)
        for i in range(3)
    )
    replies = b"250 ok\r\n250 ok\r\n554 refused\r\n"  # the first message is refused
    replies += b"250 reset\r\n250 ok\r\n250 ok\r\n250 second\r\n"
    replies += b"250 reset\r\n250 ok\r\n250 ok\r\n250 third\r\n"
    got = results(events(conn, replies))
    assert [r.ok for r in got] == [False, True, True]
    assert [r.recipients for r in got] == [("r0@x.org",), ("r1@x.org",), ("r2@x.org",)]
    assert conn.data_to_send() == b""  # no second RSET for the refused one
    assert not conn.in_transaction


def test_421_in_the_middle_ends_every_outstanding_transaction() -> None:
    conn = ready(PIPE_CHUNKING)
    for i in range(3):
        conn.send_message("a@x.org", [f"r{i}@x.org"], b"m%d\r\n" % i)
    conn.data_to_send()
    got = events(conn, b"250 ok\r\n250 ok\r\n250 first\r\n250 reset\r\n421 4.3.2 shutting down\r\n")
    assert isinstance(got[-1], SessionEnded)
    done = results(got[:-1])
    assert [r.recipients for r in done] == [("r0@x.org",), ("r1@x.org",), ("r2@x.org",)]
    assert done[0].ok
    for res in done[1:]:
        assert not res.ok
        assert res.mail_reply.code == 421
    assert conn.closed


def test_421_after_a_final_dot_reports_the_transaction_in_flight() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"one\r\n")
    conn.send_message("a@x.org", ["c@x.org"], b"two\r\n")
    conn.data_to_send()
    events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.data_to_send()
    got = events(conn, b"421 4.4.2 timeout\r\n")
    assert isinstance(got[-1], SessionEnded)
    done = results(got[:-1])
    assert [r.recipients for r in done] == [("b@x.org",), ("c@x.org",)]
    assert done[0].data_replies[0][1].code == 421
    assert done[1].mail_reply.code == 421


def test_without_pipelining_the_next_mail_waits_for_the_data_reply() -> None:
    conn = ready(NOTHING)
    conn.send_message("a@x.org", ["b@x.org"], b"one\r\n")
    conn.send_message("a@x.org", ["c@x.org"], b"two\r\n")
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\n"
    events(conn, b"250 ok\r\n")
    assert conn.data_to_send() == b"RCPT TO:<b@x.org>\r\n"
    events(conn, b"250 ok\r\n")
    assert conn.data_to_send() == b"DATA\r\n"
    events(conn, b"354 go\r\n")
    assert conn.data_to_send() == b"one\r\n.\r\n"  # nothing of the next transaction yet
    got = results(events(conn, b"250 first\r\n"))
    assert len(got) == 1
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\n"


def test_without_pipelining_a_refused_transaction_resets_before_the_next() -> None:
    conn = ready(NOTHING)
    conn.send_message("a@x.org", ["b@x.org"], b"one\r\n")
    conn.send_message("a@x.org", ["c@x.org"], b"two\r\n")
    conn.data_to_send()
    events(conn, b"250 ok\r\n")
    conn.data_to_send()
    got = results(events(conn, b"550 no\r\n"))
    assert len(got) == 1
    assert not got[0].ok
    assert conn.data_to_send() == b"RSET\r\n"
    events(conn, b"250 reset\r\n")
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\n"
