"""The mapping from server core events to handler calls, shared by every server adapter.

:class:`MappingBase` owns the :class:`esmtp_core.ServerConnection` and turns its events into
:class:`~transports.handler.Handler` calls and their results back into replies. The mapping is
written once, as a generator that *yields* each handler call it needs and is sent the result; the
drivers in :mod:`transports._driver` run those calls (directly, or awaited), so the protocol
decisions cannot drift apart between the blocking and the async adapters.

Decisions written down here (the RFCs leave them to the server):

* A handler exception answers the command with ``451 4.3.0`` (``454 4.7.0`` for AUTH, RFC 4954
  §6), is logged with its traceback, and the session continues. A failing ``message_data`` hook
  abandons the message (``message_aborted`` runs at once) and the final ``.`` gets ``451``.
* The command timeout (RFC 5321 §4.5.3.2 suggests 5 minutes) runs from the last reply (or the
  last piece of message body), so a command line trickled byte by byte is cut too; a total time
  for one message body (from its first byte to its end) applies as well. Both end the session
  with ``421 4.4.2``.
* Graceful shutdown is the core's ``start_shutdown()``: the transaction in flight finishes, then
  ``421 4.3.2`` (at once for an idle session; RFC 5321 §3.8).
* A positive reply from the ``hello`` hook keeps the core's capability list (its first line's
  text is used); a handler cannot accidentally hide the extensions.
* A hook the handler does not override (looked up unchanged on :class:`Handler` or
  :class:`AsyncHandler`) is not called: its documented default is applied inline, so it costs
  no coroutine, no worker thread and no await. The observable result is the same.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    Authenticated,
    AuthPasswordCheck,
    AuthSecretLookup,
    AuthTokenCheck,
    BodyChunk,
    ConnectionClosed,
    EndOfMessage,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    Quit,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Reset,
    ServerConnection,
    StartTLS,
    UnknownCommand,
    Verify,
)

from ._base import ServerOptions
from .handler import Envelope, Session
from .tls import tls_details

__all__ = ["MappingBase", "Steps"]

logger = logging.getLogger("transports.server")

logger = logging.getLogger("transports.server")

#: Answer to a command whose handler hook raised (RFC 3463 4.3.0: other or undefined mail system
#: status; 451: local error in processing).
HANDLER_FAILED = Reply.make(451, "4.3.0", "Local error in processing, try again later")
#: Answer to AUTH when a credential check raised (RFC 4954 §6).
AUTH_TEMPORARY_FAILURE = Reply.make(454, "4.7.0", "Temporary authentication failure")
NOT_IMPLEMENTED = Reply.make(502, "5.5.1", "Command not implemented")
MESSAGE_ACCEPTED = Reply.make(250, "2.0.0", "Message accepted")


class _Call:
    """One handler call the mapping needs: method name and arguments. (A plain slotted class:
    one is made per handler call, and a frozen dataclass's ``__init__`` costs several times as
    much.)"""

    __slots__ = ("args", "kwargs", "method")

    def __init__(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs


@dataclass(frozen=True, slots=True)
class _Failed:
    method: str
    error: BaseException


Steps = Generator[_Call, object, None]


class MappingBase:
    """Core events to handler calls (the generator), plus timeouts, TLS and shutdown state."""

    def __init__(
        self,
        options: ServerOptions,
        *,
        peer: object = None,
        local: object = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        config = options.config
        self.conn = ServerConnection(config)
        self.session = Session(
            hostname=config.hostname,
            peer=_host_port(peer),
            local=_host_port(local),
            lmtp=config.lmtp,
        )
        self._clock = clock
        self._started_at = clock()
        self._message_started = False
        self._message_failed = False
        self._message_deadline: float | None = None
        self._command_deadline: float | None = None
        self._progress()
        self._finished = False
        #: Set by a StartTLS event: flush ``data_to_send()``, handshake, then ``tls_established``.
        self.want_tls = False
        #: Why the session ended, for the connection log line.
        self.close_reason = "closed"
        self._inline: dict[str, Callable[..., object]] = {}

    def _advance(self, steps: Steps, result: object) -> _Call | None:
        """Run the mapping, answering default hooks inline, until it needs a real handler call
        (returned) or is done (None). ``result`` answers the previous call (None to start)."""
        inline = self._inline
        try:
            call = steps.send(result)
            while True:
                default = inline.get(call.method)
                if default is None:
                    return call
                try:
                    result = (
                        default(*call.args) if call.kwargs is None
                        else default(*call.args, **call.kwargs)
                    )
                except Exception as exc:  # pragma: no cover - the defaults do not raise
                    result = _Failed(call.method, exc)
                call = steps.send(result)
        except StopIteration:
            return None

    # --- state for the adapter ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The session is over: flush :meth:`data_to_send` and close the socket."""
        return self.conn.closed

    def data_to_send(self) -> bytes:
        """Bytes to write to the client (possibly empty)."""
        data = self.conn.data_to_send()
        if data:
            self._progress()  # a reply went out: the next command's time starts now
            if (
                self._message_deadline is None
                and self.options.data_timeout is not None
                and self.conn.receiving_body
            ):
                # The core answers DATA with 354 itself (there is no event for it) and may hold
                # back a small body; the DATA clock starts with that go-ahead. (A body that
                # arrived whole with its DATA command is over already: no clock for it.)
                self._message_deadline = self._clock() + self.options.data_timeout
        return data

    def read_timeout(self) -> float | None:
        """Seconds the adapter may wait for the next bytes before calling :meth:`timed_out`.

        The command timeout runs from the last reply (or body progress), not from the last
        bytes received: a client trickling one byte per second into a command line is cut
        like a silent one (slowloris).
        """
        # Called before every read: no list, no min() over a generator.
        deadline, message = self._command_deadline, self._message_deadline
        if deadline is None or (message is not None and message < deadline):
            deadline = message
        if deadline is None:
            return None
        return max(0.0, deadline - self._clock())

    def _progress(self) -> None:
        timeout = self.options.timeout
        self._command_deadline = None if timeout is None else self._clock() + timeout

    def timed_out(self) -> None:
        """No bytes in time: ``421 4.4.2`` and close (RFC 5321 §4.5.3.2)."""
        if not self.conn.closed:
            self.close_reason = "timeout"
            self.conn.abort()

    def start_shutdown(self) -> None:
        """Graceful shutdown: finish the transaction in flight, then 421 (see module docs)."""
        conn = self.conn
        if conn.closed:
            return
        conn.start_shutdown()
        if conn.closed:
            self.close_reason = "server shutdown"

    def _tls_up(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
        session = self.session
        if self.want_tls:
            # STARTTLS restarts the session (RFC 3207 §4.2): the client must say EHLO again and
            # anything learned before TLS is forgotten, as the core forgets it.
            session.hello_verb = session.hello_name = session.authenticated = None
            session.envelope = None
            self.want_tls = False
        self.session.tls_active = True
        self.session.tls_version, self.session.tls_cipher = tls_details(ssl_object)

    def _implicit_binding(self) -> None:
        # With implicit TLS there is no StartTLS event; the core takes the channel binding
        # before the first command.
        binding = self.options.channel_binding
        if self.session.tls_active and binding is not None and not self.conn.closed:
            self.conn.tls_started(binding)

    def _log_finish(self) -> None:
        session = self.session
        logger.info(
            "connection %d from %s closed (%s): %d message(s) accepted, %.1fs%s%s",
            session.id,
            session.peer_text,
            self.close_reason,
            session.messages_accepted,
            self._clock() - self._started_at,
            f", {session.tls_version}" if session.tls_active else "",
            f", user {session.authenticated}" if session.authenticated else "",
        )

    # --- the mapping (the generator) ------------------------------------------------------------

    def _greet(self) -> Steps:
        result = yield _Call("connect", (self.session,))
        if isinstance(result, _Failed):
            self._log_failure(result)
            self.conn.greet(Reply.make(421, "4.3.0", f"{self.session.hostname} Local error"))
            self.close_reason = "connect hook failed"
        elif isinstance(result, Reply):
            self.conn.greet(result)
            self.close_reason = f"refused with {result.code}"
        else:
            self.conn.greet()

    def _events(self) -> Steps:
        conn = self.conn
        while not conn.closed:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                # The core already queued its 421; the adapter flushes and closes.
                self.close_reason = f"protocol error: {exc}"
                break
            if event is NEED_DATA or event is PAUSED:
                break
            # The events of every message first, without a generator per event; and a default
            # hook answered here needs no _Call and no round trip through _advance. (Exact
            # types: anything else, subclasses included, goes through _dispatch.)
            if type(event) is BodyChunk:
                yield from self._body_chunk(event.data)
            elif type(event) is RcptTo:
                yield from self._rcpt(event)
            elif type(event) is MailFrom:
                yield from self._mail(event)
            elif type(event) is EndOfMessage:
                yield from self._end_of_message(event)
            else:
                yield from self._dispatch(event)

    def _dispatch(self, event: object) -> Steps:
        conn, session = self.conn, self.session
        if isinstance(event, BodyChunk):
            yield from self._body_chunk(event.data)
        elif isinstance(event, EndOfMessage):
            yield from self._end_of_message(event)
        elif isinstance(event, RcptTo):
            yield from self._rcpt(event)
        elif isinstance(event, MailFrom):
            yield from self._mail(event)
        elif isinstance(event, Hello):
            yield from self._abort_message()
            session.envelope = None
            result = yield _Call("hello", (session, event.verb, event.hostname))
            if isinstance(result, Reply) and result.code < 400:
                result = result.lines[0] or None  # accept(text): the capabilities stay
            if self._answer(result):
                session.hello_verb, session.hello_name = event.verb.upper(), event.hostname
        elif isinstance(event, AuthPasswordCheck):
            result = yield _Call(
                "check_password",
                (session, event.username, event.password),
                {"authzid": event.authzid},
            )
            self._answer_credentials(result)
        elif isinstance(event, AuthSecretLookup):
            result = yield _Call("lookup_secret", (session, event.mechanism, event.username))
            if isinstance(result, _Failed):
                self._log_failure(result)
                conn.reject(AUTH_TEMPORARY_FAILURE)
            else:
                conn.provide_secret(result)  # type: ignore[arg-type]
        elif isinstance(event, AuthTokenCheck):
            result = yield _Call(
                "check_token", (session, event.mechanism, event.username, event.token)
            )
            self._answer_credentials(result)
        elif isinstance(event, Authenticated):
            session.authenticated = event.username
        elif isinstance(event, Verify):
            self._answer((yield _Call("verify", (session, event.argument))))
        elif isinstance(event, Expand):
            self._answer((yield _Call("expand", (session, event.argument))))
        elif isinstance(event, UnknownCommand):
            result = yield _Call("unknown_command", (session, event.verb, event.argument))
            self._answer(NOT_IMPLEMENTED if result is None else result)
        elif isinstance(event, Reset):
            yield from self._abort_message()
            session.envelope = None
            result = yield _Call("reset", (session,))
            if isinstance(result, _Failed):
                self._log_failure(result)
        elif isinstance(event, MessageAborted):
            # The core refused the message itself (size, bare LF, ...) and ended the transaction.
            yield from self._abort_message()
            session.envelope = None
        elif isinstance(event, StartTLS):
            self.want_tls = True
        elif isinstance(event, Quit):
            self.close_reason = "quit"
        elif isinstance(event, ConnectionClosed):
            yield from self._abort_message()
            session.envelope = None
            self.close_reason = "client closed mid-message" if event.in_transaction else (
                "client closed"
            )

    def _mail(self, event: MailFrom) -> Steps:
        session = self.session
        if self._message_started:
            yield from self._abort_message()
        else:
            self._message_deadline = None  # what _abort_message does besides the notice
        if "mail" in self._inline:
            result = None  # the default accepts
        else:
            result = yield _Call("mail", (session, event.address, event.params))
        session.envelope = None
        if self._answer(result):
            session.envelope = Envelope(mail_from=event.address, mail_params=event.params)

    def _rcpt(self, event: RcptTo) -> Steps:
        session = self.session
        if "rcpt" in self._inline:
            result = None  # the default accepts
        else:
            result = yield _Call("rcpt", (session, event.address, event.params))
        if self._answer(result) and session.envelope is not None:
            session.envelope.rcpt_to.append(event.address)
            session.envelope.rcpt_params.append(event.params)

    def _body_chunk(self, data: bytes) -> Steps:
        self._progress()  # the body moves: only the total DATA time limits it now
        envelope = self._envelope()
        if not self._message_started:
            yield from self._begin_message(envelope)
        if self._message_failed:
            return
        result = yield _Call("message_data", (self.session, envelope, data))
        if isinstance(result, _Failed):
            self._log_failure(result)
            yield from self._abort_message()
            self._message_started, self._message_failed = True, True

    def _begin_message(self, envelope: Envelope) -> Steps:
        self._message_started, self._message_failed = True, False
        if self.options.data_timeout is not None and self._message_deadline is None:
            self._message_deadline = self._clock() + self.options.data_timeout
        result = yield _Call("message_start", (self.session, envelope))
        if isinstance(result, _Failed):
            self._log_failure(result)
            yield from self._abort_message()
            self._message_started, self._message_failed = True, True

    def _end_of_message(self, event: EndOfMessage) -> Steps:
        envelope = self._envelope()
        if not self._message_started:
            yield from self._begin_message(envelope)  # an empty body has no chunk
        if self._message_failed:
            self._reject_message(event)
        else:
            result = yield _Call("message_end", (self.session, envelope))
            if isinstance(result, _Failed):
                self._log_failure(result)
                yield from self._abort_message()
                self._reject_message(event)
            else:
                self._answer_message(result, event, envelope)
        self._message_started = self._message_failed = False
        self._message_deadline = None
        self.session.envelope = None

    def _answer_message(self, result: object, event: EndOfMessage, envelope: Envelope) -> None:
        conn, lmtp = self.conn, self.session.lmtp
        count = len(event.recipients) if lmtp else 1
        answers: list[Reply | None]
        if result is None or isinstance(result, Reply):
            answers = [result] * count
        elif (
            isinstance(result, Sequence)
            and len(result) == count
            and all(item is None or isinstance(item, Reply) for item in result)
        ):
            answers = list(result)
        else:
            logger.error(
                "connection %d: message_end returned %r; expected None, a Reply or (LMTP) a "
                "sequence with one per recipient",
                self.session.id,
                result,
            )
            self._reject_message(event)
            return
        delivered: list[str] = []
        if all(answer is None for answer in answers):
            conn.accept()  # the default 250 (in LMTP for every recipient at once)
            delivered = list(event.recipients)
        else:
            for recipient, answer in zip(event.recipients or ("",), answers, strict=False):
                if conn.pending is not event:
                    break
                # send_reply() answers exactly one recipient; accept() would answer them all.
                reply = MESSAGE_ACCEPTED if answer is None else answer
                conn.send_reply(reply)
                if reply.code < 400:
                    delivered.append(recipient)
        if delivered:
            self.session.messages_accepted += 1
            if not logger.isEnabledFor(logging.INFO):
                return  # the recipient list and peer text are formatted for the log only
            logger.info(
                "connection %d from %s: accepted message <%s> -> %s, %d bytes",
                self.session.id,
                self.session.peer_text,
                envelope.mail_from,
                ", ".join(f"<{rcpt}>" for rcpt in (delivered if lmtp else event.recipients)),
                event.size,
            )

    def _reject_message(self, event: EndOfMessage) -> None:
        """451 for the message (LMTP: for every recipient, RFC 2033 §4.2)."""
        for _ in range(len(event.recipients) if self.session.lmtp else 1):
            if self.conn.pending is not event:
                break
            self.conn.reject(HANDLER_FAILED)

    def _abort_message(self) -> Steps:
        if self._message_started and not self._message_failed:
            result = yield _Call("message_aborted", (self.session, self._envelope()))
            if isinstance(result, _Failed):
                self._log_failure(result)
        self._message_started = self._message_failed = False
        self._message_deadline = None

    def _finish(self) -> Steps:
        if self._finished:
            return
        self._finished = True
        yield from self._abort_message()
        result = yield _Call("disconnect", (self.session,))
        if isinstance(result, _Failed):
            self._log_failure(result)
        self._log_finish()

    def _envelope(self) -> Envelope:
        if self.session.envelope is None:
            # Only reachable if the core sends body events outside a transaction; keep the
            # handler's contract (it always gets an envelope) rather than crash.
            self.session.envelope = Envelope(mail_from="")
        return self.session.envelope

    def _answer(self, result: object) -> bool:
        """Answer a decision; True when the answer was positive."""
        if isinstance(result, _Failed):
            self._log_failure(result)
            self.conn.reject(HANDLER_FAILED)
            return False
        if result is None or isinstance(result, str):
            self.conn.accept(result)
            return True
        if isinstance(result, Reply):
            self.conn.send_reply(result)
            return result.code < 400
        logger.error("connection %d: handler returned %r, not a Reply or None",
                     self.session.id, result)
        self.conn.reject(HANDLER_FAILED)
        return False

    def _answer_credentials(self, result: object) -> None:
        if isinstance(result, _Failed):
            self._log_failure(result)
            self.conn.reject(AUTH_TEMPORARY_FAILURE)
        elif result is True:
            self.conn.accept()
        else:
            self.conn.reject()

    def _log_failure(self, failure: _Failed) -> None:
        logger.error(
            "connection %d: handler %s() raised",
            self.session.id,
            failure.method,
            exc_info=failure.error,
        )


def _host_port(address: object) -> tuple[str, int] | None:
    """``(host, port)`` from a socket address as the stack gives it (IPv6 ones have four
    items; anything else, such as a Unix socket's path, is no IP peer)."""
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None
