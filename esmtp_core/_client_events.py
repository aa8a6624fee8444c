"""Events the client core hands to the embedding code (what the SMTP server said).

Every event is an immutable dataclass deriving from :class:`ClientEvent` and carries the server's
:class:`~esmtp_core.Reply` (or replies). Failure is not an exception: a ``550`` to RCPT is an event
like any other, and the embedding code decides (an adapter typically raises
:class:`~esmtp_core.ReplyError`). Only a server that breaks the protocol raises
:class:`~esmtp_core.RemoteProtocolError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._capabilities import Capabilities
from ._reply import Reply

__all__ = [
    "AuthResult",
    "ClientEvent",
    "CommandReply",
    "DataReply",
    "EhloReply",
    "Greeting",
    "SessionEnded",
    "StartTLSReply",
    "TransactionResult",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientEvent:
    """Base class of client events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Greeting(ClientEvent):
    """The server's opening reply (RFC 5321 §3.1): ``220`` to go on; ``554`` means the server
    will refuse everything but QUIT; ``421`` is followed by :class:`SessionEnded`."""

    reply: Reply

    @property
    def ok(self) -> bool:
        """The server is ready (220)."""
        return self.reply.code == 220


@dataclass(frozen=True, slots=True, kw_only=True)
class EhloReply(ClientEvent):
    """The final reply to EHLO, HELO or LHLO (``verb`` says which was answered).

    When EHLO is refused with 500/502/504/550 and ``ClientConfig.helo_fallback`` is set, the core
    sends HELO by itself (RFC 5321 §3.2) and this event answers the HELO. ``capabilities`` is
    empty after HELO and after a refusal.
    """

    verb: str
    reply: Reply
    capabilities: Capabilities

    @property
    def ok(self) -> bool:
        """The server accepted the greeting (2xx); MAIL may follow."""
        return 200 <= self.reply.code < 300


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTLSReply(ClientEvent):
    """The reply to STARTTLS (RFC 3207). On ``220`` (:attr:`ready`) the core already discarded
    anything else the server sent in plaintext; flush ``data_to_send()`` (it is empty), do the TLS
    handshake, then call ``tls_started()`` and send EHLO again. Until then ``next_event()``
    returns ``PAUSED``."""

    reply: Reply

    @property
    def ready(self) -> bool:
        """The server is ready to start TLS (220)."""
        return self.reply.code == 220


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResult(ClientEvent):
    """The end of an AUTH exchange (RFC 4954): ``235`` on success.

    ``error`` is set when the exchange failed on our side: a malformed challenge or one the
    mechanism rejected (the core cancelled with ``*``), or a ``235`` before the mechanism had
    verified the server (SCRAM's server signature) — treat that as an attack and close.
    """

    mechanism: str
    reply: Reply
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """Authenticated: 235 and the mechanism is complete."""
        return self.reply.code == 235 and self.error is None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandReply(ClientEvent):
    """The reply to one command sent with a low-level method: MAIL, RCPT, DATA (``354`` or a
    refusal), a non-final BDAT, RSET, NOOP, VRFY or QUIT (``221``, then :class:`SessionEnded`).

    ``argument`` is the address for MAIL/RCPT, the argument for VRFY, else empty.
    """

    verb: str
    argument: str
    reply: Reply

    @property
    def ok(self) -> bool:
        """A positive reply (2xx, or 354 to DATA)."""
        return self.reply.code < 400


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReply(ClientEvent):
    """The reply to the end of a message sent with the low-level methods (the final ``.`` of DATA
    or ``BDAT ... LAST``). In LMTP (RFC 2033 §4.2) there is one per accepted recipient, in RCPT
    order, with ``recipient`` set; in SMTP one, with ``recipient`` ``None``."""

    reply: Reply
    recipient: str | None = None

    @property
    def ok(self) -> bool:
        """The message was accepted (2xx) (for ``recipient`` in LMTP)."""
        return 200 <= self.reply.code < 300


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionResult(ClientEvent):
    """The outcome of a transaction sent with ``start_transaction()``/``send_message()``.

    ``mail_reply`` answers MAIL; ``recipients`` lists every intended recipient in RCPT order
    (also those whose RCPT was never sent); ``recipient_replies`` pairs every recipient whose
    RCPT was sent with its reply; ``data_replies`` holds the reply (or, in LMTP, the
    per-recipient replies, paired with the recipient) that decided the message: the reply after
    the final dot or ``BDAT LAST``, a refused DATA or BDAT, or nothing when the message never got
    that far. Use :meth:`outcomes` for the verdict per recipient.
    """

    sender: str
    mail_reply: Reply
    recipient_replies: tuple[tuple[str, Reply], ...] = ()
    data_replies: tuple[tuple[str | None, Reply], ...] = ()
    recipients: tuple[str, ...] = ()

    @property
    def accepted(self) -> tuple[str, ...]:
        """Recipients the message was delivered to (the server took responsibility)."""
        return tuple(rcpt for rcpt, reply in self.outcomes().items() if 200 <= reply.code < 300)

    @property
    def ok(self) -> bool:
        """The message was accepted for at least one recipient."""
        return bool(self.accepted)

    def outcomes(self) -> dict[str, Reply]:
        """The reply that decided each recipient's fate, for every recipient in RCPT order.

        When MAIL was refused every recipient gets the MAIL reply, whatever a confused server
        said afterwards (none of the message was sent): also those whose RCPT was never sent,
        which is the rule without PIPELINING (RFC 5321 §3.3: no RCPT after a refused MAIL).
        Otherwise a refused RCPT gives its RCPT reply and an accepted one the data reply (its own
        in LMTP, RFC 2033 §4.2). A recipient whose RCPT was not sent although MAIL was accepted
        (the core never leaves one so: a ``421`` answers every unanswered RCPT) gets the first
        refusal after the envelope, or is left out when there is none — a recipient is never
        counted as accepted without the server's word.
        """
        sent = dict(self.recipient_replies)
        everyone: Sequence[str] = self.recipients
        if not sent.keys() <= set(everyone):
            # RCPTs sent for addresses not among ``recipients`` (a hand-made result): they
            # follow the intended ones.
            intended = set(everyone)
            everyone = [*everyone, *(rcpt for rcpt in sent if rcpt not in intended)]
        mail_reply = self.mail_reply
        if mail_reply.code >= 400:
            return dict.fromkeys(everyone, mail_reply)
        # One pass over the data replies: per recipient (LMTP; a later one wins), the first
        # overall one, and the first refusal.
        per_recipient: dict[str, Reply] = {}
        overall: Reply | None = None
        stopper: Reply | None = None
        for rcpt, data_reply in self.data_replies:
            if rcpt is not None:
                per_recipient[rcpt] = data_reply
            elif overall is None:
                overall = data_reply
            if stopper is None and data_reply.code >= 400:
                stopper = data_reply
        result: dict[str, Reply] = {}
        for rcpt in everyone:
            reply = sent.get(rcpt)
            if reply is None:
                if stopper is not None:
                    result[rcpt] = stopper
            elif not 200 <= reply.code < 300:
                result[rcpt] = reply
            elif rcpt in per_recipient:
                result[rcpt] = per_recipient[rcpt]
            elif overall is not None:
                result[rcpt] = overall
            else:
                result[rcpt] = reply
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded(ClientEvent):
    """The session is over; close the connection. Returned again by every later
    ``next_event()``.

    ``reply`` is the ``221`` answering QUIT, the ``421`` with which the server closed (answering
    a command, or unsolicited), or ``None`` when the server simply closed the connection.
    ``in_transaction`` is true when a transaction was cut short (nothing of it was delivered
    unless a ``DataReply``/``TransactionResult`` said so).
    """

    reply: Reply | None = None
    in_transaction: bool = False
