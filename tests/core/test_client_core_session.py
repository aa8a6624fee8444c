"""Client core: greeting, EHLO/HELO/LHLO, simple commands, QUIT, 421 and closed servers."""

from __future__ import annotations

import pytest
from client_helpers import FULL_EHLO, events, hello_sent, one, ready

from esmtp_core import (
    NEED_DATA,
    ClientConfig,
    ClientConnection,
    ClientState,
    CommandReply,
    EhloReply,
    Greeting,
    LocalProtocolError,
    RemoteProtocolError,
    Reply,
    SessionEnded,
)


def test_greeting_then_ehlo() -> None:
    conn = ClientConnection(ClientConfig(local_hostname="client.example"))
    assert conn.state is ClientState.CONNECTED
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == b""
    greeting = one(conn, b"220 mx.example ESMTP\r\n")
    assert isinstance(greeting, Greeting)
    assert greeting.ok
    assert conn.state is ClientState.GREETED
    conn.ehlo()
    assert conn.data_to_send() == b"EHLO client.example\r\n"
    reply = one(conn, FULL_EHLO)
    assert isinstance(reply, EhloReply)
    assert reply.verb == "EHLO"
    assert reply.capabilities.pipelining
    assert conn.capabilities.size_limit == 1000000
    assert conn.state is ClientState.READY
    assert conn.pipelining


def test_greeting_split_byte_by_byte() -> None:
    conn = ClientConnection()
    wire = b"220-mx.example\r\n220 ready\r\n"
    got = []
    for octet in wire:
        got += events(conn, bytes([octet]))
    assert got == [Greeting(reply=Reply(code=220, lines=("mx.example", "ready")))]


def test_commands_before_the_greeting_are_refused() -> None:
    conn = ClientConnection()
    for call in (conn.ehlo, conn.noop, conn.quit, conn.rset):
        with pytest.raises(LocalProtocolError):
            call()


def test_commands_wait_for_the_ehlo_reply() -> None:
    conn = ClientConnection()
    events(conn, b"220 hi\r\n")
    conn.ehlo()
    with pytest.raises(LocalProtocolError, match="EHLO"):
        conn.mail("a@example.org")
    with pytest.raises(LocalProtocolError):
        conn.noop()


def test_mail_before_ehlo_is_refused() -> None:
    conn = ClientConnection()
    events(conn, b"220 hi\r\n")
    with pytest.raises(LocalProtocolError):
        conn.mail("a@example.org")


@pytest.mark.parametrize("code", [500, 502, 504, 550])
def test_helo_fallback(code: int) -> None:
    conn = hello_sent()
    assert events(conn, f"{code} what?\r\n".encode()) == []
    assert conn.data_to_send() == b"HELO localhost\r\n"
    event = one(conn, b"250 old.example\r\n")
    assert isinstance(event, EhloReply)
    assert event.verb == "HELO"
    assert event.ok
    assert not event.capabilities.keywords
    assert conn.state is ClientState.READY
    assert not conn.pipelining


@pytest.mark.parametrize(
    ("config", "reply"),
    [
        (ClientConfig(helo_fallback=False), b"502 no\r\n"),
        (ClientConfig(), b"451 4.3.0 later\r\n"),  # only 500, 502, 504, 550 lead to HELO
        (ClientConfig(lmtp=True), b"500 what\r\n"),  # LMTP has no HELO to fall back to
    ],
    ids=["fallback-disabled", "temporary-failure", "lmtp"],
)
def test_refused_hello_without_fallback(config: ClientConfig, reply: bytes) -> None:
    conn = hello_sent(config)
    event = one(conn, reply)
    assert isinstance(event, EhloReply)
    assert not event.ok
    assert event.reply.to_bytes() == reply
    assert conn.data_to_send() == b""
    assert conn.state is ClientState.GREETED


def test_helo_failure_after_fallback_is_reported() -> None:
    conn = hello_sent()
    events(conn, b"500 no\r\n")
    conn.data_to_send()
    event = one(conn, b"501 bad hostname\r\n")
    assert isinstance(event, EhloReply)
    assert event.verb == "HELO"
    assert not event.ok


def test_lmtp_uses_lhlo_only() -> None:
    conn = ready(lmtp=True)
    assert conn.capabilities.pipelining
    lmtp = ClientConnection(ClientConfig(lmtp=True))
    events(lmtp, b"220 lmtp\r\n")
    with pytest.raises(LocalProtocolError):
        lmtp.ehlo()
    with pytest.raises(LocalProtocolError):
        lmtp.helo()
    smtp = ClientConnection()
    events(smtp, b"220 smtp\r\n")
    with pytest.raises(LocalProtocolError):
        smtp.lhlo()


def test_noop_rset_vrfy() -> None:
    conn = ready()
    conn.noop()
    conn.rset()
    conn.vrfy("postmaster")
    # NOOP and VRFY end a pipelined group (RFC 2920 §3.1): one at a time here.
    assert conn.data_to_send() == b"NOOP\r\n"
    assert one(conn, b"250 2.0.0 OK\r\n") == CommandReply(
        verb="NOOP", argument="", reply=Reply.make(250, "2.0.0", "OK")
    )
    assert conn.data_to_send() == b"RSET\r\nVRFY postmaster\r\n"
    got = events(conn, b"250 2.0.0 OK\r\n252 2.5.0 maybe\r\n")
    assert [(e.verb, e.argument, e.reply.code) for e in got] == [  # type: ignore[attr-defined]
        ("RSET", "", 250),
        ("VRFY", "postmaster", 252),
    ]


def test_vrfy_refusals_and_smtputf8() -> None:
    conn = ready()
    with pytest.raises(LocalProtocolError):
        conn.vrfy("a\r\nRSET")
    with pytest.raises(LocalProtocolError):
        conn.vrfy("")
    conn.vrfy("jöe")
    assert conn.data_to_send() == "VRFY jöe SMTPUTF8\r\n".encode()
    plain = ready(b"250 mx\r\n")
    with pytest.raises(LocalProtocolError):
        plain.vrfy("jöe")


def test_quit() -> None:
    conn = ready()
    conn.quit()
    assert conn.data_to_send() == b"QUIT\r\n"
    got = events(conn, b"221 2.0.0 Bye\r\n")
    assert [type(e) for e in got] == [CommandReply, SessionEnded]
    assert got[1] == SessionEnded(reply=Reply.make(221, "2.0.0", "Bye"))
    assert conn.closed
    assert conn.next_event() == got[1]  # again and again
    with pytest.raises(LocalProtocolError):
        conn.noop()


def test_server_closes() -> None:
    conn = ready()
    conn.receive_data(b"")
    assert conn.next_event() == SessionEnded()
    assert conn.closed
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


def test_server_closes_with_commands_in_flight() -> None:
    conn = ready()
    conn.mail("a@example.org")
    conn.data_to_send()
    conn.receive_data(b"250 partial repl")
    conn.receive_data(b"")
    assert conn.next_event() == SessionEnded(in_transaction=True)


def test_421_in_reply_to_a_command() -> None:
    conn = ready()
    conn.noop()
    conn.data_to_send()
    got = events(conn, b"421 4.3.2 shutting down\r\n")
    assert [type(e) for e in got] == [CommandReply, SessionEnded]
    assert conn.closed
    with pytest.raises(LocalProtocolError):
        conn.noop()


def test_unsolicited_421_ends_the_session() -> None:
    conn = ready()
    ended = one(conn, b"421 4.4.2 idle timeout\r\n")
    assert isinstance(ended, SessionEnded)
    assert ended.reply is not None
    assert ended.reply.code == 421


def test_421_greeting() -> None:
    conn = ClientConnection()
    got = events(conn, b"421 busy\r\n")
    assert [type(e) for e in got] == [Greeting, SessionEnded]


def test_554_greeting_allows_quit() -> None:
    conn = ClientConnection()
    greeting = one(conn, b"554 5.7.1 go away\r\n")
    assert isinstance(greeting, Greeting)
    assert not greeting.ok
    conn.quit()
    assert conn.data_to_send() == b"QUIT\r\n"


def test_reply_nobody_asked_for() -> None:
    conn = ready()
    conn.receive_data(b"250 surprise\r\n")
    with pytest.raises(RemoteProtocolError, match="nobody asked"):
        conn.next_event()
    with pytest.raises(RemoteProtocolError):  # and the connection stays broken
        conn.next_event()
    assert conn.closed
    assert conn.data_to_send() == b""


@pytest.mark.parametrize(
    ("command", "replies"),
    [("rset", b"250 ok\r\n250 again\r\n"), ("noop", b"354 go on\r\n")],
    ids=["extra-reply-after-pipelined-group", "intermediate-reply-to-a-normal-command"],
)
def test_reply_the_command_cannot_have(command: str, replies: bytes) -> None:
    conn = ready()
    getattr(conn, command)()
    conn.data_to_send()
    with pytest.raises(RemoteProtocolError):
        events(conn, replies)


def test_hostile_greeting() -> None:
    conn = ClientConnection()
    with pytest.raises(RemoteProtocolError):
        events(conn, b"220-ok\r\n221 mixed\r\n")
    conn = ClientConnection()
    with pytest.raises(RemoteProtocolError):
        events(conn, b"x" * 5000)


def test_no_extensions_means_one_command_at_a_time() -> None:
    conn = ready(b"250 mx.example\r\n")
    conn.mail("a@example.org")
    conn.rcpt("b@example.org")
    conn.rcpt("c@example.org")
    assert conn.data_to_send() == b"MAIL FROM:<a@example.org>\r\n"
    assert conn.data_to_send() == b""
    one(conn, b"250 ok\r\n")
    assert conn.data_to_send() == b"RCPT TO:<b@example.org>\r\n"
    one(conn, b"250 ok\r\n")
    assert conn.data_to_send() == b"RCPT TO:<c@example.org>\r\n"
