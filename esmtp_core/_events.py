"""Events the server core hands to the embedding code (what the SMTP client did).

Every event is an immutable dataclass. Two kinds:

* **Decisions** — :class:`Hello`, :class:`MailFrom`, :class:`RcptTo`, :class:`EndOfMessage`,
  :class:`Verify`, :class:`Expand`, :class:`UnknownCommand` and the AUTH queries of
  :mod:`esmtp_core._sasl` (:class:`~esmtp_core.AuthPasswordCheck`, ...). After one of these the
  connection is *paused* (``next_event()`` returns ``PAUSED``) until the embedding code answers
  with ``accept()``, ``reject()``, ``send_reply()`` (or ``provide_secret()`` for a secret lookup).
  Commands the client pipelined behind wait in the buffer, in order.
* **Notices** — everything else; the core already answered (or nothing needs answering).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._params import MailParams, RcptParams
from ._reply import Reply

__all__ = [
    "Authenticated",
    "BodyChunk",
    "ConnectionClosed",
    "EndOfMessage",
    "Event",
    "Expand",
    "Hello",
    "MailFrom",
    "MessageAborted",
    "Quit",
    "RcptTo",
    "Reset",
    "StartTLS",
    "UnknownCommand",
    "Verify",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of server events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Event):
    """HELO, EHLO or LHLO (decision). ``accept()`` sends the 250 reply with the capability list
    the session allows (a single line for HELO). Any open transaction was reset (RFC 5321 §4.1.4).
    """

    verb: str
    hostname: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MailFrom(Event):
    """MAIL FROM (decision). ``address`` is ``""`` for the null reverse-path ``<>``."""

    address: str
    params: MailParams


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptTo(Event):
    """RCPT TO (decision). ``address`` is the forward-path without angle brackets and without any
    source route; bare ``postmaster`` stays ``"postmaster"``."""

    address: str
    params: RcptParams


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyChunk(Event):
    """A piece of the message body (notice): exact bytes after dot-unstuffing (DATA) or as sent
    (BDAT). Concatenating every chunk up to :class:`EndOfMessage` gives the message."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfMessage(Event):
    """The final ``.`` of DATA or the end of ``BDAT ... LAST`` (decision).

    ``accept()`` sends 250 2.0.0 (the message is now the server's responsibility: make it durable
    first). In LMTP mode one reply is owed per accepted recipient, in the order of ``recipients``:
    call ``send_reply()`` once per recipient, or ``accept()``/``reject()`` for all remaining ones.
    """

    size: int
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAborted(Event):
    """The core refused the message in progress itself (notice): size limit, bare LF/CR policy,
    over-long line, a failed BDAT, or DATA/BDAT without any accepted recipient. ``reply`` is what
    the client was told. The transaction is over: discard the chunks received since it began."""

    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class Reset(Event):
    """RSET (notice; the core answered 250). Any transaction in progress is gone."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verify(Event):
    """VRFY (decision). ``accept()`` answers ``252 2.5.0`` (cannot verify, but will try)."""

    argument: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Expand(Event):
    """EXPN (decision; only when enabled in the config). ``accept()`` answers ``252``."""

    argument: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTLS(Event):
    """STARTTLS accepted (notice): the core queued ``220`` and dropped any plaintext pipelined
    behind the command. Flush ``data_to_send()``, do the TLS handshake, then call
    ``tls_started()``; until then ``next_event()`` returns ``PAUSED``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticated(Event):
    """AUTH succeeded (notice; the core sent 235)."""

    mechanism: str
    username: str
    authzid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownCommand(Event):
    """A verb the embedding code registered in ``ServerConfig.extra_commands`` (decision):
    answer it with ``send_reply()``."""

    verb: str
    argument: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Quit(Event):
    """QUIT (notice): the core queued ``221``; flush ``data_to_send()`` and close."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """The client closed its side (``receive_data(b"")``) (notice). A transaction in progress
    (``in_transaction``) is abandoned: nothing of it may be delivered."""

    in_transaction: bool = False


# --- fast construction for the server core's per-message path ------------------------------------
#
# A frozen dataclass's generated __init__ stores each field through object.__setattr__ (looked up
# per call), which makes building an event cost several times what storing two pointers should.
# The core builds four events per message, so for those it stores the fields through the slot
# descriptors directly. The result is an ordinary instance of the class: same fields, equality,
# hash, repr and immutability (assignment still raises FrozenInstanceError). None of these
# classes has a __post_init__ to skip.

_new = object.__new__


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


_set_mail_address = _slot_setter(MailFrom, "address")
_set_mail_params = _slot_setter(MailFrom, "params")
_set_rcpt_address = _slot_setter(RcptTo, "address")
_set_rcpt_params = _slot_setter(RcptTo, "params")
_set_chunk_data = _slot_setter(BodyChunk, "data")
_set_end_size = _slot_setter(EndOfMessage, "size")
_set_end_recipients = _slot_setter(EndOfMessage, "recipients")


def new_mail_from(address: str, params: MailParams) -> MailFrom:
    """``MailFrom(address=address, params=params)``, built faster (see above)."""
    event = _new(MailFrom)
    _set_mail_address(event, address)
    _set_mail_params(event, params)
    return event


def new_rcpt_to(address: str, params: RcptParams) -> RcptTo:
    """``RcptTo(address=address, params=params)``, built faster (see above)."""
    event = _new(RcptTo)
    _set_rcpt_address(event, address)
    _set_rcpt_params(event, params)
    return event


def new_body_chunk(data: bytes) -> BodyChunk:
    """``BodyChunk(data=data)``, built faster (see above)."""
    event = _new(BodyChunk)
    _set_chunk_data(event, data)
    return event


def new_end_of_message(size: int, recipients: tuple[str, ...]) -> EndOfMessage:
    """``EndOfMessage(size=size, recipients=recipients)``, built faster (see above)."""
    event = _new(EndOfMessage)
    _set_end_size(event, size)
    _set_end_recipients(event, recipients)
    return event
