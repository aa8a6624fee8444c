"""The RFC 5321 §4.1.2 path grammar (with RFC 6531 UTF-8 extensions) as commented regexes.

Only the server core uses these: it turns the argument of ``MAIL FROM:`` / ``RCPT TO:`` into an
address and a parameter string. Every repetition below is written so that each input position can
be matched in only one way (``x+(?:-+x+)*`` rather than ``x(?:[x-]*x)?``), so hostile input cannot
make the regex engine backtrack polynomially.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["SIMPLE_COMMAND_RE", "ParsedPath", "PathSyntaxError", "parse_path"]

# atext (RFC 5322 §3.2.3) = ALPHA / DIGIT / "!#$%&'*+-/=?^_`{|}~"
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
# RFC 6531 §3.3: atext =/ UTF8-non-ascii ; qtextSMTP =/ UTF8-non-ascii ; sub-domain =/ U-label
_UTF8 = "\u0080-\U0010ffff"


def _dot_string(extra: str) -> str:
    # Dot-string = Atom *("." Atom) ; Atom = 1*atext
    return rf"[{_ATEXT}{extra}]+(?:\.[{_ATEXT}{extra}]+)*"


def _domain(extra: str) -> str:
    # sub-domain = Let-dig [Ldh-str] ; Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig
    let_dig = rf"[A-Za-z0-9{extra}]"
    sub_domain = rf"{let_dig}+(?:-+{let_dig}+)*"
    # Domain = sub-domain *("." sub-domain)
    return rf"{sub_domain}(?:\.{sub_domain})*"


def _grammar(utf8: bool) -> re.Pattern[str]:
    extra = _UTF8 if utf8 else ""
    dot_string = _dot_string(extra)
    # Quoted-string = DQUOTE *QcontentSMTP DQUOTE
    # qtextSMTP = %d32-33 / %d35-91 / %d93-126 ; quoted-pairSMTP = "\" %d32-126
    quoted = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{extra}]|\\[\x20-\x7e])*"'
    domain = _domain(extra)
    # address-literal = "[" ( IPv4 / "IPv6:" IPv6 / Standardized-tag ":" 1*dcontent ) "]"
    # dcontent = %d33-90 / %d94-126; the literal is checked further in _valid_literal().
    literal = r"\[[\x21-\x5a\x5e-\x7e]+\]"
    # A-d-l = At-domain *( "," At-domain ) ; At-domain = "@" Domain   (source route, ignored)
    adl = rf"@{domain}(?:,@{domain})*"
    # Path = "<" [ A-d-l ":" ] Mailbox ">" ; Mailbox = Local-part "@" ( Domain / address-literal )
    return re.compile(
        rf"<(?:{adl}:)?(?P<mailbox>(?P<local>{dot_string}|{quoted})@(?P<domain>{domain}|{literal}))>"
    )


_PATH_ASCII = _grammar(utf8=False)
_SIMPLE_MAILBOX = f"{_dot_string('')}@{_domain('')}"
#: The shapes nearly every client sends, matched on the raw command line: ``MAIL FROM:<mailbox>``
#: with at most a ``SIZE=`` parameter (RFC 1870, as our client and smtplib send it), or
#: ``RCPT TO:<mailbox>``, ``BDAT size [LAST]`` (RFC 3030 §2), or ``EHLO``/``HELO``/``LHLO``
#: with one printable word; verbs and keywords in any case (smtplib sends lower case), a
#: Dot-string local part, a domain name, CRLF. Every line it matches is one the full grammar
#: accepts with the same address and parameters (ASCII printable only, so no control or UTF-8
#: check is needed either). Groups: the MAIL mailbox, the SIZE digits, the RCPT mailbox, the BDAT
#: size, `` LAST``, the hello verb, its argument. Anything else (more spaces, ``<>``, quoted local
#: parts, literals, source routes, other parameters, bare LF) goes through the general path.
SIMPLE_COMMAND_RE = re.compile(
    (
        rf"(?:MAIL FROM:<({_SIMPLE_MAILBOX})>(?: SIZE=([0-9]{{1,20}}))?"
        rf"|RCPT TO:<({_SIMPLE_MAILBOX})>"
        rf"|BDAT ([0-9]{{1,20}})( LAST)?"
        r"|(EHLO|HELO|LHLO) ([\x21-\x7e]+))\r\n"
    ).encode("ascii"),
    re.IGNORECASE,
)
_PATH_UTF8 = _grammar(utf8=True)
# IPv4-address-literal = Snum 3("." Snum) ; Snum = 1*3DIGIT representing 0-255
_SNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_SNUM}(?:\.{_SNUM}){{3}}\Z")
# General-address-literal = Standardized-tag ":" 1*dcontent ; Standardized-tag = Ldh-str
_GENERAL_RE = re.compile(r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*:[\x21-\x5a\x5e-\x7e]+\Z")


class PathSyntaxError(ValueError):
    """The argument is not a valid path; ``non_ascii`` tells whether it failed only because it
    contains UTF-8 that the session did not allow (RFC 6531 requires ``553 5.6.7`` then)."""

    def __init__(self, message: str, *, non_ascii: bool = False) -> None:
        super().__init__(message)
        self.non_ascii = non_ascii


@dataclass(frozen=True, slots=True)
class ParsedPath:
    """``address`` without angle brackets or source route (``""`` for ``<>``) and the raw
    parameter text that followed the path."""

    address: str
    params: str


def _valid_literal(literal: str) -> bool:
    inner = literal[1:-1]
    if _IPV4_RE.match(inner):
        return True
    if inner[:5].upper() == "IPV6:":
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return True
    # A general literal whose tag is IPv6 but whose address is not valid is refused above; other
    # standardized tags are accepted as the grammar allows.
    return bool(_GENERAL_RE.match(inner))


def parse_path(text: str, *, allow_null: bool, allow_postmaster: bool, utf8: bool) -> ParsedPath:
    """Parse ``<path> [params]`` (the text after ``FROM:`` or ``TO:``).

    Leading spaces are tolerated (``MAIL FROM: <a@b>`` is common, RFC 5321 §4.1.2 does not allow
    it but refusing it helps nobody). ``allow_null`` admits ``<>`` (reverse-path only);
    ``allow_postmaster`` admits bare ``<postmaster>`` (RFC 5321 §4.1.1.3, forward-path only).
    Raises :class:`PathSyntaxError`.
    """
    text = text.lstrip(" ")
    rest: str
    if text.startswith("<>"):
        if not allow_null:
            raise PathSyntaxError("empty path not allowed here")
        address, rest = "", text[2:]
    elif allow_postmaster and text[:12].lower() == "<postmaster>":
        address, rest = text[1:11], text[12:]
    else:
        match = (_PATH_UTF8 if utf8 else _PATH_ASCII).match(text)
        if match is None:
            if not utf8 and not text.isascii() and _PATH_UTF8.match(text):
                raise PathSyntaxError("UTF-8 address without SMTPUTF8", non_ascii=True)
            raise PathSyntaxError("malformed path")
        if match.group("domain").startswith("[") and not _valid_literal(match.group("domain")):
            raise PathSyntaxError("malformed address literal")
        address, rest = match.group("mailbox"), text[match.end() :]
    if rest and not rest.startswith(" "):
        raise PathSyntaxError("garbage after the path")
    return ParsedPath(address, rest.strip(" "))
