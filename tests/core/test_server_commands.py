"""Commands the server core answers itself, sequencing and limits (RFC 5321 §4.1, §4.5.3)."""

from __future__ import annotations

import pytest
from server_helpers import drain, in_transaction, make, session, talk

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Expand,
    Hello,
    LocalProtocolError,
    MessageAborted,
    Quit,
    RcptParams,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Reset,
    UnknownCommand,
    Verify,
)


def test_greeting_554_refuses_everything_but_quit() -> None:
    conn = make(greet=False)
    conn.greet(Reply.make(554, "5.3.2", "mx.example no service for you"))
    assert conn.data_to_send() == b"554 5.3.2 mx.example no service for you\r\n"
    out = talk(conn, b"EHLO c\r\nMAIL FROM:<a@b.c>\r\nQUIT\r\n")
    assert out == (
        b"503 5.5.1 Service refused; only QUIT is accepted\r\n" * 2
        + b"221 2.0.0 mx.example Service closing\r\n"
    )
    assert conn.closed


def test_greeting_421_closes() -> None:
    conn = make(greet=False)
    conn.greet(Reply.make(421, "4.3.2", "busy"))
    assert conn.closed
    assert conn.data_to_send() == b"421 4.3.2 busy\r\n"
    assert conn.next_event() is PAUSED


def test_greeting_misuse() -> None:
    conn = make(greet=False)
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.greet(Reply.make(250, None, "no"))
    conn.greet()
    with pytest.raises(LocalProtocolError):
        conn.greet()


def test_helo_single_line_no_extensions() -> None:
    conn = make()
    out = talk(conn, b"HELO client\r\n")
    assert out == b"250 mx.example\r\n"
    assert conn.hello_name == "client"
    # After HELO no extension parameter may be used.
    out = talk(conn, b"MAIL FROM:<a@example.org> SIZE=10\r\n")
    assert out == b"555 5.5.4 Unsupported parameter SIZE\r\n"


def test_ehlo_accept_text() -> None:
    conn = make(pipelining=False, chunking=False, dsn=False, smtputf8=False)
    out = talk(conn, b"ehlo client\r\n", lambda c, e: c.accept("greets client"))
    assert out == (
        b"250-mx.example greets client\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n"
        b"250 ENHANCEDSTATUSCODES\r\n"
    )


def test_ehlo_size_without_limit_and_extras() -> None:
    conn = make(
        max_message_size=None,
        eight_bit_mime=False,
        enhanced_status_codes=False,
        smtputf8=False,
        binarymime=False,
        dsn=False,
        pipelining=False,
        extra_capabilities=("XCLIENT ADDR NAME",),
    )
    out = talk(conn, b"EHLO c\r\n")
    assert out == b"250-mx.example\r\n250-SIZE\r\n250-CHUNKING\r\n250 XCLIENT ADDR NAME\r\n"
    # Without ENHANCEDSTATUSCODES the core leaves enhanced codes out.
    assert talk(conn, b"DATA\r\n") == b"503 Need MAIL command first\r\n"


@pytest.mark.parametrize("arg", [b"", b" ", b"a b", b"caf\xc3\xa9"])
def test_hello_syntax(arg: bytes) -> None:
    conn = make()
    out = talk(conn, b"EHLO " + arg + b"\r\n")
    assert out == b"501 5.5.4 Syntax: EHLO hostname\r\n"
    assert conn.hello_name is None


def test_hello_rejected_keeps_previous_state() -> None:
    conn = session()
    out = talk(conn, b"EHLO other\r\n", lambda c, e: c.reject())
    assert out == b"550 5.7.1 Hello rejected\r\n"
    assert conn.hello_name == "client"


def test_ehlo_resets_transaction() -> None:
    conn = in_transaction()
    assert conn.in_transaction
    conn.receive_data(b"EHLO again\r\n")
    events = drain(conn)
    assert events == [Hello(verb="EHLO", hostname="again")]
    assert not conn.in_transaction
    conn.data_to_send()
    assert talk(conn, b"RCPT TO:<x@example.com>\r\n") == b"503 5.5.1 Need MAIL command first\r\n"


def test_noop_help_rset() -> None:
    conn = in_transaction()
    conn.receive_data(b"NOOP whatever\r\nHELP\r\nRSET\r\n")
    assert drain(conn) == [Reset()]
    assert conn.data_to_send() == (
        b"250 2.0.0 OK\r\n"
        b"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS "
        b"AUTH\r\n"
        b"250 2.0.0 OK\r\n"
    )
    assert not conn.in_transaction


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"RSET x\r\n", b"501 5.5.4 Syntax: RSET\r\n"),
        (b"QUIT now\r\n", b"501 5.5.4 Syntax: QUIT\r\n"),
        (b"DATA x\r\n", b"501 5.5.4 Syntax: DATA\r\n"),
        (b"STARTTLS x\r\n", b"501 5.5.4 Syntax: STARTTLS\r\n"),
        (b"VRFY\r\n", b"501 5.5.4 Syntax: VRFY string\r\n"),
        (b"MAIL TO:<a@b.c>\r\n", b"501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n"),
        (b"FROB\r\n", b"500 5.5.1 Command not recognized\r\n"),
        (b"LHLO x\r\n", b"500 5.5.1 Command not recognized\r\n"),
        (b"\xff\xfe\r\n", b"500 5.5.2 Syntax error: invalid characters in command\r\n"),
        (b"NOOP \xc3\r\n", b"500 5.5.2 Syntax error: invalid characters in command\r\n"),
        (b"NO\x00OP\r\n", b"500 5.5.2 Syntax error: invalid characters in command\r\n"),
        (b"NOOP\rRSET\r\n", b"500 5.5.2 Syntax error: invalid characters in command\r\n"),
        (b"\r\n", b"500 5.5.1 Command not recognized\r\n"),
        (b"EXPN list\r\n", b"502 5.5.1 Command not implemented\r\n"),
        (b"VRFY \r\n", b"501 5.5.4 Syntax: VRFY string\r\n"),
        (b"STARTTLS\r\n", b"502 5.5.1 STARTTLS not available\r\n"),
    ],
)
def test_core_errors(line: bytes, reply: bytes) -> None:
    conn = session()
    assert talk(conn, line) == reply


def test_commands_case_insensitive_and_lf_only() -> None:
    conn = make()
    conn.receive_data(b"eHlO c\nmail from:<a@example.org>\nrcpt to:<b@example.org>\nnoop\n")
    drain(conn)
    assert conn.data_to_send().splitlines()[-3:] == [
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"250 2.0.0 OK",
    ]


@pytest.mark.parametrize(
    "line",
    [b"MAIL FROM:<a@b.c>\r\n", b"RCPT TO:<a@b.c>\r\n", b"DATA\r\n", b"BDAT 0 LAST\r\n"],
)
def test_transaction_commands_need_hello(line: bytes) -> None:
    conn = make()
    expected = {
        b"M": b"503 5.5.1 Send EHLO or HELO first\r\n",
    }.get(line[:1], b"503 5.5.1 Need MAIL command first\r\n")
    assert talk(conn, line) == expected


def test_quit() -> None:
    conn = in_transaction()
    conn.receive_data(b"QUIT\r\nNOOP\r\n")
    assert conn.next_event() == Quit()
    assert conn.closed
    assert not conn.in_transaction
    assert conn.data_to_send() == b"221 2.0.0 mx.example Service closing\r\n"
    assert conn.next_event() is PAUSED
    conn.receive_data(b"NOOP\r\n")  # ignored once closed
    conn.receive_data(b"")
    assert conn.next_event() is PAUSED
    assert conn.data_to_send() == b""


def test_vrfy_and_expn_decisions() -> None:
    conn = session(expn=True)
    conn.receive_data(b"VRFY  alice \r\n")
    assert conn.next_event() == Verify(argument="alice")
    conn.accept()
    assert conn.data_to_send() == (b"252 2.5.0 Cannot VRFY user, but will accept message\r\n")
    conn.receive_data(b"VRFY bob\r\nEXPN staff\r\nEXPN all\r\n")
    assert conn.next_event() == Verify(argument="bob")
    conn.reject()
    assert conn.next_event() == Expand(argument="staff")
    conn.send_reply(Reply.make(250, "2.1.5", "Alice <a@x.y>", "Bob <b@x.y>"))
    assert conn.next_event() == Expand(argument="all")
    conn.reject()
    assert conn.data_to_send() == (
        b"550 5.1.1 User unknown\r\n"
        b"250-2.1.5 Alice <a@x.y>\r\n250 2.1.5 Bob <b@x.y>\r\n"
        b"550 5.1.1 List unknown\r\n"
    )


def test_vrfy_disabled() -> None:
    conn = session(vrfy=False)
    assert talk(conn, b"VRFY x\r\n") == b"502 5.5.1 Command not implemented\r\n"


def test_extra_commands_become_events() -> None:
    conn = make(extra_commands=frozenset({"xclient"}))
    conn.receive_data(b"XCLIENT ADDR=1.2.3.4\r\nXOTHER\r\nxclient NAME=x\r\n")
    assert conn.next_event() == UnknownCommand(verb="XCLIENT", argument="ADDR=1.2.3.4")
    assert conn.next_event() is PAUSED
    conn.send_reply(Reply.make(220, None, "mx.example ready"))
    assert conn.next_event() == UnknownCommand(verb="XCLIENT", argument="NAME=x")
    conn.reject()
    assert conn.data_to_send() == (
        b"220 mx.example ready\r\n"
        b"500 5.5.1 Command not recognized\r\n"
        b"500 5.5.1 Command not recognized\r\n"
    )


def test_pipelined_decisions_stay_in_order() -> None:
    conn = session()
    conn.receive_data(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
        b"NOOP\r\nDATA\r\n"
    )
    mail = conn.next_event()
    assert conn.next_event() is PAUSED
    assert conn.next_event() is PAUSED  # still thinking; nothing behind it moves
    assert conn.data_to_send() == b""
    assert conn.pending is mail
    conn.accept()
    assert conn.next_event() == RcptTo(address="b@example.org", params=RcptParams())
    conn.reject()
    assert conn.next_event() == RcptTo(address="c@example.org", params=RcptParams())
    conn.accept()
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == (
        b"250 2.1.0 Sender OK\r\n"
        b"550 5.1.1 Recipient rejected\r\n"
        b"250 2.1.5 Recipient OK\r\n"
        b"250 2.0.0 OK\r\n"
        b"354 End data with <CR><LF>.<CR><LF>\r\n"
    )


def test_api_misuse() -> None:
    conn = session()
    with pytest.raises(LocalProtocolError):
        conn.accept()
    with pytest.raises(LocalProtocolError):
        conn.provide_secret("x")
    with pytest.raises(LocalProtocolError):
        conn.tls_started()
    conn.receive_data(b"MAIL FROM:<a@example.org>\r\n")
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")
    # The decision exists but was not handed out yet.
    with pytest.raises(LocalProtocolError):
        conn.accept()
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.reject(Reply.make(250, None, "ok"))
    with pytest.raises(LocalProtocolError):
        conn.provide_secret("x")
    conn.accept()
    assert conn.next_event() == ConnectionClosed(in_transaction=True)
    assert conn.closed


def test_over_long_command_line() -> None:
    conn = session()
    long = b"NOOP " + b"x" * 3000 + b"\r\n"
    out = talk(conn, long[:1000])
    assert out == b""
    out = talk(conn, long[1000:] + b"NOOP\r\n")
    assert out == b"500 5.5.6 Line too long\r\n250 2.0.0 OK\r\n"
    # A complete over-long line in one piece.
    assert talk(conn, b"NOOP " + b"y" * 2044 + b"\r\n") == b"500 5.5.6 Line too long\r\n"
    # Exactly at the limit (2048 including CRLF) is fine.
    assert talk(conn, b"NOOP " + b"y" * 2041 + b"\r\n") == b"250 2.0.0 OK\r\n"


def test_too_many_errors() -> None:
    conn = session(max_errors=3)
    conn.receive_data(b"FROB\r\nFROB\r\nNOOP\r\nFROB\r\nNOOP\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        drain(conn)
    assert info.value.reply is not None
    assert info.value.reply.code == 421
    assert conn.closed
    assert conn.data_to_send() == (
        b"500 5.5.1 Command not recognized\r\n" * 2
        + b"250 2.0.0 OK\r\n"
        + b"500 5.5.1 Command not recognized\r\n"
        + b"421 4.7.0 Too many errors, closing connection\r\n"
    )
    assert conn.next_event() is PAUSED


def test_too_many_commands() -> None:
    conn = make(max_commands=3)
    conn.receive_data(b"NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n")
    with pytest.raises(RemoteProtocolError):
        drain(conn)
    assert conn.data_to_send() == (
        b"250 2.0.0 OK\r\n" * 3 + b"421 4.7.0 Too many commands, closing connection\r\n"
    )


def test_eof_outside_and_inside_transaction() -> None:
    conn = session()
    conn.receive_data(b"NOOP\r\nNOO")
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed(in_transaction=False)
    assert conn.data_to_send() == b"250 2.0.0 OK\r\n"
    conn = in_transaction()
    talk(conn, b"DATA\r\nsome body")
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed(in_transaction=True)


def test_abort() -> None:
    conn = in_transaction()
    conn.receive_data(b"NOOP\r\n")
    conn.abort()
    assert conn.closed
    assert conn.data_to_send() == b"421 4.4.2 mx.example Timeout, closing connection\r\n"
    assert conn.next_event() is PAUSED
    conn.abort()  # idempotent
    assert conn.data_to_send() == b""


def test_graceful_shutdown_idle_closes_now() -> None:
    conn = session()
    conn.start_shutdown()
    assert conn.closed
    assert conn.data_to_send() == b"421 4.3.2 mx.example Service shutting down\r\n"


def test_graceful_shutdown_finishes_transaction() -> None:
    conn = in_transaction()
    conn.start_shutdown()
    assert not conn.closed
    conn.receive_data(b"RCPT TO:<c@example.org>\r\nDATA\r\nhello\r\n.\r\nMAIL FROM:<x@y.z>\r\n")
    events = drain(conn)
    assert [type(e).__name__ for e in events] == ["RcptTo", "BodyChunk", "EndOfMessage"]
    assert conn.closed
    assert conn.data_to_send() == (
        b"250 2.1.5 Recipient OK\r\n"
        b"354 End data with <CR><LF>.<CR><LF>\r\n"
        b"250 2.0.0 Message accepted\r\n"
        b"421 4.3.2 mx.example Service shutting down\r\n"
    )


def test_graceful_shutdown_after_aborted_message() -> None:
    conn = in_transaction(max_message_size=10)
    conn.start_shutdown()
    conn.receive_data(b"DATA\r\n" + b"x" * 20 + b"\r\n.\r\n")
    events = drain(conn)
    assert isinstance(events[-1], MessageAborted)
    assert conn.closed
    assert conn.data_to_send().endswith(
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
        b"421 4.3.2 mx.example Service shutting down\r\n"
    )


def test_expn_syntax() -> None:
    conn = session(expn=True)
    assert talk(conn, b"EXPN\r\n") == b"501 5.5.4 Syntax: EXPN string\r\n"


def test_graceful_shutdown_answers_pipelined_command_with_421() -> None:
    conn = session()
    conn.receive_data(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n")
    mail = conn.next_event()
    conn.start_shutdown()  # the sender is still being decided: not idle yet
    assert not conn.closed
    assert conn.pending is mail
    conn.reject()  # no transaction after all: the next command gets 421
    assert conn.closed
    assert conn.data_to_send() == (
        b"550 5.7.1 Sender rejected\r\n421 4.3.2 mx.example Service shutting down\r\n"
    )
