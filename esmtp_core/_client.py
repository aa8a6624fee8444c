"""The sans-I/O ESMTP client: :class:`ClientConnection` (RFC 5321, 2920, 3030, 3207, 4954, 2033).

Usage (the pattern every adapter follows)::

    conn = ClientConnection(ClientConfig(local_hostname="client.example"))
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            sock.sendall(conn.data_to_send())    # ALWAYS flush before waiting for the server
            conn.receive_data(sock.recv(65536))  # b"" when the server closed
            continue
        ...                                      # Greeting -> conn.ehlo(); EhloReply -> ...

Commands are methods (``ehlo()``, ``mail()``, ``send_message()``, ...) that validate their
arguments against the protocol state and the server's capabilities, raise
:class:`~esmtp_core.LocalProtocolError` when the command must not be sent, and queue the bytes.
``data_to_send()`` hands out what may leave now: with PIPELINING (RFC 2920) a whole group, without
it one command at a time — the core holds the rest until the replies arrive, so the embedding code
can queue a whole transaction and just keep flushing. Replies come back as events, matched to the
commands in order; see :mod:`esmtp_core._client_events`.

Bytes are also released or produced by the core in reaction to replies, which is why
``data_to_send()`` must be flushed whenever ``next_event()`` returns ``NEED_DATA`` (before
blocking on a read): the next command held back without PIPELINING, HELO after a refused EHLO,
the lone ``.`` when DATA got 354 although every RCPT failed (RFC 2920 §3.1), SASL responses,
RSET after a failed transaction, and DATA bodies held until the 354.

Decisions where the RFCs leave room:

* An unsolicited ``421`` (a server timing out an idle session) ends the session with
  :class:`SessionEnded`; any other reply nobody asked for is a :class:`RemoteProtocolError`.
* A transaction started with :meth:`start_transaction` that fails half-way (MAIL refused, every
  RCPT refused, DATA or a BDAT refused) sends nothing more of itself; when the server may still
  hold its state the core sends ``RSET`` and swallows the reply. Later body data is discarded.
* With PIPELINING a new transaction may be started as soon as the previous body ended: its MAIL,
  RCPTs and DATA/BDAT leave in the flight of the previous final dot or ``BDAT LAST`` (RFC 2920
  §3.1), replies are matched in order and each transaction still gets its own result. Behind a
  BDAT transaction still awaiting replies the core first sends an ``RSET`` (RFC 3030 §2: only
  RSET clears the state a refused BDAT leaves, and the refusal would come too late).
* BDAT is used whenever CHUNKING is offered (no dot-stuffing, exact bytes). A BDAT body that is not
  ``BODY=BINARYMIME`` is still CRLF-normalised (RFC 3030 §3: it must be canonical) but gets no
  final CRLF; a ``BINARYMIME`` body is sent byte for byte.
* ``BODY=BINARYMIME`` only when the caller asks for it (``binary=True`` or in ``mail_params``),
  never guessed from the content: everything else is CRLF-normalised, so no bare CR or LF ever
  leaves the client (the SMTP smuggling attacks of 2023 depend on them).
"""

from __future__ import annotations

import base64
from collections import deque

from ._capabilities import Capabilities
from ._client_commands import build_line, check_text, needs_smtputf8
from ._client_events import (
    ClientEvent,
    SessionEnded,
)
from ._client_replies import ReplyHandling
from ._client_state import GROUP_ENDING, ClientState, Command, Kind, Transaction
from ._client_transaction import TransactionCommands
from ._config import ClientConfig
from ._errors import LocalProtocolError, RemoteProtocolError
from ._replies import ReplyParser
from ._sasl import (
    CLIENT_MECHANISMS,
    DEFAULT_CLIENT_PREFERENCE,
    ChannelBinding,
    ClientCredentials,
    ClientMechanism,
    SaslContext,
    select_client_mechanism,
)
from ._sentinels import NEED_DATA, PAUSED, Sentinel

__all__ = ["ClientConnection", "ClientState"]


class ClientConnection(TransactionCommands, ReplyHandling):
    """The client side of one SMTP/LMTP session, as a state machine without I/O.

    See the module documentation for the driving loop. Public state: :attr:`state`,
    :attr:`capabilities`, :attr:`tls_active`, :attr:`authenticated`, :attr:`closed`,
    :attr:`body_backlog`, :attr:`pipelining`.
    """

    def __init__(self, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig()
        self._parser = ReplyParser(
            max_line_length=self.config.max_reply_line_length,
            max_lines=self.config.max_reply_lines,
        )
        self._events: deque[ClientEvent] = deque()
        self._outbox: deque[Command] = deque()
        self._inflight: deque[Command] = deque([Command(Kind.GREETING, "")])
        #: Bytes released for sending, as pieces: a body is never copied into a growing buffer,
        #: only joined once by ``data_to_send()``.
        self._send: list[bytes] = []
        #: A command whose outcome decides what may follow (greeting, hello, STARTTLS, AUTH,
        #: QUIT): nothing else may be issued until its reply was processed.
        self._blocking: Command | None = self._inflight[0]
        #: The command in flight that ended a pipelined group (RFC 2920 §3.1), if any: nothing
        #: more is released until its reply came. There is at most one (nothing follows it
        #: until then); cleared when its reply is processed or the session ends.
        self._group_end: Command | None = self._inflight[0]
        self._greeted = False
        self._hello_done = False
        self._caps: Capabilities | None = None
        self._txn: Transaction | None = None
        #: MAIL/RCPT lines without parameters, by (verb, address): see ``start_transaction``.
        self._lines: dict[tuple[str, str], bytes] = {}
        self._open: list[Transaction] = []
        self._tls_active = self.config.tls_on_connect
        self._tls_pending = False
        self._channel_binding: ChannelBinding | None = None
        self._authenticated: str | None = None
        self._eof = False
        self._ended: SessionEnded | None = None
        self._error: RemoteProtocolError | None = None

    # --- public state ---------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The session state as seen from the commands issued so far (see :class:`ClientState`)."""
        if self._ended is not None or self._error is not None:
            return ClientState.CLOSED
        if self._tls_pending:
            return ClientState.TLS_PENDING
        if not self._greeted:
            return ClientState.CONNECTED
        if not self._hello_done:
            return ClientState.GREETED
        txn = self._txn
        if txn is None or txn.failed:
            return ClientState.READY
        return ClientState.BODY if txn.body_open else ClientState.TRANSACTION

    @property
    def pipelining(self) -> bool:
        """Commands are pipelined (the server offered PIPELINING and the config allows it)."""
        return self.capabilities.pipelining and self.config.use_pipelining

    @property
    def tls_active(self) -> bool:
        """TLS is up (implicit TLS, or STARTTLS followed by ``tls_started()``)."""
        return self._tls_active

    @property
    def authenticated(self) -> str | None:
        """The SASL mechanism of a successful AUTH in this session, else ``None``."""
        return self._authenticated

    @property
    def closed(self) -> bool:
        """The session is over: flush ``data_to_send()`` and close the connection."""
        return self.state is ClientState.CLOSED

    @property
    def in_transaction(self) -> bool:
        """A MAIL transaction has commands issued and replies outstanding."""
        txn = self._txn
        return any(not t.finished for t in self._open) or (txn is not None and not txn.failed)

    @property
    def body_backlog(self) -> int:
        """Body octets (BDAT command lines included) the core holds because the server must
        answer first (DATA waits for 354;
        BDAT without PIPELINING waits for each chunk's 250). An adapter streaming a large body
        reads replies (``next_event()``) while this is above its buffer limit; see
        :meth:`send_body`."""
        held = sum(
            len(cmd.payload) + len(cmd.data) for cmd in self._outbox if cmd.kind is Kind.BDAT
        )
        return held + sum(txn.held_size + txn.chunk_size for txn in self._open)

    # --- I/O ------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the server; ``b""`` means it closed the connection.

        Bytes arriving between the ``220`` to STARTTLS and ``tls_started()`` are plaintext the
        server (or an attacker) sent before TLS: they are discarded (RFC 3207 §5).
        """
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() after the end of the stream")
        if self._tls_pending:
            return
        self._parser.feed(bytes(data))

    def data_to_send(self) -> bytes:
        """The bytes to write to the server now (possibly empty); call after every method call and
        every ``next_event()``."""
        if self._error is not None:
            return b""
        if self._outbox:
            self._release()
        send = self._send
        if not send:
            return b""
        out = send[0] if len(send) == 1 else b"".join(send)
        send.clear()
        return out

    def next_event(self) -> ClientEvent | Sentinel:
        """The next event, ``NEED_DATA`` (receive more bytes), or ``PAUSED`` (STARTTLS: waiting
        for ``tls_started()``). After the session ended, :class:`SessionEnded` every time.

        Raises :class:`RemoteProtocolError` when the server broke the protocol; the connection is
        then unusable (every later call raises the same error).
        """
        if self._error is not None:
            raise self._error
        try:
            while not self._events:
                if self._ended is not None:
                    return self._ended
                if self._tls_pending:
                    return PAUSED
                reply = self._parser.next_reply()
                if reply is None:
                    if not self._eof:
                        return NEED_DATA
                    self._end(None)
                    continue
                self._on_reply(reply)
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        return self._events.popleft()

    # --- session commands -----------------------------------------------------------------------

    def ehlo(self) -> None:
        """Send EHLO (RFC 5321 §4.1.1.1); :class:`EhloReply` follows. Not in LMTP mode."""
        if self.config.lmtp:
            raise LocalProtocolError("LMTP uses LHLO, not EHLO (RFC 2033 §4.1)")
        self._hello("EHLO")

    def helo(self) -> None:
        """Send HELO: no extensions at all. Not in LMTP mode."""
        if self.config.lmtp:
            raise LocalProtocolError("LMTP uses LHLO, not HELO (RFC 2033 §4.1)")
        self._hello("HELO")

    def lhlo(self) -> None:
        """Send LHLO (RFC 2033 §4.1); LMTP mode only."""
        if not self.config.lmtp:
            raise LocalProtocolError("LHLO is for LMTP (ClientConfig(lmtp=True))")
        self._hello("LHLO")

    def hello(self) -> None:
        """EHLO, or LHLO in LMTP mode."""
        self._hello("LHLO" if self.config.lmtp else "EHLO")

    def _hello(self, verb: str) -> None:
        self._require(ClientState.GREETED, ClientState.READY)
        self._queue(Command(Kind.HELLO, verb, build_line(verb, self.config.local_hostname)))

    def starttls(self) -> None:
        """Send STARTTLS (RFC 3207); :class:`StartTLSReply` follows. Needs the server to offer it,
        no TLS yet, and no transaction open."""
        self._require(ClientState.READY)
        if self._tls_active:
            raise LocalProtocolError("TLS is already active")
        if not self.capabilities.starttls:
            raise LocalProtocolError("the server did not offer STARTTLS")
        self._queue(Command(Kind.STARTTLS, "STARTTLS", b"STARTTLS\r\n"))

    def tls_started(self, channel_binding: ChannelBinding | None = None) -> None:
        """The transport finished the TLS handshake after :class:`StartTLSReply` said ready.

        The session returns to its start (RFC 3207 §4.2): capabilities are forgotten and EHLO must
        be sent again. ``channel_binding`` feeds the ``-PLUS`` SASL mechanisms.

        With implicit TLS use :meth:`set_channel_binding` instead (a call here is taken as one,
        for compatibility: nothing else changes).
        """
        if not self._tls_pending:
            if self.config.tls_on_connect:
                self.set_channel_binding(channel_binding)
                return
            raise LocalProtocolError("tls_started() without a STARTTLS accepted by the server")
        self._tls_pending = False
        self._tls_active = True
        self._channel_binding = channel_binding
        self._hello_done = False
        self._caps = None
        self._authenticated = None
        self._parser.discard()

    def set_channel_binding(self, channel_binding: ChannelBinding | None) -> None:
        """Give the TLS channel binding (RFC 5929, RFC 9266) for the ``-PLUS`` SASL mechanisms.

        Meant for implicit TLS (``ClientConfig.tls_on_connect``, RFC 8314), where no
        ``tls_started()`` call carries it: call it once the handshake is done, any time before
        :meth:`auth`. Also allowed after STARTTLS (it replaces what ``tls_started()`` got).
        Refused (LocalProtocolError) without TLS — a binding to no channel binds nothing — and
        while an AUTH is under way or after a successful one (the mechanism was already chosen
        with or without it).
        """
        if self.closed:
            raise LocalProtocolError("the session is closed")
        if not self._tls_active:
            raise LocalProtocolError("channel binding without TLS (RFC 5929 binds a TLS channel)")
        auth_started = any(c.kind is Kind.AUTH for c in (*self._outbox, *self._inflight))
        if auth_started or self._authenticated is not None:
            raise LocalProtocolError("set_channel_binding() during or after AUTH")
        self._channel_binding = channel_binding

    def auth(self, credentials: ClientCredentials, mechanism: str | None = None) -> None:
        """Authenticate (RFC 4954); :class:`AuthResult` follows.

        Without ``mechanism`` the strongest one is chosen: the first of
        ``ClientConfig.auth_preference`` that the server offered, :data:`CLIENT_MECHANISMS`
        implements and ``credentials`` allow. Refused (LocalProtocolError) without TLS unless
        ``ClientConfig.allow_insecure_auth``, when AUTH was not offered, inside a transaction, or
        after a successful AUTH. The core answers every ``334`` challenge itself; a challenge the
        mechanism rejects is cancelled with ``*`` and reported in ``AuthResult.error``.
        """
        self._require(ClientState.READY)
        if not self._tls_active and not self.config.allow_insecure_auth:
            raise LocalProtocolError(
                "refusing to send credentials without TLS (ClientConfig.allow_insecure_auth)"
            )
        if self._authenticated is not None:
            raise LocalProtocolError("already authenticated (RFC 4954 §4)")
        offered = self.capabilities.auth_mechanisms
        if not offered:
            raise LocalProtocolError("the server did not offer AUTH")
        context = SaslContext(
            hostname=self.capabilities.server_name or "localhost",
            tls_active=self._tls_active,
            channel_binding=self._channel_binding,
            advertised_mechanisms=offered,
        )
        mech_class: type[ClientMechanism] | None
        if mechanism is None:
            preference = self.config.auth_preference or DEFAULT_CLIENT_PREFERENCE
            mech_class = select_client_mechanism(offered, credentials, context, preference)
            if mech_class is None:
                raise LocalProtocolError(f"no usable SASL mechanism among {' '.join(offered)}")
        else:
            name = mechanism.upper()
            if name not in offered:
                raise LocalProtocolError(f"the server did not offer AUTH {name}")
            mech_class = CLIENT_MECHANISMS.get(name)
            if mech_class is None:
                raise LocalProtocolError(f"no client implementation of SASL {name}")
        mech = mech_class(credentials, context)
        initial = mech.initial_response()  # SaslError for unusable credentials propagates
        line = f"AUTH {mech_class.name}"
        if initial is not None:
            # RFC 4954 §4: an empty initial response is sent as "=".
            line += " " + (base64.b64encode(initial).decode("ascii") if initial else "=")
        command = Command(Kind.AUTH, "AUTH", line.encode("ascii") + b"\r\n", mech_class.name)
        command.mechanism = mech
        self._queue(command)

    def noop(self) -> None:
        """Send NOOP; :class:`CommandReply` follows."""
        self._require_session()
        self._queue(Command(Kind.NOOP, "NOOP", b"NOOP\r\n"))

    def rset(self) -> None:
        """Send RSET (RFC 5321 §4.1.1.5), abandoning a transaction whose body was not started;
        :class:`CommandReply` follows. A body in progress cannot be reset: end it or close."""
        self._require_session()
        txn = self._txn
        if txn is not None and txn.body_open:
            raise LocalProtocolError("cannot RSET in the middle of a message body")
        if txn is not None and txn.aggregate and not txn.failed:
            raise LocalProtocolError("cannot RSET a transaction started with start_transaction()")
        self._abandon()
        self._queue(Command(Kind.RSET, "RSET", b"RSET\r\n"))

    def vrfy(self, argument: str) -> None:
        """Send VRFY (RFC 5321 §4.1.1.6); :class:`CommandReply` follows. A non-ASCII argument
        needs SMTPUTF8 (sent as ``VRFY arg SMTPUTF8``, RFC 6531 §3.7.4.2)."""
        self._require(ClientState.READY, ClientState.TRANSACTION)
        check_text(argument, "VRFY argument")
        if not argument:
            raise LocalProtocolError("VRFY needs an argument")
        line = argument
        if needs_smtputf8(argument):
            if not (self.capabilities.smtputf8 and self.config.use_smtputf8):
                raise LocalProtocolError("a non-ASCII VRFY argument needs SMTPUTF8")
            line += " SMTPUTF8"
        self._queue(Command(Kind.VRFY, "VRFY", build_line("VRFY", line), argument))

    def quit(self) -> None:
        """Send QUIT; a :class:`CommandReply` with 221 and then :class:`SessionEnded` follow."""
        self._require_session()
        txn = self._txn
        if txn is not None and txn.body_open:
            raise LocalProtocolError("cannot QUIT in the middle of a message body")
        self._abandon()
        self._queue(Command(Kind.QUIT, "QUIT", b"QUIT\r\n"))

    # --- internals: queueing --------------------------------------------------------------------

    def _require_session(self) -> None:
        self._require(ClientState.GREETED, ClientState.READY, ClientState.TRANSACTION)

    def _require(self, *states: ClientState) -> None:
        state = self.state
        if self._blocking is not None and state is not ClientState.CLOSED:
            raise LocalProtocolError(
                f"wait for the reply to {self._blocking.verb or 'the greeting'} first"
            )
        if state not in states:
            raise LocalProtocolError(f"not allowed in state {state.name}")

    def _abandon(self) -> None:
        """The caller gave up the current transaction (RSET, QUIT): its replies still come as
        events, then it is forgotten."""
        txn, self._txn = self._txn, None
        if txn is not None and not txn.failed:
            txn.failed = True
            self._maybe_finish(txn)

    def _smtputf8_usable(self) -> bool:
        return self.capabilities.smtputf8 and self.config.use_smtputf8

    def _queue(self, command: Command) -> None:
        if command.transaction is not None:
            command.transaction.outstanding += 1
        if command.kind in (Kind.HELLO, Kind.STARTTLS, Kind.AUTH, Kind.QUIT):
            self._blocking = command
        self._outbox.append(command)

    def _release(self) -> None:
        """Move queued commands to the send buffer: one at a time without PIPELINING, a whole
        group with it (RFC 2920 §3.1: a group ends after EHLO, DATA, AUTH, ...)."""
        outbox, inflight, send = self._outbox, self._inflight, self._send
        pipelining = self.pipelining
        if inflight and (not pipelining or self._group_end is not None):
            return
        while outbox:
            command = outbox.popleft()
            send.append(command.payload)
            if command.data:
                send.append(command.data)
            inflight.append(command)
            # What the rule asks before each command, checked once: only the command just added
            # can have ended the group.
            if command.kind in GROUP_ENDING:
                self._group_end = command
                return
            if not pipelining:
                return
