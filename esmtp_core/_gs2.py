"""The GS2 header and ``saslname`` encoding shared by SCRAM (RFC 5802) and OAUTHBEARER (RFC 7628).

RFC 5802 §7::

    gs2-header      = gs2-cbind-flag "," [ authzid ] ","
    gs2-cbind-flag  = ("p=" cb-name) / "n" / "y"
                      ;; "n" -> client doesn't support channel binding.
                      ;; "y" -> client does support channel binding
                      ;;        but thinks the server does not.
                      ;; "p" -> client requires channel binding.
    authzid         = "a=" saslname
    saslname        = 1*(value-safe-char / "=2C" / "=3D")
    value-safe-char = %x01-2B / %x2D-3C / %x3E-7F / UTF8-2 / UTF8-3 / UTF8-4
    cb-name         = 1*(ALPHA / DIGIT / "." / "-")    ;; RFC 5056 §7
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Gs2Header",
    "Gs2SyntaxError",
    "escape_saslname",
    "parse_gs2_header",
    "unescape_saslname",
]

# saslname: no NUL, no ",", and "=" only as the start of "=2C" or "=3D".
_SASLNAME_RE = re.compile(r"(?:[^\x00,=]|=2C|=3D)+\Z")
_SASLNAME_ESCAPE_RE = re.compile(r"=(2C|3D)")
_CB_NAME_RE = re.compile(r"[A-Za-z0-9.-]+\Z")


class Gs2SyntaxError(ValueError):
    """A GS2 header or ``saslname`` that does not follow the RFC 5802 §7 grammar."""


@dataclass(frozen=True, slots=True)
class Gs2Header:
    """A parsed GS2 header (RFC 5801 §4, as profiled by RFC 5802 §7).

    ``flag`` is ``"n"``, ``"y"`` or ``"p"``; ``cb_name`` is the channel binding type for ``"p"``;
    ``raw`` is the header exactly as received, trailing comma included (SCRAM's ``c=`` attribute
    must reproduce it byte for byte).
    """

    flag: str
    cb_name: str | None
    authzid: str | None
    raw: str


def escape_saslname(name: str) -> str:
    """Encode ``,`` and ``=`` as ``=2C`` and ``=3D`` (RFC 5802 §5.1, the ``n`` attribute)."""
    return name.replace("=", "=3D").replace(",", "=2C")


def unescape_saslname(text: str) -> str:
    """Decode a ``saslname``; raise :class:`Gs2SyntaxError` on any other ``=`` sequence, a NUL,
    a comma or an empty name (RFC 5802 §5.1: "the server MUST fail the authentication")."""
    if not _SASLNAME_RE.match(text):
        raise Gs2SyntaxError("malformed saslname")
    return _SASLNAME_ESCAPE_RE.sub(lambda m: "," if m.group(1) == "2C" else "=", text)


def parse_gs2_header(message: str) -> tuple[Gs2Header, str]:
    """Split ``message`` into its GS2 header and the rest (the client-first-message-bare for
    SCRAM, the kvpairs for OAUTHBEARER)."""
    parts = message.split(",", 2)
    if len(parts) != 3:
        raise Gs2SyntaxError("missing GS2 header")
    flag, authz, rest = parts
    cb_name: str | None = None
    if flag.startswith("p="):
        cb_name = flag[2:]
        if not _CB_NAME_RE.match(cb_name):
            raise Gs2SyntaxError("malformed channel binding name")
        flag = "p"
    elif flag not in ("n", "y"):
        raise Gs2SyntaxError("unknown GS2 channel binding flag")
    authzid: str | None = None
    if authz:
        if not authz.startswith("a="):
            raise Gs2SyntaxError("malformed authzid in GS2 header")
        authzid = unescape_saslname(authz[2:])
    raw = message[: len(message) - len(rest)]
    return Gs2Header(flag=flag, cb_name=cb_name, authzid=authzid, raw=raw), rest
