"""Command handlers of the server connection (RFC 5321 §4.1.1 and the extensions' commands).

Each handler receives the argument text (after the verb and one space), answers what the core
can answer by itself and hands decisions to the embedding code as events. Kept apart from
``_server.py`` so each file reads in one sitting; it is a mixin of
:class:`~esmtp_core.ServerConnection` and not used on its own.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ._abnf import ParsedPath, PathSyntaxError, parse_path
from ._config import ServerConfig
from ._data import DataDecoder
from ._events import (
    Event,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    Quit,
    RcptTo,
    Reset,
    StartTLS,
    Verify,
    new_mail_from,
    new_rcpt_to,
)
from ._params import (
    NO_MAIL_PARAMS,
    NO_RCPT_PARAMS,
    BodyType,
    ParameterError,
    mail_params_with_size,
    parse_mail_params,
    parse_rcpt_params,
)
from ._receivebuffer import ReceiveBuffer
from ._reply import Reply
from ._sasl import SERVER_MECHANISMS, AuthQuery, ChannelBinding, SaslContext
from ._state import (
    PHASE_BDAT,
    PHASE_DATA,
    PHASE_STARTTLS,
    SESSION_WIRE,
    Phase,
    Replies,
    Transaction,
    remember,
)

__all__ = ["SIMPLE_LINES", "CommandsMixin"]

# An enum member as a module constant: ``BodyType.X`` costs a lookup through the enum metaclass.
_BINARY_MIME = BodyType.BINARY_MIME

# RFC 5321 §4.1.1.1: EHLO domain / address-literal. We accept any single printable ASCII word
# (clients send underscores and worse); the embedding code can be stricter in its Hello policy.
_HELLO_ARG_RE = re.compile(r"[\x21-\x7e]+\Z")
# RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF ; chunk-size = 1*DIGIT
_BDAT_RE = re.compile(r"([0-9]{1,20})(?: +(LAST))? *\Z", re.IGNORECASE)
# The 354 has no enhanced code (RFC 2034 §3: only 2xx, 4xx, 5xx carry one): one wire form.
_START_DATA_WIRE = Replies.START_DATA.to_bytes()


class CommandsMixin:
    """The per-verb handlers (mixed into ServerConnection)."""

    if not TYPE_CHECKING:
        # No instance __dict__ (ServerConnection declares every slot). Hidden from mypy, which
        # would otherwise refuse the mixin's assignments to attributes it does not list.
        __slots__ = ()

    if TYPE_CHECKING:  # attributes and helpers provided by ServerConnection
        config: ServerConfig
        _buf: ReceiveBuffer
        _phase: Phase
        _hello: str | None
        _esmtp: bool
        _tls_active: bool
        _channel_binding: ChannelBinding | None
        _advertised_auth: tuple[str, ...]
        _authenticated: str | None
        _txn: Transaction | None
        _decoder: DataDecoder | None
        _bdat_remaining: int
        _bdat_last: bool
        _bdat_accepting: bool
        _bdat_too_big: bool
        _out: list[bytes]
        _enhanced: bool
        _events: deque[Event | AuthQuery]
        _pending: Event | AuthQuery | None

        def _send(self, reply: Reply) -> None: ...
        def _error(self, reply: Reply) -> None: ...
        def _close(self) -> None: ...
        def _decide(self, event: Event | AuthQuery) -> None: ...
        def _notice(self, event: Event) -> None: ...
        def _auth_command(self, argument: str) -> None: ...

    HANDLERS: ClassVar[dict[str, Callable[[CommandsMixin, str], None]]]

    # --- helpers ---------------------------------------------------------------------------------

    def _sasl_context(self) -> SaslContext:
        """The context of a mechanism started by AUTH: ``advertised_mechanisms`` is exactly what
        the accepted EHLO reply offered in this TLS state (RFC 5802 §6: the server treats a
        client's "y" flag as a downgrade only if it really advertised a ``-PLUS`` name)."""
        return SaslContext(
            hostname=self.config.hostname,
            tls_active=self._tls_active,
            channel_binding=self._channel_binding,
            scram_iterations=self.config.scram_iterations,
            advertised_mechanisms=self._advertised_auth,
        )

    def _auth_mechanisms(self) -> list[str]:
        """Mechanisms that may be used now (RFC 4954 §4: by default only under TLS)."""
        if self.config.auth_require_tls and not self._tls_active:
            return []
        context = self._sasl_context()
        names = []
        for name in self.config.auth_mechanisms:
            mechanism = SERVER_MECHANISMS.get(name.upper())
            if mechanism is not None and mechanism.available(context):
                names.append(name.upper())
        return names

    def _capabilities(self) -> list[str]:
        """The EHLO/LHLO keywords for this session state (RFC 5321 §4.1.1.1)."""
        config = self.config
        caps = []
        if config.pipelining:
            caps.append("PIPELINING")  # RFC 2920
        # RFC 1870 §4: "SIZE" alone (or SIZE 0) announces no fixed limit.
        size = config.max_message_size
        caps.append(f"SIZE {size}" if size else "SIZE")
        if config.eight_bit_mime:
            caps.append("8BITMIME")  # RFC 6152
        if config.enhanced_status_codes:
            caps.append("ENHANCEDSTATUSCODES")  # RFC 2034
        if config.smtputf8:
            caps.append("SMTPUTF8")  # RFC 6531
        if config.chunking:
            caps.append("CHUNKING")  # RFC 3030
            if config.binarymime:
                caps.append("BINARYMIME")  # RFC 3030: only together with CHUNKING
        if config.dsn:
            caps.append("DSN")  # RFC 3461
        if config.starttls and not self._tls_active:
            caps.append("STARTTLS")  # RFC 3207 §4.2: not offered again under TLS
        mechanisms = self._auth_mechanisms()
        if mechanisms:
            caps.append("AUTH " + " ".join(mechanisms))  # RFC 4954
        if config.requiretls and self._tls_active:
            caps.append("REQUIRETLS")  # RFC 8689 §4: only offered under TLS
        caps.extend(config.extra_capabilities)
        return caps

    def _need_hello(self) -> bool:
        if self._hello is None:
            self._error(Replies.NEED_LHLO if self.config.lmtp else Replies.NEED_HELLO)
            return True
        return False

    # --- HELO / EHLO / LHLO ----------------------------------------------------------------------

    def _hello_command(self, verb: str, argument: str) -> None:
        if self.config.lmtp != (verb == "LHLO"):
            # RFC 2033 §4.1: LMTP has LHLO instead of HELO and EHLO; SMTP has no LHLO.
            self._error(Replies.LMTP_USE_LHLO if self.config.lmtp else Replies.UNKNOWN)
            return
        name = argument.strip(" ")
        if not _HELLO_ARG_RE.match(name):
            self._error(Replies.syntax(f"{verb} hostname"))
            return
        # RFC 5321 §4.1.4: EHLO (or HELO) in the middle of a session resets the transaction.
        self._txn = None
        self._decide(Hello(verb=verb, hostname=name))

    def _cmd_helo(self, argument: str) -> None:
        self._hello_command("HELO", argument)

    def _cmd_ehlo(self, argument: str) -> None:
        self._hello_command("EHLO", argument)

    def _cmd_lhlo(self, argument: str) -> None:
        self._hello_command("LHLO", argument)

    # --- MAIL / RCPT -----------------------------------------------------------------------------

    def _mail_keywords(self) -> set[str]:
        if not self._esmtp:
            return set()  # after HELO no service extension may be used (RFC 5321 §2.2.1)
        config = self.config
        allowed = {"SIZE", "BODY"}
        if config.smtputf8:
            allowed.add("SMTPUTF8")
        if config.auth_mechanisms:
            allowed.add("AUTH")  # RFC 4954 §5
        if config.dsn:
            allowed.update(("RET", "ENVID"))
        if config.requiretls and self._tls_active:
            allowed.add("REQUIRETLS")
        return allowed

    def _body_allowed(self, body: BodyType | None) -> bool:
        if body is BodyType.EIGHT_BIT_MIME:
            return self.config.eight_bit_mime
        if body is BodyType.BINARY_MIME:
            return self.config.chunking and self.config.binarymime
        return True

    def _path_argument(self, argument: str, keyword: str, usage: str) -> ParsedPath | None:
        """The path after ``FROM:`` (MAIL: ``<>`` allowed) or ``TO:`` (RCPT: bare
        ``<postmaster>`` allowed), RFC 5321 §4.1.1.2-§4.1.1.3; None once the error is answered."""
        if argument[: len(keyword)].upper() != keyword:
            self._error(Replies.syntax(usage))
            return None
        mail = keyword == "FROM:"
        try:
            return parse_path(
                argument[len(keyword) :],
                allow_null=mail,
                allow_postmaster=not mail,
                utf8=self.config.smtputf8,
            )
        except PathSyntaxError:
            self._error(Replies.BAD_SENDER if mail else Replies.BAD_RECIPIENT)
            return None

    def _cmd_mail(self, argument: str) -> None:
        if self._need_hello():
            return
        if self._txn is not None:
            self._error(Replies.NESTED_MAIL)
            return
        if self.config.auth_required and self._authenticated is None:
            self._error(Replies.AUTH_REQUIRED)
            return
        path = self._path_argument(argument, "FROM:", "MAIL FROM:<address> [parameters]")
        if path is None:
            return
        try:
            params = parse_mail_params(
                path.params,
                allowed=self._mail_keywords(),
                extra_allowed=self.config.extra_mail_parameters if self._esmtp else (),
                max_size=self.config.max_message_size,
            )
        except ParameterError as error:
            self._error(error.reply)
            return
        if not self._body_allowed(params.body):
            assert params.body is not None
            self._error(Reply.make(555, "5.5.4", f"BODY={params.body.value} not supported"))
            return
        if not path.address.isascii() and not params.smtputf8:
            self._error(Replies.UTF8_ADDRESS)  # RFC 6531 §3.5
            return
        self._decide(MailFrom(address=path.address, params=params))

    def _simple_mail(self, address: str, size: bytes | None) -> bool:
        """``MAIL FROM:<address>`` with no parameter or only ``SIZE=size``, the line already
        checked by SIMPLE_COMMAND_RE: decided here when the command succeeds, else False
        (and :meth:`_cmd_mail` answers the line)."""
        config = self.config
        if (
            self._hello is None
            or self._txn is not None
            or (config.auth_required and self._authenticated is None)
        ):
            return False
        # What _cmd_mail decides for the same line (parse_mail_params, _body_allowed, the UTF-8
        # check): no parameter, or a SIZE within the limit after EHLO, has nothing to refuse.
        if size is None:
            params = NO_MAIL_PARAMS
        else:
            value = int(size)
            limit = config.max_message_size
            if (
                not self._esmtp
                or (limit is not None and value > limit)
                or "SIZE" in config.extra_mail_parameters
            ):
                return False
            params = mail_params_with_size(value)
        event = new_mail_from(address, params)
        self._pending = event  # _decide(), inlined
        self._events.append(event)
        return True

    def _simple_rcpt(self, address: str) -> bool:
        """``RCPT TO:<address>``: the short cut of :meth:`_simple_mail` for :meth:`_cmd_rcpt`."""
        txn = self._txn
        if txn is None or txn.chunking or len(txn.recipients) >= self.config.max_recipients:
            return False
        event = new_rcpt_to(address, NO_RCPT_PARAMS)
        self._pending = event  # _decide(), inlined
        self._events.append(event)
        return True

    def _cmd_rcpt(self, argument: str) -> None:
        txn = self._txn
        if txn is None:
            self._error(Replies.NEED_MAIL)
            return
        if txn.chunking:
            self._error(Replies.RCPT_AFTER_BDAT)
            return
        path = self._path_argument(argument, "TO:", "RCPT TO:<address> [parameters]")
        if path is None:
            return
        allowed = {"NOTIFY", "ORCPT"} if self._esmtp and self.config.dsn else set()
        extra = self.config.extra_rcpt_parameters if self._esmtp else frozenset()
        try:
            params = parse_rcpt_params(path.params, allowed=allowed, extra_allowed=extra)
        except ParameterError as error:
            self._error(error.reply)
            return
        if not path.address.isascii() and not txn.params.smtputf8:
            self._error(Replies.UTF8_ADDRESS)
            return
        if len(txn.recipients) >= self.config.max_recipients:
            # RFC 5321 §4.5.3.1.10: 452 tells the client to send the rest later. Not counted as
            # an error: a legitimate client with many recipients gets it once per extra recipient.
            self._send(Replies.TOO_MANY_RECIPIENTS)
            return
        self._decide(RcptTo(address=path.address, params=params))

    # --- DATA / BDAT -----------------------------------------------------------------------------

    def _refuse_without_recipients(self) -> None:
        """DATA or BDAT while no RCPT was accepted.

        RFC 5321 §3.3 allows 503 or 554 (RFC 2033 §4.2 requires 503 for LMTP). It does not say
        whether the transaction survives; RFC 3030 §2 tells the client to consider it failed, and
        many clients then start over with MAIL without RSET. So the core ends the transaction
        here (and says so with MessageAborted), rather than answering their next MAIL with
        "nested MAIL".
        """
        reply = Replies.NEED_RCPT_LMTP if self.config.lmtp else Replies.NEED_RCPT_SMTP
        self._txn = None
        self._error(reply)
        self._notice(MessageAborted(reply=reply))

    def _cmd_data(self, argument: str) -> None:
        if argument.strip(" "):
            self._error(Replies.syntax("DATA"))
            return
        txn = self._txn
        if txn is None:
            self._error(Replies.NEED_MAIL)
        elif txn.chunking:
            self._error(Replies.DATA_IN_BDAT)
        elif txn.params.body is _BINARY_MIME:
            self._error(Replies.DATA_BINARYMIME)  # RFC 3030 §3
        elif not txn.recipients:
            self._refuse_without_recipients()
        else:
            self._out.append(_START_DATA_WIRE)  # _send(Replies.START_DATA), prebuilt
            self._phase = PHASE_DATA
            self._decoder = DataDecoder(
                policy=self.config.bare_line_endings,
                max_line_length=self.config.max_data_line_length,
                max_size=self.config.max_message_size,
            )

    def _cmd_bdat(self, argument: str) -> None:
        match = _BDAT_RE.match(argument)
        if match is None:
            # Without a size the chunk cannot be skipped; the client is told and the session
            # goes on (its bytes will be read as commands and most likely fail).
            self._error(Replies.syntax("BDAT chunk-size [LAST]"))
            return
        self._start_bdat(int(match.group(1)), match.group(2) is not None)

    def _start_bdat(self, size: int, last: bool) -> None:
        """A well-formed BDAT command (also the short cut's entry point)."""
        # Whatever the verdict, exactly `size` octets follow and must be consumed (RFC 3030 §2;
        # go-smtp #315 read them as commands instead).
        self._phase = PHASE_BDAT
        self._bdat_remaining = size
        self._bdat_last = last
        self._bdat_accepting = False
        self._bdat_too_big = False
        txn = self._txn
        if not self.config.chunking:
            self._error(Replies.NOT_IMPLEMENTED)
        elif txn is None:
            self._error(Replies.NEED_MAIL)
        elif not txn.recipients:
            self._refuse_without_recipients()
        else:
            txn.chunking = True
            txn.size += size
            self._bdat_accepting = True
            limit = self.config.max_message_size
            self._bdat_too_big = limit is not None and txn.size > limit

    # --- the rest of RFC 5321 ---------------------------------------------------------------------

    def _cmd_rset(self, argument: str) -> None:
        if argument.strip(" "):
            self._error(Replies.syntax("RSET"))
            return
        self._txn = None
        self._send(Replies.OK)
        self._notice(Reset())

    def _cmd_noop(self, argument: str) -> None:
        self._send(Replies.OK)  # RFC 5321 §4.1.1.9: any argument is ignored

    def _cmd_help(self, argument: str) -> None:
        verbs = "LHLO" if self.config.lmtp else "EHLO HELO"
        text = f"Commands: {verbs} MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH"
        self._send(Reply.make(214, "2.0.0", text))

    def _cmd_quit(self, argument: str) -> None:
        if argument.strip(" "):
            self._error(Replies.syntax("QUIT"))
            return
        self._txn = None
        key = (221, self.config.hostname, self._enhanced)
        wire = SESSION_WIRE.get(key)
        if wire is None:
            reply = Reply.make(221, "2.0.0", f"{self.config.hostname} Service closing")
            wire = remember(SESSION_WIRE, key, reply.to_bytes(enhanced_codes=self._enhanced))
        self._out.append(wire)
        self._close()
        self._notice(Quit())

    def _cmd_vrfy(self, argument: str) -> None:
        self._lookup_command(argument, Verify, "VRFY string", enabled=self.config.vrfy)

    def _cmd_expn(self, argument: str) -> None:
        self._lookup_command(argument, Expand, "EXPN string", enabled=self.config.expn)

    def _lookup_command(
        self, argument: str, event: type[Verify | Expand], usage: str, *, enabled: bool
    ) -> None:
        # RFC 5321 §4.1.1.6-§4.1.1.7: VRFY/EXPN take one string; 502 when the server disables them.
        if not enabled:
            self._error(Replies.NOT_IMPLEMENTED)
        elif not argument.strip(" "):
            self._error(Replies.syntax(usage))
        else:
            self._decide(event(argument=argument.strip(" ")))

    def _cmd_starttls(self, argument: str) -> None:
        if argument.strip(" "):
            self._error(Replies.syntax("STARTTLS"))
        elif self._tls_active:
            self._error(Replies.TLS_ACTIVE)
        elif not self.config.starttls:
            self._error(Replies.TLS_UNAVAILABLE)
        elif self._need_hello():
            return
        elif self._txn is not None:
            self._error(Replies.TLS_IN_TRANSACTION)
        else:
            self._send(Replies.TLS_READY)
            # RFC 3207 §4.2 / CVE-2011-0411: anything pipelined behind STARTTLS arrived in
            # plaintext and must not be executed after the handshake.
            self._buf.clear()
            self._phase = PHASE_STARTTLS
            self._notice(StartTLS())

    def _cmd_auth(self, argument: str) -> None:
        self._auth_command(argument)


CommandsMixin.HANDLERS = {
    "HELO": CommandsMixin._cmd_helo,
    "EHLO": CommandsMixin._cmd_ehlo,
    "LHLO": CommandsMixin._cmd_lhlo,
    "MAIL": CommandsMixin._cmd_mail,
    "RCPT": CommandsMixin._cmd_rcpt,
    "DATA": CommandsMixin._cmd_data,
    "BDAT": CommandsMixin._cmd_bdat,
    "RSET": CommandsMixin._cmd_rset,
    "NOOP": CommandsMixin._cmd_noop,
    "HELP": CommandsMixin._cmd_help,
    "QUIT": CommandsMixin._cmd_quit,
    "VRFY": CommandsMixin._cmd_vrfy,
    "EXPN": CommandsMixin._cmd_expn,
    "STARTTLS": CommandsMixin._cmd_starttls,
    "AUTH": CommandsMixin._cmd_auth,
}

#: Exact command lines without an argument (upper case, CRLF) and their handlers: the short cut
#: of ServerConnection._step_command, which calls them with an empty argument.
#: (Typed on Any: the caller is the ServerConnection these handlers are mixed into.)
SIMPLE_LINES: dict[bytes, Callable[[Any, str], None]] = {
    f"{verb}\r\n".encode("ascii"): CommandsMixin.HANDLERS[verb]
    for verb in ("DATA", "RSET", "NOOP", "QUIT")
}
