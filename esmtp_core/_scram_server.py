"""The server half of SCRAM-SHA-1 (RFC 5802), SCRAM-SHA-256 (RFC 7677) and their -PLUS variants.

The exchange and the decisions taken where the RFCs leave room (storage, unknown users, failure
replies) are described in :mod:`esmtp_core._scram`, which holds the helpers both halves share.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import ClassVar

from ._errors import LocalProtocolError
from ._gs2 import Gs2Header, Gs2SyntaxError, parse_gs2_header, unescape_saslname
from ._reply import Reply
from ._sasl import (
    AUTH_FAILED,
    MALFORMED,
    SERVER_MECHANISMS,
    AuthSecretLookup,
    CredentialAnswer,
    SaslChallenge,
    SaslContext,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
    ScramSecrets,
    ServerMechanism,
    ServerStep,
)
from ._saslprep import SaslprepError, saslprep
from ._scram import (
    _algorithm,
    _attribute,
    _b64decode,
    _b64encode,
    _channel_binding_input,
    _check_extensions,
    _check_nonce,
    _decode,
    _hash,
    _hmac,
    _Malformed,
    _new_nonce,
    _plus_advertised,
    _xor,
    scram_secrets_from_password,
)

__all__ = [
    "ScramServer",
    "ScramSha1PlusServer",
    "ScramSha1Server",
    "ScramSha256PlusServer",
    "ScramSha256Server",
]

# Key for the salts the server derives itself (plain-password answers and unknown users). Random per
# process: never stored, never sent; it only has to make salts unpredictable and stable.
_PROCESS_KEY = secrets.token_bytes(32)

_Handler = Callable[[bytes], ServerStep]


def _derived_salt(algorithm: str, username: str) -> bytes:
    message = b"esmtp-core scram salt\0" + algorithm.encode() + b"\0" + username.encode("utf-8")
    return hmac.new(_PROCESS_KEY, message, "sha256").digest()[:16]


class ScramServer(ServerMechanism):
    """The server half of SCRAM (RFC 5802 §5); subclasses fix the hash and channel binding.

    Queries :class:`AuthSecretLookup` once (after the client-first message) and accepts a
    :class:`ScramSecrets` of the right algorithm, a password, or ``None`` for an unknown user.
    When the query carries an ``authzid`` (the GS2 ``a=``), answer ``None`` unless ``username``
    may act as that identity: the exchange then fails like any other bad credential.
    """

    algorithm: ClassVar[str]

    def __init__(self, context: SaslContext) -> None:
        super().__init__(context)
        self._state = "start"
        self._header: Gs2Header | None = None
        self._client_first_bare = ""
        self._username = ""
        self._nonce = ""
        self._server_first = ""
        self._secrets: ScramSecrets | None = None
        self._known_user = False

    def start(self, initial_response: bytes | None) -> ServerStep:
        if self._state != "start":
            raise LocalProtocolError(f"{self.name}: start() called twice")
        if initial_response is None:
            # RFC 4954 §4: no initial response -> an empty challenge asking for client-first.
            self._state = "client-first"
            return SaslChallenge(b"")
        return self._guard(self._client_first, initial_response)

    def respond(self, response: bytes) -> ServerStep:
        if self._state == "client-first":
            return self._guard(self._client_first, response)
        if self._state == "client-final":
            return self._guard(self._client_final, response)
        if self._state == "server-final-sent":
            # The client acknowledges the server-final message with an empty response.
            if response:
                return self._fail(MALFORMED)
            self._state = "done"
            assert self._header is not None
            return SaslSuccess(self._username, self._header.authzid)
        raise LocalProtocolError(f"{self.name}: respond() in state {self._state}")

    def resume(self, answer: CredentialAnswer) -> ServerStep:
        if self._state != "lookup":
            raise LocalProtocolError(f"{self.name}: resume() without a pending lookup")
        if answer is None or answer is False:
            # RFC 5802 §9: carry on with a made-up record so the client learns nothing yet.
            self._secrets = ScramSecrets(
                algorithm=self.algorithm,
                salt=_derived_salt(self.algorithm, self._username),
                iterations=self.context.scram_iterations,
                stored_key=secrets.token_bytes(_algorithm(self.algorithm)[1]),
                server_key=b"",
            )
            self._known_user = False
        elif isinstance(answer, ScramSecrets):
            size = _algorithm(self.algorithm)[1]
            if answer.algorithm != self.algorithm:
                raise LocalProtocolError(
                    f"{self.name} needs SCRAM secrets for {self.algorithm}, got {answer.algorithm}"
                )
            if not answer.salt or answer.iterations < 1 or {
                len(answer.stored_key),
                len(answer.server_key),
            } != {size}:
                raise LocalProtocolError(f"{self.name}: malformed ScramSecrets")
            self._secrets = answer
            self._known_user = True
        elif isinstance(answer, str):
            self._secrets = scram_secrets_from_password(
                answer,
                algorithm=self.algorithm,
                salt=_derived_salt(self.algorithm, self._username),
                iterations=self.context.scram_iterations,
            )
            self._known_user = True
        else:
            raise LocalProtocolError(
                "answer an AuthSecretLookup with a password, ScramSecrets or None"
            )
        self._server_first = (
            f"r={self._nonce},s={_b64encode(self._secrets.salt)},i={self._secrets.iterations}"
        )
        self._state = "client-final"
        return SaslChallenge(self._server_first.encode("ascii"))

    def _guard(self, handler: _Handler, message: bytes) -> ServerStep:
        try:
            return handler(message)
        except (_Malformed, Gs2SyntaxError):
            return self._fail(MALFORMED)

    def _fail(self, reply: Reply = AUTH_FAILED) -> SaslFailure:
        self._state = "done"
        return SaslFailure(reply)

    def _client_first(self, message: bytes) -> ServerStep:
        header, bare = parse_gs2_header(_decode(message))
        binding = self.context.channel_binding
        if self.needs_channel_binding:
            # RFC 5802 §6: a -PLUS mechanism needs "p=" with a type this session supports.
            if header.flag != "p" or binding is None or header.cb_name != binding.kind:
                return self._fail()
        elif header.flag == "p":
            # Binding requested under a mechanism name that does not bind.
            return self._fail()
        elif header.flag == "y" and _plus_advertised(self.context, unknown=True):
            # RFC 5802 §6: the client can bind but saw no -PLUS offer although we made one, so
            # someone stripped it from our EHLO reply: a downgrade attack.
            return self._fail()
        attributes = bare.split(",")
        if attributes[0].startswith("m="):
            # RFC 5802 §5.1: a mandatory extension we do not know MUST fail the exchange.
            return self._fail(MALFORMED)
        if len(attributes) < 2:
            raise _Malformed("client-first message too short")
        username = unescape_saslname(_attribute(attributes[0], "n"))
        client_nonce = _attribute(attributes[1], "r")
        _check_nonce(client_nonce)
        _check_extensions(attributes[2:])
        try:
            username = saslprep(username)
        except SaslprepError:
            return self._fail()
        if not username:
            return self._fail()
        server_nonce = _new_nonce(self.context)
        self._header = header
        self._client_first_bare = bare
        self._username = username
        self._nonce = client_nonce + server_nonce
        self._state = "lookup"
        return SaslNeedsCredentials(
            AuthSecretLookup(mechanism=self.name, username=username, authzid=header.authzid)
        )

    def _client_final(self, message: bytes) -> ServerStep:
        text = _decode(message)
        attributes = text.split(",")
        if len(attributes) < 3:
            raise _Malformed("client-final message too short")
        channel_binding = _b64decode(_attribute(attributes[0], "c"))
        nonce = _attribute(attributes[1], "r")
        proof = _b64decode(_attribute(attributes[-1], "p"))
        _check_extensions(attributes[2:-1])
        assert self._header is not None
        assert self._secrets is not None
        size = _algorithm(self.algorithm)[1]
        if len(proof) != size:
            raise _Malformed("client proof of the wrong length")
        expected_binding = _channel_binding_input(
            self._header.raw, self.context, bound=self._header.flag == "p"
        )
        if not hmac.compare_digest(channel_binding, expected_binding):
            return self._fail()
        if not hmac.compare_digest(nonce.encode("utf-8"), self._nonce.encode("ascii")):
            return self._fail()
        without_proof = ",".join(attributes[:-1])
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = _hmac(self.algorithm, self._secrets.stored_key, auth_message)
        client_key = _xor(proof, client_signature)
        stored_key = _hash(self.algorithm, client_key)
        if not (hmac.compare_digest(stored_key, self._secrets.stored_key) and self._known_user):
            return self._fail()
        server_signature = _hmac(self.algorithm, self._secrets.server_key, auth_message)
        self._state = "server-final-sent"
        return SaslChallenge(b"v=" + _b64encode(server_signature).encode("ascii"))


class ScramSha1Server(ScramServer):
    """SCRAM-SHA-1 (RFC 5802), server half."""

    name = "SCRAM-SHA-1"
    algorithm = "SHA-1"


class ScramSha1PlusServer(ScramServer):
    """SCRAM-SHA-1-PLUS (RFC 5802 §6), server half: offered only with channel binding data."""

    name = "SCRAM-SHA-1-PLUS"
    algorithm = "SHA-1"
    needs_channel_binding = True


class ScramSha256Server(ScramServer):
    """SCRAM-SHA-256 (RFC 7677), server half."""

    name = "SCRAM-SHA-256"
    algorithm = "SHA-256"


class ScramSha256PlusServer(ScramServer):
    """SCRAM-SHA-256-PLUS (RFC 7677), server half: offered only with channel binding data."""

    name = "SCRAM-SHA-256-PLUS"
    algorithm = "SHA-256"
    needs_channel_binding = True


for _server in (ScramSha1Server, ScramSha1PlusServer, ScramSha256Server, ScramSha256PlusServer):
    SERVER_MECHANISMS[_server.name] = _server
