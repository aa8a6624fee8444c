"""OAuth 2.0 bearer tokens over SASL: XOAUTH2 (Google) and OAUTHBEARER (RFC 7628).

XOAUTH2 (Google's "SASL XOAUTH2" protocol page)::

    C: AUTH XOAUTH2 base64("user=" user ^A "auth=Bearer " token ^A ^A)      ^A = %x01
    S: 235 2.7.0                                                            (token accepted)
    S: 334 base64({"status":"401","schemes":"bearer"})                      (token refused)
    C: (empty line)
    S: 535 5.7.8

OAUTHBEARER (RFC 7628 §3.1)::

    client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep
    kvpair      = key "=" value kvsep;  key = 1*ALPHA;  value = *(VCHAR / SP / HTAB / CR / LF)

    C: AUTH OAUTHBEARER base64("n,a=user@example.com," ^A "auth=Bearer " token ^A ^A)
    S: 334 base64({"status":"invalid_token"})                    (RFC 7628 §3.2.2, on refusal)
    C: base64(^A)                                                (the dummy response, §3.2.3)
    S: 535 5.7.8

The server asks the application with :class:`AuthTokenCheck`; its user name is XOAUTH2's ``user``
or OAUTHBEARER's GS2 ``a=`` (empty when the client sent none: the token alone identifies the
user). The client omits OAUTHBEARER's optional ``host`` and ``port`` pairs (RFC 7628 §3.1 makes
them optional, and the core does not know which port the transport dialled). OAUTHBEARER has no
channel binding: a ``p=`` GS2 flag is refused.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

from ._errors import LocalProtocolError
from ._gs2 import Gs2SyntaxError, escape_saslname, parse_gs2_header
from ._sasl import (
    AUTH_FAILED,
    CLIENT_MECHANISMS,
    MALFORMED,
    SERVER_MECHANISMS,
    AuthTokenCheck,
    ClientCredentials,
    ClientMechanism,
    CredentialAnswer,
    SaslChallenge,
    SaslContext,
    SaslError,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
    ServerMechanism,
    ServerStep,
    _initial_response_on_request,
    _is_printable_name,
    _utf8,
)

__all__ = ["OAuthBearerClient", "OAuthBearerServer", "XOAuth2Client", "XOAuth2Server"]

KVSEP = "\x01"
# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token;
#                b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER_RE = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(?P<token>[A-Za-z0-9\-._~+/]+=*)\Z")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")
# RFC 7628 §3.1: key = 1*ALPHA; value = *(VCHAR / SP / HTAB / CR / LF)
# (non-ASCII is let through too, for internationalised mailbox names in XOAUTH2's "user")
_KVPAIR_RE = re.compile(r"(?P<key>[A-Za-z]+)=(?P<value>[\x21-\x7e \t\r\n\x80-\U0010ffff]*)\Z")


def _parse_kvpairs(text: str) -> dict[str, str] | None:
    """``*kvpair kvsep`` (each pair ends with ^A, then one more ^A) -> dict; None if malformed or
    a key repeats (a repeated key could be read differently by different parsers)."""
    if not text.endswith(KVSEP + KVSEP) and text != KVSEP:
        return None
    pairs: dict[str, str] = {}
    for item in text[:-1].split(KVSEP)[:-1]:
        match = _KVPAIR_RE.match(item)
        if match is None or match["key"] in pairs:
            return None
        pairs[match["key"]] = match["value"]
    return pairs


class _BearerServer(ServerMechanism):
    """Shared server half: parse, ask :class:`AuthTokenCheck`, send the error JSON on refusal."""

    #: Answer after the error challenge that ends the exchange with 535 (anything else is 501).
    dummy_response: ClassVar[bytes | None]

    def __init__(self, context: SaslContext) -> None:
        super().__init__(context)
        self._state = "start"
        self._username = ""

    def start(self, initial_response: bytes | None) -> ServerStep:
        if self._state != "start":
            raise LocalProtocolError(f"{self.name}: start() called twice")
        self._state = "response"
        if initial_response is None:
            return SaslChallenge(b"")
        return self.respond(initial_response)

    def respond(self, response: bytes) -> ServerStep:
        if self._state == "response":
            self._state = "done"
            text = _utf8(response)
            parsed = None if text is None else self._parse(text)
            if parsed is None:
                return SaslFailure(MALFORMED)
            self._username, token = parsed
            self._state = "check"
            return SaslNeedsCredentials(
                AuthTokenCheck(mechanism=self.name, username=self._username, token=token)
            )
        if self._state == "error-sent":
            self._state = "done"
            if self.dummy_response is None or response == self.dummy_response:
                return SaslFailure(AUTH_FAILED)
            return SaslFailure(MALFORMED)
        raise LocalProtocolError(f"{self.name}: respond() in state {self._state}")

    def resume(self, answer: CredentialAnswer) -> ServerStep:
        if self._state != "check":
            raise LocalProtocolError(f"{self.name}: resume() without a pending token check")
        if answer is True:
            self._state = "done"
            return SaslSuccess(self._username)
        if answer is not None and answer is not False:
            raise LocalProtocolError("answer an AuthTokenCheck with True or False")
        # Refused: the error travels as "additional data" in one more challenge (RFC 7628
        # §3.2.2, Google's XOAUTH2 page); the client's dummy answer then gets the 535.
        self._state = "error-sent"
        return SaslChallenge(self._error_json())

    def _parse(self, text: str) -> tuple[str, str] | None:
        raise NotImplementedError  # pragma: no cover - both subclasses override

    def _error_json(self) -> bytes:
        raise NotImplementedError  # pragma: no cover - both subclasses override


class XOAuth2Server(_BearerServer):
    """XOAUTH2 (Google), server half."""

    name = "XOAUTH2"
    #: Google's clients answer the error challenge with an empty line; accept any answer.
    dummy_response = None
    #: Optional ``scope`` for the error JSON (Google sends e.g. ``https://mail.google.com/``).
    error_scope: ClassVar[str | None] = None

    def _parse(self, text: str) -> tuple[str, str] | None:
        pairs = _parse_kvpairs(text)
        if pairs is None or set(pairs) != {"user", "auth"} or not pairs["user"]:
            return None
        match = _BEARER_RE.match(pairs["auth"])
        if match is None:
            return None
        return pairs["user"], match["token"]

    def _error_json(self) -> bytes:
        error = {"status": "401", "schemes": "bearer"}
        if self.error_scope is not None:
            error["scope"] = self.error_scope
        return json.dumps(error, separators=(",", ":")).encode()


class OAuthBearerServer(_BearerServer):
    """OAUTHBEARER (RFC 7628), server half. The optional ``host``/``port`` pairs are accepted and
    ignored; unknown keys are ignored as RFC 7628 §3.1 asks."""

    name = "OAUTHBEARER"
    dummy_response = KVSEP.encode()
    #: Optional ``scope`` / ``openid-configuration`` for the error JSON (RFC 7628 §3.2.2).
    error_scope: ClassVar[str | None] = None
    openid_configuration: ClassVar[str | None] = None

    def _parse(self, text: str) -> tuple[str, str] | None:
        try:
            header, rest = parse_gs2_header(text)
        except Gs2SyntaxError:
            return None
        if header.flag == "p" or not rest.startswith(KVSEP):
            return None
        pairs = _parse_kvpairs(rest[1:])
        if pairs is None or "auth" not in pairs:
            return None
        match = _BEARER_RE.match(pairs["auth"])
        if match is None:
            return None
        return header.authzid or "", match["token"]

    def _error_json(self) -> bytes:
        error = {"status": "invalid_token"}
        if self.error_scope is not None:
            error["scope"] = self.error_scope
        if self.openid_configuration is not None:
            error["openid-configuration"] = self.openid_configuration
        return json.dumps(error, separators=(",", ":")).encode()


class _BearerClient(ClientMechanism):
    """Shared client half: send the token, answer an error challenge with the dummy response."""

    dummy_response: ClassVar[bytes]

    def __init__(self, credentials: ClientCredentials, context: SaslContext) -> None:
        super().__init__(credentials, context)
        self._state = "start"
        self._message = b""
        #: The server's error JSON (decoded when it is a JSON object), after a refusal.
        self.error: dict[str, object] | str | None = None

    @classmethod
    def available(cls, credentials: ClientCredentials, context: SaslContext) -> bool:
        """Needs an OAuth 2.0 token instead of a password."""
        return credentials.token is not None

    def initial_response(self) -> bytes:
        if self._state != "start":
            raise LocalProtocolError(f"{self.name}: initial_response() called twice")
        token = self.credentials.token
        if token is None or not _TOKEN_RE.match(token):
            raise SaslError(f"{self.name} needs a bearer token (RFC 6750 b64token characters)")
        self._message = self._build(token).encode("utf-8")
        self._state = "sent"
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        if self._state == "start":
            return _initial_response_on_request(self, challenge)
        if self._state == "sent":
            if not challenge:
                # The server did not take the initial response; send it again as the answer.
                return self._message
            self._state = "error-received"
            text = challenge.decode("utf-8", errors="replace")
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = None
            self.error = decoded if isinstance(decoded, dict) else text
            return self.dummy_response
        raise SaslError(f"{self.name}: unexpected challenge after the error report")

    def _build(self, token: str) -> str:
        raise NotImplementedError  # pragma: no cover - both subclasses override


class XOAuth2Client(_BearerClient):
    """XOAUTH2 (Google), client half. ``credentials.username`` is the mailbox."""

    name = "XOAUTH2"
    dummy_response = b""

    def _build(self, token: str) -> str:
        user = self.credentials.username
        if not _is_printable_name(user):
            raise SaslError("XOAUTH2 needs a user name without control characters")
        return f"user={user}{KVSEP}auth=Bearer {token}{KVSEP}{KVSEP}"


class OAuthBearerClient(_BearerClient):
    """OAUTHBEARER (RFC 7628), client half. The GS2 ``a=`` carries ``credentials.authzid`` or,
    without one, ``credentials.username`` (omitted when empty)."""

    name = "OAUTHBEARER"
    dummy_response = KVSEP.encode()

    def _build(self, token: str) -> str:
        user = self.credentials.authzid or self.credentials.username
        if "\x00" in user:
            raise SaslError("OAUTHBEARER: NUL in the user name")
        authzid = f"a={escape_saslname(user)}" if user else ""
        # "n": this mechanism cannot bind to the channel (RFC 7628 §3.1).
        return f"n,{authzid},{KVSEP}auth=Bearer {token}{KVSEP}{KVSEP}"


for _server in (XOAuth2Server, OAuthBearerServer):
    SERVER_MECHANISMS[_server.name] = _server
for _client in (XOAuth2Client, OAuthBearerClient):
    CLIENT_MECHANISMS[_client.name] = _client
