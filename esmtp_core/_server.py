"""The sans-I/O ESMTP server connection (RFC 5321, with RFC 1870, 2033, 2920, 3030, 3207, 3461,
4954, 6152, 6531, 8689).

:class:`ServerConnection` turns the bytes an SMTP client sent into events and the embedding code's
decisions into reply bytes. It answers everything that needs no policy itself (syntax errors,
sequencing, limits, NOOP, HELP, RSET, the 354 to DATA) in order, so the embedding code only sees
what it must decide. See DESIGN.md for the loop an adapter runs around it.

Decisions taken where the RFCs are silent are written next to the code that implements them.
"""

from __future__ import annotations

from collections import deque

from ._config import ServerConfig
from ._data import DataDecoder
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    ConnectionClosed,
    EndOfMessage,
    Event,
    Hello,
    MailFrom,
    RcptTo,
)
from ._receivebuffer import ReceiveBuffer
from ._reply import Reply
from ._sasl import AuthQuery, AuthSecretLookup, ChannelBinding, CredentialAnswer, ServerMechanism
from ._sentinels import NEED_DATA, PAUSED, Sentinel
from ._server_auth import AuthMixin, advertised_auth_mechanisms
from ._server_commands import CommandsMixin
from ._server_input import InputMixin
from ._state import (
    ACCEPT_WIRE,
    DEFAULT_REPLIES,
    DEFAULT_REPLY_OBJECTS,
    HELLO_WIRE,
    PHASE_AUTH,
    PHASE_BDAT,
    PHASE_CLOSED,
    PHASE_COMMAND,
    PHASE_DATA,
    PHASE_STARTTLS,
    SESSION_WIRE,
    Replies,
    Transaction,
    remember,
)

__all__ = ["ServerConnection", "ServerEvent"]


#: What ``next_event()`` hands out besides the sentinels.
ServerEvent = Event | AuthQuery

# max_commands=None: a count no session reaches, so the per-command check needs no None test.
_UNLIMITED = 1 << 62
_NO_VERBS: frozenset[str] = frozenset()


class ServerConnection(InputMixin, CommandsMixin, AuthMixin):
    """One SMTP (or LMTP) session, server side. See the module docstring and DESIGN.md.

    Typical loop (blocking socket)::

        conn = ServerConnection(ServerConfig(hostname="mx.example"))
        conn.greet()
        while not conn.closed:
            event = conn.next_event()
            if event is NEED_DATA:
                sock.sendall(conn.data_to_send())
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, (MailFrom, RcptTo)):
                conn.accept()
            ...
        sock.sendall(conn.data_to_send())

    While ``next_event()`` returns ``PAUSED`` the embedding code owes an answer to
    :attr:`pending` (or a TLS handshake); it should not read more from the socket meanwhile, which
    is what keeps the buffer bounded when a client pipelines without limit.
    """

    # Slots keep attribute access on the per-read path fast: CPython 3.11 stops sharing the keys
    # of an instance __dict__ past 30 attributes, which cost the trickled-body path about 5%.
    __slots__ = (
        "_accept_wire",
        "_advertised_auth",
        "_auth_failure_reply",
        "_authenticated",
        "_bdat_accepting",
        "_bdat_last",
        "_bdat_remaining",
        "_bdat_too_big",
        "_buf",
        "_channel_binding",
        "_commands",
        "_decoder",
        "_discarding",
        "_enhanced",
        "_eof",
        "_errors",
        "_esmtp",
        "_events",
        "_extra_verbs",
        "_fatal",
        "_greeted",
        "_hello",
        "_line_limit",
        "_lmtp_owed",
        "_max_commands",
        "_mechanism",
        "_out",
        "_pending",
        "_phase",
        "_refused",
        "_shutting_down",
        "_tls_active",
        "_txn",
        "config",
    )

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config if config is not None else ServerConfig()
        self._buf = ReceiveBuffer()
        self._out: list[bytes] = []
        self._events: deque[ServerEvent] = deque()
        self._pending: ServerEvent | None = None
        self._lmtp_owed: list[str] = []  # LMTP: recipients still owed a reply after the data
        self._phase = PHASE_COMMAND
        self._greeted = False
        self._refused = False  # greeted with 554 (RFC 5321 §3.1): only QUIT is accepted
        self._eof = False
        self._fatal: RemoteProtocolError | None = None
        self._shutting_down = False
        self._discarding = False  # inside an over-long command line, dropping it
        self._hello: str | None = None
        self._esmtp = False
        # The AUTH mechanisms the accepted EHLO/LHLO reply offered (SCRAM's downgrade check).
        self._advertised_auth: tuple[str, ...] = ()
        self._tls_active = self.config.tls_on_connect
        self._channel_binding: ChannelBinding | None = None
        self._authenticated: str | None = None
        self._txn: Transaction | None = None
        self._errors = 0
        self._commands = 0
        self._decoder: DataDecoder | None = None
        self._bdat_remaining = 0
        self._bdat_last = False
        self._bdat_accepting = False  # the current chunk belongs to the transaction
        self._bdat_too_big = False
        self._mechanism: ServerMechanism | None = None
        # reject(reply) on an AUTH query: the reply that ends the exchange instead of the 535.
        self._auth_failure_reply: Reply | None = None
        self._enhanced = self.config.enhanced_status_codes
        # Per-command limits and answers looked up once rather than through config each time.
        self._line_limit = self.config.max_command_line_length
        max_commands = self.config.max_commands
        self._max_commands = _UNLIMITED if max_commands is None else max_commands
        self._accept_wire = ACCEPT_WIRE[self._enhanced, self.config.lmtp]
        extra = self.config.extra_commands
        self._extra_verbs = frozenset(verb.upper() for verb in extra) if extra else _NO_VERBS

    # --- public state -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The session is over: flush :meth:`data_to_send` and close the socket."""
        return self._phase is PHASE_CLOSED

    @property
    def tls_active(self) -> bool:
        """TLS is in use (implicit TLS, or after STARTTLS and :meth:`tls_started`)."""
        return self._tls_active

    @property
    def authenticated(self) -> str | None:
        """The user name of a successful AUTH, or None."""
        return self._authenticated

    @property
    def hello_name(self) -> str | None:
        """The argument of the accepted HELO/EHLO/LHLO, or None."""
        return self._hello

    @property
    def in_transaction(self) -> bool:
        """A MAIL command was accepted and its transaction has not ended."""
        return self._txn is not None

    @property
    def receiving_body(self) -> bool:
        """DATA was answered with 354 and the body is still coming (until CRLF.CRLF)."""
        return self._phase is PHASE_DATA

    @property
    def pending(self) -> ServerEvent | None:
        """The decision event awaiting an answer, or None."""
        return self._pending

    # --- bytes in and out -------------------------------------------------------------------------

    def greet(self, reply: Reply | None = None) -> None:
        """Queue the greeting (RFC 5321 §3.1, §4.2): ``220 <hostname> <greeting_text>`` by default.

        A ``554`` greeting refuses the session: every command but QUIT then gets 503. A ``421``
        greeting closes it at once.
        """
        if self._greeted:
            raise LocalProtocolError("greet() was already called")
        if reply is None:
            config = self.config
            key = (220, config.hostname, config.greeting_text)
            wire = SESSION_WIRE.get(key)
            if wire is None:
                text = f"{config.hostname} {config.greeting_text}"
                wire = remember(SESSION_WIRE, key, Reply.make(220, None, text).to_bytes())
            self._greeted = True
            self._out.append(wire)
            return
        if reply.code not in (220, 421, 554):
            raise LocalProtocolError("the greeting must be a 220, 421 or 554 reply")
        self._greeted = True
        self._send(reply)
        if reply.code == 554:
            self._refused = True
        elif reply.code == 421:
            self._close()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means it closed its side.

        Ignored once the session is closed. While STARTTLS waits for the handshake, plaintext is
        dropped (RFC 3207 §4.2: nothing the client sent before TLS may be acted upon).
        """
        if self._phase is PHASE_CLOSED:
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() after the end of the stream")
        if self._phase is PHASE_STARTTLS:
            return
        self._buf.append(data)

    def data_to_send(self) -> bytes:
        """Everything queued for the client so far (then cleared)."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def next_event(self) -> ServerEvent | Sentinel:
        """The next event, ``NEED_DATA`` or ``PAUSED``.

        ``PAUSED`` means :attr:`pending` needs an answer, TLS must start, or the session is closed
        (check :attr:`closed`). Raises :class:`RemoteProtocolError` once when the core itself ends
        the session (too many errors or commands); the 421 is already queued.
        """
        events = self._events
        if events:  # queued events exist only after greet()
            return events.popleft()
        if not self._greeted:
            raise LocalProtocolError("call greet() before next_event()")
        # One loop with the phase dispatch inlined: this runs several times per command.
        while True:
            if events:
                return events.popleft()
            if self._fatal is not None:
                error, self._fatal = self._fatal, None
                raise error
            if self._pending is not None:
                return PAUSED
            phase = self._phase
            # An empty buffer needs no step (the usual case right after a reply was decided).
            if phase is PHASE_COMMAND:
                progressed = bool(self._buf.data) and self._step_command()
            elif phase is PHASE_DATA:
                progressed = bool(self._buf.data) and self._step_data()
            elif phase is PHASE_BDAT:
                progressed = self._step_bdat()
            elif phase is PHASE_AUTH:
                progressed = self._step_auth()
            elif phase is PHASE_STARTTLS and self._eof:
                self._close()
                return ConnectionClosed(in_transaction=False)
            else:  # CLOSED, or STARTTLS waiting for the handshake
                return PAUSED
            if not progressed:
                if not self._eof:
                    return NEED_DATA
                in_transaction = self._txn is not None
                self._txn = None
                self._close()
                return ConnectionClosed(in_transaction=in_transaction)

    # --- answering decisions ----------------------------------------------------------------------

    def accept(self, text: str | None = None) -> None:
        """Answer the pending decision with its default positive reply (``text`` replaces the
        default text): 250 (EHLO with the capability list), 252 for VRFY/EXPN, 235 for AUTH."""
        pending = self._pending
        if text is None and pending is not None and not self._events:
            # The usual answer (checks of _require_pending passed: pending and returned).
            wire = self._accept_wire.get(type(pending))
            if wire is not None:
                # What _answer() does for these replies, without building or formatting one.
                self._out.append(wire)
                if isinstance(pending, RcptTo):
                    if self._txn is not None:
                        self._txn.recipients.append(pending.address)
                elif isinstance(pending, MailFrom):
                    self._txn = Transaction(pending.address, pending.params)
                elif isinstance(pending, EndOfMessage):  # only outside LMTP: one reply in all
                    self._lmtp_owed = []
                    self._txn = None
                self._pending = None
                if self._shutting_down:
                    self._maybe_finish_shutdown()
                return
        pending = self._require_pending()
        if isinstance(pending, Hello):
            self._accept_hello(pending, text)
            return
        if isinstance(pending, AuthQuery):
            if isinstance(pending, AuthSecretLookup):
                raise LocalProtocolError("answer AuthSecretLookup with provide_secret()")
            self._auth_answer(True, None)
            return
        self._answer(self._positive_reply(pending, text), every_recipient=True)

    def reject(self, reply: Reply | None = None) -> None:
        """Answer the pending decision negatively: ``reply`` or the default (550 family; 535 5.7.8
        for credentials).

        For an AUTH query the reply is the final reply of the exchange, sent where the mechanism
        would send its ``535``: at once for PLAIN, LOGIN and CRAM-MD5, after the error-JSON
        exchange for OAUTHBEARER/XOAUTH2 (RFC 7628 §3.2.2), after the client-final message for
        SCRAM (which carries on with a made-up record so a rejected user looks like a wrong
        password, RFC 5802 §9).
        """
        pending = self._require_pending()
        if reply is not None and reply.is_positive:
            raise LocalProtocolError("reject() needs a 4xx or 5xx reply")
        if isinstance(pending, AuthQuery):
            self._auth_answer(None if isinstance(pending, AuthSecretLookup) else False, reply)
            return
        self._answer(
            reply if reply is not None else self._negative_reply(pending), every_recipient=True
        )

    def send_reply(self, reply: Reply) -> None:
        """Answer the pending decision with exactly ``reply``. A positive reply counts as
        acceptance (the sender or recipient is recorded). For :class:`EndOfMessage` in LMTP mode,
        call once per recipient."""
        pending = self._require_pending()
        if isinstance(pending, AuthQuery):
            if reply.is_positive:
                raise LocalProtocolError("use accept() or provide_secret() to let AUTH succeed")
            self.reject(reply)
            return
        self._answer(reply)

    def provide_secret(self, answer: CredentialAnswer) -> None:
        """Answer an :class:`AuthSecretLookup`: the password, a ``ScramSecrets`` or None."""
        pending = self._require_pending()
        if not isinstance(pending, AuthSecretLookup):
            raise LocalProtocolError("provide_secret() answers only AuthSecretLookup")
        self._auth_answer(answer, None)

    def tls_started(self, channel_binding: ChannelBinding | None = None) -> None:
        """The TLS handshake after a :class:`StartTLS` event succeeded: the session restarts
        (RFC 3207 §4.2: the client must send EHLO again; hello, transaction and authentication are
        forgotten). With ``tls_on_connect`` it may be called before any command just to supply
        channel-binding data."""
        if self._phase is PHASE_STARTTLS:
            self._buf.clear()
            self._phase = PHASE_COMMAND
            self._tls_active = True
            self._hello = None
            self._esmtp = False
            self._advertised_auth = ()
            self._txn = None
            self._authenticated = None
        elif not (self.config.tls_on_connect and self._commands == 0):
            raise LocalProtocolError("tls_started() without a StartTLS event")
        self._channel_binding = channel_binding

    def start_shutdown(self) -> None:
        """Graceful shutdown: let the transaction in flight finish, then answer ``421 4.3.2`` and
        close (at once when the session is idle)."""
        self._shutting_down = True
        self._maybe_finish_shutdown()

    def abort(self, reply: Reply | None = None) -> None:
        """Queue ``421 4.4.2`` (or ``reply``) and close now, e.g. on a timeout."""
        if self._phase is PHASE_CLOSED:
            return
        if reply is None:
            reply = Reply.make(421, "4.4.2", f"{self.config.hostname} Timeout, closing connection")
        self._events.clear()
        self._pending = None
        self._txn = None
        self._send(reply)
        self._close()

    # --- internals: output ------------------------------------------------------------------------

    def _send(self, reply: Reply) -> None:
        self._out.append(reply.to_bytes(enhanced_codes=self._enhanced))

    def _error(self, reply: Reply) -> None:
        """A 4xx/5xx the core decided: counts toward ``max_errors``."""
        self._send(reply)
        self._errors += 1
        if self._errors >= self.config.max_errors:
            self._fail(Replies.TOO_MANY_ERRORS)

    def _fail(self, reply: Reply) -> None:
        self._send(reply)
        self._close()
        self._fatal = RemoteProtocolError(reply.text, reply=reply)

    def _close(self) -> None:
        self._phase = PHASE_CLOSED
        self._buf.clear()
        self._mechanism = None
        self._decoder = None

    def _notice(self, event: Event) -> None:
        self._events.append(event)

    def _decide(self, event: ServerEvent) -> None:
        self._pending = event
        self._events.append(event)

    def _require_pending(self) -> ServerEvent:
        pending = self._pending
        if pending is None:
            raise LocalProtocolError("no decision is pending")
        if self._events and pending in self._events:
            raise LocalProtocolError("the pending event was not returned by next_event() yet")
        return pending

    def _maybe_finish_shutdown(self) -> None:
        if (
            self._shutting_down
            and self._phase is PHASE_COMMAND
            and self._txn is None
            and self._pending is None
        ):
            self._send(Reply.make(421, "4.3.2", f"{self.config.hostname} Service shutting down"))
            self._close()

    # --- internals: answers to decisions ----------------------------------------------------------

    def _answer(self, reply: Reply, *, every_recipient: bool = False) -> None:
        """Send the answer to the pending decision and apply it to the session state.

        ``every_recipient``: an LMTP end of data answered with accept()/reject() gets the reply
        once for each recipient still owed one (RFC 2033 §4.2).
        """
        pending = self._pending
        if isinstance(pending, EndOfMessage):
            owed = max(1, len(self._lmtp_owed)) if self.config.lmtp else 1
            for _ in range(owed if every_recipient else 1):
                self._send(reply)
            if not every_recipient and owed > 1:
                self._lmtp_owed.pop(0)
                return
            self._lmtp_owed = []
            self._txn = None
        elif isinstance(pending, Hello):
            self._send(reply)
            if reply.is_positive:
                self._hello = pending.hostname
                self._esmtp = pending.verb != "HELO"
                self._advertised_auth = advertised_auth_mechanisms(reply) if self._esmtp else ()
        elif isinstance(pending, MailFrom):
            self._send(reply)
            if reply.is_positive:
                self._txn = Transaction(pending.address, pending.params)
        elif isinstance(pending, RcptTo):
            self._send(reply)
            if reply.is_positive and self._txn is not None:
                self._txn.recipients.append(pending.address)
        else:
            self._send(reply)
        self._pending = None
        if self._shutting_down:
            self._maybe_finish_shutdown()

    def _positive_reply(self, pending: ServerEvent, text: str | None) -> Reply:
        """accept()'s reply for the decisions other than Hello and the AUTH queries."""
        if text is None:
            reply = DEFAULT_REPLY_OBJECTS[type(pending)][0]
            assert reply is not None  # only Hello has none
            return reply
        positive = DEFAULT_REPLIES[type(pending)][0]
        assert positive is not None  # only Hello has none
        return Reply.make(positive[0], positive[1], text)

    def _negative_reply(self, pending: ServerEvent) -> Reply:
        return DEFAULT_REPLY_OBJECTS[type(pending)][1]

    def _accept_hello(self, hello: Hello, text: str | None) -> None:
        """accept() for HELO/EHLO/LHLO: 250 with the hostname (and ``text``), plus the
        capabilities this session state allows for EHLO/LHLO (RFC 5321 §4.1.1.1). The reply is
        formatted, and its AUTH line read back (see advertised_auth_mechanisms), once per
        distinct list of lines rather than once per session."""
        first = self.config.hostname if text is None else f"{self.config.hostname} {text}"
        esmtp = hello.verb != "HELO"
        lines = (first, *self._capabilities()) if esmtp else (first,)
        entry = HELLO_WIRE.get(lines)
        if entry is None:
            reply = Reply.make(250, None, *lines)  # raises on CR/LF in text: nothing changed yet
            # No enhanced code on this reply (RFC 2034 §3): one wire form.
            entry = remember(
                HELLO_WIRE, lines, (reply.to_bytes(), advertised_auth_mechanisms(reply))
            )
        self._out.append(entry[0])
        self._hello = hello.hostname
        self._esmtp = esmtp
        self._advertised_auth = entry[1] if esmtp else ()
        self._pending = None
        if self._shutting_down:
            self._maybe_finish_shutdown()
