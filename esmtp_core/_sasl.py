"""SASL (RFC 4422) mechanisms as small pure objects, shared by the server and client cores.

A mechanism has a *server half* (:class:`ServerMechanism`) and a *client half*
(:class:`ClientMechanism`). Neither knows about SMTP: the connections do the base64, the ``334``
continuations, the ``*`` cancel and the final ``235``/``535`` (RFC 4954). Mechanisms register
themselves by name in :data:`SERVER_MECHANISMS` / :data:`CLIENT_MECHANISMS`.

Server half protocol
--------------------
``start(initial_response)`` then ``respond(response)`` for every client line, each returning a
step:

* :class:`SaslChallenge` — send ``334 <base64(data)>`` and wait for the client's next line;
* :class:`SaslNeedsCredentials` — hand ``query`` (an event such as :class:`AuthPasswordCheck`) to
  the application; when it answers, call ``resume(answer)`` for the next step;
* :class:`SaslSuccess` — reply ``235 2.7.0``;
* :class:`SaslFailure` — reply ``failure.reply`` (``535 5.7.8`` for bad credentials, ``501`` for
  a malformed exchange). The session stays usable.

The application never sees base64 or challenge plumbing, only the queries:

=========================  ============================================  =======================
query event                mechanisms                                    answer
=========================  ============================================  =======================
:class:`AuthPasswordCheck` PLAIN, LOGIN                                  bool (accept / reject)
:class:`AuthSecretLookup`  CRAM-MD5 (password), SCRAM-* (password or      password ``str``,
                           :class:`ScramSecrets`)                         ``ScramSecrets`` or None
:class:`AuthTokenCheck`    XOAUTH2, OAUTHBEARER                          bool (accept / reject)
=========================  ============================================  =======================

Unknown users and wrong passwords give the same ``535 5.7.8`` so a client cannot tell them apart.

PLAIN and LOGIN live here; CRAM-MD5 (``_cram_md5``), SCRAM-SHA-1/-256 and their ``-PLUS``
variants (``_scram``), XOAUTH2 and OAUTHBEARER (``_oauth``) live in their own modules, which
register themselves when this module is imported. :func:`select_client_mechanism` picks the
client's mechanism from what the server offered (:data:`DEFAULT_CLIENT_PREFERENCE`).

PLAIN and LOGIN hand the application the user name and password exactly as received; an
application that compares internationalised names or passwords should prepare both sides with
:func:`~esmtp_core.saslprep` (RFC 4616 §2 recommends it). SCRAM prepares them itself.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ._errors import ProtocolError
from ._reply import Reply

__all__ = [
    "CLIENT_MECHANISMS",
    "DEFAULT_CLIENT_PREFERENCE",
    "SERVER_MECHANISMS",
    "AuthPasswordCheck",
    "AuthQuery",
    "AuthSecretLookup",
    "AuthTokenCheck",
    "ChannelBinding",
    "ClientCredentials",
    "ClientMechanism",
    "CredentialAnswer",
    "LoginClient",
    "LoginServer",
    "PlainClient",
    "PlainServer",
    "SaslChallenge",
    "SaslContext",
    "SaslError",
    "SaslFailure",
    "SaslNeedsCredentials",
    "SaslSuccess",
    "ScramSecrets",
    "ServerMechanism",
    "ServerStep",
    "select_client_mechanism",
]

AUTH_FAILED = Reply.make(535, "5.7.8", "Authentication credentials invalid")
MALFORMED = Reply.make(501, "5.5.2", "Malformed authentication response")


class SaslError(ProtocolError):
    """A client-side SASL failure: the server's challenge was malformed or failed verification
    (for SCRAM, a wrong server signature), or the credentials do not fit the mechanism."""


@dataclass(frozen=True, slots=True)
class ChannelBinding:
    """TLS channel-binding data supplied by the transport (RFC 5929, RFC 9266).

    ``kind`` is ``"tls-exporter"`` or ``"tls-server-end-point"``.
    """

    kind: str
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SaslContext:
    """What a mechanism may know about its session."""

    hostname: str = "localhost"
    tls_active: bool = False
    channel_binding: ChannelBinding | None = None
    #: Fixed nonce (tests reproducing RFC examples); None draws one from :mod:`secrets`.
    nonce: str | None = None
    #: SCRAM iteration count (RFC 5802 §5.1 ``i``) the server uses when the application answers a
    #: lookup with a plain password, and for the fake salt it shows unknown users. Match it to the
    #: count of your stored :class:`ScramSecrets` so both look alike to a probing client.
    scram_iterations: int = 4096
    #: The AUTH mechanisms the server advertised in its EHLO reply, when known (server side: what
    #: it offered; client side: what it saw). SCRAM uses it for the RFC 5802 §6 channel-binding
    #: flag: a client that can bind says "y" only when no ``-PLUS`` name was advertised, and a
    #: server that advertised one treats "y" as a downgrade attack. None (unknown): the server
    #: assumes it advertised a ``-PLUS`` name exactly when :attr:`channel_binding` is set; the
    #: client assumes none was advertised (it would otherwise have chosen it) and says "y".
    advertised_mechanisms: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.scram_iterations < 1:
            raise ValueError("scram_iterations must be at least 1")

    def make_nonce(self, nbytes: int = 18) -> str:
        """The fixed nonce, or a fresh random printable one."""
        return self.nonce if self.nonce is not None else secrets.token_urlsafe(nbytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScramSecrets:
    """What a server stores for SCRAM instead of the password (RFC 5802 §3).

    ``algorithm`` is ``"SHA-1"`` or ``"SHA-256"``.
    """

    algorithm: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCredentials:
    """What the client half of a mechanism authenticates with."""

    username: str
    password: str | None = None
    authzid: str | None = None
    #: OAuth 2.0 bearer token for XOAUTH2 / OAUTHBEARER.
    token: str | None = None


# --- queries: server events asking the application to decide -----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthQuery:
    """Base of the AUTH events; ``mechanism`` is the SASL name the client chose."""

    mechanism: str
    username: str
    authzid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthPasswordCheck(AuthQuery):
    """Check ``username``/``password``: ``accept()`` for 235, ``reject()`` for 535 5.7.8."""

    password: str

    def __repr__(self) -> str:  # never print a password in a log line
        return (
            f"AuthPasswordCheck(mechanism={self.mechanism!r}, username={self.username!r}, "
            f"authzid={self.authzid!r}, password=<hidden>)"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSecretLookup(AuthQuery):
    """Look up the user's secret: answer with the password, a :class:`ScramSecrets` (SCRAM only)
    or ``None`` for an unknown user (the client then sees the same 535 as for a wrong password).
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthTokenCheck(AuthQuery):
    """Check an OAuth 2.0 bearer ``token`` for ``username`` (may be empty for OAUTHBEARER)."""

    token: str

    def __repr__(self) -> str:
        return (
            f"AuthTokenCheck(mechanism={self.mechanism!r}, username={self.username!r}, "
            f"authzid={self.authzid!r}, token=<hidden>)"
        )


CredentialAnswer = bool | str | ScramSecrets | None


# --- server steps --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaslChallenge:
    """Send ``334`` with this (raw, not yet base64) challenge."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SaslNeedsCredentials:
    """Ask the application; continue with ``resume(answer)``."""

    query: AuthQuery


@dataclass(frozen=True, slots=True)
class SaslSuccess:
    """Authentication succeeded for ``username`` (acting as ``authzid`` when given)."""

    username: str
    authzid: str | None = None


@dataclass(frozen=True, slots=True)
class SaslFailure:
    """Authentication failed; send ``reply``."""

    reply: Reply = AUTH_FAILED


ServerStep = SaslChallenge | SaslNeedsCredentials | SaslSuccess | SaslFailure


class ServerMechanism(abc.ABC):
    """The server half of one SASL exchange. One instance per AUTH command."""

    #: The IANA-registered SASL name, upper case.
    name: ClassVar[str]
    #: Offered only when the transport supplies channel binding data (``-PLUS`` variants).
    needs_channel_binding: ClassVar[bool] = False

    def __init__(self, context: SaslContext) -> None:
        self.context = context

    @classmethod
    def available(cls, context: SaslContext) -> bool:
        """Whether this mechanism may be offered in this session."""
        return not cls.needs_channel_binding or context.channel_binding is not None

    @abc.abstractmethod
    def start(self, initial_response: bytes | None) -> ServerStep:
        """Begin; ``initial_response`` is the decoded RFC 4954 initial response, if any."""

    @abc.abstractmethod
    def respond(self, response: bytes) -> ServerStep:
        """The client's (decoded) answer to the last challenge."""

    def resume(self, answer: CredentialAnswer) -> ServerStep:
        """The application's answer to a :class:`SaslNeedsCredentials` query."""
        raise NotImplementedError  # pragma: no cover - every mechanism that asks overrides this


class ClientMechanism(abc.ABC):
    """The client half of one SASL exchange. One instance per AUTH command."""

    name: ClassVar[str]
    needs_channel_binding: ClassVar[bool] = False

    def __init__(self, credentials: ClientCredentials, context: SaslContext) -> None:
        self.credentials = credentials
        self.context = context

    @classmethod
    def available(cls, credentials: ClientCredentials, context: SaslContext) -> bool:
        """Whether these credentials and this session allow the mechanism."""
        if cls.needs_channel_binding and context.channel_binding is None:
            return False
        return credentials.password is not None

    @abc.abstractmethod
    def initial_response(self) -> bytes | None:
        """The initial response to send with the AUTH command, or None to wait for a challenge."""

    @abc.abstractmethod
    def respond(self, challenge: bytes) -> bytes:
        """Answer one (decoded) ``334`` challenge; raise :class:`SaslError` if it is malformed."""

    @property
    def complete(self) -> bool:
        """True once the mechanism verified everything it must (SCRAM: the server signature).

        The client connection checks this when the server says ``235``.
        """
        return True


SERVER_MECHANISMS: dict[str, type[ServerMechanism]] = {}
CLIENT_MECHANISMS: dict[str, type[ClientMechanism]] = {}

#: The client's default preference (issue 4): bearer-token mechanisms first (they are only
#: :meth:`~ClientMechanism.available` with a token), then the strongest password mechanisms.
DEFAULT_CLIENT_PREFERENCE: tuple[str, ...] = (
    "OAUTHBEARER",
    "XOAUTH2",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
)


def select_client_mechanism(
    offered: Iterable[str],
    credentials: ClientCredentials,
    context: SaslContext,
    preference: Iterable[str] = DEFAULT_CLIENT_PREFERENCE,
) -> type[ClientMechanism] | None:
    """The first mechanism of ``preference`` that the server ``offered`` (EHLO ``AUTH``, any
    case), that :data:`CLIENT_MECHANISMS` implements and that is available for these credentials
    and this session (``-PLUS`` needs channel binding data); None if there is none."""
    offered_names = {name.upper() for name in offered}
    for name in preference:
        mechanism = CLIENT_MECHANISMS.get(name.upper())
        if (
            mechanism is not None
            and name.upper() in offered_names
            and mechanism.available(credentials, context)
        ):
            return mechanism
    return None


def _require_password(credentials: ClientCredentials) -> str:
    if credentials.password is None:
        raise SaslError("this mechanism needs a password")
    return credentials.password


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_printable_name(name: str) -> bool:
    """A non-empty user name without ASCII control characters: what CRAM-MD5's ``username SP
    digest`` (RFC 2195 §2) and XOAUTH2's ``user=`` can carry unambiguously."""
    return bool(name) and not any(c < " " or c == "\x7f" for c in name)


def _initial_response_on_request(mechanism: ClientMechanism, challenge: bytes) -> bytes:
    """The first challenge of an AUTH command sent without an initial response: RFC 4954 §4's
    empty ``334`` asks for it; a server that speaks first in a client-first mechanism (SCRAM,
    OAUTHBEARER, XOAUTH2) is broken."""
    if challenge:
        raise SaslError(f"{mechanism.name}: the server spoke first")
    response = mechanism.initial_response()
    assert response is not None  # client-first mechanisms always have one
    return response


class PlainServer(ServerMechanism):
    """PLAIN (RFC 4616): ``[authzid] NUL authcid NUL passwd`` in one response."""

    name = "PLAIN"

    def __init__(self, context: SaslContext) -> None:
        super().__init__(context)
        self._query: AuthPasswordCheck | None = None

    def start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return SaslChallenge(b"")
        return self.respond(initial_response)

    def respond(self, response: bytes) -> ServerStep:
        text = _utf8(response)
        if text is None or text.count("\0") != 2:
            return SaslFailure(MALFORMED)
        authzid, username, password = text.split("\0")
        if not username or not password:
            return SaslFailure(MALFORMED)
        self._query = AuthPasswordCheck(
            mechanism=self.name, username=username, password=password, authzid=authzid or None
        )
        return SaslNeedsCredentials(self._query)

    def resume(self, answer: CredentialAnswer) -> ServerStep:
        if answer is True and self._query is not None:
            return SaslSuccess(self._query.username, self._query.authzid)
        return SaslFailure()


class PlainClient(ClientMechanism):
    """PLAIN (RFC 4616), client half: always sends an initial response.

    ``credentials.authzid``, when set, is the identity to act as (RFC 4616 §2); the server must
    check that ``username`` may act as it.
    """

    name = "PLAIN"

    def __init__(self, credentials: ClientCredentials, context: SaslContext) -> None:
        super().__init__(credentials, context)
        self._answered = False

    def initial_response(self) -> bytes:
        password = _require_password(self.credentials)
        authzid = self.credentials.authzid or ""
        username = self.credentials.username
        # RFC 4616 §2: authcid and passwd are 1*SAFE (no NUL); authzid is optional.
        if "\0" in authzid + username + password or not username or not password:
            raise SaslError("PLAIN needs a non-empty user name and password without NUL")
        return f"{authzid}\0{username}\0{password}".encode()

    def respond(self, challenge: bytes) -> bytes:
        # An empty 334 means the server wants the message we would have sent as the initial
        # response (RFC 4954 §4); anything else, or a second challenge, is a protocol error.
        if challenge or self._answered:
            raise SaslError("PLAIN expects one empty challenge at most")
        self._answered = True
        return self.initial_response()


class LoginServer(ServerMechanism):
    """LOGIN (draft-murchison-sasl-login): ``Username:`` then ``Password:`` challenges.

    An initial response, when a client sends one, is taken as the user name.
    """

    name = "LOGIN"

    def __init__(self, context: SaslContext) -> None:
        super().__init__(context)
        self._username: str | None = None

    def start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return SaslChallenge(b"Username:")
        return self.respond(initial_response)

    def respond(self, response: bytes) -> ServerStep:
        text = _utf8(response)
        if text is None or "\0" in text:
            return SaslFailure(MALFORMED)
        if self._username is None:
            if not text:
                return SaslFailure(MALFORMED)
            self._username = text
            return SaslChallenge(b"Password:")
        return SaslNeedsCredentials(
            AuthPasswordCheck(mechanism=self.name, username=self._username, password=text)
        )

    def resume(self, answer: CredentialAnswer) -> ServerStep:
        if answer is True and self._username is not None:
            return SaslSuccess(self._username)
        return SaslFailure()


class LoginClient(ClientMechanism):
    """LOGIN, client half: answers ``Username:`` and ``Password:`` (in that order)."""

    name = "LOGIN"

    def __init__(self, credentials: ClientCredentials, context: SaslContext) -> None:
        super().__init__(credentials, context)
        self._step = 0

    def initial_response(self) -> None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        self._step += 1
        if self._step == 1:
            return self.credentials.username.encode()
        if self._step == 2:
            return _require_password(self.credentials).encode()
        raise SaslError("LOGIN: unexpected third challenge")


for _server in (PlainServer, LoginServer):
    SERVER_MECHANISMS[_server.name] = _server
for _client in (PlainClient, LoginClient):
    CLIENT_MECHANISMS[_client.name] = _client

# The other mechanisms live in their own modules and register themselves on import. Importing them
# here (at the end, once everything above exists) fills the registries whoever imports this module
# first, without an import cycle.
from . import _cram_md5, _oauth, _scram  # noqa: E402, F401
