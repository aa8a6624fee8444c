"""Server session state that does not depend on the wire: phases, the mail transaction, the
fixed replies the core sends on its own and the default answers to decision events (RFC 5321
§4.1.4 sequencing, §4.2 reply codes).
"""

from __future__ import annotations

import enum
from typing import TypeVar

from ._events import EndOfMessage, Expand, Hello, MailFrom, RcptTo, UnknownCommand, Verify
from ._params import MailParams
from ._reply import Reply, constant_reply

__all__ = [
    "ACCEPT_WIRE",
    "DEFAULT_REPLIES",
    "DEFAULT_REPLY_OBJECTS",
    "HELLO_WIRE",
    "SESSION_WIRE",
    "Phase",
    "Replies",
    "Transaction",
    "remember",
]


class Phase(enum.Enum):
    """What the next bytes from the client are."""

    #: Command lines.
    COMMAND = "command"
    #: A DATA body, until CRLF.CRLF.
    DATA = "data"
    #: The octets of a BDAT chunk (RFC 3030), counted.
    BDAT = "bdat"
    #: A SASL response line after a 334 (RFC 4954 §4).
    AUTH = "auth"
    #: STARTTLS was accepted; nothing is read until the transport reports TLS (RFC 3207 §4.2).
    STARTTLS = "starttls"
    #: The session is over.
    CLOSED = "closed"


# The members again as module constants, for the per-command path: ``Phase.X`` costs a class
# attribute lookup through the enum metaclass (about 60 ns in CPython 3.11) on every test. The
# server modules import these under their own short names.
PHASE_COMMAND = Phase.COMMAND
PHASE_DATA = Phase.DATA
PHASE_BDAT = Phase.BDAT
PHASE_AUTH = Phase.AUTH
PHASE_STARTTLS = Phase.STARTTLS
PHASE_CLOSED = Phase.CLOSED


class Transaction:
    """One mail transaction (RFC 5321 §3.3): from an accepted MAIL to the end of the message.

    A plain slotted class rather than a dataclass: one is built per message, and the generated
    ``__init__`` with a ``default_factory`` cost several times this one.
    """

    __slots__ = ("chunking", "params", "recipients", "sender", "size")

    def __init__(self, sender: str, params: MailParams) -> None:
        self.sender = sender
        self.params = params
        #: Accepted forward-paths, in order.
        self.recipients: list[str] = []
        #: A BDAT chunk was accepted: DATA and RCPT are no longer allowed (RFC 3030 §2).
        self.chunking = False
        #: Octets received in BDAT chunks so far.
        self.size = 0

    def __repr__(self) -> str:
        return (
            f"Transaction(sender={self.sender!r}, params={self.params!r}, "
            f"recipients={self.recipients!r}, chunking={self.chunking!r}, size={self.size!r})"
        )


def _r(code: int, enhanced: str | None, text: str) -> Reply:
    # A process-wide constant: its wire bytes are built once (see constant_reply).
    return constant_reply(Reply.make(code, enhanced, text))


class Replies:
    """The replies the core decides by itself, in one place so tests and docs can cite them."""

    NEED_HELLO = _r(503, "5.5.1", "Send EHLO or HELO first")
    NEED_LHLO = _r(503, "5.5.1", "Send LHLO first")
    NESTED_MAIL = _r(503, "5.5.1", "Sender already specified")
    NEED_MAIL = _r(503, "5.5.1", "Need MAIL command first")
    NEED_EHLO = _r(503, "5.5.1", "Send EHLO first: AUTH is a service extension")
    NEED_RCPT_SMTP = _r(554, "5.5.1", "No valid recipients")
    NEED_RCPT_LMTP = _r(503, "5.5.1", "No valid recipients")
    RCPT_AFTER_BDAT = _r(503, "5.5.1", "RCPT not allowed after BDAT")
    DATA_IN_BDAT = _r(503, "5.5.1", "DATA not allowed in a BDAT transaction")
    DATA_BINARYMIME = _r(503, "5.5.1", "BODY=BINARYMIME requires BDAT")
    REFUSED_SESSION = _r(503, "5.5.1", "Service refused; only QUIT is accepted")
    UNKNOWN = _r(500, "5.5.1", "Command not recognized")
    LMTP_USE_LHLO = _r(500, "5.5.1", "Command not recognized; this is LMTP, use LHLO")
    BAD_CHARACTERS = _r(500, "5.5.2", "Syntax error: invalid characters in command")
    LINE_TOO_LONG = _r(500, "5.5.6", "Line too long")
    NOT_IMPLEMENTED = _r(502, "5.5.1", "Command not implemented")
    BAD_SENDER = _r(501, "5.1.7", "Bad sender address syntax")
    BAD_RECIPIENT = _r(501, "5.1.3", "Bad recipient address syntax")
    UTF8_ADDRESS = _r(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
    TOO_MANY_RECIPIENTS = _r(452, "4.5.3", "Too many recipients")
    TOO_BIG = _r(552, "5.3.4", "Message size exceeds fixed maximum message size")
    BARE_LINE_ENDING = _r(550, "5.6.11", "Message contains a bare CR or LF (RFC 5321 §2.3.8)")
    AUTH_REQUIRED = _r(530, "5.7.0", "Authentication required")
    AUTH_NEEDS_TLS = _r(538, "5.7.11", "Encryption required for requested authentication mechanism")
    AUTH_TWICE = _r(503, "5.5.1", "Already authenticated")
    AUTH_IN_TRANSACTION = _r(503, "5.5.1", "AUTH not allowed during a mail transaction")
    AUTH_UNKNOWN_MECHANISM = _r(504, "5.5.4", "Unrecognized authentication type")
    AUTH_UNAVAILABLE = _r(502, "5.5.1", "AUTH not available")
    AUTH_CANCELLED = _r(501, "5.7.0", "Authentication cancelled")
    AUTH_BAD_BASE64 = _r(501, "5.5.2", "Cannot decode base64 response")
    AUTH_LINE_TOO_LONG = _r(500, "5.5.6", "Authentication exchange line is too long")
    AUTH_TEMPORARY = _r(454, "4.7.0", "Temporary authentication failure")
    AUTH_SUCCESS = _r(235, "2.7.0", "Authentication successful")
    TLS_ACTIVE = _r(503, "5.5.1", "TLS already active")
    TLS_UNAVAILABLE = _r(502, "5.5.1", "STARTTLS not available")
    TLS_IN_TRANSACTION = _r(503, "5.5.1", "STARTTLS not allowed during a mail transaction")
    TLS_READY = _r(220, "2.0.0", "Ready to start TLS")
    OK = _r(250, "2.0.0", "OK")
    CHUNK_RECEIVED = _r(250, "2.0.0", "Chunk received")
    START_DATA = _r(354, None, "End data with <CR><LF>.<CR><LF>")
    TOO_MANY_ERRORS = _r(421, "4.7.0", "Too many errors, closing connection")
    TOO_MANY_COMMANDS = _r(421, "4.7.0", "Too many commands, closing connection")

    @staticmethod
    def syntax(usage: str) -> Reply:
        """501 5.5.4 with the command's usage."""
        return Reply.make(501, "5.5.4", f"Syntax: {usage}")

    @staticmethod
    def line_too_long(limit: int) -> Reply:
        """Refusal of a DATA body with a line over the limit (RFC 5321 §4.5.3.1.6)."""
        return Reply.make(554, "5.6.0", f"Message has a line longer than {limit} octets")


_Default = tuple[int, str, str]  # code, enhanced status code (RFC 3463), text
#: The replies of accept() without text and of reject() without a reply, per decision event
#: (RFC 5321 §4.2.2-§4.2.3 codes). Hello's positive reply is built from the capabilities.
DEFAULT_REPLIES: dict[type, tuple[_Default | None, _Default]] = {
    Hello: (None, (550, "5.7.1", "Hello rejected")),
    MailFrom: ((250, "2.1.0", "Sender OK"), (550, "5.7.1", "Sender rejected")),
    RcptTo: ((250, "2.1.5", "Recipient OK"), (550, "5.1.1", "Recipient rejected")),
    EndOfMessage: ((250, "2.0.0", "Message accepted"), (554, "5.7.1", "Message rejected")),
    Verify: (
        (252, "2.5.0", "Cannot VRFY user, but will accept message"),
        (550, "5.1.1", "User unknown"),
    ),
    Expand: ((252, "2.5.0", "Cannot EXPN list"), (550, "5.1.1", "List unknown")),
    UnknownCommand: ((250, "2.0.0", "OK"), (500, "5.5.1", "Command not recognized")),
}

#: The same defaults as process-wide Reply constants (positive or None, negative), so that
#: accept() and reject() without text neither build nor format a reply per transaction.
DEFAULT_REPLY_OBJECTS: dict[type, tuple[Reply | None, Reply]] = {
    kind: (
        None if positive is None else constant_reply(Reply.make(*positive)),
        constant_reply(Reply.make(*negative)),
    )
    for kind, (positive, negative) in DEFAULT_REPLIES.items()
}


def _accept_wire(*, enhanced: bool, lmtp: bool) -> dict[type, bytes]:
    # LMTP answers the end of data once per recipient (RFC 2033 §4.2): not a single fixed wire.
    return {
        kind: positive.to_bytes(enhanced_codes=enhanced)
        for kind, (positive, _) in DEFAULT_REPLY_OBJECTS.items()
        if positive is not None and not (lmtp and kind is EndOfMessage)
    }


#: The wire bytes of accept() without text, per decision event type, keyed by
#: ``(enhanced_status_codes, lmtp)``: the commonest answers go out without building or even
#: looking up a Reply. Event types missing here (Hello, AUTH queries, LMTP's EndOfMessage) take
#: the general path.
ACCEPT_WIRE: dict[tuple[bool, bool], dict[type, bytes]] = {
    (enhanced, lmtp): _accept_wire(enhanced=enhanced, lmtp=lmtp)
    for enhanced in (False, True)
    for lmtp in (False, True)
}


#: Wire bytes of replies whose text depends only on configuration values: the default greeting
#: and the 221 to QUIT, keyed by those values (so never stale), formatted once per process
#: rather than once per session. See :func:`remember`.
SESSION_WIRE: dict[tuple[object, ...], bytes] = {}
#: The positive HELO/EHLO/LHLO replies by their lines: the wire bytes and the AUTH mechanisms
#: they advertise.
HELLO_WIRE: dict[tuple[str, ...], tuple[bytes, tuple[str, ...]]] = {}
# An application may build a configuration per session (or pass accept() a text per client):
# the caches are cleared when they reach this size instead of growing without bound.
_CACHE_LIMIT = 256

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def remember(cache: dict[_Key, _Value], key: _Key, value: _Value) -> _Value:
    """Store ``value`` in one of the caches above (bounded); returns it."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value
