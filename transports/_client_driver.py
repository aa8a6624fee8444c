"""The one place with client-side logic shared by every adapter's ``Client``.

An adapter owns the socket, TLS handshakes, timeouts and its flavour of blocking or awaiting; the
:class:`ClientDriver` owns the :class:`esmtp_core.ClientConnection` and sequences the high-level
operations (connect, EHLO, STARTTLS, login, send a message, NOOP, RSET, QUIT) on top of it. All
protocol decisions stay in the core (pipelining, CHUNKING/BDAT, BINARYMIME, SMTPUTF8, 8BITMIME,
SIZE, HELO fallback, SASL); the driver only decides *which* operation comes next, turns replies
into results or typed exceptions (:mod:`transports.errors`), and prepares ``EmailMessage``
objects the way :meth:`smtplib.SMTP.send_message` does.

Every operation is a generator that yields what it needs from the transport, as in the server
driver, so the blocking and the async adapters run the very same steps:

* :data:`Want.READ` — flush :meth:`ClientDriver.data_to_send`, read once, waiting at most
  :meth:`ClientDriver.read_timeout`, and send the bytes back in (``b""`` at end of stream);
* :data:`Want.TLS` — flush, do the TLS handshake as a client on the live connection and send back
  the ``ssl.SSLObject``/``ssl.SSLSocket``;
* :data:`Want.WRITE` — flush only, and send back ``None`` (the operation has work to do before
  its next read and lets the server start on what is ready meanwhile).

An adapter's runner is therefore::

    want = next(steps)
    while True:
        write(driver.data_to_send())
        if want is Want.READ: result = read(driver.read_timeout())
        elif want is Want.TLS: result = start_tls()
        else: result = None              # Want.WRITE
        want = steps.send(result)        # StopIteration.value is the operation's result

and it writes ``data_to_send()`` once more after the ``StopIteration``.

Decisions where the RFCs and the issue leave room:

* ``tls="starttls"`` fails with :class:`~transports.errors.SMTPTLSError` when STARTTLS is not
  offered and with :class:`~transports.errors.SMTPStartTLSRefused` when it is refused; only
  ``"starttls-opportunistic"`` carries on in plaintext, and says so in
  :attr:`ClientDriver.tls_skipped`. A failed handshake is an error in every mode (the connection
  is unusable afterwards; trying plaintext on a new connection is the caller's decision).
* Opportunistic STARTTLS does not verify the certificate unless a context is given (RFC 7435 §3:
  the alternative is no encryption at all); required STARTTLS and implicit TLS verify by default.
* Without ``local_hostname`` the EHLO argument is the host name if it is a domain (contains a
  dot), else the address literal of our end of the connection (RFC 5321 §4.1.3), never a DNS
  lookup.
* DSN requests given as convenience arguments (``dsn_notify``, ``dsn_return``, ``envid``) are
  left out when the server does not offer DSN (RFC 3461: nothing to ask then); typed
  ``mail_params``/``rcpt_params`` are sent as given and refused when not offered.
* A message accepted for some recipients returns a :class:`SendResult` (check ``refused``);
  accepted for none raises a :class:`~transports.errors.SMTPSendError` subclass.
* A greeting other than 220 (a 554, RFC 5321 §3.1) raises at once and the adapter closes the
  connection without QUIT: nothing useful can follow, and waiting for the server adds nothing.
* A server that breaks the protocol, a lost connection, a timeout or a TLS failure close the
  connection (:func:`must_close`); a refusal leaves the session usable.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TypeVar

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    AuthResult,
    Capabilities,
    ClientConfig,
    ClientConnection,
    ClientCredentials,
    ClientEvent,
    ClientState,
    CommandReply,
    DsnNotify,
    DsnReturn,
    EhloReply,
    Greeting,
    LocalProtocolError,
    MailParams,
    RcptParams,
    RemoteProtocolError,
    Reply,
    SaslError,
    SessionEnded,
    StartTLSReply,
    TransactionResult,
)

from ._client_values import (
    BatchItem,
    ClientOptions,
    HasEnvelope,
    Message,
    SendResult,
    TlsMode,
    channel_binding,
    default_local_hostname,
    envelope,
    prepare_message,
    send_error,
    unpack_batch_item,
)
from .errors import (
    SMTPAuthenticationError,
    SMTPClientError,
    SMTPConnectionError,
    SMTPGreetingError,
    SMTPHeloError,
    SMTPNotSupportedError,
    SMTPProtocolError,
    SMTPResponseError,
    SMTPServerDisconnected,
    SMTPStartTLSRefused,
    SMTPTimeoutError,
    SMTPTLSError,
)

__all__ = [
    "BatchItem",
    "ClientDriver",
    "ClientOptions",
    "HasEnvelope",
    "Message",
    "SendResult",
    "Steps",
    "TlsMode",
    "Want",
    "channel_binding",
    "must_close",
    "prepare_message",
    "reply_overdue",
]

T = TypeVar("T")


class Want(enum.Enum):
    """What an operation needs from the adapter next (see the module documentation)."""

    READ = "read"
    TLS = "tls"
    WRITE = "write"


#: An operation: yields :class:`Want`, is sent the bytes read or the TLS object, returns ``T``.
Steps = Generator[Want, object, T]


# --- the driver -----------------------------------------------------------------------------------


class ClientDriver:
    """One client session over one connection: the core plus the sequencing of operations.

    Created by an adapter once the TCP connection (and, for implicit TLS, the handshake) is up.
    Operations are generators (see the module documentation); one runs at a time.
    """

    def __init__(
        self,
        options: ClientOptions,
        local_address: object = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        config = dataclasses.replace(
            options.config or ClientConfig(),
            local_hostname=options.local_hostname or default_local_hostname(local_address),
            lmtp=options.lmtp,
            tls_on_connect=options.implicit_tls,
            allow_insecure_auth=options.allow_insecure_auth,
        )
        self.conn = ClientConnection(config)
        #: The server's greeting, once read.
        self.greeting: Reply | None = None
        #: Why opportunistic STARTTLS did not happen ("not offered" or the refusal), else None.
        self.tls_skipped: str | None = None
        #: Set when the session must not go on (a protocol error, an impostor server): the
        #: adapter closes the connection after the operation raised.
        self.broken = False
        self._busy = False
        self._clock = clock
        #: When the reply being read must be complete (None: not started yet).
        self._deadline: float | None = None
        #: Bytes went out since the deadline was set: the next read starts a new one.
        self._sent = False
        #: Bytes taken from the core for a ``Want.WRITE``, handed out by data_to_send().
        self._flush = b""

    # --- plumbing for the adapter ---------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes to write now; call before every read and after every operation."""
        data = self.conn.data_to_send()
        if self._flush:  # taken from the core by _drain() to see whether a write was needed
            data, self._flush = self._flush + data, b""
        if data:
            self._sent = True
        return data

    def read_timeout(self) -> float | None:
        """Seconds the next read may wait; call after writing :meth:`data_to_send`.

        ``options.timeout`` bounds the whole reply, not each read: the deadline starts when an
        operation starts or, after the adapter wrote a command, at the first read that follows,
        and the reads until the reply is complete share it. A server trickling a byte at a time
        therefore cannot hold the client longer than the timeout. Pipelined commands (RFC 2920)
        are one write, so their replies share one deadline. Raises
        :class:`~transports.errors.SMTPTimeoutError` once it has passed. None: no timeout.
        """
        timeout = self.options.timeout
        if timeout is None:
            return None
        now = self._clock()
        if self._deadline is None or self._sent:
            self._deadline = now + timeout
            self._sent = False
        left = self._deadline - now
        if left <= 0:
            raise reply_overdue(self.options)
        return left

    @property
    def capabilities(self) -> Capabilities:
        """The server's last EHLO/LHLO capabilities."""
        return self.conn.capabilities

    @property
    def closed(self) -> bool:
        """The session is over (QUIT answered, 421, the server closed, or a protocol error)."""
        return self.conn.closed

    def run_guard(self) -> None:
        """Called by the adapter before an operation: one operation at a time per client."""
        if self._busy:
            raise RuntimeError("another operation is in progress on this client")

    # --- operations -----------------------------------------------------------------------------

    def connect(self) -> Steps[Reply]:
        """Greeting, EHLO/LHLO, then STARTTLS as ``options.tls`` says; returns the greeting."""
        with self._operation():
            event = yield from self._event(Greeting)
            self.greeting = event.reply
            if not event.ok:
                raise SMTPGreetingError(event.reply, f"session refused: {event.reply}")
            yield from self._hello()
            mode = self.options.tls
            if mode not in ("starttls", "starttls-opportunistic"):
                return event.reply
            if not self.capabilities.starttls:
                if mode == "starttls":
                    self.broken = True
                    raise SMTPTLSError(
                        f"{self.options.host} does not offer STARTTLS and TLS is required"
                    )
                self.tls_skipped = "STARTTLS not offered"
                return event.reply
            yield from self._starttls(opportunistic=mode == "starttls-opportunistic")
            return event.reply

    def ehlo(self) -> Steps[Reply]:
        """EHLO (LHLO in LMTP) again, refreshing :attr:`capabilities`; returns the reply."""
        with self._operation():
            return (yield from self._hello())

    def starttls(self) -> Steps[Reply]:
        """STARTTLS (RFC 3207), the handshake, and EHLO again; returns the ``220``."""
        with self._operation():
            if self.conn.tls_active:
                raise SMTPNotSupportedError("TLS is already active")
            if not self.capabilities.starttls:
                raise SMTPNotSupportedError(f"{self.options.host} does not offer STARTTLS")
            return (yield from self._starttls(opportunistic=False))

    def login(
        self,
        username: str,
        password: str | None = None,
        *,
        token: str | None = None,
        authzid: str | None = None,
        mechanism: str | None = None,
    ) -> Steps[Reply]:
        """AUTH (RFC 4954) with the strongest offered mechanism (or ``mechanism``); returns the
        ``235``. Refused before TLS unless ``allow_insecure_auth``."""
        with self._operation():
            conn = self.conn
            if not conn.tls_active and not self.options.allow_insecure_auth:
                raise SMTPTLSError(
                    "refusing to send credentials without TLS (use tls=..., or "
                    "allow_insecure_auth=True)"
                )
            if not self.capabilities.auth_mechanisms:
                raise SMTPNotSupportedError(f"{self.options.host} does not offer AUTH")
            credentials = ClientCredentials(
                username=username, password=password, authzid=authzid, token=token
            )
            try:
                conn.auth(credentials, mechanism)
            except (LocalProtocolError, SaslError) as exc:
                raise SMTPNotSupportedError(str(exc)) from exc
            event = yield from self._event(AuthResult)
            if event.ok:
                return event.reply
            if event.error is not None and event.reply.code == 235:
                # The server claims success without proving it knows the secret (SCRAM):
                # treat it as an impostor and stop talking to it.
                self.broken = True
            message = f"authentication failed: {event.reply}"
            if event.error is not None:
                message += f" ({event.error})"
            raise SMTPAuthenticationError(event.reply, message, error=event.error)

    def send_message(
        self,
        message: Message,
        sender: str | None = None,
        recipients: Iterable[str] | None = None,
        *,
        mail_params: MailParams | None = None,
        rcpt_params: RcptParams | Mapping[str, RcptParams] | None = None,
        dsn_notify: Iterable[DsnNotify] | None = None,
        dsn_return: DsnReturn | None = None,
        envid: str | None = None,
        binary: bool = False,
    ) -> Steps[SendResult]:
        """One whole mail transaction; see the adapters' ``send_message``."""
        with self._operation():
            sender, addresses, data = prepare_message(message, sender, recipients)
            params, rcpts = envelope(
                addresses,
                dsn=self.capabilities.dsn,
                mail_params=mail_params,
                rcpt_params=rcpt_params,
                dsn_notify=dsn_notify,
                dsn_return=dsn_return,
                envid=envid,
            )
            conn = self.conn
            if conn.state is not ClientState.READY:
                raise SMTPClientError(f"cannot send in state {conn.state.name}: connect() first")
            try:
                conn.send_message(sender, rcpts, data, mail_params=params, binary=binary)
            except LocalProtocolError as exc:
                raise SMTPNotSupportedError(str(exc)) from exc
            # ``self._event(TransactionResult)`` written out: this is the per-message path, and
            # each generator level of ``yield from`` is passed through on every read.
            while True:
                try:
                    event = conn.next_event()
                except RemoteProtocolError as exc:
                    raise self._broken_by(exc) from exc
                if event is not NEED_DATA:
                    break
                received = yield Want.READ
                assert isinstance(received, bytes)
                conn.receive_data(received)
            if not isinstance(event, TransactionResult):
                if isinstance(event, SessionEnded):
                    raise _disconnected(event)
                self.broken = True  # PAUSED or another event: the core cannot produce these here
                raise SMTPProtocolError(f"expected TransactionResult, got {event!r}")
            result = SendResult.from_transaction(event)
            if result.accepted:
                return result
            raise send_error(result)

    def send_many(
        self,
        messages: Iterable[Message | BatchItem],
        *,
        window: int = 8,
        binary: bool = False,
    ) -> Steps[list[SendResult | SMTPClientError]]:
        """Many whole transactions over this session, pipelined across messages; see the
        adapters' ``send_many``.

        With PIPELINING (RFC 2920 §3.1) the next transaction leaves behind the previous one's end
        of data without waiting for its reply, keeping at most ``window`` transactions
        unanswered; without it, one transaction at a time (same results, more round trips).
        Every envelope is prepared before anything is sent, so a ``ValueError``/``TypeError``
        for a bad item is raised with nothing sent. A 421 or a closed connection gives each
        message not yet answered its :class:`~transports.errors.SMTPServerDisconnected` (the
        core already reported the 421 to the transactions in flight); other failures (timeout,
        protocol error) are raised and the adapter closes the connection.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        with self._operation():
            conn = self.conn
            if conn.state is not ClientState.READY:
                raise SMTPClientError(f"cannot send in state {conn.state.name}: connect() first")
            prepared = [unpack_batch_item(item) for item in messages]
            envelopes = [prepare_message(m, sender, rcpts) for m, sender, rcpts in prepared]
            results: list[SendResult | SMTPClientError | None] = [None] * len(envelopes)
            pending: deque[int] = deque()  # messages whose TransactionResult is awaited
            lost: SMTPServerDisconnected | None = None
            index = 0
            # With BDAT every queued transaction leaves at once: refill only once half the window
            # is answered, so each write carries several messages and each read brings several
            # messages' replies (not one of each per message in lockstep with the server). With
            # DATA each body waits for its 354 anyway (one message per round trip): refill at
            # once, one message prepared per result, which keeps that work evenly spread.
            chunking = conn.capabilities.chunking and conn.config.use_chunking
            low = window // 2 if chunking else window - 1
            while index < len(envelopes) or pending:
                refill = len(pending) <= low
                while refill and index < len(envelopes) and len(pending) < window and lost is None:
                    if pending and not conn.pipelining:
                        break  # RFC 2920 not offered: one transaction at a time
                    if conn.closed:
                        break
                    sender, addresses, data = envelopes[index]
                    try:
                        # No parameters in a batch: the envelope is the addresses as they are.
                        conn.send_message(sender, addresses, data, binary=binary)
                    except LocalProtocolError as exc:  # nothing of it was queued
                        results[index] = SMTPNotSupportedError(str(exc))
                    else:
                        pending.append(index)
                    index += 1
                if not pending:
                    if index < len(envelopes) and (lost is not None or conn.closed):
                        lost = lost or SMTPServerDisconnected("the session had ended")
                        results[index:] = [lost] * (len(envelopes) - index)
                        index = len(envelopes)
                    continue
                try:
                    events = yield from self._drain()
                except SMTPServerDisconnected as exc:
                    lost = exc
                    for waiting in pending:
                        results[waiting] = exc
                    pending.clear()
                    continue
                for event in events:
                    if not isinstance(event, TransactionResult):  # cannot happen (see _event)
                        self.broken = True
                        raise SMTPProtocolError(f"expected TransactionResult, got {event!r}")
                    result = SendResult.from_transaction(event)
                    results[pending.popleft()] = result if result.accepted else send_error(result)
            return [r if r is not None else SMTPClientError("not sent") for r in results]

    def noop(self) -> Steps[Reply]:
        """NOOP; returns the ``250``."""
        with self._operation():
            self.conn.noop()
            return (yield from self._simple_reply())

    def rset(self) -> Steps[Reply]:
        """RSET; returns the ``250``."""
        with self._operation():
            self.conn.rset()
            return (yield from self._simple_reply())

    def quit(self) -> Steps[Reply | None]:
        """QUIT, then wait for the server to close; returns the ``221`` (None when the session
        had already ended or the server closed without it). Never raises for a refusal."""
        with self._operation():
            conn = self.conn
            if conn.closed or conn.state in (ClientState.CONNECTED, ClientState.TLS_PENDING):
                return None
            try:
                conn.quit()
            except LocalProtocolError:  # an earlier operation failed half-way: just close
                return None
            reply: Reply | None = None
            while True:
                try:
                    event = yield from self._next()
                except SMTPServerDisconnected as exc:
                    return reply or exc.reply
                if isinstance(event, CommandReply) and event.verb == "QUIT":
                    reply = event.reply

    # --- steps ----------------------------------------------------------------------------------

    def _hello(self) -> Steps[Reply]:
        self.conn.hello()
        event = yield from self._event(EhloReply)
        if not event.ok:
            raise SMTPHeloError(event.reply, f"{event.verb} refused: {event.reply}")
        return event.reply

    def _starttls(self, *, opportunistic: bool) -> Steps[Reply]:
        self.conn.starttls()
        event = yield from self._event(StartTLSReply)
        if not event.ready:
            if opportunistic:
                self.tls_skipped = f"STARTTLS refused: {event.reply}"
                return event.reply
            raise SMTPStartTLSRefused(event.reply, f"STARTTLS refused: {event.reply}")
        # Any later failure leaves the connection in an unknown TLS state.
        self.broken = True
        tls_object = yield Want.TLS
        self.conn.tls_started(channel_binding(tls_object))
        self.broken = False
        yield from self._hello()
        return event.reply

    def _simple_reply(self) -> Steps[Reply]:
        event = yield from self._event(CommandReply)
        if not event.ok:
            raise SMTPResponseError(event.reply, f"{event.verb} refused: {event.reply}")
        return event.reply

    def _event(self, kind: type[T]) -> Steps[T]:
        """The next event, which must be a ``kind``."""
        event = yield from self._next()
        if not isinstance(event, kind):  # the core matches replies to commands: cannot happen
            self.broken = True
            raise SMTPProtocolError(f"expected {kind.__name__}, got {event!r}")
        return event

    def _next(self) -> Steps[ClientEvent]:
        conn = self.conn
        while True:
            event = self._core_event()
            if event is NEED_DATA:
                data = yield Want.READ
                assert isinstance(data, bytes)
                conn.receive_data(data)
                continue
            assert isinstance(event, ClientEvent)
            if isinstance(event, SessionEnded):
                raise _disconnected(event)
            return event

    def _drain(self) -> Steps[list[ClientEvent]]:
        """Every event the bytes received so far give (reading when there is none yet), then a
        flush (``Want.WRITE``) when those replies released bytes (the next body after its 354):
        they leave before the caller spends time on the events, so the server works while we do.

        A :class:`SessionEnded` after other events is left for the next call (the core returns
        it again), so the events before it are handled first.
        """
        conn = self.conn
        events: list[ClientEvent] = []
        while True:
            event = self._core_event()
            if event is NEED_DATA:
                if events:
                    break
                data = yield Want.READ
                assert isinstance(data, bytes)
                conn.receive_data(data)
                continue
            assert isinstance(event, ClientEvent)
            if isinstance(event, SessionEnded):
                if events:
                    break
                raise _disconnected(event)
            events.append(event)
        self._flush = conn.data_to_send()
        if self._flush:
            yield Want.WRITE
        return events

    def _core_event(self) -> ClientEvent | object:
        """``conn.next_event()`` with a protocol error turned into ours (the session is broken)."""
        try:
            event = self.conn.next_event()
        except RemoteProtocolError as exc:
            raise self._broken_by(exc) from exc
        if event is PAUSED:  # only between StartTLSReply and tls_started(), handled there
            raise AssertionError("PAUSED outside STARTTLS")
        return event


    def _broken_by(self, exc: RemoteProtocolError) -> SMTPProtocolError:
        """The session is broken by the server's protocol error ``exc``: the error to raise."""
        self.broken = True
        return SMTPProtocolError(f"the server broke the protocol: {exc}", exc.reply)

    # --- bookkeeping ----------------------------------------------------------------------------

    def _operation(self) -> _Operation:
        self.run_guard()
        return _Operation(self)


class _Operation:
    """Marks the driver busy while an operation runs (also when its generator is abandoned)."""

    def __init__(self, driver: ClientDriver) -> None:
        self._driver = driver

    def __enter__(self) -> None:
        self._driver._busy = True
        self._driver._deadline = None  # each operation gets its own reply deadline

    def __exit__(self, *exc_info: object) -> None:
        self._driver._busy = False


def must_close(driver: ClientDriver | None, exc: BaseException) -> bool:
    """Whether an adapter must close the connection after an operation raised ``exc``.

    Refusals (:class:`~transports.errors.SMTPReplyError`) and errors raised before anything was
    sent (``ValueError``, :class:`~transports.errors.SMTPNotSupportedError`, ...) leave the
    session usable; lost connections, timeouts, protocol and TLS failures do not, nor does
    anything interrupting an operation half-way (``KeyboardInterrupt``, cancellation).
    """
    if driver is not None and driver.broken:
        return True
    if isinstance(exc, SMTPConnectionError | SMTPTimeoutError | SMTPProtocolError | OSError):
        return True
    return not isinstance(exc, Exception)


def reply_overdue(options: ClientOptions) -> SMTPTimeoutError:
    """The error for a reply not complete within ``options.timeout``."""
    return SMTPTimeoutError(f"no reply from the server within {options.timeout}s")


def _disconnected(event: SessionEnded) -> SMTPServerDisconnected:
    """The error for a session that ended under an operation."""
    reply = event.reply
    text = f"the server closed the session: {reply}" if reply else (
        "the server closed the connection"
    )
    return SMTPServerDisconnected(text, reply)
