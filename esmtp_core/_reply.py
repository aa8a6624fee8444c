"""SMTP replies (RFC 5321 §4.2) with optional enhanced status codes (RFC 3463, RFC 2034).

A :class:`Reply` is the value both sides exchange: the server core serialises it, the client core
parses it. Parsing of incoming reply *lines* is done incrementally by the client connection; this
module only knows how to format and validate a whole reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import LocalProtocolError

__all__ = ["Reply", "constant_reply"]

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
        encoded = _ENCODED.get(id(self))
        if encoded is not None and encoded[0] is self:
            return encoded[1] if enhanced_codes else encoded[2]
        return self._encode(enhanced_codes)

    def _encode(self, enhanced_codes: bool) -> bytes:
        lines = self.lines
        if len(lines) == 1:  # nearly every reply: no list, no loop
            line = lines[0]
            if enhanced_codes and self.enhanced is not None:
                line = f"{self.enhanced} {line}" if line else self.enhanced
            return f"{self.code!s} {line}\r\n".encode()
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


#: The wire forms of the replies registered by :func:`constant_reply`, by identity: (the reply,
#: with enhanced code, without). A Reply is immutable, so its bytes can be built once.
_ENCODED: dict[int, tuple[Reply, bytes, bytes]] = {}


def constant_reply(reply: Reply) -> Reply:
    """Register a reply that lives for the whole process (a module-level constant) so that
    :meth:`Reply.to_bytes` returns prebuilt bytes for it; returns the reply.

    For the fixed replies a server core sends on every transaction (250 to MAIL, 354, ...), the
    formatting would otherwise be redone each time. Never register replies built per session:
    the registry holds them for ever.
    """
    _ENCODED[id(reply)] = (reply, reply._encode(True), reply._encode(False))
    return reply
