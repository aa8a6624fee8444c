"""How the client core reacts to each server reply: the reply side of :class:`ClientConnection`.

Replies are matched, in order, to the commands in flight (RFC 2920 §3.1: the server answers
strictly in order); each kind of command has its handler here. Split out of ``_client.py`` only
to keep both modules readable; :class:`ReplyHandling` is not meant to be used on its own.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque

from ._capabilities import Capabilities, parse_capabilities
from ._client_commands import build_line
from ._client_events import (
    AuthResult,
    ClientEvent,
    CommandReply,
    DataReply,
    EhloReply,
    Greeting,
    SessionEnded,
    StartTLSReply,
    TransactionResult,
)
from ._client_state import Command, Kind, Transaction
from ._config import ClientConfig
from ._errors import RemoteProtocolError
from ._replies import ReplyParser
from ._reply import Reply
from ._sasl import SaslError

__all__ = ["EMPTY_CAPABILITIES", "ReplyHandling"]

# RFC 5321 §3.2: fall back to HELO when EHLO gets one of these.
_EHLO_REFUSED = frozenset({500, 502, 504, 550})
EMPTY_CAPABILITIES = Capabilities()


class ReplyHandling:
    """The reply handlers of :class:`~esmtp_core.ClientConnection` (which owns the state)."""

    config: ClientConfig
    _parser: ReplyParser
    _events: deque[ClientEvent]
    _outbox: deque[Command]
    _inflight: deque[Command]
    _send: list[bytes]
    _blocking: Command | None
    _group_end: Command | None
    _greeted: bool
    _hello_done: bool
    _caps: Capabilities | None
    _txn: Transaction | None
    _open: list[Transaction]
    _tls_pending: bool
    _authenticated: str | None
    _ended: SessionEnded | None

    @property
    def capabilities(self) -> Capabilities:
        """What the server offered in its last EHLO/LHLO reply (empty before, or after HELO)."""
        return self._caps or EMPTY_CAPABILITIES

    # --- internals: replies ---------------------------------------------------------------------

    def _on_reply(self, reply: Reply) -> None:
        inflight = self._inflight
        if not inflight:
            if reply.code == 421:
                self._end(reply)
                return
            raise RemoteProtocolError(f"reply nobody asked for: {reply}", reply=reply)
        command = inflight[0]
        code = reply.code
        kind = command.kind
        if 300 <= code < 400 and not (
            (code == 354 and kind is Kind.DATA) or (code == 334 and kind is Kind.AUTH)
        ):
            raise RemoteProtocolError(f"unexpected {code} to {command.verb}", reply=reply)
        if kind is Kind.DATA and 200 <= code < 300:
            raise RemoteProtocolError(f"{code} to DATA instead of 354", reply=reply)
        if kind is Kind.AUTH and code == 334:
            self._auth_challenge(command, reply)
            return
        if kind is Kind.DATA_END or (kind is Kind.BDAT and command.last):
            self._end_of_data_reply(command, reply)
        else:
            inflight.popleft()
            if command is self._blocking:
                self._blocking = None
            if command is self._group_end:
                self._group_end = None
            txn = command.transaction
            if txn is not None:  # MAIL, RCPT, DATA, BDAT: the most frequent replies
                self._transaction_reply(command, txn, reply)
            else:
                self._dispatch(command, reply)
        if code == 421 and self._ended is None:
            self._end(reply)

    def _dispatch(self, command: Command, reply: Reply) -> None:
        kind = command.kind
        txn = command.transaction
        if kind is Kind.GREETING:
            self._greeted = True
            self._events.append(Greeting(reply=reply))
        elif kind is Kind.HELLO:
            self._hello_reply(command, reply)
        elif kind is Kind.STARTTLS:
            if reply.code == 220:
                # RFC 3207 §5: anything after the 220 was sent before TLS; never read it.
                self._parser.discard()
                self._tls_pending = True
            self._events.append(StartTLSReply(reply=reply))
        elif kind is Kind.AUTH:
            self._auth_final(command, reply)
        elif txn is not None:
            self._transaction_reply(command, txn, reply)
        elif not command.internal:
            self._events.append(
                CommandReply(verb=command.verb, argument=command.argument, reply=reply)
            )
        if kind is Kind.QUIT and reply.code == 221:
            self._end(reply)

    def _hello_reply(self, command: Command, reply: Reply) -> None:
        if 200 <= reply.code < 300:
            self._hello_done = True
            self._caps = EMPTY_CAPABILITIES if command.verb == "HELO" else parse_capabilities(reply)
            self._events.append(
                EhloReply(verb=command.verb, reply=reply, capabilities=self.capabilities)
            )
            return
        if command.verb == "EHLO" and reply.code in _EHLO_REFUSED and self.config.helo_fallback:
            helo = Command(Kind.HELLO, "HELO", build_line("HELO", self.config.local_hostname))
            self._blocking = helo
            self._outbox.appendleft(helo)
            return
        self._events.append(
            EhloReply(verb=command.verb, reply=reply, capabilities=EMPTY_CAPABILITIES)
        )

    def _transaction_reply(self, command: Command, txn: Transaction, reply: Reply) -> None:
        txn.outstanding -= 1
        kind = command.kind
        if not txn.aggregate:
            self._events.append(
                CommandReply(verb=command.verb, argument=command.argument, reply=reply)
            )
        positive = reply.code < 400
        if kind is Kind.MAIL:
            txn.mail_reply = reply
            if not positive:
                self._fail(txn)
        elif kind is Kind.RCPT:
            txn.recipient_replies.append((command.argument, reply))
            if positive:
                txn.accepted.append(command.argument)
            elif txn.aggregate and txn.all_recipients_answered and not txn.accepted:
                self._fail(txn)
        elif kind is Kind.DATA:
            self._data_reply(txn, reply)
        elif kind is Kind.BDAT and not positive and not txn.failed:
            txn.data_replies.append((None, reply))
            self._fail(txn)
        if not txn.outstanding:  # (the test _maybe_finish starts with, saving a call)
            self._maybe_finish(txn)

    def _data_reply(self, txn: Transaction, reply: Reply) -> None:
        if reply.code != 354:
            txn.data_replies.append((None, reply))
            self._fail(txn)
            return
        if not txn.accepted or txn.failed:
            # RFC 2920 §3.1: every RCPT failed yet DATA got 354: end the empty message at once.
            # The same when MAIL was refused but a confused server (one still holding an older
            # transaction) accepted RCPT and DATA: the data it now waits for must be ended, or
            # the commands that follow would become message text. Nothing of ours is sent.
            end = Command(Kind.DATA_END, ".", b".\r\n", "", txn)
            txn.outstanding += 1
            self._send.append(end.payload)
            self._inflight.appendleft(end)
            self._fail(txn, reset=False)
            return
        txn.data_go = True
        self._send += txn.held
        txn.held = []
        txn.held_size = 0
        end_command, txn.end_command = txn.end_command, None
        if end_command is not None:
            self._send.append(end_command.payload)
            self._inflight.append(end_command)

    def _end_of_data_reply(self, command: Command, reply: Reply) -> None:
        txn = command.transaction
        assert txn is not None
        if command.replies_left is None:
            # RFC 2033 §4.2: LMTP answers the final dot once per accepted recipient, whatever
            # else happened; after BDAT LAST too, unless an earlier chunk was refused (then the
            # transaction is over and one reply comes).
            command.per_recipient = bool(txn.lmtp and txn.accepted) and not (
                command.kind is Kind.BDAT and txn.failed
            )
            command.replies_left = len(txn.accepted) if command.per_recipient else 1
            command.replies_seen = 0
        recipient = None
        if command.per_recipient:
            recipient = txn.accepted[command.replies_seen]
        command.replies_seen += 1
        txn.data_replies.append((recipient, reply))
        if not txn.aggregate:
            self._events.append(DataReply(reply=reply, recipient=recipient))
        command.replies_left = left = command.replies_left - 1
        if left and reply.code != 421:
            return
        self._inflight.popleft()
        txn.outstanding -= 1
        # The final dot ends the transaction whatever the reply (RFC 5321 §4.1.1.4); a refused
        # BDAT LAST may leave the server holding it (RFC 3030 §2 leaves this open): reset then.
        txn.needs_reset = (
            command.kind is Kind.BDAT
            and not reply.is_positive
            and txn.aggregate
            and txn.mail_reply is not None
            and txn.mail_reply.is_positive
        )
        if txn is self._txn and txn.body_ended:
            self._txn = None
        self._maybe_finish(txn)

    def _fail(self, txn: Transaction, *, reset: bool = True) -> None:
        """Send nothing more of ``txn``; RSET later if the server may hold its state."""
        if not txn.failed:
            txn.failed = True
            if txn.aggregate:
                # Manual transactions keep their queued commands: the caller expects one event
                # per command it issued.
                kept = deque(c for c in self._outbox if c.transaction is not txn)
                txn.outstanding -= len(self._outbox) - len(kept)
                self._outbox = kept
            if txn.end_command is not None:
                txn.end_command = None
                txn.outstanding -= 1
            txn.held = []
            txn.held_size = 0
            txn.chunk = []
            txn.chunk_size = 0
            txn.envelope = None
        if reset and txn.aggregate and txn.mail_reply is not None and txn.mail_reply.is_positive:
            txn.needs_reset = True

    def _maybe_finish(self, txn: Transaction) -> None:
        if txn.finished or txn.outstanding or not (txn.body_ended or txn.failed):
            return
        if txn.envelope is not None:
            return
        txn.finished = True
        self._open.remove(txn)
        if not txn.aggregate:
            return
        assert txn.mail_reply is not None
        self._events.append(
            TransactionResult(
                sender=txn.sender,
                mail_reply=txn.mail_reply,
                recipient_replies=tuple(txn.recipient_replies),
                data_replies=tuple(txn.data_replies),
                recipients=tuple(txn.recipients),
            )
        )
        if txn.needs_reset and not txn.reset_follows and self._ended is None:
            self._outbox.appendleft(Command(Kind.RSET, "RSET", b"RSET\r\n", internal=True))

    # --- internals: AUTH ------------------------------------------------------------------------

    def _auth_challenge(self, command: Command, reply: Reply) -> None:
        if command.auth_cancelled:
            raise RemoteProtocolError("334 after the AUTH exchange was cancelled", reply=reply)
        mech = command.mechanism
        assert mech is not None
        try:
            challenge = base64.b64decode(reply.lines[0].strip(), validate=True)
            response = mech.respond(challenge)
        except (binascii.Error, ValueError) as exc:
            command.auth_error = SaslError(f"malformed base64 challenge: {exc}")
        except SaslError as exc:
            command.auth_error = exc
        else:
            self._send.append(base64.b64encode(response) + b"\r\n")
            return
        # RFC 4954 §4: "*" cancels the exchange; the server answers 501.
        command.auth_cancelled = True
        self._send.append(b"*\r\n")

    def _auth_final(self, command: Command, reply: Reply) -> None:
        error = command.auth_error
        mech = command.mechanism
        assert mech is not None
        if reply.code == 235 and error is None and not mech.complete:
            error = SaslError(f"{command.argument}: the server did not prove its identity")
        if reply.code == 235 and error is None:
            self._authenticated = command.argument
        self._events.append(AuthResult(mechanism=command.argument, reply=reply, error=error))

    # --- internals: the end ---------------------------------------------------------------------

    def _end(self, reply: Reply | None) -> None:
        """The session is over (QUIT answered, 421, or the server closed)."""
        in_transaction = False
        for txn in list(self._open):
            if txn.finished:
                continue
            in_transaction = True
            if reply is not None and reply.code == 421 and txn.aggregate:
                self._close_transaction(txn, reply)
        self._open.clear()
        self._txn = None
        self._outbox.clear()
        self._inflight.clear()
        self._group_end = None
        self._blocking = None
        self._ended = SessionEnded(reply=reply, in_transaction=in_transaction)

    def _close_transaction(self, txn: Transaction, reply: Reply) -> None:
        """A 421 cut the transaction short: its unanswered parts get the 421."""
        txn.finished = True
        mail_reply = txn.mail_reply or reply
        answered = {rcpt for rcpt, _ in txn.recipient_replies}
        rcpts = list(txn.recipient_replies)
        if mail_reply.is_positive:
            rcpts += [(rcpt, reply) for rcpt in txn.recipients if rcpt not in answered]
        data = list(txn.data_replies)
        if txn.accepted and not data:
            data.append((None, reply))
        self._events.append(
            TransactionResult(
                sender=txn.sender,
                mail_reply=mail_reply,
                recipient_replies=tuple(rcpts),
                data_replies=tuple(data),
                recipients=tuple(txn.recipients),
            )
        )
