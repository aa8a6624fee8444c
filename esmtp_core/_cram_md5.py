"""CRAM-MD5 (RFC 2195): a challenge, and the keyed MD5 digest of it as the answer.

::

    S: 334 base64(<unique-token@hostname>)
    C: base64(username SP lowercase-hex(HMAC-MD5(password, challenge)))
    S: 235 / 535

RFC 2195 §2 builds the challenge as ``<random-digits.timestamp@hostname>`` only to make it unique.
The core has no clock, so the challenge is ``<token@hostname>`` with a random token from
:meth:`SaslContext.make_nonce` (fixed in tests: nonce ``"1896.697170952"`` and hostname
``"postoffice.reston.mci.net"`` reproduce the RFC example byte for byte). The server needs the
plain password (an :class:`AuthSecretLookup`); CRAM-MD5 is offered for old clients, SCRAM is the
better choice where both sides have it.
"""

from __future__ import annotations

import hmac
import re

from ._errors import LocalProtocolError
from ._reply import Reply
from ._sasl import (
    CLIENT_MECHANISMS,
    MALFORMED,
    SERVER_MECHANISMS,
    AuthSecretLookup,
    ClientCredentials,
    ClientMechanism,
    CredentialAnswer,
    SaslChallenge,
    SaslContext,
    SaslError,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
    ScramSecrets,
    ServerMechanism,
    ServerStep,
    _is_printable_name,
    _require_password,
    _utf8,
)

__all__ = ["CramMd5Client", "CramMd5Server", "cram_md5_digest"]

#: RFC 4954 §4: an initial response to a mechanism where the server speaks first.
INITIAL_RESPONSE_NOT_ALLOWED = Reply.make(
    501, "5.7.0", "CRAM-MD5 does not take an initial response"
)

# RFC 2195 §2: the response is the user name, a space, and 32 lowercase hexadecimal digits. We
# accept upper case too (harmless leniency). The user name is everything before the last space.
_RESPONSE_RE = re.compile(r"(?P<username>[^\x00-\x1f\x7f]+) (?P<digest>[0-9A-Fa-f]{32})\Z")


def cram_md5_digest(password: str, challenge: bytes) -> str:
    """The lowercase hex HMAC-MD5 (RFC 2104) of ``challenge`` keyed with ``password`` (UTF-8)."""
    return hmac.new(password.encode("utf-8"), challenge, "md5").hexdigest()


class CramMd5Server(ServerMechanism):
    """CRAM-MD5 (RFC 2195), server half: asks :class:`AuthSecretLookup` for the password."""

    name = "CRAM-MD5"

    def __init__(self, context: SaslContext) -> None:
        super().__init__(context)
        self._challenge = b""
        self._username = ""
        self._digest = ""
        self._state = "start"

    def start(self, initial_response: bytes | None) -> ServerStep:
        if self._state != "start":
            raise LocalProtocolError("CRAM-MD5: start() called twice")
        if initial_response is not None:
            self._state = "done"
            return SaslFailure(INITIAL_RESPONSE_NOT_ALLOWED)
        token = self.context.make_nonce()
        challenge = f"<{token}@{self.context.hostname}>"
        if not challenge.isascii() or any(c in challenge for c in " \r\n"):
            raise LocalProtocolError("CRAM-MD5: nonce and hostname must be ASCII without spaces")
        self._challenge = challenge.encode("ascii")
        self._state = "response"
        return SaslChallenge(self._challenge)

    def respond(self, response: bytes) -> ServerStep:
        if self._state != "response":
            raise LocalProtocolError(f"CRAM-MD5: respond() in state {self._state}")
        self._state = "done"
        text = _utf8(response)
        match = None if text is None else _RESPONSE_RE.match(text)
        if match is None:
            return SaslFailure(MALFORMED)
        self._username = match["username"]
        self._digest = match["digest"].lower()
        self._state = "lookup"
        return SaslNeedsCredentials(AuthSecretLookup(mechanism=self.name, username=self._username))

    def resume(self, answer: CredentialAnswer) -> ServerStep:
        if self._state != "lookup":
            raise LocalProtocolError("CRAM-MD5: resume() without a pending lookup")
        self._state = "done"
        if answer is None or answer is False:
            return SaslFailure()
        if isinstance(answer, ScramSecrets) or not isinstance(answer, str):
            raise LocalProtocolError("CRAM-MD5 needs the password (str) or None")
        expected = cram_md5_digest(answer, self._challenge)
        if hmac.compare_digest(expected, self._digest):
            return SaslSuccess(self._username)
        return SaslFailure()


class CramMd5Client(ClientMechanism):
    """CRAM-MD5 (RFC 2195), client half: answers the one challenge."""

    name = "CRAM-MD5"

    def __init__(self, credentials: ClientCredentials, context: SaslContext) -> None:
        super().__init__(credentials, context)
        self._answered = False

    def initial_response(self) -> None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        if self._answered:
            raise SaslError("CRAM-MD5: unexpected second challenge")
        if not challenge:
            raise SaslError("CRAM-MD5: empty challenge")
        password = _require_password(self.credentials)
        username = self.credentials.username
        if not _is_printable_name(username):
            raise SaslError("CRAM-MD5: the user name must be non-empty, without control chars")
        self._answered = True
        return f"{username} {cram_md5_digest(password, challenge)}".encode()


SERVER_MECHANISMS[CramMd5Server.name] = CramMd5Server
CLIENT_MECHANISMS[CramMd5Client.name] = CramMd5Client
