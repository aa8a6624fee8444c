"""Incremental, strict parser of server replies (RFC 5321 §4.2), used by the client core.

Grammar (RFC 5321 §4.2)::

    Reply-line = *( Reply-code "-" [ textstring ] CRLF )
                    Reply-code [ SP textstring ] CRLF
    Reply-code = %x32-35 %x30-35 %x30-39

The parser is fed bytes as they arrive and hands out whole :class:`~esmtp_core.Reply` values.
It is deliberately strict, because a client that guesses where a reply ends can be made to take
attacker-controlled text for a reply (response injection). Everything below raises
:class:`~esmtp_core.RemoteProtocolError`:

* a line whose first three octets are not a valid reply code, or whose fourth octet is neither
  SP, ``-`` nor the end of the line;
* a multi-line reply whose lines do not all carry the same code;
* a line not ended by CRLF (a bare LF), or containing a CR elsewhere;
* a line longer than ``max_line_length`` octets (CRLF included) — checked before the line is
  complete, so a server that never sends LF cannot make the buffer grow without bound;
* more than ``max_lines`` lines in one reply.

Enhanced status codes (RFC 3463, RFC 2034 §3) are split out into :attr:`Reply.enhanced` when the
first line's text starts with one whose class matches the reply code's class, followed by a space
or the end of the line. RFC 2034 only promises the codes once ENHANCEDSTATUSCODES was advertised,
but replies sent before EHLO (the greeting) often carry one too, and text that starts with
``d.d.d`` of the right class is an enhanced code in practice, so the rule is the same either way.
The same code is stripped from the following lines of a multi-line reply.
"""

from __future__ import annotations

import re

from ._errors import LocalProtocolError, RemoteProtocolError
from ._reply import Reply

__all__ = ["ReplyParser", "split_enhanced"]

# RFC 3463 §2 status code at the start of the text, followed by a space or the end.
_ENHANCED_PREFIX_RE = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3})(?: |\Z)")
_FIRST_DIGITS = frozenset(b"2345")
_SECOND_DIGITS = frozenset(b"012345")
_THIRD_DIGITS = frozenset(b"0123456789")


def split_enhanced(code: int, texts: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """Split the RFC 3463 enhanced code off reply lines; returns ``(enhanced, lines)``."""
    match = _ENHANCED_PREFIX_RE.match(texts[0])
    if match is None or match.group(1)[0] != str(code)[0]:
        return None, tuple(texts)
    enhanced = match.group(1)
    lines = []
    for text in texts:
        found = _ENHANCED_PREFIX_RE.match(text)
        lines.append(text[found.end() :] if found and found.group(1) == enhanced else text)
    return enhanced, tuple(lines)


class ReplyParser:
    """Turns received bytes into :class:`~esmtp_core.Reply` values, one complete reply at a time.

    ``feed()`` appends bytes; ``next_reply()`` returns the next complete reply or ``None`` when
    more bytes are needed. ``discard()`` drops everything buffered (STARTTLS, RFC 3207 §4.2).

    A server answers most commands with the very same single-line reply every time (``250 2.1.0
    Ok`` to MAIL, ``354 ...`` to DATA): the parser remembers the :class:`Reply` of the first
    :data:`KNOWN_REPLIES` distinct single-line replies it parsed, keyed by the exact line, and
    hands the same immutable value back when the line comes again (no checks, regexes or
    construction: the line passed them all the first time).
    """

    #: How many distinct single-line replies are remembered per parser (a server sending unique
    #: text, such as queue ids, fills it once and then simply misses).
    KNOWN_REPLIES = 32

    def __init__(self, *, max_line_length: int, max_lines: int) -> None:
        self._max_line_length = max_line_length
        self._max_lines = max_lines
        # Received bytes; those before ``_start`` were already parsed.
        self._buffer = b""
        self._start = 0
        # Where the search for the next LF resumes: bytes before it hold no LF (never rescan).
        self._scanned = 0
        self._code: bytes | None = None
        self._texts: list[str] = []
        self._known: dict[bytes, Reply] = {}

    @property
    def in_reply(self) -> bool:
        """True when some bytes of an unfinished reply were received."""
        return self._start < len(self._buffer) or self._code is not None

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._start >= len(self._buffer):  # the usual case: everything was parsed
            self._buffer = bytes(data)
            self._scanned = 0
        else:  # the rest of a line (at most max_line_length octets) is kept
            self._buffer = self._buffer[self._start :] + data
            self._scanned -= self._start
        self._start = 0

    def discard(self) -> None:
        """Forget everything received and not yet returned."""
        self._buffer = b""
        self._start = 0
        self._scanned = 0
        self._code = None
        self._texts = []

    def next_reply(self) -> Reply | None:
        """The next complete reply, or ``None``; raises :class:`RemoteProtocolError` when the
        bytes cannot be a reply."""
        buffer = self._buffer
        limit = self._max_line_length
        while True:
            start = self._start
            end = buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(buffer)
                if len(buffer) - start >= limit:
                    raise RemoteProtocolError(f"reply line longer than {limit} octets")
                return None
            end += 1
            if end - start > limit:
                raise RemoteProtocolError(f"reply line longer than {limit} octets")
            self._start = self._scanned = end
            line = buffer[start:end]
            if self._code is None:
                known = self._known.get(line)
                if known is not None:
                    return known
            reply = self._take_line(line)
            if reply is not None:
                return reply

    def _take_line(self, line: bytes) -> Reply | None:
        if not line.endswith(b"\r\n"):
            raise RemoteProtocolError("reply line ended by a bare LF")
        content = line[:-2]
        if b"\r" in content:
            raise RemoteProtocolError("bare CR inside a reply line")
        if (
            len(content) < 3
            or content[0] not in _FIRST_DIGITS
            or content[1] not in _SECOND_DIGITS
            or content[2] not in _THIRD_DIGITS
        ):
            raise RemoteProtocolError(f"malformed reply code in {content[:16]!r}")
        separator = content[3:4]
        if separator not in (b"", b" ", b"-"):
            raise RemoteProtocolError(f"malformed reply line {content[:16]!r}")
        code = content[:3]
        if self._code is None:
            self._code = code
        elif code != self._code:
            raise RemoteProtocolError(
                f"multi-line reply mixes codes {self._code.decode()} and {code.decode()}"
            )
        # Reply text is ASCII, or UTF-8 once SMTPUTF8 is in use (RFC 6531 §3.7.4); it is only
        # informative, so undecodable octets become U+FFFD rather than an error.
        self._texts.append(content[4:].decode("utf-8", "replace"))
        if len(self._texts) > self._max_lines:
            raise RemoteProtocolError(f"reply has more than {self._max_lines} lines")
        if separator == b"-":
            return None
        number = int(code)
        texts, self._texts, self._code = self._texts, [], None
        enhanced, lines = split_enhanced(number, texts)
        try:
            reply = Reply(code=number, lines=lines, enhanced=enhanced)
        except LocalProtocolError as exc:  # pragma: no cover - every field was checked above
            raise RemoteProtocolError(str(exc)) from exc
        if len(texts) == 1 and len(self._known) < self.KNOWN_REPLIES:
            self._known[line] = reply
        return reply
