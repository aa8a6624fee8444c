"""Hypothesis strategies for hostile SMTP client streams, and split helpers.

The streams mix well-formed commands (RFC 5321 §4.1), extension commands (BDAT RFC 3030, AUTH
RFC 4954), bodies full of dots and bare line endings, and garbage, so that one generated session
walks through most states of the server core.
"""

from __future__ import annotations

import base64
import os

from hypothesis import strategies as st


def examples(default: int) -> int:
    """Hypothesis examples per property: ``default`` in CI, ten times more with ``ESMTP_SLOW=1``,
    or exactly ``ESMTP_EXAMPLES`` when set (for a long hunting run)."""
    if os.environ.get("ESMTP_EXAMPLES"):
        return int(os.environ["ESMTP_EXAMPLES"])
    return default * 10 if os.environ.get("ESMTP_SLOW") == "1" else default


#: Bytes that matter to an SMTP parser, weighted towards line structure and dots.
_TRICKY = st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b" ", b":", b"<", b">", b"\x00"])
_WORDS = st.sampled_from([b"a", b"bob", b"x@y", b"<a@b>", b"SIZE=10", b"LAST", b"\xc3\xa9", b"="])
TEXT = st.lists(
    st.one_of(_TRICKY, _WORDS, st.binary(min_size=1, max_size=8)), max_size=12
).map(b"".join)

ADDRESS = st.sampled_from(
    [b"<a@example.org>", b"<>", b"<postmaster>", b'<"q u"@[127.0.0.1]>', b"<\xc3\xa9@x.fr>",
     b"<@r.example:a@b.c>", b"a@b", b"<bad", b"<a@b> SIZE=20", b"<a@b> BODY=BINARYMIME",
     b"<a@b> NOTIFY=SUCCESS ORCPT=rfc822;a+40b", b"<a@b> SMTPUTF8", b"<a@b> FOO=1"]
)


def _line(verb: bytes, argument: bytes | None = None) -> bytes:
    return verb + (b" " + argument if argument is not None else b"") + b"\r\n"


@st.composite
def _data_command(draw: st.DrawFn) -> bytes:
    body = draw(st.lists(TEXT, max_size=6).map(b"\r\n".join))
    ending = draw(
        st.sampled_from([b"\r\n.\r\n", b"\n.\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r\n", b"\r\n.\r"])
    )
    # Always close with a real end of data, so a later command is not swallowed forever.
    return b"DATA\r\n" + body + ending + b"\r\n.\r\n"


@st.composite
def _bdat_command(draw: st.DrawFn) -> bytes:
    chunk = draw(st.binary(max_size=20))
    declared = draw(st.one_of(st.just(len(chunk)), st.integers(0, 25)))
    last = draw(st.booleans())
    return b"BDAT %d%s\r\n" % (declared, b" LAST" if last else b"") + chunk


@st.composite
def _auth_command(draw: st.DrawFn) -> bytes:
    user = draw(st.sampled_from(["user", "u\u00e9", ""]))
    password = draw(st.sampled_from(["pass", "wrong", ""]))
    plain = base64.b64encode(f"\0{user}\0{password}".encode())
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return b"AUTH PLAIN " + plain + b"\r\n"
    if choice == 1:
        return b"AUTH PLAIN\r\n" + plain + b"\r\n"
    if choice == 2:
        return (
            b"AUTH LOGIN\r\n"
            + base64.b64encode(user.encode())
            + b"\r\n"
            + base64.b64encode(password.encode())
            + b"\r\n"
        )
    if choice == 3:
        return b"AUTH LOGIN\r\n*\r\n"
    return b"AUTH PLAIN %%%\r\n"


COMMAND = st.one_of(
    st.sampled_from(
        [b"EHLO c.example\r\n", b"HELO c\r\n", b"LHLO c\r\n", b"ehlo c\r\n", b"RSET\r\n",
         b"NOOP\r\n", b"HELP\r\n", b"VRFY bob\r\n", b"EXPN list\r\n", b"QUIT\r\n", b"DATA\r\n",
         b"XCLIENT ADDR=1.2.3.4\r\n", b"BDAT 0 LAST\r\n", b"\r\n", b"MAIL\r\n"]
    ),
    ADDRESS.map(lambda a: _line(b"MAIL FROM:" + a)),
    ADDRESS.map(lambda a: _line(b"RCPT TO:" + a)),
    _data_command(),
    _bdat_command(),
    _auth_command(),
    TEXT.map(lambda t: t + b"\r\n"),
)

#: A whole client stream, most often starting with a greeting so later commands get further.
SESSION = st.tuples(
    st.sampled_from([b"EHLO c.example\r\n", b"LHLO c\r\n", b""]),
    st.lists(COMMAND, max_size=14),
).map(lambda parts: parts[0] + b"".join(parts[1]))


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points (possibly none, possibly every byte)."""
    if not data:
        return []
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=20))))
    pieces = []
    start = 0
    for cut in [*cuts, len(data)]:
        if cut > start:
            pieces.append(data[start:cut])
            start = cut
    return pieces
