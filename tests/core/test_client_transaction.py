"""Client core: MAIL/RCPT/DATA/BDAT, pipelining order and reply matching, RFC 2920 §3.1's lone
dot, LMTP per-recipient replies, failures half-way, and command refusals."""

from __future__ import annotations

import dataclasses

import pytest
from client_helpers import FULL_EHLO, events, one, ready

from esmtp_core import (
    BodyType,
    ClientConnection,
    ClientState,
    CommandReply,
    DataReply,
    DsnNotify,
    DsnReturn,
    LocalProtocolError,
    MailParams,
    RcptParams,
    Reply,
    SessionEnded,
    TransactionResult,
)

PIPE_ONLY = b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100\r\n"
NOTHING = b"250 mx\r\n"
OK = b"250 2.0.0 ok\r\n"


def result(conn: object, data: bytes) -> TransactionResult:
    event = one(conn, data)  # type: ignore[arg-type]
    assert isinstance(event, TransactionResult), event
    return event


# --- pipelining ---------------------------------------------------------------------------------


def test_pipelined_data_transaction_one_flight() -> None:
    conn = ready(PIPE_ONLY)
    conn.start_transaction("a@example.org", ["b@example.org", "c@example.org"], size=12)
    conn.send_body(b"Subject: x\r\n\r\n.hi")
    conn.end_body()
    # MAIL, both RCPTs and DATA leave together; the body waits for the 354.
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@example.org> SIZE=12 BODY=8BITMIME\r\n"
        b"RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
    )
    assert conn.body_backlog > 0
    assert events(conn, b"250 ok\r\n550 no such user\r\n250 ok\r\n") == []
    assert events(conn, b"354 go\r\n") == []
    assert conn.data_to_send() == b"Subject: x\r\n\r\n..hi\r\n.\r\n"
    assert conn.body_backlog == 0
    res = result(conn, b"250 2.0.0 queued as X\r\n")
    assert res.mail_reply.code == 250
    assert [(r, reply.code) for r, reply in res.recipient_replies] == [
        ("b@example.org", 550),
        ("c@example.org", 250),
    ]
    assert res.data_replies == ((None, Reply.make(250, "2.0.0", "queued as X")),)
    assert res.accepted == ("c@example.org",)
    assert res.ok
    assert res.outcomes()["b@example.org"].code == 550
    assert conn.data_to_send() == b""
    assert conn.state is ClientState.READY
    assert not conn.in_transaction


def test_replies_split_anywhere_match_commands() -> None:
    wire = b"250 ok\r\n250 ok\r\n354 go\r\n250 done\r\n"
    for step in (1, 2, 3, 7):
        conn = ready(PIPE_ONLY)
        conn.send_message("a@x.org", ["b@x.org"], b"hello\r\n")
        got = []
        for i in range(0, len(wire), step):
            conn.data_to_send()
            got += events(conn, wire[i : i + step])
        assert len(got) == 1
        assert isinstance(got[0], TransactionResult)
        assert got[0].ok


def test_next_transaction_pipelines_after_the_final_dot() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"one\r\n")
    conn.data_to_send()
    events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert conn.data_to_send() == b"one\r\n.\r\n"
    conn.send_message("a@x.org", ["c@x.org"], b"two\r\n")
    assert conn.data_to_send() == (b"MAIL FROM:<a@x.org> SIZE=5\r\nRCPT TO:<c@x.org>\r\nDATA\r\n")
    got = events(conn, b"250 first\r\n250 ok\r\n250 ok\r\n354 go\r\n")
    assert [type(e) for e in got] == [TransactionResult]
    assert conn.data_to_send() == b"two\r\n.\r\n"
    assert result(conn, b"250 second\r\n").data_replies[0][1].text == "second"


def test_without_pipelining_one_command_at_a_time() -> None:
    conn = ready(NOTHING)
    conn.send_message("a@x.org", ["b@x.org", "c@x.org"], b"body\r\n")
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\n"
    assert events(conn, OK) == []
    assert conn.data_to_send() == b"RCPT TO:<b@x.org>\r\n"
    assert events(conn, OK) == []
    assert conn.data_to_send() == b"RCPT TO:<c@x.org>\r\n"
    assert events(conn, b"550 no\r\n") == []
    assert conn.data_to_send() == b"DATA\r\n"
    assert events(conn, b"354 go\r\n") == []
    assert conn.data_to_send() == b"body\r\n.\r\n"
    assert result(conn, OK).accepted == ("b@x.org",)


def test_without_pipelining_mail_refused_stops_early() -> None:
    conn = ready(NOTHING)
    conn.start_transaction("a@x.org", ["b@x.org", "c@x.org"])
    conn.send_body(b"body\r\n")
    conn.data_to_send()
    res = result(conn, b"550 5.7.1 sender refused\r\n")
    assert res.recipient_replies == ()  # no RCPT was sent...
    assert res.recipients == ("b@x.org", "c@x.org")
    refusal = Reply.make(550, "5.7.1", "sender refused")
    assert res.outcomes() == {"b@x.org": refusal, "c@x.org": refusal}  # ...all get MAIL's reply
    assert res.accepted == ()
    assert not res.ok
    assert conn.data_to_send() == b""  # no RCPT, no DATA, no RSET (no transaction on the server)
    assert conn.state is ClientState.READY
    conn.send_body(b"late data is discarded")
    conn.end_body()
    assert conn.data_to_send() == b""


def test_without_pipelining_all_recipients_refused() -> None:
    conn = ready(NOTHING)
    conn.send_message("a@x.org", ["b@x.org"], b"body\r\n")
    conn.data_to_send()
    events(conn, OK)
    conn.data_to_send()
    res = result(conn, b"550 no\r\n")
    assert res.outcomes() == {"b@x.org": Reply(code=550, lines=("no",))}
    # No DATA; RSET clears the sender the server still holds, and its reply is swallowed.
    assert conn.data_to_send() == b"RSET\r\n"
    assert events(conn, OK) == []
    conn.noop()
    assert conn.data_to_send() == b"NOOP\r\n"


def test_rfc2920_all_rcpt_failed_then_354_sends_lone_dot() -> None:
    conn = ready(PIPE_ONLY)
    conn.start_transaction("a@x.org", ["b@x.org", "c@x.org"])
    conn.send_body(b"secret body that must not be sent\r\n")
    conn.data_to_send()
    assert events(conn, b"250 ok\r\n550 no\r\n550 no\r\n354 go ahead anyway\r\n") == []
    assert conn.data_to_send() == b".\r\n"
    conn.send_body(b"more secret body")  # the caller has not noticed yet: discarded
    conn.end_body()
    assert conn.data_to_send() == b""
    res = result(conn, b"554 5.5.1 no valid recipients\r\n")
    assert res.data_replies == ((None, Reply.make(554, "5.5.1", "no valid recipients")),)
    assert res.accepted == ()
    assert conn.data_to_send() == b""  # the dot ended the transaction: no RSET needed


def test_all_rcpt_failed_then_data_refused_resets() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"body\r\n")
    conn.data_to_send()
    res = result(conn, b"250 ok\r\n550 no\r\n554 5.5.1 no valid recipients\r\n")
    assert not res.ok
    assert conn.data_to_send() == b"RSET\r\n"
    assert events(conn, OK) == []


def test_data_refused_with_accepted_recipients() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"body\r\n")
    conn.data_to_send()
    res = result(conn, b"250 ok\r\n250 ok\r\n451 4.3.0 try later\r\n")
    assert res.outcomes() == {"b@x.org": Reply.make(451, "4.3.0", "try later")}
    assert res.accepted == ()
    assert conn.data_to_send() == b"RSET\r\n"


def test_message_refused_after_the_dot() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"body\r\n")
    conn.data_to_send()
    events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.data_to_send()
    res = result(conn, b"554 5.7.1 spam\r\n")
    assert not res.ok
    assert conn.data_to_send() == b""


def test_421_mid_transaction() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org", "c@x.org"], b"body\r\n")
    conn.data_to_send()
    got = events(conn, b"250 ok\r\n250 ok\r\n421 4.3.2 going down\r\n")
    assert [type(e) for e in got] == [TransactionResult, SessionEnded]
    res = got[0]
    assert isinstance(res, TransactionResult)
    assert res.outcomes()["b@x.org"].code == 421
    assert res.outcomes()["c@x.org"].code == 421
    assert res.accepted == ()
    ended = got[1]
    assert isinstance(ended, SessionEnded)
    assert ended.in_transaction


# --- LMTP ---------------------------------------------------------------------------------------


def test_lmtp_one_reply_per_accepted_recipient() -> None:
    conn = ready(PIPE_ONLY, lmtp=True)
    conn.send_message("a@x.org", ["b@x.org", "c@x.org", "d@x.org"], b"hi\r\n")
    conn.data_to_send()
    events(conn, b"250 ok\r\n250 ok\r\n550 unknown\r\n250 ok\r\n354 go\r\n")
    assert conn.data_to_send() == b"hi\r\n.\r\n"
    assert events(conn, b"250 2.0.0 b delivered\r\n") == []  # one more reply is owed
    res = result(conn, b"452 4.2.2 d over quota\r\n")
    assert [(r, reply.code) for r, reply in res.data_replies] == [
        ("b@x.org", 250),
        ("d@x.org", 452),
    ]
    assert res.accepted == ("b@x.org",)
    assert {r: reply.code for r, reply in res.outcomes().items()} == {
        "b@x.org": 250,
        "c@x.org": 550,
        "d@x.org": 452,
    }


def test_lmtp_low_level_data_replies() -> None:
    conn = ready(NOTHING, lmtp=True)
    conn.mail("a@x.org")
    conn.rcpt("b@x.org")
    conn.rcpt("c@x.org")
    conn.data()
    conn.send_body(b"x")
    conn.end_body()
    replies = [b"250 ok\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"]
    got = []
    for reply in replies:
        conn.data_to_send()
        got += events(conn, reply)
    assert [e.verb for e in got if isinstance(e, CommandReply)] == ["MAIL", "RCPT", "RCPT", "DATA"]
    assert conn.data_to_send() == b"x\r\n.\r\n"
    got = events(conn, b"250 one\r\n550 two\r\n")
    assert got == [
        DataReply(reply=Reply(code=250, lines=("one",)), recipient="b@x.org"),
        DataReply(reply=Reply(code=550, lines=("two",)), recipient="c@x.org"),
    ]
    assert conn.state is ClientState.READY


# --- BDAT ---------------------------------------------------------------------------------------


def test_bdat_one_flight_with_pipelining() -> None:
    conn = ready()
    binary = b"\x00\x01\r\n.\r\n\n\rend"
    conn.send_message("a@x.org", ["b@x.org"], binary, binary=True)
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@x.org> SIZE=12 BODY=BINARYMIME\r\nRCPT TO:<b@x.org>\r\n"
        b"BDAT 12 LAST\r\n" + binary
    )
    res = result(conn, b"250 ok\r\n250 ok\r\n250 2.0.0 got it\r\n")
    assert res.ok


def test_binarymime_only_when_asked_for() -> None:
    """Bare LF/CR never choose BINARYMIME: they become CRLF (issue 3; no bare line ending ever
    leaves the client, issue 7). SIZE declares the normalised length."""
    odd = b"\x00\x01\r\n.\r\n\n\rend"
    conn = ready()
    conn.send_message("a@x.org", ["b@x.org"], odd)
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@x.org> SIZE=14\r\nRCPT TO:<b@x.org>\r\n"
        b"BDAT 14 LAST\r\n\x00\x01\r\n.\r\n\r\n\r\nend"
    )
    eight_bit = ready()
    eight_bit.send_message("a@x.org", ["b@x.org"], b"caf\xc3\xa9\nbare\r")
    assert eight_bit.data_to_send() == (
        b"MAIL FROM:<a@x.org> SIZE=13 BODY=8BITMIME\r\nRCPT TO:<b@x.org>\r\n"
        b"BDAT 13 LAST\r\ncaf\xc3\xa9\r\nbare\r\n"
    )
    # BODY=BINARYMIME in mail_params asks for it too: byte for byte.
    asked = ready()
    asked.send_message(
        "a@x.org", ["b@x.org"], odd, mail_params=MailParams(body=BodyType.BINARY_MIME)
    )
    sent = asked.data_to_send()
    assert sent.endswith(b"SIZE=12 BODY=BINARYMIME\r\nRCPT TO:<b@x.org>\r\nBDAT 12 LAST\r\n" + odd)


def test_send_message_over_data_never_sends_bare_line_ends() -> None:
    conn = ready(use_chunking=False)
    conn.send_message("a@x.org", ["b@x.org"], b"a\nb\rc\r\n.d\n")
    conn.data_to_send()
    events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert conn.data_to_send() == b"a\r\nb\r\nc\r\n..d\r\n.\r\n"
    with pytest.raises(LocalProtocolError, match="BINARYMIME"):
        ready(use_chunking=False).send_message("a@x.org", ["b@x.org"], b"x", binary=True)


def test_bdat_text_is_normalised_but_not_terminated() -> None:
    conn = ready()
    conn.start_transaction("a@x.org", ["b@x.org"], eight_bit=False)
    conn.send_body(b"a\nb")
    conn.end_body()
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nBDAT 4 LAST\r\na\r\nb"
    )


def test_bdat_chunking_and_envelope_waits_for_first_chunk() -> None:
    conn = ready(bdat_chunk_size=4)
    conn.start_transaction("a@x.org", ["b@x.org"], binary=True)
    assert conn.data_to_send() == b""  # MAIL/RCPT wait to leave with the first chunk
    conn.send_body(b"ab")
    assert conn.data_to_send() == b""
    conn.send_body(b"cdefghij")
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@x.org> BODY=BINARYMIME\r\nRCPT TO:<b@x.org>\r\nBDAT 4\r\nabcdBDAT 4\r\nefgh"
    )
    conn.end_body()
    assert conn.data_to_send() == b"BDAT 2 LAST\r\nij"
    assert events(conn, b"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n") == []
    assert result(conn, b"250 done\r\n").ok


def test_bdat_empty_body() -> None:
    conn = ready()
    conn.send_message("a@x.org", ["b@x.org"], b"")
    assert conn.data_to_send().endswith(b"BDAT 0 LAST\r\n")


def test_bdat_without_pipelining_holds_chunks() -> None:
    conn = ready(b"250-mx\r\n250 CHUNKING\r\n", bdat_chunk_size=3)
    conn.start_transaction("a@x.org", ["b@x.org"])
    conn.send_body(b"abcdefg")
    conn.end_body()
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\n"
    assert conn.body_backlog == len(b"BDAT 3\r\nabcBDAT 3\r\ndefBDAT 1 LAST\r\ng")
    events(conn, OK)
    assert conn.data_to_send() == b"RCPT TO:<b@x.org>\r\n"
    events(conn, OK)
    assert conn.data_to_send() == b"BDAT 3\r\nabc"
    assert conn.body_backlog == len(b"BDAT 3\r\ndefBDAT 1 LAST\r\ng")
    events(conn, OK)
    assert conn.data_to_send() == b"BDAT 3\r\ndef"
    events(conn, OK)
    assert conn.data_to_send() == b"BDAT 1 LAST\r\ng"
    assert result(conn, OK).ok


def test_bdat_refused_stops_sending_and_resets() -> None:
    conn = ready(bdat_chunk_size=2)
    conn.start_transaction("a@x.org", ["b@x.org"], binary=True)
    conn.send_body(b"abcdef")
    sent = conn.data_to_send()
    assert sent.endswith(b"BDAT 2\r\nabBDAT 2\r\ncdBDAT 2\r\nef")
    conn.send_body(b"gh")
    assert events(conn, b"250 ok\r\n250 ok\r\n552 5.3.4 too big\r\n") == []
    conn.send_body(b"ij")  # discarded
    conn.end_body()
    assert conn.data_to_send() == b""
    # The chunks already in the pipeline are answered too (RFC 3030 §4.2), then the result.
    assert events(conn, b"503 5.5.1 no\r\n") == []
    res = result(conn, b"503 5.5.1 no\r\n")
    assert res.data_replies == ((None, Reply.make(552, "5.3.4", "too big")),)
    assert res.outcomes()["b@x.org"].code == 552
    assert conn.data_to_send() == b"RSET\r\n"


def test_bdat_last_refused_with_no_recipients_resets() -> None:
    conn = ready()
    conn.send_message("a@x.org", ["b@x.org"], b"x\r\n")
    conn.data_to_send()
    res = result(conn, b"250 ok\r\n550 no\r\n554 5.5.1 no valid recipients\r\n")
    assert not res.ok
    assert conn.data_to_send() == b"RSET\r\n"


def test_next_mail_follows_bdat_last_behind_an_rset() -> None:
    # RFC 2920 §3.1: the next transaction shares the flight of BDAT LAST; RFC 3030 §2: after a
    # refused BDAT only RSET clears the server's state, so one goes before the next MAIL.
    conn = ready()
    conn.send_message("a@x.org", ["b@x.org"], b"x\r\n")
    conn.send_message("a@x.org", ["c@x.org"], b"y\r\n")
    first = conn.data_to_send()
    assert first.count(b"MAIL") == 2
    assert b"BDAT 3 LAST\r\nx\r\nRSET\r\nMAIL FROM:<a@x.org>" in first
    got = events(conn, b"250 ok\r\n550 no\r\n554 5.5.1 no valid recipients\r\n250 reset\r\n")
    assert len(got) == 1
    assert isinstance(got[0], TransactionResult)
    assert not got[0].ok
    assert conn.data_to_send() == b""  # the RSET already left: no second one
    res = result(conn, b"250 ok\r\n250 ok\r\n250 queued\r\n")
    assert res.ok
    assert res.recipients == ("c@x.org",)


def test_low_level_bdat() -> None:
    conn = ready()
    conn.mail("a@x.org", MailParams(body=BodyType.BINARY_MIME))
    conn.rcpt("b@x.org")
    conn.bdat(b"\r\n.\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"no")
    conn.bdat(b"tail", last=True)
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@x.org> BODY=BINARYMIME\r\nRCPT TO:<b@x.org>\r\n"
        b"BDAT 5\r\n\r\n.\r\nBDAT 4 LAST\r\ntail"
    )
    got = events(conn, b"250 a\r\n250 b\r\n250 c\r\n250 d\r\n")
    assert [type(e) for e in got] == [CommandReply, CommandReply, CommandReply, DataReply]
    assert conn.state is ClientState.READY


# --- low-level DATA -----------------------------------------------------------------------------


def test_low_level_data() -> None:
    conn = ready(PIPE_ONLY)
    conn.mail("a@x.org")
    conn.rcpt("b@x.org")
    conn.data()
    assert conn.state is ClientState.BODY
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
    got = events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert [(e.verb, e.reply.code) for e in got] == [  # type: ignore[attr-defined]
        ("MAIL", 250),
        ("RCPT", 250),
        ("DATA", 354),
    ]
    conn.send_body(b".x")
    conn.end_body()
    assert conn.data_to_send() == b"..x\r\n.\r\n"
    assert one(conn, OK) == DataReply(reply=Reply.make(250, "2.0.0", "ok"))


def test_low_level_lone_dot() -> None:
    conn = ready(PIPE_ONLY)
    conn.mail("a@x.org")
    conn.rcpt("b@x.org")
    conn.data()
    conn.data_to_send()
    got = events(conn, b"250 ok\r\n550 no\r\n354 go\r\n")
    assert [e.reply.code for e in got] == [250, 550, 354]  # type: ignore[attr-defined]
    assert conn.data_to_send() == b".\r\n"
    conn.send_body(b"discarded")
    conn.end_body()
    assert conn.data_to_send() == b""
    assert one(conn, b"554 no recipients\r\n") == DataReply(
        reply=Reply(code=554, lines=("no recipients",))
    )


def test_low_level_mail_refused_returns_to_ready() -> None:
    conn = ready(PIPE_ONLY)
    conn.mail("a@x.org")
    conn.data_to_send()
    assert one(conn, b"550 no\r\n").reply.code == 550  # type: ignore[attr-defined]
    assert conn.state is ClientState.READY
    with pytest.raises(LocalProtocolError):
        conn.rcpt("b@x.org")
    conn.mail("c@x.org")


def test_rset_abandons_a_low_level_transaction() -> None:
    conn = ready(PIPE_ONLY)
    conn.mail("a@x.org")
    conn.rset()
    assert conn.state is ClientState.READY
    conn.mail("b@x.org")
    assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\nRSET\r\nMAIL FROM:<b@x.org>\r\n"


# --- command building and refusals --------------------------------------------------------------


def test_parameters_from_typed_values() -> None:
    conn = ready()
    conn.mail(
        "a@x.org",
        MailParams(size=10, ret=DsnReturn.HEADERS, envid="id+1=2", auth="<>"),
    )
    conn.rcpt(
        "b@x.org",
        RcptParams(
            notify=frozenset({DsnNotify.FAILURE, DsnNotify.SUCCESS}), orcpt=("rfc822", "b@x.org")
        ),
    )
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@x.org> SIZE=10 AUTH=<> RET=HDRS ENVID=id+2B1+3D2\r\n"
        b"RCPT TO:<b@x.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x.org\r\n"
    )


def test_null_sender() -> None:
    conn = ready(PIPE_ONLY)
    conn.mail("")
    assert conn.data_to_send() == b"MAIL FROM:<>\r\n"


@pytest.mark.parametrize(
    "sender",
    [
        "a@x.org\r\nRCPT TO:<evil@x.org>",
        "a@x.org\n",
        "a\x00@x.org",
        "<a@x.org>",
        "a b@x.org",
        "\udcff@x.org",
        "x" * 300 + "@x.org",
    ],
)
def test_bad_addresses_refused(sender: str) -> None:
    conn = ready()
    with pytest.raises(LocalProtocolError):
        conn.mail(sender)
    with pytest.raises(LocalProtocolError):
        conn.start_transaction(sender, ["b@x.org"])
    with pytest.raises(LocalProtocolError):
        conn.start_transaction("a@x.org", [sender or "x"])
    assert conn.data_to_send() == b""
    assert conn.state is ClientState.READY


def test_quoted_local_part_with_space() -> None:
    conn = ready()
    conn.mail('"john doe"@x.org')
    assert conn.data_to_send() == b'MAIL FROM:<"john doe"@x.org>\r\n'


def test_smtputf8_chosen_when_needed_and_offered() -> None:
    conn = ready()
    conn.start_transaction("jörg@x.org", ["b@x.org"], eight_bit=False)
    conn.end_body()
    assert conn.data_to_send().startswith("MAIL FROM:<jörg@x.org> SMTPUTF8\r\n".encode())
    conn2 = ready()
    conn2.mail("a@x.org")
    with pytest.raises(LocalProtocolError):
        conn2.rcpt("jörg@x.org")  # MAIL went without SMTPUTF8


def test_smtputf8_refused_when_not_offered() -> None:
    conn = ready(PIPE_ONLY)
    with pytest.raises(LocalProtocolError):
        conn.mail("jörg@x.org")
    with pytest.raises(LocalProtocolError):
        conn.start_transaction("a@x.org", ["jörg@x.org"])
    with pytest.raises(LocalProtocolError):
        conn.mail("a@x.org", MailParams(smtputf8=True))


@pytest.mark.parametrize(
    "params",
    [
        MailParams(ret=DsnReturn.FULL),
        MailParams(envid="x"),
        MailParams(body=BodyType.BINARY_MIME),
        MailParams(requiretls=True),
        MailParams(auth="a@x.org"),
        MailParams(size=200),  # above SIZE 100
    ],
)
def test_parameters_not_offered_are_refused(params: MailParams) -> None:
    conn = ready(PIPE_ONLY)
    with pytest.raises(LocalProtocolError):
        conn.mail("a@x.org", params)
    assert conn.data_to_send() == b""


def test_rcpt_dsn_not_offered() -> None:
    conn = ready(PIPE_ONLY)
    conn.mail("a@x.org")
    with pytest.raises(LocalProtocolError):
        conn.rcpt("b@x.org", RcptParams(notify=frozenset({DsnNotify.NEVER})))


def test_size_limit_refused_before_sending() -> None:
    conn = ready(PIPE_ONLY)
    with pytest.raises(LocalProtocolError, match="SIZE"):
        conn.send_message("a@x.org", ["b@x.org"], b"x" * 101)
    assert conn.data_to_send() == b""
    conn.start_transaction("a@x.org", ["b@x.org"])
    conn.send_body(b"x" * 100)
    with pytest.raises(LocalProtocolError, match="SIZE"):
        conn.send_body(b"x")


def test_8bitmime_only_when_needed() -> None:
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"plain\r\n")
    assert b"BODY" not in conn.data_to_send()
    conn2 = ready(PIPE_ONLY)
    conn2.send_message("a@x.org", ["b@x.org"], "caf\xe9\r\n".encode())
    assert b"BODY=8BITMIME" in conn2.data_to_send()


def test_binary_without_binarymime() -> None:
    conn = ready(PIPE_ONLY)
    with pytest.raises(LocalProtocolError):
        conn.start_transaction("a@x.org", ["b@x.org"], binary=True)
    conn.send_message("a@x.org", ["b@x.org"], b"a\nb")  # normalised DATA instead
    conn.data_to_send()
    events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert conn.data_to_send() == b"a\r\nb\r\n.\r\n"


def test_wrong_state_refusals() -> None:
    conn = ready(PIPE_ONLY)
    with pytest.raises(LocalProtocolError):
        conn.rcpt("b@x.org")
    with pytest.raises(LocalProtocolError):
        conn.data()
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"x")
    with pytest.raises(LocalProtocolError):
        conn.end_body()
    with pytest.raises(LocalProtocolError):
        conn.start_transaction("a@x.org", [])
    conn.start_transaction("a@x.org", ["b@x.org"])
    for call in (
        lambda: conn.mail("c@x.org"),
        conn.rset,
        conn.quit,
        conn.ehlo,
        lambda: conn.rcpt("c@x.org"),
        conn.data,
    ):
        with pytest.raises(LocalProtocolError):
            call()
    conn.end_body()
    conn.quit()


def test_ehlo_again_resets_capabilities() -> None:
    conn = ready()
    conn.ehlo()
    conn.data_to_send()
    one(conn, b"250 mx\r\n")
    assert not conn.capabilities.pipelining
    assert conn.capabilities.server_name == "mx"


def test_full_ehlo_fixture_is_used() -> None:
    assert b"CHUNKING" in FULL_EHLO


def test_binarymime_never_goes_with_data() -> None:
    conn = ready(use_chunking=False)
    with pytest.raises(LocalProtocolError):
        conn.start_transaction(
            "a@x.org", ["b@x.org"], mail_params=MailParams(body=BodyType.BINARY_MIME)
        )
    conn = ready()
    conn.mail("a@x.org", MailParams(body=BodyType.BINARY_MIME))
    conn.rcpt("b@x.org")
    with pytest.raises(LocalProtocolError):
        conn.data()


def test_rset_after_low_level_rcpt_ends_the_transaction() -> None:
    conn = ready(PIPE_ONLY)
    conn.mail("a@x.org")
    conn.rcpt("b@x.org")
    conn.rset()
    assert conn.in_transaction  # replies outstanding
    conn.data_to_send()
    got = events(conn, b"250 ok\r\n550 no\r\n250 reset\r\n")
    assert [e.verb for e in got] == ["MAIL", "RCPT", "RSET"]  # type: ignore[attr-defined]
    assert not conn.in_transaction
    assert conn.body_backlog == 0


def test_354_after_refused_mail_gets_the_lone_dot() -> None:
    """A confused server (still holding an older transaction) refuses MAIL, accepts RCPT and
    says 354: the data it now waits for is ended with the lone dot, none of ours is sent, and the
    result says the MAIL was refused for every recipient."""
    conn = ready(PIPE_ONLY)
    conn.send_message("a@x.org", ["b@x.org"], b"secret\r\n")
    conn.data_to_send()
    assert events(conn, b"503 5.5.1 nested MAIL\r\n250 ok\r\n354 go\r\n") == []
    assert conn.data_to_send() == b".\r\n"
    res = result(conn, b"250 2.0.0 empty message queued\r\n")
    assert not res.ok
    assert res.outcomes() == {"b@x.org": Reply.make(503, "5.5.1", "nested MAIL")}


def test_lmtp_lone_dot_after_refused_mail_reads_every_reply() -> None:
    conn = ready(PIPE_ONLY, lmtp=True)
    conn.send_message("a@x.org", ["b@x.org", "c@x.org"], b"secret\r\n")
    conn.data_to_send()
    events(conn, b"503 nested\r\n250 ok\r\n250 ok\r\n354 go\r\n")
    assert conn.data_to_send() == b".\r\n"
    assert events(conn, b"250 one\r\n") == []
    res = result(conn, b"250 two\r\n")
    assert [r for r, _ in res.data_replies] == ["b@x.org", "c@x.org"]
    assert not res.ok


def test_outcomes_of_results_built_by_hand() -> None:
    """``outcomes()`` covers every intended recipient; a recipient without any reply deciding it
    is never counted as accepted."""
    ok, no = Reply.make(250, "2.0.0", "ok"), Reply.make(550, "5.7.1", "no")
    refused_mail = TransactionResult(sender="a@x", mail_reply=no, recipients=("b@x", "c@x"))
    assert refused_mail.outcomes() == {"b@x": no, "c@x": no}
    # Replies for addresses missing from ``recipients`` (older callers) still count.
    legacy = TransactionResult(
        sender="a@x", mail_reply=ok, recipient_replies=(("b@x", ok),), data_replies=((None, ok),)
    )
    assert legacy.outcomes() == {"b@x": ok}
    unsent = TransactionResult(
        sender="a@x",
        mail_reply=ok,
        recipient_replies=(("b@x", ok),),
        data_replies=((None, no),),
        recipients=("b@x", "c@x"),
    )
    assert unsent.outcomes() == {"b@x": no, "c@x": no}
    silent = dataclasses.replace(unsent, data_replies=((None, ok),))
    assert silent.outcomes() == {"b@x": ok}
    assert silent.accepted == ("b@x",)


# --- lines remembered per address ---------------------------------------------------------------


def finish(conn: ClientConnection) -> bool:
    """Answer MAIL, RCPT and DATA of an empty message, take its final dot, accept it."""
    assert events(conn, b"250 ok\r\n250 ok\r\n354 go\r\n") == []
    assert conn.data_to_send() == b".\r\n"
    return result(conn, b"250 ok\r\n").ok


def test_remembered_lines_follow_the_transaction_parameters() -> None:
    """MAIL/RCPT lines without parameters are built once per address; a transaction with
    parameters, SMTPUTF8 or a bad address is still built (and checked) every time."""
    conn = ready(PIPE_ONLY)
    for _ in range(2):
        conn.start_transaction("a@x.org", ["b@x.org"], eight_bit=False)
        conn.end_body()
        assert conn.data_to_send() == b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
        assert finish(conn)
    conn.start_transaction("a@x.org", ["b@x.org"], size=7)  # parameters: not the bare line
    conn.end_body()
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@x.org> SIZE=7 BODY=8BITMIME\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
    )
    assert finish(conn)
    for _ in range(2):  # refused each time, never remembered
        with pytest.raises(LocalProtocolError):
            conn.start_transaction("a@x.org", ["bad\r\nRSET@x.org"])
        with pytest.raises(LocalProtocolError):
            conn.start_transaction("j\u00f6rg@x.org", ["b@x.org"])  # no SMTPUTF8 offered


def test_remembered_rcpt_line_is_per_smtputf8() -> None:
    conn = ready(use_chunking=False)
    conn.start_transaction("a@x.org", ["j\u00f6rg@x.org"], eight_bit=False)
    conn.end_body()
    assert conn.data_to_send() == (
        "MAIL FROM:<a@x.org> SMTPUTF8\r\nRCPT TO:<jörg@x.org>\r\nDATA\r\n".encode()
    )
    assert finish(conn)
    conn.start_transaction("a@x.org", ["b@x.org"], eight_bit=False)
    conn.end_body()
    assert b"RCPT TO:<b@x.org>\r\n" in conn.data_to_send()
