"""MAIL and RCPT: path syntax (RFC 5321 §4.1.2, RFC 6531), parameters and their replies."""

from __future__ import annotations

import pytest
from server_helpers import drain, in_transaction, make, session, talk

from esmtp_core import (
    BodyType,
    DsnNotify,
    DsnReturn,
    MailFrom,
    MailParams,
    RcptParams,
    RcptTo,
)


def mail_event(line: bytes, **options: object) -> MailFrom | bytes:
    conn = session(**options)
    conn.receive_data(line + b"\r\n")
    events = drain(conn)
    if events:
        assert isinstance(events[0], MailFrom)
        return events[0]
    return conn.data_to_send()


def rcpt_event(
    line: bytes, mail: bytes = b"MAIL FROM:<a@example.org>", **options: object
) -> RcptTo | bytes:
    conn = session(**options)
    talk(conn, mail + b"\r\n")
    conn.receive_data(line + b"\r\n")
    events = drain(conn)
    if events:
        assert isinstance(events[0], RcptTo)
        return events[0]
    return conn.data_to_send()


@pytest.mark.parametrize(
    ("path", "address"),
    [
        (b"<>", ""),
        (b"<user@example.org>", "user@example.org"),
        (b"<first.last+tag@sub.example.org>", "first.last+tag@sub.example.org"),
        (b'<"john doe"@example.org>', '"john doe"@example.org'),
        (b'<"a\\"b>c"@example.org>', '"a\\"b>c"@example.org'),
        (b"<user@[192.0.2.1]>", "user@[192.0.2.1]"),
        (b"<user@[IPv6:2001:db8::1]>", "user@[IPv6:2001:db8::1]"),
        (b"<user@[x-tag:some-thing]>", "user@[x-tag:some-thing]"),
        (b"<@relay.example,@other.example:user@example.org>", "user@example.org"),
        (b" <user@example.org>", "user@example.org"),
        (b"<!#$%&'*+/=?^_`{|}~-@a-b.c>", "!#$%&'*+/=?^_`{|}~-@a-b.c"),
    ],
)
def test_mail_paths(path: bytes, address: str) -> None:
    event = mail_event(b"MAIL FROM:" + path)
    assert isinstance(event, MailFrom)
    assert event.address == address
    assert event.params == MailParams()


@pytest.mark.parametrize(
    "path",
    [
        b"user@example.org",
        b"<user@example.org",
        b"<user>",
        b"<@example.org>",
        b"<user@>",
        b"<user@-bad.org>",
        b"<user@bad-.org>",
        b"<user@a..b>",
        b"<.user@example.org>",
        b"<user.@example.org>",
        b"<us..er@example.org>",
        b'<"unterminated@example.org>',
        b"<user@[999.0.0.1]>",
        b"<user@[IPv6:zz::1]>",
        b"<user@[192.0.2.1>",
        b"<a b@example.org>",
        b"<user@example.org>junk",
        b"<postmaster>",
        b"<@a.b:>",
        b"<x@" + b"a-" * 500 + b"!>",
        b"<x@" + b"a." * 500 + b"->",
    ],
)
def test_mail_bad_paths(path: bytes) -> None:
    assert mail_event(b"MAIL FROM:" + path) == b"501 5.1.7 Bad sender address syntax\r\n"


def test_mail_all_parameters() -> None:
    event = mail_event(
        b"MAIL FROM:<a@example.org> SIZE=1000 BODY=8bitmime SMTPUTF8 AUTH=a+2Bb@example.org "
        b"RET=HDRS ENVID=QQ+2B314"
    )
    assert isinstance(event, MailFrom)
    assert event.params == MailParams(
        size=1000,
        body=BodyType.EIGHT_BIT_MIME,
        smtputf8=True,
        auth="a+b@example.org",
        ret=DsnReturn.HEADERS,
        envid="QQ+314",
    )


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"MAIL FROM:<a@b.c> FOO=1", b"555 5.5.4 Unsupported parameter FOO\r\n"),
        (b"MAIL FROM:<a@b.c> SIZE=1 SIZE=2", b"555 5.5.4 Duplicate parameter SIZE\r\n"),
        (b"MAIL FROM:<a@b.c> SIZE=x", b"501 5.5.4 Malformed SIZE value\r\n"),
        (b"MAIL FROM:<a@b.c> BODY=9BIT", b"501 5.5.4 Unknown BODY type\r\n"),
        (b"MAIL FROM:<a@b.c> REQUIRETLS", b"555 5.5.4 Unsupported parameter REQUIRETLS\r\n"),
        (
            b"MAIL FROM:<a@b.c> SIZE=33554433",
            b"552 5.3.4 Message size exceeds fixed maximum message size\r\n",
        ),
        (b"MAIL FROM:<us\xc3\xa9r@b.c>", b"553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"),
        (b"MAIL FROM <a@b.c>", b"501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n"),
    ],
)
def test_mail_parameter_errors(line: bytes, reply: bytes) -> None:
    assert mail_event(line) == reply


def test_mail_options_switch_parameters_off() -> None:
    assert mail_event(b"MAIL FROM:<a@b.c> BODY=8BITMIME", eight_bit_mime=False) == (
        b"555 5.5.4 BODY=8BITMIME not supported\r\n"
    )
    assert mail_event(b"MAIL FROM:<a@b.c> BODY=BINARYMIME", chunking=False) == (
        b"555 5.5.4 BODY=BINARYMIME not supported\r\n"
    )
    assert mail_event(b"MAIL FROM:<a@b.c> RET=FULL", dsn=False) == (
        b"555 5.5.4 Unsupported parameter RET\r\n"
    )
    assert mail_event(b"MAIL FROM:<a@b.c> SMTPUTF8", smtputf8=False) == (
        b"555 5.5.4 Unsupported parameter SMTPUTF8\r\n"
    )
    assert mail_event(b"MAIL FROM:<us\xc3\xa9r@b.c> SMTPUTF8", smtputf8=False) == (
        b"501 5.1.7 Bad sender address syntax\r\n"
    )
    assert mail_event(b"MAIL FROM:<a@b.c> AUTH=<>", auth_mechanisms=()) == (
        b"555 5.5.4 Unsupported parameter AUTH\r\n"
    )
    event = mail_event(
        b"MAIL FROM:<a@b.c> XFOO=bar XBAZ", extra_mail_parameters=frozenset({"XFOO", "XBAZ"})
    )
    assert isinstance(event, MailFrom)
    assert event.params.extra == (("XFOO", "bar"), ("XBAZ", None))


def test_mail_utf8_address_with_smtputf8() -> None:
    event = mail_event("MAIL FROM:<用户@例子.广告> SMTPUTF8".encode())
    assert isinstance(event, MailFrom)
    assert event.address == "用户@例子.广告"


def test_mail_sequencing_and_auth_required() -> None:
    conn = in_transaction()
    assert talk(conn, b"MAIL FROM:<x@y.z>\r\n") == b"503 5.5.1 Sender already specified\r\n"
    conn = session(auth_required=True)
    assert talk(conn, b"MAIL FROM:<x@y.z>\r\n") == b"530 5.7.0 Authentication required\r\n"
    conn = make()
    assert talk(conn, b"MAIL FROM:<x@y.z>\r\n") == b"503 5.5.1 Send EHLO or HELO first\r\n"


@pytest.mark.parametrize(
    ("path", "address"),
    [
        (b"<b@example.net>", "b@example.net"),
        (b"<postmaster>", "postmaster"),
        (b"<PostMaster>", "PostMaster"),
        (b"<postmaster@example.net>", "postmaster@example.net"),
        (b"<@hop.example:b@example.net>", "b@example.net"),
    ],
)
def test_rcpt_paths(path: bytes, address: str) -> None:
    event = rcpt_event(b"RCPT TO:" + path)
    assert isinstance(event, RcptTo)
    assert event.address == address


@pytest.mark.parametrize("path", [b"<>", b"b@example.net", b"<b@>", b"<postmaster> x=y=z"])
def test_rcpt_bad_paths(path: bytes) -> None:
    reply = rcpt_event(b"RCPT TO:" + path)
    assert reply in (
        b"501 5.1.3 Bad recipient address syntax\r\n",
        b"501 5.5.4 Syntax error in parameters\r\n",
    )


def test_rcpt_dsn_parameters() -> None:
    event = rcpt_event(
        b"RCPT TO:<b@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+2B1@example.net"
    )
    assert isinstance(event, RcptTo)
    assert event.params == RcptParams(
        notify=frozenset({DsnNotify.SUCCESS, DsnNotify.DELAY}), orcpt=("rfc822", "b+1@example.net")
    )
    assert rcpt_event(b"RCPT TO:<b@example.net> NOTIFY=NEVER,SUCCESS") == (
        b"501 5.5.4 Bad NOTIFY value\r\n"
    )
    assert rcpt_event(b"RCPT TO:<b@example.net> NOTIFY=NEVER", dsn=False) == (
        b"555 5.5.4 Unsupported parameter NOTIFY\r\n"
    )


def test_rcpt_utf8_needs_smtputf8_on_mail() -> None:
    line = "RCPT TO:<пользователь@example.net>".encode()
    assert rcpt_event(line) == b"553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    event = rcpt_event(line, mail=b"MAIL FROM:<a@example.org> SMTPUTF8")
    assert isinstance(event, RcptTo)


def test_rcpt_syntax_and_sequence() -> None:
    assert (
        rcpt_event(b"RCPT <b@example.net>")
        == b"501 5.5.4 Syntax: RCPT TO:<address> [parameters]\r\n"
    )
    conn = session()
    assert talk(conn, b"RCPT TO:<b@example.net>\r\n") == b"503 5.5.1 Need MAIL command first\r\n"


def test_recipient_limit() -> None:
    conn = session(max_recipients=2, max_errors=2)
    talk(conn, b"MAIL FROM:<a@example.org>\r\n")
    out = talk(conn, b"".join(b"RCPT TO:<r%d@example.net>\r\n" % i for i in range(5)))
    assert out == b"250 2.1.5 Recipient OK\r\n" * 2 + b"452 4.5.3 Too many recipients\r\n" * 3
    # 452 is not an error for the max_errors count: the session goes on.
    assert talk(conn, b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_rejected_recipients_do_not_count() -> None:
    conn = session(max_recipients=1)
    talk(conn, b"MAIL FROM:<a@example.org>\r\n")
    out = talk(conn, b"RCPT TO:<x@example.net>\r\n", lambda c, e: c.reject())
    assert out == b"550 5.1.1 Recipient rejected\r\n"
    assert talk(conn, b"RCPT TO:<y@example.net>\r\n") == b"250 2.1.5 Recipient OK\r\n"


def test_requiretls_only_under_tls() -> None:
    event = mail_event(b"MAIL FROM:<a@b.c> REQUIRETLS", tls_on_connect=True)
    assert isinstance(event, MailFrom)
    assert event.params == MailParams(requiretls=True)
    assert mail_event(b"MAIL FROM:<a@b.c> REQUIRETLS", requiretls=False, tls_on_connect=True) == (
        b"555 5.5.4 Unsupported parameter REQUIRETLS\r\n"
    )
