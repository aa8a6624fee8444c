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

from dataclasses import dataclass

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
