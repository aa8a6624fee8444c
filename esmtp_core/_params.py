"""MAIL and RCPT parameters as typed values (RFC 5321 §4.1.2 esmtp-param).

The server core parses the parameter string of ``MAIL FROM:<...> PARAMS`` and
``RCPT TO:<...> PARAMS`` into :class:`MailParams` / :class:`RcptParams`; the client core formats
those same objects back into text. Parameters covered:

=============  ==========  =====================================================
keyword        command     defined by
=============  ==========  =====================================================
SIZE           MAIL        RFC 1870
BODY           MAIL        RFC 6152 (8BITMIME), RFC 3030 (BINARYMIME)
SMTPUTF8       MAIL        RFC 6531
AUTH           MAIL        RFC 4954 §5 (xtext)
RET, ENVID     MAIL        RFC 3461 (DSN; ENVID is xtext)
REQUIRETLS     MAIL        RFC 8689
NOTIFY, ORCPT  RCPT        RFC 3461 (ORCPT is ``addr-type ";" xtext``)
=============  ==========  =====================================================

Unknown keywords and duplicates are errors (``555 5.5.4``) unless the embedding code declared the
keyword as an extension, in which case it is kept verbatim in ``extra`` (in order; duplicates are
still refused, unlike go-smtp's map).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ._errors import LocalProtocolError
from ._reply import Reply

__all__ = [
    "NO_MAIL_PARAMS",
    "NO_RCPT_PARAMS",
    "BodyType",
    "DsnNotify",
    "DsnReturn",
    "MailParams",
    "ParameterError",
    "RcptParams",
    "format_mail_params",
    "format_rcpt_params",
    "mail_params_with_size",
    "parse_mail_params",
    "parse_rcpt_params",
    "xtext_decode",
    "xtext_encode",
]


class BodyType(enum.Enum):
    """The ``BODY=`` value of MAIL."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARY_MIME = "BINARYMIME"


class DsnReturn(enum.Enum):
    """The ``RET=`` value of MAIL (RFC 3461 §4.3)."""

    FULL = "FULL"
    HEADERS = "HDRS"


class DsnNotify(enum.Enum):
    """One ``NOTIFY=`` condition of RCPT (RFC 3461 §4.1). NEVER must stand alone."""

    NEVER = "NEVER"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


@dataclass(frozen=True, slots=True, kw_only=True)
class MailParams:
    """Typed parameters of MAIL FROM. ``None``/``False`` means the parameter was absent."""

    size: int | None = None
    body: BodyType | None = None
    smtputf8: bool = False
    #: RFC 4954 §5 ``AUTH=`` mailbox, xtext-decoded; ``"<>"`` when the submitter is unknown.
    auth: str | None = None
    ret: DsnReturn | None = None
    #: RFC 3461 ENVID, xtext-decoded.
    envid: str | None = None
    requiretls: bool = False
    #: Parameters of extensions the embedding code declared: ``(KEYWORD, value or None)``.
    extra: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptParams:
    """Typed parameters of RCPT TO."""

    notify: frozenset[DsnNotify] | None = None
    #: RFC 3461 ORCPT as ``(addr_type, address)``, the address xtext-decoded.
    orcpt: tuple[str, str] | None = None
    extra: tuple[tuple[str, str | None], ...] = ()


#: MAIL and RCPT without parameters (the usual case): immutable, so one instance serves every
#: command, equal to what parsing an empty parameter string gives.
NO_MAIL_PARAMS = MailParams()
NO_RCPT_PARAMS = RcptParams()

# MailParams' generated __init__ stores eight fields through object.__setattr__; for the one
# parameter most clients send, the fields are stored through the slot descriptors instead.
_MAIL_PARAMS_SLOTS = tuple(
    (MailParams.__dict__[field.name].__set__, getattr(NO_MAIL_PARAMS, field.name))
    for field in dataclasses.fields(MailParams)
    if field.name != "size"
)
_set_size = MailParams.__dict__["size"].__set__


def mail_params_with_size(size: int) -> MailParams:
    """``MailParams(size=size)`` (RFC 1870 ``SIZE=`` alone), built faster: the same class,
    equality and immutability."""
    params: MailParams = object.__new__(MailParams)
    for setter, default in _MAIL_PARAMS_SLOTS:
        setter(params, default)
    _set_size(params, size)
    return params


class ParameterError(ValueError):
    """A parameter string the server must refuse; ``reply`` is the reply to send."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


# RFC 5321 §4.1.2:  esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
#                   esmtp-value   = 1*(%d33-60 / %d62-126)   ; any CHAR excluding "=", SP, CTL
# RFC 6531 §3.3 extends esmtp-value with UTF8-non-ascii, which we allow (the caller checks that
# SMTPUTF8 is in use before allowing non-ASCII at all).
_KEYWORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_VALUE_RE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+\Z")
# RFC 3461 §4:  xtext = *( xchar / hexchar ); xchar = "!".."~" except "+" and "=";
#               hexchar = "+" 2(%x30-39 / %x41-46)   ; uppercase hex only
_XTEXT_RE = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*\Z")
_XTEXT_HEX_RE = re.compile(r"\+([0-9A-F]{2})")
_XTEXT_NEEDS_ESCAPE_RE = re.compile(r"[^\x21-\x2a\x2c-\x3c\x3e-\x7e]")
# RFC 3461 §4.2: addr-type = atom
_ATOM_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\Z")

_SYNTAX = Reply.make(501, "5.5.4", "Syntax error in parameters")


def _refuse(code: int, enhanced: str, text: str) -> ParameterError:
    return ParameterError(Reply.make(code, enhanced, text))


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 xtext; raise :class:`ParameterError` (501 5.5.4) when malformed."""
    if not _XTEXT_RE.match(value):
        raise _refuse(501, "5.5.4", "Malformed xtext value")
    return _XTEXT_HEX_RE.sub(lambda m: chr(int(m.group(1), 16)), value)


def xtext_encode(value: str) -> str:
    """Encode a string as RFC 3461 xtext (``+``, ``=``, controls, space and 8-bit as ``+HH``).

    Non-ASCII characters are encoded as the ``+HH`` of each UTF-8 octet.
    """

    def escape(match: re.Match[str]) -> str:
        return "".join(f"+{octet:02X}" for octet in match.group(0).encode("utf-8"))

    return _XTEXT_NEEDS_ESCAPE_RE.sub(escape, value)


def _split(text: str) -> list[tuple[str, str | None]]:
    """Split ``KEY[=VALUE] KEY[=VALUE] ...`` into pairs, keyword upper-cased, strict syntax."""
    pairs: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for token in text.split(" "):
        if not token:
            continue  # tolerate runs of spaces (many clients send two)
        keyword, eq, value = token.partition("=")
        if not _KEYWORD_RE.match(keyword):
            raise ParameterError(_SYNTAX)
        if eq and not _VALUE_RE.match(value):
            raise ParameterError(_SYNTAX)
        upper = keyword.upper()
        if upper in seen:
            raise _refuse(555, "5.5.4", f"Duplicate parameter {upper}")
        seen.add(upper)
        pairs.append((upper, value if eq else None))
    return pairs


def _offered(
    text: str,
    allowed: Collection[str],
    extra_allowed: Collection[str],
    extra: list[tuple[str, str | None]],
) -> Iterator[tuple[str, str | None]]:
    """The parameters of ``text`` in order (RFC 5321 §4.1.2 ``esmtp-param``): extension keywords
    are appended to ``extra`` as they are, a keyword the session did not offer raises 555 when
    it is reached (so an earlier parameter's error is reported first), the others are yielded."""
    for keyword, value in _split(text):
        if keyword in extra_allowed:
            extra.append((keyword, value))
        elif keyword not in allowed:
            raise _unknown(keyword)
        else:
            yield keyword, value


def _unknown(keyword: str) -> ParameterError:
    return _refuse(555, "5.5.4", f"Unsupported parameter {keyword}")


def _need_value(keyword: str, value: str | None) -> str:
    if value is None:
        raise _refuse(501, "5.5.4", f"{keyword} needs a value")
    return value


_Keyword = TypeVar("_Keyword", bound=enum.Enum)


def _enum_value(kind: type[_Keyword], keyword: str, value: str | None, error: str) -> _Keyword:
    """The member of ``kind`` named by ``value`` (any case); 501 5.5.4 ``error`` otherwise, a
    missing value included."""
    try:
        return kind(_need_value(keyword, value).upper())
    except ValueError:  # ParameterError (no value) is a ValueError too: one reply for both
        raise _refuse(501, "5.5.4", error) from None


def _no_value(keyword: str, value: str | None) -> None:
    if value is not None:
        raise _refuse(501, "5.5.4", f"{keyword} takes no value")


def parse_mail_params(
    text: str,
    *,
    allowed: Collection[str],
    extra_allowed: Collection[str] = (),
    max_size: int | None = None,
) -> MailParams:
    """Parse MAIL parameters. ``allowed`` holds the keywords the session offered (e.g. ``SIZE``,
    ``BODY``, ``SMTPUTF8``, ``AUTH``, ``RET``, ``ENVID``, ``REQUIRETLS``); ``extra_allowed`` holds
    extension keywords passed through verbatim. ``max_size`` enforces RFC 1870 (552 5.3.4).
    """
    size: int | None = None
    body: BodyType | None = None
    smtputf8 = False
    auth: str | None = None
    ret: DsnReturn | None = None
    envid: str | None = None
    requiretls = False
    extra: list[tuple[str, str | None]] = []
    for keyword, value in _offered(text, allowed, extra_allowed, extra):
        if keyword == "SIZE":
            raw = _need_value(keyword, value)
            if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
                raise _refuse(501, "5.5.4", "Malformed SIZE value")
            size = int(raw)
            if max_size is not None and size > max_size:
                raise _refuse(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif keyword == "BODY":
            body = _enum_value(BodyType, keyword, value, "Unknown BODY type")
        elif keyword == "SMTPUTF8":
            _no_value(keyword, value)
            smtputf8 = True
        elif keyword == "AUTH":
            auth = xtext_decode(_need_value(keyword, value))
        elif keyword == "RET":
            ret = _enum_value(DsnReturn, keyword, value, "RET must be FULL or HDRS")
        elif keyword == "ENVID":
            envid = xtext_decode(_need_value(keyword, value))
            if len(envid) > 100:  # RFC 3461 §4.4: at most 100 characters
                raise _refuse(501, "5.5.4", "ENVID too long")
        elif keyword == "REQUIRETLS":
            _no_value(keyword, value)
            requiretls = True
        else:
            raise _unknown(keyword)
    return MailParams(
        size=size,
        body=body,
        smtputf8=smtputf8,
        auth=auth,
        ret=ret,
        envid=envid,
        requiretls=requiretls,
        extra=tuple(extra),
    )


def parse_rcpt_params(
    text: str, *, allowed: Collection[str], extra_allowed: Collection[str] = ()
) -> RcptParams:
    """Parse RCPT parameters (``NOTIFY``, ``ORCPT`` when DSN is offered, plus extensions)."""
    notify: frozenset[DsnNotify] | None = None
    orcpt: tuple[str, str] | None = None
    extra: list[tuple[str, str | None]] = []
    for keyword, value in _offered(text, allowed, extra_allowed, extra):
        if keyword == "NOTIFY":
            try:
                items = [DsnNotify(item.upper()) for item in _need_value(keyword, value).split(",")]
            except ValueError:
                raise _refuse(501, "5.5.4", "Bad NOTIFY value") from None
            notify = frozenset(items)
            if len(items) != len(notify) or (DsnNotify.NEVER in notify and len(notify) > 1):
                raise _refuse(501, "5.5.4", "Bad NOTIFY value")
        elif keyword == "ORCPT":
            addr_type, semi, address = _need_value(keyword, value).partition(";")
            if not semi or not _ATOM_RE.match(addr_type):
                raise _refuse(501, "5.5.4", "Malformed ORCPT value")
            orcpt = (addr_type, xtext_decode(address))
        else:
            raise _unknown(keyword)
    return RcptParams(notify=notify, orcpt=orcpt, extra=tuple(extra))


def _format_extra(extra: tuple[tuple[str, str | None], ...]) -> list[str]:
    out = []
    for keyword, value in extra:
        if not _KEYWORD_RE.match(keyword) or (value is not None and not _VALUE_RE.match(value)):
            raise LocalProtocolError(f"malformed extension parameter {keyword!r}={value!r}")
        out.append(keyword if value is None else f"{keyword}={value}")
    return out


def format_mail_params(params: MailParams) -> list[str]:
    """The ``KEY=VALUE`` words for MAIL FROM, in a stable order."""
    out = []
    if params.size is not None:
        if params.size < 0:
            raise LocalProtocolError("SIZE must not be negative")
        out.append(f"SIZE={params.size}")
    if params.body is not None:
        out.append(f"BODY={params.body.value}")
    if params.smtputf8:
        out.append("SMTPUTF8")
    if params.auth is not None:
        out.append(f"AUTH={xtext_encode(params.auth)}")
    if params.ret is not None:
        out.append(f"RET={params.ret.value}")
    if params.envid is not None:
        out.append(f"ENVID={xtext_encode(params.envid)}")
    if params.requiretls:
        out.append("REQUIRETLS")
    return out + _format_extra(params.extra)


_NOTIFY_ORDER = (DsnNotify.NEVER, DsnNotify.SUCCESS, DsnNotify.FAILURE, DsnNotify.DELAY)


def format_rcpt_params(params: RcptParams) -> list[str]:
    """The ``KEY=VALUE`` words for RCPT TO, in a stable order."""
    out = []
    if params.notify is not None:
        if not params.notify or (DsnNotify.NEVER in params.notify and len(params.notify) > 1):
            raise LocalProtocolError("NOTIFY needs NEVER alone or a set of conditions")
        out.append("NOTIFY=" + ",".join(n.value for n in _NOTIFY_ORDER if n in params.notify))
    if params.orcpt is not None:
        addr_type, address = params.orcpt
        if not _ATOM_RE.match(addr_type):
            raise LocalProtocolError(f"malformed ORCPT address type {addr_type!r}")
        out.append(f"ORCPT={addr_type};{xtext_encode(address)}")
    return out + _format_extra(params.extra)
