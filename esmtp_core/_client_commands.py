"""Command lines built from typed values, with the client's refusals (RFC 5321 §4.1).

Every function returns the complete line as bytes (CRLF included) or raises
:class:`~esmtp_core.LocalProtocolError` when the command must not be sent:

* any CR, LF or other control character in an argument (it would end the command early and
  smuggle a second one);
* an address that is not a plain RFC 5321 path (angle brackets, controls, over 256 octets);
* a non-ASCII address or VRFY argument when SMTPUTF8 is not in use (RFC 6531 §3.4);
* a text that is not encodable as UTF-8 (lone surrogates);
* a MAIL/RCPT parameter for an extension the server did not offer (RFC 5321 §4.1.2: "parameters
  ... MUST only be used when the server has advertised the extension").
"""

from __future__ import annotations

import re

from ._capabilities import Capabilities
from ._errors import LocalProtocolError
from ._params import BodyType, MailParams, RcptParams, format_mail_params, format_rcpt_params

__all__ = [
    "build_line",
    "build_mail",
    "build_rcpt",
    "check_path",
    "check_text",
    "needs_smtputf8",
]

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# A quoted local part ("john doe"@example.com), where spaces are allowed.
_QUOTED_RE = re.compile(r'"(?:[^"\\]|\\.)*"')
# RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
_MAX_PATH_OCTETS = 256


def check_text(text: str, what: str) -> None:
    """Refuse control characters (CR and LF above all) and text that is not valid UTF-8."""
    if _CONTROL_RE.search(text):
        raise LocalProtocolError(f"{what} contains a control character (CR, LF, ...): {text!r}")
    if text.isascii():  # the usual case: ASCII always encodes
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{what} is not encodable as UTF-8: {text!r}") from None


def needs_smtputf8(text: str) -> bool:
    """Whether ``text`` needs SMTPUTF8 (RFC 6531): it contains a non-ASCII character."""
    return not text.isascii()


def check_path(address: str, what: str, *, allow_empty: bool) -> None:
    """Check an address for MAIL/RCPT: no brackets, controls or spaces outside a quoted local
    part; ``""`` (the null reverse-path ``<>``) only when ``allow_empty``."""
    check_text(address, what)
    if not address:
        if allow_empty:
            return
        raise LocalProtocolError(f"{what} may not be empty")
    if "<" in address or ">" in address:
        raise LocalProtocolError(f"{what} must be given without angle brackets: {address!r}")
    # A space may only appear inside a quoted local part ("john doe"@example.com).
    unquoted = _QUOTED_RE.sub("", address) if '"' in address else address
    if " " in unquoted or '"' in unquoted:
        raise LocalProtocolError(f"malformed {what}: {address!r}")
    octets = len(address) if address.isascii() else len(address.encode("utf-8"))
    if octets + 2 > _MAX_PATH_OCTETS:
        raise LocalProtocolError(f"{what} longer than {_MAX_PATH_OCTETS - 2} octets")


def build_line(verb: str, argument: str = "") -> bytes:
    """``VERB [argument] CRLF`` after :func:`check_text` on the argument."""
    check_text(argument, f"{verb} argument")
    return (f"{verb} {argument}\r\n" if argument else f"{verb}\r\n").encode("utf-8")


def _check_mail_offered(params: MailParams, caps: Capabilities) -> None:
    missing = []
    if params.size is not None and caps.size is None:
        missing.append("SIZE")
    if params.body is BodyType.EIGHT_BIT_MIME and not caps.eightbitmime:
        missing.append("8BITMIME")
    if params.body is BodyType.BINARY_MIME and not (caps.binarymime and caps.chunking):
        missing.append("BINARYMIME")
    if params.smtputf8 and not caps.smtputf8:
        missing.append("SMTPUTF8")
    if params.auth is not None and not caps.auth_mechanisms and not caps.has("AUTH"):
        missing.append("AUTH")
    if (params.ret is not None or params.envid is not None) and not caps.dsn:
        missing.append("DSN")
    if params.requiretls and not caps.requiretls:
        missing.append("REQUIRETLS")
    if missing:
        raise LocalProtocolError(f"the server did not offer {', '.join(missing)}")
    if params.size is not None and caps.size_limit is not None and params.size > caps.size_limit:
        raise LocalProtocolError(
            f"message of {params.size} octets exceeds the server's SIZE {caps.size_limit}"
        )


def build_mail(sender: str, params: MailParams, caps: Capabilities) -> bytes:
    """``MAIL FROM:<sender> params``. A non-ASCII sender needs ``params.smtputf8``, which needs
    the server's SMTPUTF8. ``params.extra`` is passed through (the caller declared it)."""
    check_path(sender, "sender", allow_empty=True)
    if needs_smtputf8(sender) and not params.smtputf8:
        raise LocalProtocolError("a non-ASCII sender needs SMTPUTF8 (RFC 6531)")
    _check_mail_offered(params, caps)
    words = format_mail_params(params)
    for word in words:
        check_text(word, "MAIL parameter")
    return " ".join([f"MAIL FROM:<{sender}>", *words]).encode("utf-8") + b"\r\n"


def build_rcpt(recipient: str, params: RcptParams, caps: Capabilities, *, smtputf8: bool) -> bytes:
    """``RCPT TO:<recipient> params``; ``smtputf8`` tells whether the transaction's MAIL carried
    the SMTPUTF8 parameter (needed for a non-ASCII recipient)."""
    check_path(recipient, "recipient", allow_empty=False)
    if needs_smtputf8(recipient) and not smtputf8:
        raise LocalProtocolError("a non-ASCII recipient needs SMTPUTF8 on MAIL (RFC 6531)")
    if (params.notify is not None or params.orcpt is not None) and not caps.dsn:
        raise LocalProtocolError("the server did not offer DSN (NOTIFY, ORCPT)")
    words = format_rcpt_params(params)
    for word in words:
        check_text(word, "RCPT parameter")
    return " ".join([f"RCPT TO:<{recipient}>", *words]).encode("utf-8") + b"\r\n"
