"""The server's EHLO/LHLO reply as a typed value (RFC 5321 §4.1.1.1).

The first line of a positive EHLO reply is the server's name and a greeting; every following line
is ``ehlo-keyword *( SP ehlo-param )``. :func:`parse_capabilities` turns that into
:class:`Capabilities`: the extensions the client core knows get typed fields, and every keyword
(known or not) is kept in :attr:`Capabilities.keywords` with its parameters, so the embedding code
can look up extensions the core does not know (``caps.params("XCLIENT")``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._reply import Reply

__all__ = ["Capabilities", "parse_capabilities"]

# RFC 5321 §4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_KEYWORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What the server offered in its EHLO (or LHLO) reply. Empty after HELO.

    ``size`` is RFC 1870's announced limit: ``None`` when SIZE was not offered, ``0`` when it was
    offered without a fixed limit (``SIZE`` or ``SIZE 0``), else the limit in octets.
    """

    #: The name the server gave on the first line of its reply (may be empty).
    server_name: str = ""
    #: Every keyword, upper-cased, with its parameters, in the order advertised.
    keywords: tuple[tuple[str, tuple[str, ...]], ...] = ()
    size: int | None = None
    #: SASL mechanism names offered by AUTH (RFC 4954), upper-cased, in the server's order.
    auth_mechanisms: tuple[str, ...] = ()
    pipelining: bool = False
    chunking: bool = False
    binarymime: bool = False
    eightbitmime: bool = False
    smtputf8: bool = False
    dsn: bool = False
    starttls: bool = False
    enhanced_status_codes: bool = False
    requiretls: bool = False

    def has(self, keyword: str) -> bool:
        """Whether ``keyword`` (case-insensitive) was advertised."""
        upper = keyword.upper()
        return any(name == upper for name, _ in self.keywords)

    def params(self, keyword: str) -> tuple[str, ...] | None:
        """The parameters advertised with ``keyword``, or ``None`` when it was not advertised."""
        upper = keyword.upper()
        for name, params in self.keywords:
            if name == upper:
                return params
        return None

    @property
    def size_limit(self) -> int | None:
        """The largest message the server accepts in octets, or ``None`` when it set no limit."""
        return self.size or None


def parse_capabilities(reply: Reply) -> Capabilities:
    """Parse a positive EHLO/LHLO reply. Lines that are not a valid keyword are ignored (servers
    in the wild send free text there; nothing we could do with it)."""
    first = reply.lines[0].split(" ", 1)[0] if reply.lines else ""
    keywords: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    size: int | None = None
    auth: list[str] = []
    for line in reply.lines[1:]:
        words = line.split()
        if not words:
            continue
        keyword, params = words[0].upper(), tuple(words[1:])
        # Some old servers advertise "AUTH=PLAIN LOGIN" next to "AUTH PLAIN LOGIN" (a pre-RFC
        # draft syntax); read it as AUTH.
        if keyword.startswith("AUTH="):
            keyword, params = "AUTH", (keyword[5:], *params)
        if not _KEYWORD_RE.match(keyword):
            continue
        if keyword == "AUTH":
            for name in params:
                if name.upper() not in auth:
                    auth.append(name.upper())
        if keyword in seen:
            continue
        seen.add(keyword)
        keywords.append((keyword, params))
        if keyword == "SIZE":
            # RFC 1870 §4: "SIZE" alone or "SIZE 0" means no fixed limit.
            size = int(params[0]) if params and params[0].isascii() and params[0].isdigit() else 0
    return Capabilities(
        server_name=first,
        keywords=tuple(keywords),
        size=size,
        auth_mechanisms=tuple(auth),
        pipelining="PIPELINING" in seen,
        chunking="CHUNKING" in seen,
        binarymime="BINARYMIME" in seen,
        eightbitmime="8BITMIME" in seen,
        smtputf8="SMTPUTF8" in seen,
        dsn="DSN" in seen,
        starttls="STARTTLS" in seen,
        enhanced_status_codes="ENHANCEDSTATUSCODES" in seen,
        requiretls="REQUIRETLS" in seen,
    )
