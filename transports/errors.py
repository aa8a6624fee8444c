"""Exceptions raised by the clients of every adapter (``transports.*.Client``).

Every client failure is an :class:`SMTPClientError`. A failure the server *said* (a refusal) is
also an :class:`esmtp_core.ReplyError` and carries the server's :class:`~esmtp_core.Reply` in
``.reply`` (code, enhanced status code, text); the session is still usable afterwards. The other
failures (no connection, timeout, TLS, a server breaking the protocol) leave the client closed.

::

    SMTPClientError
    ├── SMTPConnectionError            could not connect, or the connection broke
    │   └── SMTPServerDisconnected     the server closed (``.reply``: its 421, or None)
    ├── SMTPTimeoutError               connect, read or write took longer than the timeout
    ├── SMTPTLSError                   handshake failed; STARTTLS required but not offered;
    │                                  credentials refused to go out without TLS
    ├── SMTPProtocolError              the server broke the protocol (RemoteProtocolError)
    ├── SMTPNotSupportedError          the server lacks what was asked (AUTH, BINARYMIME,
    │                                  SMTPUTF8, a SIZE large enough), or the envelope is
    │                                  malformed; nothing was sent
    └── SMTPReplyError (+ ReplyError)  the server refused; ``.reply``
        ├── SMTPGreetingError          the greeting was not 220 (RFC 5321 §3.1)
        ├── SMTPHeloError              EHLO/HELO/LHLO refused
        ├── SMTPStartTLSRefused        STARTTLS answered with other than 220 (also SMTPTLSError)
        ├── SMTPAuthenticationError    AUTH failed (RFC 4954 §6)
        ├── SMTPResponseError          NOOP/RSET refused
        └── SMTPSendError              no recipient got the message; ``.result``
            ├── SMTPSenderRefused      MAIL FROM refused
            ├── SMTPRecipientsRefused  every RCPT TO refused
            └── SMTPDataError          the message itself refused (DATA, BDAT, final reply)

A message accepted for *some* recipients is not an exception: ``send_message()`` returns a
:class:`~transports.SendResult` whose ``refused`` lists the others (like ``smtplib``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esmtp_core import Reply, ReplyError

if TYPE_CHECKING:
    from ._client_driver import SendResult

__all__ = [
    "SMTPAuthenticationError",
    "SMTPClientError",
    "SMTPConnectionError",
    "SMTPDataError",
    "SMTPGreetingError",
    "SMTPHeloError",
    "SMTPNotSupportedError",
    "SMTPProtocolError",
    "SMTPRecipientsRefused",
    "SMTPReplyError",
    "SMTPResponseError",
    "SMTPSendError",
    "SMTPSenderRefused",
    "SMTPServerDisconnected",
    "SMTPStartTLSRefused",
    "SMTPTLSError",
    "SMTPTimeoutError",
]


class SMTPClientError(Exception):
    """Base class of every failure of a ``transports`` client."""


class SMTPConnectionError(SMTPClientError):
    """The TCP connection could not be made or broke (the client is closed)."""


class SMTPServerDisconnected(SMTPConnectionError):
    """The server ended the session: closed the connection, or sent ``421`` (RFC 5321 §3.8),
    which is then in :attr:`reply`."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        #: The ``421`` the server closed with, or None when it just closed the connection.
        self.reply = reply


class SMTPTimeoutError(SMTPClientError, TimeoutError):
    """Connecting, a TLS handshake, a read or a write exceeded the client's timeout."""


class SMTPTLSError(SMTPClientError):
    """TLS could not be used as required: the handshake failed (certificate, protocol), the
    server did not offer STARTTLS although ``tls="starttls"`` requires it (RFC 3207 §4: never a
    silent plaintext fallback), or credentials would have gone out without TLS."""


class SMTPProtocolError(SMTPClientError):
    """The server broke the protocol (an :class:`esmtp_core.RemoteProtocolError`); the client
    closed the connection. ``reply`` is the offending reply when there was one."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class SMTPNotSupportedError(SMTPClientError, ValueError):
    """What was asked cannot be done on this session, and nothing was sent: the server does not
    offer AUTH (or no usable mechanism), BINARYMIME, SMTPUTF8 for a non-ASCII address, or a
    SIZE large enough; or an address is malformed (raised by the core's checks)."""


class SMTPReplyError(SMTPClientError, ReplyError):
    """The server refused something; :attr:`reply` is its reply. The session goes on."""


class SMTPGreetingError(SMTPReplyError):
    """The server's greeting was not ``220`` (``554``: no service here, RFC 5321 §3.1)."""


class SMTPHeloError(SMTPReplyError):
    """EHLO (after the HELO fallback, RFC 5321 §3.2) or LHLO was refused."""


class SMTPStartTLSRefused(SMTPReplyError, SMTPTLSError):
    """STARTTLS was answered with something else than ``220`` (``454``: TLS not available now,
    RFC 3207 §4)."""


class SMTPAuthenticationError(SMTPReplyError):
    """AUTH failed (RFC 4954 §6: ``535`` bad credentials, ``534`` mechanism too weak, ``454``
    temporary...). :attr:`error` is set when the exchange failed on our side (a malformed
    challenge, or a server that did not prove its identity in SCRAM: the client then closes)."""

    def __init__(self, reply: Reply, message: str | None = None, *, error: Exception | None = None):
        super().__init__(reply, message)
        self.error = error


class SMTPResponseError(SMTPReplyError):
    """A simple command (NOOP, RSET) was refused."""


class SMTPSendError(SMTPReplyError):
    """The message was delivered to no recipient; :attr:`result` has every reply.

    :attr:`reply` is the reply that decided it (the MAIL refusal, the last RCPT refusal, or the
    data refusal).
    """

    def __init__(self, reply: Reply, result: SendResult, message: str | None = None) -> None:
        super().__init__(reply, message)
        self.result = result

    @property
    def refused(self) -> dict[str, Reply]:
        """Every recipient with the reply that refused it (like ``smtplib``'s dict)."""
        return self.result.refused


class SMTPSenderRefused(SMTPSendError):
    """``MAIL FROM`` was refused (RFC 5321 §4.1.1.2); no recipient was tried."""


class SMTPRecipientsRefused(SMTPSendError):
    """Every ``RCPT TO`` was refused; the message was not sent."""


class SMTPDataError(SMTPSendError):
    """The message was refused (DATA or BDAT refused, or the reply after its end; in LMTP,
    refused for every recipient)."""
