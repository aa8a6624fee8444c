"""The transaction commands of the client connection: MAIL, RCPT, DATA, BDAT, the transaction
helper and the body stream (RFC 5321 §3.3, RFC 2920, RFC 3030).

Kept apart from ``_client.py`` so each file reads in one sitting; it is a mixin of
:class:`~esmtp_core.ClientConnection` and not used on its own. The module documentation of
``_client.py`` describes the decisions taken for failed transactions and for BDAT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._capabilities import Capabilities
from ._client_commands import build_mail, build_rcpt, needs_smtputf8
from ._client_state import ClientState, Command, Kind, Transaction
from ._config import ClientConfig
from ._errors import LocalProtocolError
from ._params import NO_MAIL_PARAMS, NO_RCPT_PARAMS, BodyType, MailParams, RcptParams
from ._stuffing import DotStuffer, LineEndingNormalizer, normalize_line_endings

if TYPE_CHECKING:
    from collections import deque

__all__ = ["TransactionCommands"]

#: How many MAIL/RCPT lines without parameters a connection keeps, by address (a bound: a
#: client sending to ever new addresses simply builds the rest each time).
_LINES_KEPT = 256


class TransactionCommands:
    """MAIL, RCPT, DATA, BDAT, :meth:`start_transaction` and the body (mixed into
    ClientConnection)."""

    if TYPE_CHECKING:  # attributes and helpers provided by ClientConnection
        config: ClientConfig
        _send: list[bytes]
        _inflight: deque[Command]
        _txn: Transaction | None
        _open: list[Transaction]
        _outbox: deque[Command]
        _lines: dict[tuple[str, str], bytes]

        @property
        def capabilities(self) -> Capabilities: ...
        @property
        def pipelining(self) -> bool: ...
        def _require(self, *states: ClientState) -> None: ...
        def _queue(self, command: Command) -> None: ...
        def _smtputf8_usable(self) -> bool: ...

    # --- low-level transaction commands (one event per reply) ----------------------------------

    def mail(self, sender: str, params: MailParams | None = None) -> None:
        """Send ``MAIL FROM:<sender>`` (``""`` is the null sender ``<>``); :class:`CommandReply`
        follows. Parameters are checked against the server's offer; a non-ASCII sender sets
        SMTPUTF8 when offered and is refused otherwise."""
        self._require(ClientState.READY)
        params = params or MailParams()
        if needs_smtputf8(sender) and not params.smtputf8 and self._smtputf8_usable():
            params = dataclasses.replace(params, smtputf8=True)
        txn = Transaction(
            sender=sender,
            aggregate=False,
            smtputf8=params.smtputf8,
            lmtp=self.config.lmtp,
            binary=params.body is BodyType.BINARY_MIME,
        )
        line = build_mail(sender, params, self.capabilities)
        self._reset_behind_bdat()
        self._txn = txn
        self._open.append(txn)
        self._queue(Command(Kind.MAIL, "MAIL", line, sender, txn))

    def rcpt(self, recipient: str, params: RcptParams | None = None) -> None:
        """Send ``RCPT TO:<recipient>``; :class:`CommandReply` follows."""
        txn = self._manual_transaction(ClientState.TRANSACTION)
        line = build_rcpt(
            recipient, params or RcptParams(), self.capabilities, smtputf8=txn.smtputf8
        )
        txn.recipients.append(recipient)
        self._queue(Command(Kind.RCPT, "RCPT", line, recipient, txn))

    def data(self) -> None:
        """Send DATA; a :class:`CommandReply` with 354 (or a refusal) follows. Then stream the
        body with :meth:`send_body` and finish with :meth:`end_body`; :class:`DataReply` follows
        (one per accepted recipient in LMTP). When no recipient was accepted and the server
        still says 354, the core sends the lone ``.`` itself (RFC 2920 §3.1) and discards the
        body."""
        txn = self._manual_transaction(ClientState.TRANSACTION)
        if txn.binary:
            raise LocalProtocolError("BODY=BINARYMIME needs BDAT, not DATA (RFC 3030 §3)")
        txn.body_started = True
        txn.stuffer = DotStuffer()
        self._queue(Command(Kind.DATA, "DATA", b"DATA\r\n", "", txn))

    def bdat(self, chunk: bytes, *, last: bool = False) -> None:
        """Send ``BDAT <len> [LAST]`` with ``chunk`` exactly as given (RFC 3030); needs CHUNKING.
        A :class:`CommandReply` follows for a non-final chunk, :class:`DataReply` for the last."""
        txn = self._manual_transaction(ClientState.TRANSACTION, ClientState.BODY)
        if txn.stuffer is not None:
            raise LocalProtocolError("BDAT after DATA")
        if not self.capabilities.chunking:
            raise LocalProtocolError("the server did not offer CHUNKING")
        txn.body_started = True
        txn.use_bdat = True
        if last:
            txn.body_ended = True
            self._txn = None
        self._queue_bdat(txn, bytes(chunk), last=last)

    # --- the transaction helper (one TransactionResult) ----------------------------------------

    def start_transaction(
        self,
        sender: str,
        recipients: Sequence[str | tuple[str, RcptParams]],
        *,
        mail_params: MailParams | None = None,
        size: int | None = None,
        eight_bit: bool | None = None,
        binary: bool = False,
    ) -> None:
        """Queue MAIL, every RCPT and DATA (or, with CHUNKING, prepare BDAT), then stream the body
        with :meth:`send_body` / :meth:`end_body`; one :class:`TransactionResult` follows.

        With PIPELINING, MAIL, the RCPTs and DATA or the first BDAT chunk leave in one flight
        (RFC 2920, RFC 3030 §4.2); without it, one command at a time, stopping early when MAIL or
        every RCPT is refused. Parameters added when offered and enabled in the config: ``SIZE``
        (when ``size`` is given; a size above the server's limit is refused here), ``BODY=
        8BITMIME`` (unless ``eight_bit`` is False), ``BODY=BINARYMIME`` with ``binary`` (needs
        CHUNKING and BINARYMIME: the body is then sent byte for byte), ``SMTPUTF8`` when an
        address needs it. ``mail_params`` supplies the rest (DSN, AUTH=, REQUIRETLS, ...).
        """
        self._require(ClientState.READY)
        if not recipients:
            raise LocalProtocolError("a transaction needs at least one recipient")
        caps = self.capabilities
        config = self.config
        params = mail_params or NO_MAIL_PARAMS
        pairs = [(r, NO_RCPT_PARAMS) if isinstance(r, str) else r for r in recipients]
        use_bdat = caps.chunking and config.use_chunking
        # The parameters to add, applied in one ``dataclasses.replace`` (none in the usual case).
        added: dict[str, object] = {}
        body = params.body
        if binary:
            if not (use_bdat and caps.binarymime and config.use_binarymime):
                raise LocalProtocolError("binary body needs CHUNKING and BINARYMIME")
            body = added["body"] = BodyType.BINARY_MIME
        elif body is None and eight_bit is not False and caps.eightbitmime and config.use_8bitmime:
            body = added["body"] = BodyType.EIGHT_BIT_MIME
        if body is BodyType.BINARY_MIME:
            if not use_bdat:  # RFC 3030 §3: BINARYMIME content only travels in BDAT
                raise LocalProtocolError("BODY=BINARYMIME needs BDAT (CHUNKING, use_chunking)")
            binary = True
        if size is not None and params.size is None and caps.size is not None and config.use_size:
            added["size"] = size
        limit = caps.size_limit
        if size is not None and limit is not None and size > limit:
            raise LocalProtocolError(f"message of {size} octets exceeds the server's SIZE {limit}")
        smtputf8 = params.smtputf8
        if not smtputf8 and not (
            sender.isascii() and all(address.isascii() for address, _ in pairs)
        ):
            if not self._smtputf8_usable():
                raise LocalProtocolError("non-ASCII addresses need SMTPUTF8, not offered")
            smtputf8 = added["smtputf8"] = True
        if added:
            params = dataclasses.replace(params, **added)  # type: ignore[arg-type]
        # Build every line first: a refusal must leave nothing half-queued.
        txn = Transaction(
            sender=sender,
            aggregate=True,
            smtputf8=smtputf8,
            lmtp=config.lmtp,
            use_bdat=use_bdat,
            binary=binary,
            size_limit=limit,
        )
        lines = self._lines
        if params is NO_MAIL_PARAMS:
            # Without parameters a line depends on the address alone (it does not involve the
            # capabilities): checked and built once per address.
            mail = lines.get(("MAIL", sender))
            if mail is None:
                mail = build_mail(sender, params, caps)
                if len(lines) < _LINES_KEPT:
                    lines["MAIL", sender] = mail
        else:
            mail = build_mail(sender, params, caps)
        commands = [Command(Kind.MAIL, "MAIL", mail, sender, txn)]
        for address, rcpt_params in pairs:
            if rcpt_params is NO_RCPT_PARAMS:
                key = ("RCPT+UTF8" if smtputf8 else "RCPT", address)
                line = lines.get(key)
                if line is None:
                    line = build_rcpt(address, rcpt_params, caps, smtputf8=smtputf8)
                    if len(lines) < _LINES_KEPT:
                        lines[key] = line
            else:
                line = build_rcpt(address, rcpt_params, caps, smtputf8=smtputf8)
            commands.append(Command(Kind.RCPT, "RCPT", line, address, txn))
            txn.recipients.append(address)
        txn.body_started = True
        self._reset_behind_bdat()
        self._txn = txn
        self._open.append(txn)
        if use_bdat:
            if not binary:
                txn.normalizer = LineEndingNormalizer()
            if self.pipelining:
                txn.envelope = commands  # queued with the first chunk: one flight
                return
        else:
            txn.stuffer = DotStuffer()
            commands.append(Command(Kind.DATA, "DATA", b"DATA\r\n", "", txn))
        # What ``_queue`` does for each: none of these blocks the session.
        txn.outstanding += len(commands)
        self._outbox.extend(commands)

    def send_message(
        self,
        sender: str,
        recipients: Sequence[str | tuple[str, RcptParams]],
        message: bytes,
        *,
        mail_params: MailParams | None = None,
        binary: bool = False,
    ) -> None:
        """The whole transaction for a message in memory: :meth:`start_transaction` with the size
        declared and ``BODY=8BITMIME`` only for 8-bit content, then the body. One
        :class:`TransactionResult` follows.

        The message is CRLF-normalised (bare LF and bare CR become CRLF: the client never puts a
        bare line ending on the wire) and goes over DATA or, with CHUNKING, BDAT. Only when the
        caller asks for it — ``binary=True`` or ``BODY=BINARYMIME`` in ``mail_params`` — is it
        sent byte for byte as ``BODY=BINARYMIME`` (RFC 3030 §3; needs CHUNKING and BINARYMIME,
        else LocalProtocolError). The core does not guess from the content: a bare LF in a text
        message is far more often a Unix line ending than binary data. NUL octets are sent as
        given either way; RFC 6152 allows them in BINARYMIME only, so say ``binary=True``.
        """
        binary = binary or (mail_params is not None and mail_params.body is BodyType.BINARY_MIME)
        message = bytes(message)
        if not binary:
            # Normalised once, here: the declared SIZE is then simply its length, and the body
            # path is told not to check the line endings again.
            message = normalize_line_endings(message)
        self.start_transaction(
            sender,
            recipients,
            mail_params=mail_params,
            size=len(message),
            eight_bit=not message.isascii(),
            binary=binary,
        )
        txn = self._body_transaction()
        if txn is not None:
            self._body(txn, message, canonical=not binary)
        self.end_body()

    # --- body -----------------------------------------------------------------------------------

    def send_body(self, data: bytes) -> None:
        """Stream a piece of the message body (after ``data()`` or ``start_transaction()``).

        DATA: CRLF-normalised and dot-stuffed on the fly; held until the 354 arrives. BDAT: cut
        into ``ClientConfig.bdat_chunk_size`` chunks. Ignored when the server already refused
        the transaction. To bound memory, an adapter reads replies while :attr:`body_backlog` is
        large: ``next_event()``; on NEED_DATA flush ``data_to_send()`` and, if the backlog is
        still large, receive. Exceeding the server's SIZE raises LocalProtocolError (the
        message cannot be taken back: close the connection).
        """
        txn = self._body_transaction()
        if txn is None:
            return
        self._body(txn, bytes(data), canonical=False)  # any bytes-like (no copy for bytes)

    def _body(self, txn: Transaction, data: bytes, *, canonical: bool) -> None:
        """A piece of body for ``txn``; ``canonical``: its line endings are known to be CRLF
        (normalised by ``send_message``), so they are not checked again."""
        txn.body_size += len(data)
        if txn.size_limit is not None and txn.body_size > txn.size_limit:
            raise LocalProtocolError(f"message exceeds the server's SIZE {txn.size_limit}")
        if txn.stuffer is not None:
            encoded = txn.stuffer.feed(data, canonical=canonical)
            if not encoded:
                return
            if txn.data_go:
                self._send.append(encoded)
            else:
                txn.held.append(encoded)
                txn.held_size += len(encoded)
            return
        normalizer = txn.normalizer
        if normalizer is not None and not (canonical and not normalizer.pending):
            data = normalizer.feed(data)
        if not data:
            return
        txn.chunk.append(data)
        txn.chunk_size += len(data)
        size = self.config.bdat_chunk_size
        if txn.chunk_size >= size:
            # Joined once (no copy when it is one piece), cut into whole chunks; the rest waits.
            whole = b"".join(txn.chunk)
            cut = len(whole) - len(whole) % size
            for start in range(0, cut, size):
                self._queue_bdat(txn, whole[start : start + size], last=False)
            rest = whole[cut:]
            txn.chunk = [rest] if rest else []
            txn.chunk_size = len(rest)

    def end_body(self) -> None:
        """End the body: ``CRLF.CRLF`` for DATA, ``BDAT <n> LAST`` for BDAT."""
        txn = self._body_transaction()
        if txn is None:
            return
        txn.body_ended = True
        if txn is self._txn:
            self._txn = None
        if txn.stuffer is not None:
            tail = txn.stuffer.end()
            end = Command(Kind.DATA_END, ".", tail, "", txn)
            txn.outstanding += 1
            if txn.data_go:
                self._send.append(tail)
                self._inflight.append(end)
            else:
                txn.end_command = end
            return
        if txn.normalizer is not None:
            tail = txn.normalizer.end()
            if tail:
                txn.chunk.append(tail)
        chunk = b"".join(txn.chunk)  # no copy when it is one piece (a message in memory)
        txn.chunk = []
        txn.chunk_size = 0
        self._queue_bdat(txn, chunk, last=True)

    # --- internals ------------------------------------------------------------------------------

    def _manual_transaction(self, *states: ClientState) -> Transaction:
        self._require(*states)
        txn = self._txn
        if txn is None or txn.aggregate:
            raise LocalProtocolError("no transaction started with mail()")
        return txn

    def _body_transaction(self) -> Transaction | None:
        txn = self._txn
        if txn is None:
            raise LocalProtocolError("no message body in progress")
        if txn.failed:
            return None  # the server refused the transaction: the rest is discarded
        if not txn.body_open or (txn.use_bdat and not txn.aggregate):
            raise LocalProtocolError("no message body in progress")
        return txn

    def _reset_behind_bdat(self) -> None:
        """A new MAIL is queued while a BDAT transaction still awaits replies (PIPELINING lets
        it share the flight of the previous end of data, RFC 2920 §3.1): put an RSET first.

        After a refused BDAT the server's state is indeterminate and only RSET clears it
        (RFC 3030 §2); by the time the refusal arrives the next MAIL has left, so the RSET must
        go before it, unconditionally. After the final dot of DATA nothing is needed: the end
        of data ends the transaction whatever the reply (RFC 5321 §4.1.1.4), and every earlier
        failure of a DATA transaction is known before its 354, which ends a pipelined group.
        """
        if not self.pipelining:
            return  # one command at a time: the RSET of a failed transaction is in time
        pending = [t for t in self._open if t.use_bdat and not t.finished]
        if not pending:
            return
        for txn in pending:
            txn.reset_follows = True
        self._queue(Command(Kind.RSET, "RSET", b"RSET\r\n", internal=True))

    def _queue_bdat(self, txn: Transaction, chunk: bytes, *, last: bool) -> None:
        if txn.envelope is not None:
            envelope, txn.envelope = txn.envelope, None
            for command in envelope:
                self._queue(command)
        line = b"BDAT %d LAST\r\n" % len(chunk) if last else b"BDAT %d\r\n" % len(chunk)
        command = Command(Kind.BDAT, "BDAT", line, "", txn, data=chunk, last=last)
        self._queue(command)
