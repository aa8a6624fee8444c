"""The input side of the server connection: command lines, SASL lines, DATA and BDAT bodies.

Each ``_step_*`` method consumes one unit of buffered input in one phase (RFC 5321 §4.1.1 command
lines, RFC 4954 §4 response lines, the RFC 5321 §4.1.1.4 DATA body, RFC 3030 BDAT octets) and
returns False when more bytes are needed; ``ServerConnection.next_event()`` dispatches on the
phase. This is the per-message path, so the common shapes take short cuts (see
:meth:`InputMixin._step_command`); every short cut gives exactly the answer of the general path.
Kept apart from ``_server.py`` so each file reads in one sitting; it is a mixin of
:class:`~esmtp_core.ServerConnection` and not used on its own.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ._abnf import SIMPLE_COMMAND_RE
from ._config import ServerConfig
from ._data import DataDecoder, DataProblem
from ._events import (
    Event,
    MessageAborted,
    UnknownCommand,
    new_body_chunk,
    new_end_of_message,
)
from ._receivebuffer import ReceiveBuffer
from ._reply import Reply
from ._sasl import AuthQuery
from ._server_commands import SIMPLE_LINES
from ._state import (
    PHASE_CLOSED,
    PHASE_COMMAND,
    Phase,
    Replies,
    Transaction,
)

__all__ = ["InputMixin"]


# Anything below SP except TAB, and DEL, has no business in a command line (RFC 5321 §4.1.1
# allows none); CR is caught here too, so a bare CR inside a command is refused.
_CONTROL_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Body bytes fewer than this wait in the receive buffer for more (unless they finish the body).
_SMALL_READ = 1024
_match_simple = SIMPLE_COMMAND_RE.match


class InputMixin:
    """The per-phase input steps (mixed into ServerConnection)."""

    if not TYPE_CHECKING:
        # No instance __dict__ (ServerConnection declares every slot). Hidden from mypy, which
        # would otherwise refuse the mixin's assignments to attributes it does not list.
        __slots__ = ()

    if TYPE_CHECKING:  # attributes and helpers provided by ServerConnection and the mixins
        config: ServerConfig
        _buf: ReceiveBuffer
        _out: list[bytes]
        _events: deque[Event | AuthQuery]
        _pending: Event | AuthQuery | None
        _phase: Phase
        _line_limit: int
        _discarding: bool
        _commands: int
        _max_commands: int
        _refused: bool
        _shutting_down: bool
        _extra_verbs: frozenset[str]
        _txn: Transaction | None
        _decoder: DataDecoder | None
        _bdat_remaining: int
        _bdat_last: bool
        _bdat_accepting: bool
        _bdat_too_big: bool
        _lmtp_owed: list[str]
        HANDLERS: ClassVar[dict[str, Callable[..., None]]]

        def _send(self, reply: Reply) -> None: ...
        def _error(self, reply: Reply) -> None: ...
        def _fail(self, reply: Reply) -> None: ...
        def _decide(self, event: Event | AuthQuery) -> None: ...
        def _maybe_finish_shutdown(self) -> None: ...
        def _simple_mail(self, address: str, size: bytes | None) -> bool: ...
        def _simple_rcpt(self, address: str) -> bool: ...
        def _start_bdat(self, size: int, last: bool) -> None: ...
        def _hello_command(self, verb: str, argument: str) -> None: ...
        def _auth_response(self, line: bytes) -> None: ...
        def _auth_line_too_long(self) -> None: ...

    def _step_command(self) -> bool:
        """Consume one command line; False when more bytes are needed.

        The commonest lines take a short cut: an exact ``DATA``/``RSET``/``NOOP``/``QUIT`` line,
        or ``MAIL FROM:<mailbox> [SIZE=n]`` / ``RCPT TO:<mailbox>`` / ``BDAT n [LAST]`` /
        ``EHLO name`` in the shape :data:`~esmtp_core._abnf.SIMPLE_COMMAND_RE` admits, when the
        session is in a state where MAIL or RCPT succeeds (or the session was not refused and is
        not shutting down, for the others). Everything else, and every error, goes through
        :meth:`_command_line`, which gives the same answer for those lines: the short cut only
        skips work whose outcome is known (control characters, UTF-8, verb lookup, path and
        parameter parsing). This is what halves the server core's CPU per message (issue 6).
        """
        buf = self._buf
        line = buf.extract_line()
        if line is None:
            if len(buf.data) > self._line_limit:
                # Drop what we have and the rest of the line when it comes (bounded memory).
                buf.clear()
                self._discarding = True
            return False
        if self._discarding or len(line) > self._line_limit:
            self._discarding = False
            self._count_command()
            if self._phase is not PHASE_CLOSED:
                self._error(Replies.LINE_TOO_LONG)
            return True
        self._commands += 1
        if self._commands > self._max_commands:
            self._fail(Replies.TOO_MANY_COMMANDS)
            return True
        if not (self._refused or self._shutting_down):
            handler = SIMPLE_LINES.get(line)
            if handler is not None:
                handler(self, "")
                return True
            match = _match_simple(line)
            if match is not None:
                mail, size, rcpt, chunk_size, last, hello, name = match.groups()
                if rcpt is not None:
                    if self._simple_rcpt(rcpt.decode("ascii")):
                        return True
                elif mail is not None:
                    if self._simple_mail(mail.decode("ascii"), size):
                        return True
                elif chunk_size is not None:  # always answered, as _cmd_bdat would
                    self._start_bdat(int(chunk_size), last is not None)
                    return True
                else:  # HELO/EHLO/LHLO: always answered, as _hello_command would
                    self._hello_command(hello.decode("ascii").upper(), name.decode("ascii"))
                    return True
        self._command_line(line)
        return True

    def _step_auth(self) -> bool:
        """Consume one SASL response line (RFC 4954 §4); False when more bytes are needed."""
        limit = self.config.max_auth_line_length
        line = self._buf.extract_line()
        if line is None:
            if len(self._buf.data) > limit:
                self._buf.clear()
                self._discarding = True
            return False
        if self._discarding or len(line) > limit:
            self._discarding = False
            self._auth_line_too_long()
        else:
            self._auth_response(line)
        return True

    def _count_command(self) -> None:
        self._commands += 1
        if self._commands > self._max_commands:
            self._fail(Replies.TOO_MANY_COMMANDS)

    def _command_line(self, line: bytes) -> None:
        """The general path for a command line that was counted already."""
        body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if _CONTROL_RE.search(body):
            self._error(Replies.BAD_CHARACTERS)
            return
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            self._error(Replies.BAD_CHARACTERS)
            return
        verb, _, argument = text.partition(" ")
        verb = verb.upper()
        if self._refused and verb != "QUIT":
            self._error(Replies.REFUSED_SESSION)
            return
        if self._shutting_down and self._txn is None and verb != "QUIT":
            self._maybe_finish_shutdown()
            return
        handler = self.HANDLERS.get(verb) if verb.isascii() else None
        if handler is not None:
            handler(self, argument)
        elif verb in self._extra_verbs:
            self._decide(UnknownCommand(verb=verb, argument=argument))
        else:
            self._error(Replies.UNKNOWN)

    def _step_data(self) -> bool:
        decoder = self._decoder
        assert decoder is not None
        buf = self._buf
        size = len(buf.data)
        if not size:
            return False
        if size < _SMALL_READ and not decoder.may_end(buf.peek(size)):
            # A client trickling a few bytes per read: wait for more rather than hand out tiny
            # chunks (bounded: at most _SMALL_READ bytes wait), unless they may end the data.
            # At EOF they are dropped with the transaction.
            return False
        chunk_size = self.config.max_chunk_size
        out, consumed = decoder.feed(buf.peek(chunk_size))
        buf.discard(consumed)
        if out:
            if len(out) <= chunk_size:
                self._events.append(new_body_chunk(out))
            else:
                self._emit_body(out)
        if decoder.done:
            self._decoder = None
            self._phase = PHASE_COMMAND
            problem = decoder.problem
            if problem is None:
                self._end_of_message(decoder.size)
            elif problem is DataProblem.BARE_LINE_ENDING:
                self._abort_message(Replies.BARE_LINE_ENDING, last=True)
            elif problem is DataProblem.LINE_TOO_LONG:
                limit = self.config.max_data_line_length or 0
                self._abort_message(Replies.line_too_long(limit), last=True)
            else:
                assert problem is DataProblem.TOO_BIG
                self._abort_message(Replies.TOO_BIG, last=True)
        return True

    def _step_bdat(self) -> bool:
        if self._bdat_remaining:
            size = len(self._buf.data)
            if size < min(self._bdat_remaining, _SMALL_READ):
                return False  # as in _step_data: no tiny chunks for a trickling client
            count = min(self._bdat_remaining, size, self.config.max_chunk_size)
            piece = self._buf.peek(count)
            self._buf.discard(count)
            self._bdat_remaining -= count
            if self._bdat_accepting and not self._bdat_too_big:
                self._emit_body(piece)
        if not self._bdat_remaining:
            self._finish_bdat()
        return True

    def _emit_body(self, data: bytes) -> None:
        size = self.config.max_chunk_size
        if len(data) <= size:
            if data:
                self._events.append(new_body_chunk(data))
            return
        for start in range(0, len(data), size):
            self._events.append(new_body_chunk(data[start : start + size]))

    def _finish_bdat(self) -> None:
        self._phase = PHASE_COMMAND
        if not self._bdat_accepting:
            return  # the refusal was sent with the BDAT command (RFC 3030 §2; go-smtp #315)
        if self._bdat_too_big:
            self._abort_message(Replies.TOO_BIG, last=self._bdat_last)
        elif not self._bdat_last:
            self._send(Replies.CHUNK_RECEIVED)
        else:
            assert self._txn is not None
            self._end_of_message(self._txn.size)

    def _end_of_message(self, size: int) -> None:
        assert self._txn is not None
        recipients = tuple(self._txn.recipients)
        if self.config.lmtp:
            self._lmtp_owed = list(recipients)
        event = new_end_of_message(size, recipients)
        self._pending = event
        self._events.append(event)

    def _abort_message(self, reply: Reply, *, last: bool) -> None:
        """The core refuses the message; LMTP owes the refusal once per recipient after the end
        of the data (RFC 2033 §4.2), so it is repeated."""
        count = 1
        if self.config.lmtp and last and self._txn is not None:
            count = max(1, len(self._txn.recipients))
        for _ in range(count):
            self._send(reply)
        self._txn = None
        self._events.append(MessageAborted(reply=reply))
        self._maybe_finish_shutdown()
