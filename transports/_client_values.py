"""Values shared by the clients, without protocol logic: :class:`ClientOptions` (validated
arguments), :class:`SendResult` (per-recipient outcome) and :func:`prepare_message` (an
``EmailMessage`` turned into an envelope and bytes, as :meth:`smtplib.SMTP.send_message` does).

Also the batch items of ``send_many`` (:data:`BatchItem`) and :func:`send_error`, the typed
exception for a message nobody accepted. The sequencing of the protocol is in
:mod:`transports._client_driver`, which re-exports these.
"""

from __future__ import annotations

import copy
import dataclasses
import email.generator
import email.message
import email.policy
import email.utils
import io
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from esmtp_core import (
    ChannelBinding,
    ClientConfig,
    DsnNotify,
    DsnReturn,
    MailParams,
    RcptParams,
    Reply,
    TransactionResult,
)

from .errors import SMTPClientError, SMTPDataError, SMTPRecipientsRefused, SMTPSenderRefused

__all__ = [
    "TLS_MODES",
    "BatchItem",
    "ClientOptions",
    "HasEnvelope",
    "Message",
    "SendResult",
    "TlsMode",
    "channel_binding",
    "default_local_hostname",
    "envelope",
    "prepare_message",
    "send_error",
    "unpack_batch_item",
]

#: How a client uses TLS: STARTTLS required, STARTTLS when offered, TLS from the first byte
#: (RFC 8314), or never.
TlsMode = Literal["starttls", "starttls-opportunistic", "implicit"]
TLS_MODES: tuple[str, ...] = ("starttls", "starttls-opportunistic", "implicit")

#: What ``send_message`` accepts: an ``email`` message object or the exact bytes to send.
Message = email.message.Message | bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """Everything a client needs besides the socket, validated when created."""

    host: str
    port: int
    local_hostname: str | None = None
    tls: TlsMode | None = None
    ssl_context: ssl.SSLContext | None = None
    #: Name checked against the server certificate (and sent as SNI); default ``host``.
    server_hostname: str | None = None
    #: Seconds for connecting (None: ``timeout``).
    connect_timeout: float | None = None
    #: Seconds for each reply (as a whole, see ``ClientDriver.read_timeout``), each write and
    #: each TLS handshake; None: wait forever.
    timeout: float | None = 60.0
    lmtp: bool = False
    allow_insecure_auth: bool = False
    #: Further core options (chunk size, extensions to avoid, ...); ``lmtp``,
    #: ``allow_insecure_auth``, ``local_hostname`` and ``tls_on_connect`` are set from the above.
    config: ClientConfig | None = None

    def __post_init__(self) -> None:
        """Validate the client arguments (``ValueError`` for nonsense)."""
        if self.tls is not None and self.tls not in TLS_MODES:
            raise ValueError(
                f"tls must be one of {', '.join(TLS_MODES)} or None, not {self.tls!r}"
            )
        for name in ("timeout", "connect_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, not {value!r}")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"bad port {self.port!r}")
        if self.local_hostname is not None:
            ClientConfig(local_hostname=self.local_hostname)  # same validation as the core

    @property
    def implicit_tls(self) -> bool:
        """TLS from the first byte (RFC 8314 §3.3)."""
        return self.tls == "implicit"

    @property
    def tls_hostname(self) -> str:
        """The name to verify the certificate against (and to send as SNI)."""
        return self.server_hostname or self.host

    @property
    def open_timeout(self) -> float | None:
        """Seconds for the TCP connection (and an implicit TLS handshake)."""
        return self.connect_timeout if self.connect_timeout is not None else self.timeout

    def tls_context(self) -> ssl.SSLContext:
        """The context for a handshake: the given one, else a verifying default (an unverified
        one for opportunistic STARTTLS, see the module documentation)."""
        if self.ssl_context is not None:
            return self.ssl_context
        from .tls import client_context  # noqa: PLC0415 - keep ssl setup off the import path

        return client_context(verify=self.tls != "starttls-opportunistic")


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """The outcome of one ``send_message()``: the reply that decided each recipient's fate.

    ``outcomes`` pairs every recipient, in RCPT order, with the RCPT refusal, the reply after the
    data (its own one in LMTP, RFC 2033 §4.2), or the MAIL refusal. ``transaction`` is the core's
    :class:`esmtp_core.TransactionResult` with every raw reply.
    """

    sender: str
    outcomes: tuple[tuple[str, Reply], ...]
    transaction: TransactionResult

    @classmethod
    def from_transaction(cls, result: TransactionResult) -> SendResult:
        """Build from the core's result (its ``outcomes()`` already covers every recipient, also
        those whose RCPT was never sent)."""
        outcomes = tuple(result.outcomes().items())
        return cls(sender=result.sender, outcomes=outcomes, transaction=result)

    @property
    def accepted(self) -> tuple[str, ...]:
        """Recipients the server took responsibility for (2xx after the data)."""
        return tuple(rcpt for rcpt, reply in self.outcomes if 200 <= reply.code < 300)

    @property
    def refused(self) -> dict[str, Reply]:
        """Every other recipient with the reply that refused it."""
        return {rcpt: reply for rcpt, reply in self.outcomes if not 200 <= reply.code < 300}

    @property
    def ok(self) -> bool:
        """Accepted for every recipient."""
        return bool(self.outcomes) and not self.refused

    @property
    def mail_reply(self) -> Reply:
        """The reply to ``MAIL FROM``."""
        return self.transaction.mail_reply

    @property
    def data_reply(self) -> Reply | None:
        """The reply after the data (SMTP), or None (LMTP: see ``outcomes``; or never sent)."""
        return next((reply for rcpt, reply in self.transaction.data_replies if rcpt is None), None)


# --- messages -------------------------------------------------------------------------------------


def prepare_message(
    message: Message, sender: str | None, recipients: Iterable[str] | None
) -> tuple[str, list[str], bytes]:
    """The envelope and the bytes to send, as :meth:`smtplib.SMTP.send_message` does it.

    Bytes are sent exactly as given and need ``sender`` and ``recipients``. For an
    :class:`email.message.Message` the sender defaults to ``Sender``, else ``From``, and the
    recipients to ``To``, ``Cc`` and ``Bcc`` — the ``Resent-`` fields instead when the message
    has one ``Resent-Date`` block (RFC 5322 §3.6.6). ``Bcc`` and ``Resent-Bcc`` are removed from
    the copy that is sent; lines end in CRLF; with a non-ASCII address the headers are written as
    UTF-8 (RFC 6532), which the core pairs with SMTPUTF8. Raises ``ValueError`` when the envelope
    cannot be found.
    """
    if isinstance(message, bytes | bytearray | memoryview):
        if sender is None or recipients is None:
            raise ValueError("a message given as bytes needs sender and recipients")
        return sender, _recipients(recipients), bytes(message)
    if not isinstance(message, email.message.Message):
        raise TypeError(f"message must be an email.message.Message or bytes, not {message!r}")
    resent = message.get_all("Resent-Date")
    if resent is None:
        prefix = ""
    elif len(resent) == 1:
        prefix = "Resent-"
    else:
        raise ValueError("the message has more than one Resent- block: give the envelope")
    if sender is None:
        field = message[prefix + "Sender"] or message[prefix + "From"]
        found = [addr for _, addr in email.utils.getaddresses([str(field)]) if addr]
        if field is None or not found:
            raise ValueError(f"no sender: give sender= or a {prefix}From field")
        sender = found[0]
    if recipients is None:
        fields = [
            str(value)
            for name in ("To", "Cc", "Bcc")
            for value in message.get_all(prefix + name, [])
        ]
        recipients = [addr for _, addr in email.utils.getaddresses(fields) if addr]
        if not recipients:
            raise ValueError(f"no recipients: give recipients= or {prefix}To/Cc/Bcc fields")
    recipient_list = _recipients(recipients)
    outgoing = copy.copy(message)  # headers are replaced, not mutated, by __delitem__
    del outgoing["Bcc"]
    del outgoing["Resent-Bcc"]
    policy = message.policy
    if any(not address.isascii() for address in (sender, *recipient_list)):
        if isinstance(policy, email.policy.EmailPolicy):
            policy = policy.clone(utf8=True)
        else:
            policy = email.policy.SMTPUTF8
    buffer = io.BytesIO()
    generator = email.generator.BytesGenerator(buffer, mangle_from_=False, policy=policy)
    generator.flatten(outgoing, linesep="\r\n")
    return sender, recipient_list, buffer.getvalue()


def _recipients(recipients: Iterable[str]) -> list[str]:
    if isinstance(recipients, str):
        return [recipients]
    found = list(recipients)
    if not found:
        raise ValueError("no recipients")
    return found


def default_local_hostname(local_address: object) -> str:
    """The EHLO argument when none was configured (see the module documentation)."""
    name = socket.gethostname()
    if "." in name and name.isascii() and " " not in name:
        return name
    if isinstance(local_address, tuple) and local_address:
        try:
            ip = ipaddress.ip_address(str(local_address[0]).split("%", 1)[0])
        except ValueError:
            pass
        else:
            return f"[IPv6:{ip}]" if ip.version == 6 else f"[{ip}]"
    return "localhost"


# --- batches and failures -------------------------------------------------------------------------


class HasEnvelope(Protocol):
    """A message with its envelope as attributes (``transports.threads.Outgoing``)."""

    @property
    def message(self) -> Message: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def recipients(self) -> Sequence[str] | None: ...


#: One message for :meth:`ClientDriver.send_many` with its envelope: ``(message, sender,
#: recipients)``, or an object with those three attributes.
BatchItem = tuple[Message, str | None, Sequence[str] | None] | HasEnvelope


def unpack_batch_item(
    item: Message | BatchItem,
) -> tuple[Message, str | None, Sequence[str] | None]:
    """A batch item as ``(message, sender, recipients)``."""
    if isinstance(item, tuple):
        message, sender, recipients = item
        return message, sender, recipients
    if isinstance(item, bytes | bytearray | memoryview | email.message.Message):
        return item, None, None  # the envelope comes from the headers (or is missing)
    return item.message, item.sender, item.recipients


def send_error(result: SendResult) -> SMTPClientError:
    """The exception for a message delivered to nobody, typed by where it failed."""
    transaction = result.transaction
    mail = transaction.mail_reply
    if not mail.is_positive:
        return SMTPSenderRefused(mail, result, f"sender {result.sender!r} refused: {mail}")
    if not any(reply.is_positive for _, reply in transaction.recipient_replies):
        last = transaction.recipient_replies[-1][1] if transaction.recipient_replies else mail
        listing = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in result.refused.items())
        return SMTPRecipientsRefused(last, result, f"every recipient refused ({listing})")
    replies = [reply for _, reply in transaction.data_replies if not 200 <= reply.code < 300]
    reply = replies[-1] if replies else mail
    return SMTPDataError(reply, result, f"message refused: {reply}")


def envelope(
    addresses: Sequence[str],
    *,
    dsn: bool,
    mail_params: MailParams | None,
    rcpt_params: RcptParams | Mapping[str, RcptParams] | None,
    dsn_notify: Iterable[DsnNotify] | None,
    dsn_return: DsnReturn | None,
    envid: str | None,
) -> tuple[MailParams | None, list[str | tuple[str, RcptParams]]]:
    """The MAIL parameters and RCPT list for the convenience arguments of ``send_message``:
    DSN requests only when the server offers DSN (``dsn``; RFC 3461: nothing to ask then)."""
    params = mail_params
    if dsn and (dsn_return is not None or envid is not None):
        params = params or MailParams()
        params = dataclasses.replace(
            params,
            ret=dsn_return if dsn_return is not None else params.ret,
            envid=envid if envid is not None else params.envid,
        )
    notify = frozenset(dsn_notify) if dsn_notify is not None and dsn else None
    rcpts: list[str | tuple[str, RcptParams]] = []
    for address in addresses:
        given = rcpt_params.get(address) if isinstance(rcpt_params, Mapping) else rcpt_params
        if notify is not None:
            base = given or RcptParams()
            given = RcptParams(notify=notify, orcpt=base.orcpt, extra=base.extra)
        rcpts.append(address if given is None else (address, given))
    return params, rcpts


def channel_binding(tls_object: object) -> ChannelBinding | None:
    """``tls-server-end-point`` (RFC 5929) from the server certificate, for SCRAM-*-PLUS."""
    if not isinstance(tls_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    certificate = tls_object.getpeercert(binary_form=True)
    if not certificate:
        return None
    from .tls import server_end_point_binding  # noqa: PLC0415 - imports cryptography if present

    return server_end_point_binding(certificate)
