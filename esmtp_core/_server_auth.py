"""The AUTH command and its 334 exchange on the server side (RFC 4954), mechanism-agnostic.

The mechanism objects of :mod:`esmtp_core._sasl` do the SASL work; this mixin does the SMTP part:
choosing the mechanism, base64, ``334`` continuations, ``*`` cancel, the line limit and the final
``235``/``535``. A mechanism may challenge and ask the application any number of times in any
order; the loop only ends on success or failure.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._config import ServerConfig
from ._events import Authenticated, Event
from ._reply import Reply
from ._sasl import (
    SERVER_MECHANISMS,
    AuthQuery,
    CredentialAnswer,
    SaslChallenge,
    SaslContext,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
    ServerMechanism,
    ServerStep,
)
from ._state import Phase, Replies, Transaction

__all__ = ["AuthMixin", "advertised_auth_mechanisms"]

_Advance = Callable[[ServerMechanism], ServerStep]


def _decode(text: str) -> bytes | None:
    """RFC 4954 §4: base64 response, ``=`` for an empty initial response; None if malformed."""
    if text == "=":
        return b""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeError, binascii.Error, ValueError):
        return None


def advertised_auth_mechanisms(reply: Reply) -> tuple[str, ...]:
    """The SASL mechanisms a positive EHLO/LHLO ``reply`` offers (RFC 4954 §3 ``AUTH`` keyword,
    plus the pre-standard ``AUTH=`` form some servers add), upper case, in order.

    Read from the reply actually sent rather than recomputed, so an application that answered
    EHLO with its own capability list is taken at its word: SCRAM's channel-binding flag check
    (RFC 5802 §6) must judge the client against what it really saw.
    """
    names: list[str] = []
    for line in reply.lines[1:]:  # the first line is the greeting, not a keyword
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword.startswith("AUTH="):
            rest = keyword[5:] + " " + rest
        elif keyword != "AUTH":
            continue
        for name in rest.upper().split(" "):
            if name and name not in names:
                names.append(name)
    return tuple(names)


class AuthMixin:
    """AUTH handling (mixed into ServerConnection)."""

    if not TYPE_CHECKING:
        # No instance __dict__ (ServerConnection declares every slot). Hidden from mypy, which
        # would otherwise refuse the mixin's assignments to attributes it does not list.
        __slots__ = ()

    if TYPE_CHECKING:  # attributes and helpers provided by ServerConnection / CommandsMixin
        _phase: Phase
        _hello: str | None
        _esmtp: bool
        _tls_active: bool
        _authenticated: str | None
        _txn: Transaction | None
        _pending: Event | AuthQuery | None
        _mechanism: ServerMechanism | None
        _auth_failure_reply: Reply | None

        def _send(self, reply: Reply) -> None: ...
        def _error(self, reply: Reply) -> None: ...
        def _decide(self, event: Event | AuthQuery) -> None: ...
        def _notice(self, event: Event) -> None: ...
        def _need_hello(self) -> bool: ...
        def _auth_mechanisms(self) -> list[str]: ...
        def _sasl_context(self) -> SaslContext: ...
        def _maybe_finish_shutdown(self) -> None: ...

        config: ServerConfig

    def _auth_command(self, argument: str) -> None:
        if self._need_hello():
            return
        if not self._esmtp:
            self._error(Replies.NEED_EHLO)  # RFC 4954 §4 / RFC 5321 §2.2.1: not after HELO
            return
        if self._authenticated is not None:
            self._error(Replies.AUTH_TWICE)  # RFC 4954 §4
            return
        if self._txn is not None:
            self._error(Replies.AUTH_IN_TRANSACTION)  # RFC 4954 §4
            return
        words = argument.strip(" ").split(" ")
        if not words[0] or len(words) > 2:
            self._error(Replies.syntax("AUTH mechanism [initial-response]"))
            return
        if not self.config.auth_mechanisms:
            self._error(Replies.AUTH_UNAVAILABLE)
            return
        if self.config.auth_require_tls and not self._tls_active:
            self._error(Replies.AUTH_NEEDS_TLS)  # RFC 4954 §6: 538 5.7.11
            return
        name = words[0].upper()
        if name not in self._auth_mechanisms():
            self._error(Replies.AUTH_UNKNOWN_MECHANISM)
            return
        initial: bytes | None = None
        if len(words) == 2:
            initial = _decode(words[1])
            if initial is None:
                self._error(Replies.AUTH_BAD_BASE64)
                return
        self._mechanism = SERVER_MECHANISMS[name](self._sasl_context())
        self._auth_failure_reply = None
        self._run(lambda mechanism: mechanism.start(initial))

    def _auth_response(self, line: bytes) -> None:
        """A client line in the 334 exchange (RFC 4954 §4)."""
        self._phase = Phase.COMMAND
        text = line.rstrip(b"\r\n")
        if text == b"*":
            self._mechanism = None
            self._error(Replies.AUTH_CANCELLED)
            return
        try:
            response = _decode(text.decode("ascii"))
        except UnicodeDecodeError:
            response = None
        if response is None:
            self._mechanism = None
            self._error(Replies.AUTH_BAD_BASE64)
            return
        self._run(lambda mechanism: mechanism.respond(response))

    def _auth_line_too_long(self) -> None:
        self._phase = Phase.COMMAND
        self._mechanism = None
        self._error(Replies.AUTH_LINE_TOO_LONG)

    def _auth_answer(self, answer: CredentialAnswer, reply: Reply | None) -> None:
        """The application answered an AUTH query; ``reply`` (from ``reject(reply)``) replaces
        the ``535`` that ends the exchange.

        The mechanism still finishes its own failure path first: SCRAM goes on with a made-up
        record (RFC 5802 §9: a rejected user must look like a wrong password, not fail one step
        earlier), OAUTHBEARER/XOAUTH2 send their error JSON and wait for the dummy response (RFC
        7628 §3.2.2). PLAIN, LOGIN and CRAM-MD5 fail at once, so the reply goes out now.
        """
        self._pending = None
        if reply is not None:
            self._auth_failure_reply = reply
        self._run(lambda mechanism: mechanism.resume(answer))
        self._maybe_finish_shutdown()

    def _run(self, advance: _Advance) -> None:
        mechanism = self._mechanism
        assert mechanism is not None
        try:
            step: ServerStep = advance(mechanism)
        except Exception:  # a mechanism bug must not become a crash any client can trigger
            self._mechanism = None
            self._error(Replies.AUTH_TEMPORARY)
            return
        if isinstance(step, SaslChallenge):
            encoded = base64.b64encode(step.data).decode("ascii")
            self._send(Reply.make(334, None, encoded))
            self._phase = Phase.AUTH
        elif isinstance(step, SaslNeedsCredentials):
            self._decide(step.query)
        elif isinstance(step, SaslSuccess):
            self._mechanism = None
            self._authenticated = step.username
            self._send(Replies.AUTH_SUCCESS)
            self._notice(
                Authenticated(
                    mechanism=mechanism.name, username=step.username, authzid=step.authzid
                )
            )
        else:
            assert isinstance(step, SaslFailure)
            self._mechanism = None
            reply = step.reply
            if self._auth_failure_reply is not None and reply.code == 535:
                # The credential failure the application decided, with its own words; protocol
                # faults on the way (a 501 for a malformed message) keep their own reply.
                reply = self._auth_failure_reply
            # Counted as an error so one connection cannot guess passwords for ever.
            self._error(reply)
