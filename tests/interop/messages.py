"""Test messages for the interop tests: CRLF line endings, dot lines, 8-bit and UTF-8 text.

Each message carries a unique Message-ID (the "tag") so tests sharing a server or a Postfix queue
can find their own message; every line is short (Postfix splits lines over 2048 bytes).
"""

from __future__ import annotations

import itertools

_counter = itertools.count(1)

#: The one account every ``esmtp serve`` in these tests knows (non-ASCII: SASLprep, RFC 4013).
USER, PASSWORD = "alice", "s3cret-p\u00e4ssword"


def unique_tag(prefix: str) -> str:
    """A Message-ID local part unique within this test session."""
    return f"{prefix}-{next(_counter)}"


def message(
    tag: str,
    *,
    sender: str = "sender@client.test",
    recipient: str = "rcpt@server.test",
    subject: str = "interop caf\u00e9",
    body: bytes | None = None,
) -> bytes:
    """A complete RFC 5322 message with CRLF line endings, ending with CRLF.

    The default body has the lines that break naive DATA handling (RFC 5321 §4.5.2): a line
    starting with ".", one starting with "..", a lone "." and 8-bit UTF-8 text (RFC 6152).
    """
    header = (
        f"From: Sender <{sender}>\r\n"
        f"To: <{recipient}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Sun, 29 Nov 2026 18:00:00 +0000\r\n"
        f"Message-ID: <{tag}@client.test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n"
        f"\r\n"
    ).encode()
    if body is None:
        body = DEFAULT_BODY
    return header + body


DEFAULT_BODY = (
    b"Line one\r\n"
    b".starts with a dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"8-bit: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa8\r\n"
    b"last line\r\n"
)

#: Dot lines and near misses of the end-of-data marker. It does not end with a lone "." line:
#: swaks takes data ending in "CRLF ." as already terminated and would drop that line.
DOT_HEAVY_BODY = b"".join(
    [
        b".\r\n",
        b"..\r\n",
        b"...\r\n",
        b". \r\n",
        b".x\r\n",
        b" .\r\n",
        b"\r\n",
        b".\r\n",
        b"\r\n",
        b"text . text\r\n",
        b"..\r\n",
        b".\r\n",
        b"end\r\n",
    ]
)


def lf(data: bytes) -> bytes:
    """CRLF to LF: the form Postfix and smtp-sink store messages in."""
    return data.replace(b"\r\n", b"\n")
