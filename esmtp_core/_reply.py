"""SMTP replies (RFC 5321 §4.2) with optional enhanced status codes (RFC 3463, RFC 2034).

A :class:`Reply` is the value both sides exchange: the server core serialises it, the client core
parses it. Parsing of incoming reply *lines* is done incrementally by the client connection; this
module only knows how to format and validate a whole reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import LocalProtocolError

__all__ = ["Reply"]

# RFC 3463 §2: status-code = class "." subject "." detail
#   class = "2" / "4" / "5";  subject = 1*3digit;  detail = 1*3digit
ENHANCED_CODE_RE = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}\Z")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: a three-digit ``code``, an optional ``enhanced`` status code and its text.

    ``lines`` holds the text of each line without the code prefix, the enhanced code or CRLF; a
    reply always has at least one line (possibly empty). Construct with :meth:`make` for the common
    single-line case::

        Reply.make(250, "2.1.0", "Sender OK")
    """

    code: int
    lines: tuple[str, ...] = ("",)
    enhanced: str | None = None

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise LocalProtocolError(f"reply code out of range: {self.code!r}")
        if self.enhanced is not None:
            if not ENHANCED_CODE_RE.match(self.enhanced):
                raise LocalProtocolError(f"malformed enhanced status code: {self.enhanced!r}")
            if self.enhanced[0] != str(self.code)[0]:
                raise LocalProtocolError(
                    f"enhanced code {self.enhanced} does not match reply class {self.code}"
                )
        if not self.lines:
            raise LocalProtocolError("a reply needs at least one line")
        for line in self.lines:
            if "\r" in line or "\n" in line:
                raise LocalProtocolError("reply text may not contain CR or LF")

    @classmethod
    def make(cls, code: int, enhanced: str | None, *lines: str) -> Reply:
        """Build a reply from a code, an enhanced code (or ``None``) and text lines."""
        return cls(code=code, lines=tuple(lines) or ("",), enhanced=enhanced)

    @property
    def text(self) -> str:
        """All lines joined with ``"\\n"`` (for messages and logs)."""
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        """2xx (or 3xx intermediate) replies."""
        return self.code < 400

    @property
    def is_intermediate(self) -> bool:
        """3xx replies (354 to DATA, 334 to AUTH)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """4xx replies: try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5xx replies: do not retry."""
        return self.code >= 500

    def to_bytes(self, *, enhanced_codes: bool = True) -> bytes:
        """Serialise as it goes on the wire (RFC 5321 §4.2.1): ``250-`` continuations, CRLF ends.

        With ``enhanced_codes`` false (the server did not advertise ENHANCEDSTATUSCODES) the
        enhanced code is left out.
        """
        prefix = str(self.code)
        if enhanced_codes and self.enhanced is not None:
            body = [f"{self.enhanced} {line}" if line else self.enhanced for line in self.lines]
        else:
            body = list(self.lines)
        last = len(body) - 1
        out = []
        for index, line in enumerate(body):
            sep = " " if index == last else "-"
            out.append(f"{prefix}{sep}{line}\r\n" if line else f"{prefix}{sep}\r\n")
        # Reply text is UTF-8 at most (RFC 6531 allows UTF-8 in replies once SMTPUTF8 is used).
        return "".join(out).encode("utf-8")

    def __str__(self) -> str:
        enhanced = f" {self.enhanced}" if self.enhanced else ""
        return f"{self.code}{enhanced} {self.text}"
