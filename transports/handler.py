"""The server handler interface: what an application implements to run an SMTP/LMTP server.

A handler is a narrow session interface in the spirit of go-smtp's ``Session``: one method per
decision the protocol leaves to the application (RFC 5321 §4.1.1 and §3.3), plus notices.
The same handler object serves every connection; per-connection state lives in the
:class:`Session` and the transaction in its :class:`Envelope`.

Two flavours with identical method names and arguments:

* :class:`Handler` — plain methods, for every adapter. The async adapters run them in a worker
  thread (they may block: a Maildir ``fsync`` does).
* :class:`AsyncHandler` — ``async def`` methods, for :mod:`transports.asyncio` and
  :mod:`transports.anyio` (on asyncio and on trio alike).

Return values. For a command hook, ``None`` accepts with the default positive reply and a
:class:`~esmtp_core.Reply` is sent as the answer (a 4xx/5xx refuses). Credential checks return
``True``/``False`` (a wrong password and an unknown user both give ``535 5.7.8``). An exception
raised by a hook is logged and becomes ``451 4.3.0`` for that command (``454 4.7.0`` for AUTH,
the "temporary authentication failure" of RFC 4954 §6); the server keeps serving.

Defaults accept everything except credentials: a handler that does not override a credential
check refuses every login, because accepting any password would make AUTH meaningless. Offer AUTH
only with a handler that checks credentials (``ServerConfig.auth_mechanisms=()`` turns it off).

Messages. The body arrives as :meth:`Handler.message_start`, any number of
:meth:`Handler.message_data` calls (exact bytes after dot-unstuffing), then
:meth:`Handler.message_end`, whose reply is the answer to the final ``.`` (or ``BDAT LAST``):
reply ``250`` only once the message is safe (RFC 5321 §6.1). If the message is abandoned instead
(client gone, RSET after a BDAT chunk, size limit, a failing hook), :meth:`Handler.message_aborted`
runs. The default streaming methods collect the body in memory (bounded by the configured maximum
message size) and call the whole-message convenience :meth:`Handler.message`.

In LMTP mode (RFC 2033 §4.2) :meth:`Handler.message_end` may return a sequence with one reply (or
``None``) per recipient of ``envelope.rcpt_to``; a single reply applies to every recipient.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from esmtp_core import MailParams, RcptParams, Reply, ScramSecrets

__all__ = [
    "AsyncHandler",
    "Envelope",
    "Handler",
    "MessageResult",
    "Session",
]

#: What :meth:`Handler.message_end` / :meth:`Handler.message` may return.
MessageResult = Reply | Sequence[Reply | None] | None

_session_ids = itertools.count(1)


@dataclass(kw_only=True)
class Envelope:
    """One mail transaction (RFC 5321 §3.3): the reverse-path, the accepted forward-paths and
    their parameters. Created when MAIL is accepted; recipients are added as RCPT is accepted."""

    #: The reverse-path without angle brackets; ``""`` for the null path ``<>``.
    mail_from: str
    mail_params: MailParams = field(default_factory=MailParams)
    #: Accepted recipients, in order (the order of LMTP's per-recipient replies).
    rcpt_to: list[str] = field(default_factory=list)
    rcpt_params: list[RcptParams] = field(default_factory=list)
    #: Body pieces collected by the default :meth:`Handler.message_data`.
    body_chunks: list[bytes] = field(default_factory=list, repr=False)

    @property
    def smtputf8(self) -> bool:
        """The client asked for SMTPUTF8 (RFC 6531) in MAIL."""
        return self.mail_params.smtputf8


@dataclass(kw_only=True)
class Session:
    """What a handler may know about one connection. Updated by the driver as the session goes.

    ``extra`` is free for the handler's own per-connection state.
    """

    #: Server's own name (greeting, EHLO reply, trace headers).
    hostname: str
    #: Peer address as the socket reports it (``(host, port)`` for TCP; may be None).
    peer: tuple[str, int] | None = None
    #: Local address the client connected to.
    local: tuple[str, int] | None = None
    lmtp: bool = False
    #: Connection number within this process, for log lines.
    id: int = field(default_factory=lambda: next(_session_ids))
    #: ``"HELO"``, ``"EHLO"`` or ``"LHLO"`` once accepted, and the name the client gave.
    hello_verb: str | None = None
    hello_name: str | None = None
    tls_active: bool = False
    #: Negotiated protocol and cipher (``ssl`` naming), once TLS is up.
    tls_version: str | None = None
    tls_cipher: str | None = None
    #: The user name after a successful AUTH (RFC 4954), else None.
    authenticated: str | None = None
    #: The transaction in progress, if any.
    envelope: Envelope | None = None
    #: Messages accepted in this session.
    messages_accepted: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def peer_text(self) -> str:
        """The peer as ``host:port`` (or ``unknown``) for log lines."""
        if not self.peer:
            return "unknown"
        host, port = self.peer[0], self.peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class Handler:
    """Synchronous handler; every method has a default that accepts (credentials excepted).

    Override what you need. Methods may block; async adapters call them from a worker thread, so
    a handler shared by several connections must protect its own shared state.
    """

    def connect(self, session: Session) -> Reply | None:
        """A client connected (RFC 5321 §3.1). A reply (e.g. ``554``) replaces the 220 greeting."""
        return None

    def hello(self, session: Session, verb: str, hostname: str) -> Reply | None:
        """HELO/EHLO/LHLO with the client's name (RFC 5321 §4.1.1.1). A positive reply's first
        line becomes the greeting text; the capability list is always the core's."""
        return None

    def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        """MAIL FROM (RFC 5321 §4.1.1.2); ``address`` is ``""`` for ``<>``."""
        return None

    def rcpt(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        """RCPT TO (RFC 5321 §4.1.1.3)."""
        return None

    def message_start(self, session: Session, envelope: Envelope) -> None:
        """The body begins (after ``354``, or with the first BDAT chunk of RFC 3030)."""
        envelope.body_chunks.clear()

    def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
        """A piece of the body, exact bytes after dot-unstuffing. Default: collect in memory."""
        envelope.body_chunks.append(data)

    def message_end(self, session: Session, envelope: Envelope) -> MessageResult:
        """The body is complete; the return value answers the final ``.`` (RFC 5321 §4.1.1.4).

        Default: join the collected pieces and call :meth:`message`.
        """
        content = b"".join(envelope.body_chunks)
        envelope.body_chunks.clear()
        return self.message(session, envelope, content)

    def message(self, session: Session, envelope: Envelope, content: bytes) -> MessageResult:
        """Whole-message convenience: the complete body as received. Default: accept."""
        return None

    def message_aborted(self, session: Session, envelope: Envelope) -> None:
        """The message in progress is abandoned; nothing of it may be delivered."""
        envelope.body_chunks.clear()

    def check_password(
        self, session: Session, username: str, password: str, *, authzid: str | None = None
    ) -> bool:
        """PLAIN/LOGIN credentials (RFC 4616, RFC 4954). Default: refuse."""
        return False

    def lookup_secret(
        self, session: Session, mechanism: str, username: str
    ) -> str | ScramSecrets | None:
        """The password (or SCRAM secrets) for challenge-response mechanisms such as CRAM-MD5 and
        SCRAM (RFC 5802); ``None`` for an unknown user. Default: None."""
        return None

    def check_token(self, session: Session, mechanism: str, username: str, token: str) -> bool:
        """An OAuth 2.0 bearer token (XOAUTH2, OAUTHBEARER of RFC 7628). Default: refuse."""
        return False

    def verify(self, session: Session, argument: str) -> Reply | None:
        """VRFY (RFC 5321 §3.5.3). Default: ``252`` (cannot verify, will accept and try)."""
        return None

    def expand(self, session: Session, argument: str) -> Reply | None:
        """EXPN (only when enabled in the config). Default: ``252``."""
        return None

    def unknown_command(self, session: Session, verb: str, argument: str) -> Reply | None:
        """A verb registered in ``ServerConfig.extra_commands``. Default: ``502 5.5.1``."""
        return None

    def reset(self, session: Session) -> None:
        """RSET (RFC 5321 §4.1.1.5): the transaction, if any, is gone."""

    def disconnect(self, session: Session) -> None:
        """The connection ended, whatever the reason. Called exactly once per connection."""


class AsyncHandler:
    """Asynchronous handler: the same methods as :class:`Handler`, as coroutines.

    Runs on :mod:`transports.asyncio` and on :mod:`transports.anyio` (asyncio or trio); use only
    the async library your adapter runs on (or anyio, which works on both).
    """

    async def connect(self, session: Session) -> Reply | None:
        """See :meth:`Handler.connect`."""
        return None

    async def hello(self, session: Session, verb: str, hostname: str) -> Reply | None:
        """See :meth:`Handler.hello`."""
        return None

    async def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        """See :meth:`Handler.mail`."""
        return None

    async def rcpt(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        """See :meth:`Handler.rcpt`."""
        return None

    async def message_start(self, session: Session, envelope: Envelope) -> None:
        """See :meth:`Handler.message_start`."""
        envelope.body_chunks.clear()

    async def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
        """See :meth:`Handler.message_data`."""
        envelope.body_chunks.append(data)

    async def message_end(self, session: Session, envelope: Envelope) -> MessageResult:
        """See :meth:`Handler.message_end`."""
        content = b"".join(envelope.body_chunks)
        envelope.body_chunks.clear()
        return await self.message(session, envelope, content)

    async def message(
        self, session: Session, envelope: Envelope, content: bytes
    ) -> MessageResult:
        """See :meth:`Handler.message`."""
        return None

    async def message_aborted(self, session: Session, envelope: Envelope) -> None:
        """See :meth:`Handler.message_aborted`."""
        envelope.body_chunks.clear()

    async def check_password(
        self, session: Session, username: str, password: str, *, authzid: str | None = None
    ) -> bool:
        """See :meth:`Handler.check_password`."""
        return False

    async def lookup_secret(
        self, session: Session, mechanism: str, username: str
    ) -> str | ScramSecrets | None:
        """See :meth:`Handler.lookup_secret`."""
        return None

    async def check_token(
        self, session: Session, mechanism: str, username: str, token: str
    ) -> bool:
        """See :meth:`Handler.check_token`."""
        return False

    async def verify(self, session: Session, argument: str) -> Reply | None:
        """See :meth:`Handler.verify`."""
        return None

    async def expand(self, session: Session, argument: str) -> Reply | None:
        """See :meth:`Handler.expand`."""
        return None

    async def unknown_command(self, session: Session, verb: str, argument: str) -> Reply | None:
        """See :meth:`Handler.unknown_command`."""
        return None

    async def reset(self, session: Session) -> None:
        """See :meth:`Handler.reset`."""

    async def disconnect(self, session: Session) -> None:
        """See :meth:`Handler.disconnect`."""
