"""The server core's short cuts on the per-message path give exactly the general path's answers.

``ServerConnection`` answers the commonest command lines (exact ``DATA``/``RSET``/``NOOP``/
``QUIT``; ``MAIL FROM:<mailbox>`` and ``RCPT TO:<mailbox>`` without parameters) without the
general parser, builds the per-message events without the frozen-dataclass ``__init__``, and
formats the greeting, the 221 and the EHLO reply once per distinct value. Each test here pins one
of those to the behaviour of the general path it stands in for.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from server_helpers import drain, make, session, talk

from esmtp_core import (
    EndOfMessage,
    LocalProtocolError,
    MailFrom,
    MailParams,
    RcptParams,
    RcptTo,
    Reply,
    ServerConnection,
)
from esmtp_core._abnf import SIMPLE_COMMAND_RE, parse_path
from esmtp_core._data import DataDecoder
from esmtp_core._state import _CACHE_LIMIT, HELLO_WIRE, SESSION_WIRE


def answer(conn: ServerConnection, line: bytes) -> tuple[list[Any], bytes]:
    """Feed one command line; the events (decisions accepted) and the reply bytes."""
    conn.receive_data(line)
    events = drain(conn)
    return events, conn.data_to_send()


def both_paths(
    setup: bytes, short: bytes, *, greet: Reply | None = None, **options: Any
) -> tuple[tuple[list[Any], bytes], tuple[list[Any], bytes]]:
    """The answer to ``short`` (a line the short cut takes) and to the same line with a trailing
    space (which RFC 5321 parsing treats alike, and which only the general path accepts), each on
    a fresh connection that first got ``setup``."""
    assert SIMPLE_COMMAND_RE.match(short) or short in (b"DATA\r\n", b"QUIT\r\n")
    general = short[:-2] + b" \r\n"
    assert not SIMPLE_COMMAND_RE.match(general)
    results = []
    for line in (short, general):
        conn = make(greet=False, **options)
        conn.greet(greet)
        conn.data_to_send()
        if setup:
            talk(conn, setup)
        results.append(answer(conn, line))
    return results[0], results[1]


MAIL = b"MAIL FROM:<a@example.org>\r\n"
MAIL_SIZE = b"MAIL FROM:<a@example.org> SIZE=1000\r\n"
RCPT = b"RCPT TO:<b@example.net>\r\n"


@pytest.mark.parametrize(
    ("setup", "line", "options", "code"),
    [
        (b"", MAIL, {}, b"503 5.5.1"),  # no EHLO yet
        (b"EHLO c\r\n", MAIL, {}, b"250 2.1.0"),
        (b"HELO c\r\n", b"mail from:<a@example.org>\r\n", {}, b"250 2.1.0"),
        (b"EHLO c\r\n" + MAIL, MAIL, {}, b"503 5.5.1"),  # nested MAIL
        (b"EHLO c\r\n", MAIL, {"auth_required": True}, b"530 5.7.0"),
        (b"EHLO c\r\n", MAIL_SIZE, {}, b"250 2.1.0"),
        (b"EHLO c\r\n", b"mail from:<a@example.org> size=0\r\n", {}, b"250 2.1.0"),
        (b"HELO c\r\n", MAIL_SIZE, {}, b"555 5.5.4"),  # no extensions after HELO
        (b"EHLO c\r\n", MAIL_SIZE, {"max_message_size": 999}, b"552 5.3.4"),
        (b"EHLO c\r\n", MAIL_SIZE, {"max_message_size": None}, b"250 2.1.0"),
        (b"EHLO c\r\n", MAIL_SIZE, {"extra_mail_parameters": frozenset({"SIZE"})}, b"250 2.1.0"),
        (b"EHLO c\r\n", RCPT, {}, b"503 5.5.1"),  # no MAIL yet
        (b"EHLO c\r\n" + MAIL, RCPT, {}, b"250 2.1.5"),
        (b"EHLO c\r\n" + MAIL, b"rcpt to:<b@example.net>\r\n", {}, b"250 2.1.5"),
        (b"EHLO c\r\n" + MAIL + RCPT, RCPT, {"max_recipients": 1}, b"452 4.5.3"),
        (b"EHLO c\r\n" + MAIL + RCPT + b"BDAT 1\r\nx", RCPT, {}, b"503 5.5.1"),
        (b"EHLO c\r\n" + MAIL, b"DATA\r\n", {}, b"554 5.5.1"),  # no recipient
        (b"EHLO c\r\n" + MAIL + RCPT, b"DATA\r\n", {}, b"354 "),
        (b"LHLO c\r\n" + MAIL + RCPT, b"DATA\r\n", {"lmtp": True}, b"354 "),
        (b"EHLO c\r\n", b"QUIT\r\n", {}, b"221 2.0.0"),
        (b"", b"EHLO client.example\r\n", {}, b"250-mx.example\r\n"),
        (b"", b"ehlo [192.0.2.1]\r\n", {}, b"250-mx.example\r\n"),
        (b"", b"HELO c\r\n", {}, b"250 mx.example\r\n"),
        (b"EHLO c\r\n" + MAIL, b"EHLO c\r\n", {}, b"250-mx.example\r\n"),  # resets
        (b"", b"LHLO c\r\n", {}, b"500 5.5.1"),
        (b"", b"EHLO c\r\n", {"lmtp": True}, b"500 5.5.1"),
        (b"", b"LHLO c\r\n", {"lmtp": True}, b"250-mx.example\r\n"),
    ],
)
def test_short_cut_answers_like_the_general_path(
    setup: bytes, line: bytes, options: dict[str, Any], code: bytes
) -> None:
    short, general = both_paths(setup, line, **options)
    assert short == general
    assert short[1].startswith(code)


@pytest.mark.parametrize(
    ("line", "options", "params"),
    [
        (MAIL, {}, MailParams()),
        (MAIL_SIZE, {}, MailParams(size=1000)),
        (b"mail from:<a@example.org> size=0\r\n", {}, MailParams(size=0)),
        (
            MAIL_SIZE,
            {"extra_mail_parameters": frozenset({"SIZE"})},
            MailParams(extra=(("SIZE", "1000"),)),
        ),
    ],
)
def test_short_cut_mail_params(line: bytes, options: dict[str, Any], params: MailParams) -> None:
    (events, _), _ = both_paths(b"EHLO c\r\n", line, **options)
    assert events == [MailFrom(address="a@example.org", params=params)]


@pytest.mark.parametrize("line", [MAIL, b"DATA\r\n", b"QUIT\r\n"])
def test_refused_session_still_refuses_short_cut_lines(line: bytes) -> None:
    short, general = both_paths(b"", line, greet=Reply.make(554, "5.3.2", "go away"))
    assert short == general
    assert short[1].startswith(b"221" if line == b"QUIT\r\n" else b"503 5.5.1")


def test_shutdown_answers_short_cut_lines_with_421() -> None:
    conn = session()
    conn.start_shutdown()
    assert conn.data_to_send().startswith(b"421 4.3.2")
    assert conn.closed
    conn = session()
    talk(conn, MAIL + RCPT)
    conn.start_shutdown()  # the transaction in flight may finish
    assert conn.data_to_send() == b""
    events, replies = answer(conn, b"DATA\r\n")
    assert replies.startswith(b"354")
    events, replies = answer(conn, b"hi\r\n.\r\n")
    assert isinstance(events[-1], EndOfMessage)
    assert replies.startswith(b"250 2.0.0")
    assert b"\r\n421 4.3.2" in replies
    assert conn.closed


def test_short_cut_events_are_ordinary_frozen_events() -> None:
    conn = session()
    conn.receive_data(MAIL + RCPT)
    mail = conn.next_event()
    assert mail == MailFrom(address="a@example.org", params=MailParams())
    assert hash(mail) == hash(MailFrom(address="a@example.org", params=MailParams()))
    assert type(mail) is MailFrom
    with pytest.raises(dataclasses.FrozenInstanceError):
        mail.address = "x@example.org"  # type: ignore[misc]
    conn.accept()
    rcpt = conn.next_event()
    assert rcpt == RcptTo(address="b@example.net", params=RcptParams())
    assert rcpt != RcptTo(address="c@example.net", params=RcptParams())
    conn.accept()
    talk(conn, b"DATA\r\n")
    conn.receive_data(b"x\r\n.\r\n")
    chunk, end = conn.next_event(), conn.next_event()
    assert repr(chunk) == "BodyChunk(data=b'x\\r\\n')"
    assert isinstance(end, EndOfMessage)
    assert end == EndOfMessage(size=3, recipients=("b@example.net",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        end.size = 0  # type: ignore[misc]


# Letters, digits and the characters that decide between the short cut and the general path.
_PIECE = st.one_of(
    st.from_regex(r"[a-zA-Z0-9+_~!-]{1,4}(\.[a-zA-Z0-9-]{1,4}){0,2}", fullmatch=True),
    st.text(alphabet='aZ09.-_+@<>:"[] \\,!~\x7f\u00e9', max_size=10),
)


@given(
    verb=st.sampled_from([b"MAIL FROM:", b"mail from:", b"RCPT TO:", b"rcpt to:"]),
    local=_PIECE,
    domain=_PIECE,
    suffix=st.sampled_from(["", " ", "x", " SIZE=12", " size=12", " SIZE=", " BODY=7BIT"]),
)
def test_short_cut_path_grammar_is_a_subset_of_the_full_grammar(
    verb: bytes, local: str, domain: str, suffix: str
) -> None:
    # Whatever SIMPLE_COMMAND_RE takes, parse_path takes too, with the same address and
    # parameters, whether or not SMTPUTF8 is in use.
    argument = f"<{local}@{domain}>{suffix}"
    match = SIMPLE_COMMAND_RE.match(verb + argument.encode("utf-8") + b"\r\n")
    if match is None:
        return
    mail, size, rcpt, chunk_size, _, hello, _ = match.groups()
    assert chunk_size is None
    assert hello is None
    mailbox = mail if verb[:1] in b"Mm" else rcpt
    assert mailbox is not None
    for utf8 in (False, True):
        parsed = parse_path(
            argument, allow_null=mail is not None, allow_postmaster=rcpt is not None, utf8=utf8
        )
        assert parsed.address == mailbox.decode("ascii")
        assert parsed.params == ("" if size is None else f"{suffix[1:]}")


def test_short_cut_path_grammar_takes_the_common_shapes() -> None:
    # The property above is only as good as the matches it sees: make sure it sees some.
    for line in (
        b"MAIL FROM:<a@example.org>\r\n",
        b"mail from:<a.b+c@sub-1.example.org> size=12\r\n",
        b"RCPT TO:<Z~!@x>\r\n",
        b"BDAT 1000 LAST\r\n",
        b"bdat 0\r\n",
        b"EHLO client.example\r\n",
        b"helo x\r\n",
    ):
        assert SIMPLE_COMMAND_RE.match(line), line


@pytest.mark.parametrize(
    "line",
    [
        b"MAIL FROM:<a@example.org>\n",  # bare LF: the general path decides
        b"MAIL FROM:<a@example.org> BODY=8BITMIME\r\n",
        b"MAIL FROM:<a@example.org> SIZE=10 BODY=8BITMIME\r\n",
        b"MAIL FROM:<a@example.org> SIZE=\r\n",
        b"MAIL FROM:<a@example.org> SIZE=123456789012345678901\r\n",
        b"RCPT TO:<a@example.org> SIZE=10\r\n",
        b"MAIL FROM: <a@example.org>\r\n",
        b"MAIL  FROM:<a@example.org>\r\n",
        b"MAIL FROM:<>\r\n",
        b'MAIL FROM:<"a b"@example.org>\r\n',
        b"MAIL FROM:<a@[192.0.2.1]>\r\n",
        b"MAIL FROM:<@relay.example:a@example.org>\r\n",
        b"MAIL FROM:<a..b@example.org>\r\n",
        b"MAIL FROM:<a@-example.org>\r\n",
        b"RCPT TO:<postmaster>\r\n",
        b"RCPT TO:<a@example.org>\r\r\n",
    ],
)
def test_short_cut_leaves_other_shapes_to_the_general_path(line: bytes) -> None:
    assert SIMPLE_COMMAND_RE.match(line) is None


def test_malformed_paths_near_the_short_cut_are_refused() -> None:
    for line, code in (
        (b"MAIL FROM:<a..b@example.org>\r\n", b"501 5.1.7"),
        (b"MAIL FROM:<a@-example.org>\r\n", b"501 5.1.7"),
        (b"MAIL FROM:<a@example.org>x\r\n", b"501 5.1.7"),
        (b"MAIL FROM:<a@example.org>\rx\r\n", b"500 5.5.2"),
    ):
        assert talk(session(), line).startswith(code), line


def test_session_replies_follow_the_configuration() -> None:
    # Formatted once per distinct value: each hostname still gets its own text.
    for name in ("one.example", "two.example"):
        conn = make(greet=False, hostname=name)
        conn.greet()
        assert conn.data_to_send() == f"220 {name} ESMTP esmtp-core ready\r\n".encode()
        assert talk(conn, b"EHLO c\r\n").startswith(f"250-{name}\r\n".encode())
        assert talk(conn, b"QUIT\r\n") == f"221 2.0.0 {name} Service closing\r\n".encode()
    conn = make(hostname="three.example", enhanced_status_codes=False)
    assert talk(conn, b"HELO c\r\n") == b"250 three.example\r\n"
    assert talk(conn, b"QUIT\r\n") == b"221 three.example Service closing\r\n"


def test_session_reply_caches_are_bounded() -> None:
    for index in range(_CACHE_LIMIT + 10):
        conn = make(hostname=f"h{index}.example")
        talk(conn, b"EHLO c\r\nQUIT\r\n")
        assert len(SESSION_WIRE) <= _CACHE_LIMIT
        assert len(HELLO_WIRE) <= _CACHE_LIMIT


def test_ehlo_accept_text_is_checked_before_anything_changes() -> None:
    conn = make()
    conn.receive_data(b"EHLO c\r\n")
    drain(conn, policy=None)
    with pytest.raises(LocalProtocolError):
        conn.accept("bad\r\ntext")
    assert conn.pending is not None
    assert conn.hello_name is None
    conn.accept("hello there")
    assert conn.data_to_send().startswith(b"250-mx.example hello there\r\n")
    assert conn.hello_name == "c"


def test_ehlo_reply_offers_auth_by_session_state() -> None:
    # The cached EHLO replies are keyed by their lines, so the AUTH line follows the TLS state.
    assert b"AUTH" not in talk(make(), b"EHLO c\r\n")
    assert b"250-AUTH PLAIN LOGIN\r\n" in talk(make(tls_on_connect=True), b"EHLO c\r\n")
    assert b"AUTH" not in talk(make(), b"EHLO c\r\n")
    assert b"250 AUTH PLAIN LOGIN\r\n" in talk(make(auth_require_tls=False), b"EHLO c\r\n")


@pytest.mark.parametrize(
    ("reads", "body", "problem"),
    [
        ([b"x\r\n.\r\n"], b"x\r\n", None),
        ([b"", b"x\r\n.\r\n"], b"x\r\n", None),
        ([b".\r\n"], b"", None),  # the first line ends the data: the virtual CRLF counts
        ([b"", b".\r\n"], b"", None),
        ([b"..x\r\n.\r\n"], b".x\r\n", None),
        ([b".\r", b"\r\n.\r\n"], b"", "bare"),  # held ".\r" stays after the virtual CRLF
        ([b"\r\n.\r\n"], b"\r\n", None),
        ([b"\n.\r\n.\r\n"], b"", "bare"),  # LF . CRLF is content, and a bare LF
    ],
)
def test_decoder_first_read(reads: list[bytes], body: bytes, problem: str | None) -> None:
    # The decoder drops its virtual CRLF up front when the first octet is not a dot; these are
    # the first reads where that matters.
    decoder = DataDecoder()
    out = b""
    for data in reads:
        chunk, consumed = decoder.feed(data)
        assert consumed == len(data)
        out += chunk
    assert decoder.done
    assert (decoder.problem is not None) == (problem is not None)
    if problem is None:
        assert out == body
