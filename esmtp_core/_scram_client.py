"""The client half of SCRAM-SHA-1 (RFC 5802), SCRAM-SHA-256 (RFC 7677) and their -PLUS variants.

The exchange and the limits the client puts on a server's iteration count are described in
:mod:`esmtp_core._scram`, which holds the helpers both halves share.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import ClassVar

from ._errors import LocalProtocolError
from ._gs2 import escape_saslname
from ._sasl import (
    CLIENT_MECHANISMS,
    ClientCredentials,
    ClientMechanism,
    SaslContext,
    SaslError,
    _initial_response_on_request,
    _require_password,
)
from ._saslprep import SaslprepError, saslprep
from ._scram import (
    DEFAULT_ITERATIONS,
    _attribute,
    _b64decode,
    _b64encode,
    _channel_binding_input,
    _check_extensions,
    _check_nonce,
    _decode,
    _derive_keys,
    _hmac,
    _Malformed,
    _new_nonce,
    _plus_advertised,
    _salted_password,
    _xor,
)

__all__ = [
    "ScramClient",
    "ScramSha1Client",
    "ScramSha1PlusClient",
    "ScramSha256Client",
    "ScramSha256PlusClient",
]

# RFC 5802 §7: posit-number = %x31-39 *DIGIT (ten digits at most: a count beyond that is absurd)
_ITERATIONS_RE = re.compile(r"[1-9][0-9]{0,9}\Z")

_ClientHandler = Callable[[bytes], bytes]


class ScramClient(ClientMechanism):
    """The client half of SCRAM (RFC 5802 §5); subclasses fix the hash and channel binding.

    Sends the client-first message as the initial response, checks the server's nonce, salt and
    iteration count, proves knowledge of the password, and verifies the server signature (mutual
    authentication): :attr:`complete` stays False until it has. Every protocol fault raises
    :class:`SaslError`.
    """

    algorithm: ClassVar[str]
    #: Refuse weaker iteration counts (RFC 5802 §5.1 asks servers for at least 4096).
    min_iterations: ClassVar[int] = DEFAULT_ITERATIONS
    #: Refuse larger ones: each iteration costs the client an HMAC.
    max_iterations: ClassVar[int] = 1_000_000

    def __init__(self, credentials: ClientCredentials, context: SaslContext) -> None:
        super().__init__(credentials, context)
        self._state = "start"
        self._client_first = b""
        self._client_nonce = ""
        self._header = ""
        self._client_first_bare = ""
        self._server_signature = b""
        self._verified = False

    @property
    def complete(self) -> bool:
        """True once the server proved it knows the password (its ``v=`` signature matched)."""
        return self._verified

    def initial_response(self) -> bytes:
        if self._state != "start":
            raise LocalProtocolError(f"{self.name}: initial_response() called twice")
        _require_password(self.credentials)
        try:
            username = saslprep(self.credentials.username)
        except SaslprepError as exc:
            raise SaslError(f"user name rejected by SASLprep: {exc}") from None
        if not username:
            raise SaslError("empty user name")
        binding = self.context.channel_binding
        if self.needs_channel_binding:
            if binding is None:
                raise SaslError(f"{self.name} needs channel binding data")
            flag = f"p={binding.kind}"
        else:
            # RFC 5802 §6: "y" tells the server we could have bound but saw no -PLUS offer, so
            # that a server which did offer one detects the stripped offer; "n" when we cannot
            # bind, or when a -PLUS name was advertised and we chose not to use it.
            # Not knowing what was advertised, assume no -PLUS name (else we would have picked it).
            plus_seen = _plus_advertised(self.context, unknown=False)
            flag = "y" if binding is not None and not plus_seen else "n"
        authzid = self.credentials.authzid
        nonce = _new_nonce(self.context)
        self._header = f"{flag},{'a=' + escape_saslname(authzid) if authzid else ''},"
        self._client_first_bare = f"n={escape_saslname(username)},r={nonce}"
        self._client_nonce = nonce
        self._client_first = (self._header + self._client_first_bare).encode("utf-8")
        self._state = "server-first"
        return self._client_first

    def respond(self, challenge: bytes) -> bytes:
        if self._state == "start":
            # The connection sent no initial response; the server asks for it.
            return _initial_response_on_request(self, challenge)
        if self._state == "server-first":
            if not challenge:
                # An empty challenge: the server did not take the initial response; repeat it.
                return self._client_first
            return self._guarded(self._client_final, challenge)
        if self._state == "server-final":
            return self._guarded(self._verify, challenge)
        raise SaslError(f"{self.name}: unexpected challenge after the exchange ended")

    def _guarded(self, handler: _ClientHandler, challenge: bytes) -> bytes:
        try:
            return handler(challenge)
        except _Malformed as exc:
            self._state = "failed"
            raise SaslError(f"{self.name}: {exc}") from None
        except SaslError:
            self._state = "failed"
            raise

    def _client_final(self, challenge: bytes) -> bytes:
        text = _decode(challenge)
        attributes = text.split(",")
        if attributes[0].startswith("m="):
            raise SaslError(f"{self.name}: the server requires an unsupported extension")
        self._check_server_error(attributes[0])
        if len(attributes) < 3:
            raise _Malformed("server-first message too short")
        nonce = _attribute(attributes[0], "r")
        _check_nonce(nonce)
        if not nonce.startswith(self._client_nonce) or len(nonce) == len(self._client_nonce):
            raise SaslError(f"{self.name}: the server nonce does not extend ours")
        salt = _b64decode(_attribute(attributes[1], "s"))  # never empty: "s=" is refused
        iterations_text = _attribute(attributes[2], "i")
        if not _ITERATIONS_RE.match(iterations_text):
            raise _Malformed("malformed iteration count")
        iterations = int(iterations_text)
        if not self.min_iterations <= iterations <= self.max_iterations:
            raise SaslError(
                f"{self.name}: iteration count {iterations} outside "
                f"[{self.min_iterations}, {self.max_iterations}]"
            )
        _check_extensions(attributes[3:])
        password = _require_password(self.credentials)
        client_key, stored_key, server_key = _derive_keys(
            self.algorithm, _salted_password(self.algorithm, password, salt, iterations)
        )
        binding_data = _channel_binding_input(
            self._header, self.context, bound=self.needs_channel_binding
        )
        without_proof = f"c={_b64encode(binding_data)},r={nonce}"
        auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        proof = _xor(client_key, _hmac(self.algorithm, stored_key, auth_message))
        self._server_signature = _hmac(self.algorithm, server_key, auth_message)
        self._state = "server-final"
        return f"{without_proof},p={_b64encode(proof)}".encode("ascii")

    def _verify(self, challenge: bytes) -> bytes:
        attributes = _decode(challenge).split(",")
        self._check_server_error(attributes[0])
        signature = _b64decode(_attribute(attributes[0], "v"))
        _check_extensions(attributes[1:])
        if not hmac.compare_digest(signature, self._server_signature):
            raise SaslError(f"{self.name}: wrong server signature (the server is not genuine)")
        self._verified = True
        self._state = "done"
        return b""

    def _check_server_error(self, first_attribute: str) -> None:
        # RFC 5802 §7: "e=" (server-error) may stand first in either server message.
        if first_attribute.startswith("e="):
            raise SaslError(f"{self.name}: the server reported {first_attribute[2:]!r}")


class ScramSha1Client(ScramClient):
    """SCRAM-SHA-1 (RFC 5802), client half."""

    name = "SCRAM-SHA-1"
    algorithm = "SHA-1"


class ScramSha1PlusClient(ScramClient):
    """SCRAM-SHA-1-PLUS (RFC 5802 §6), client half: needs channel binding data."""

    name = "SCRAM-SHA-1-PLUS"
    algorithm = "SHA-1"
    needs_channel_binding = True


class ScramSha256Client(ScramClient):
    """SCRAM-SHA-256 (RFC 7677), client half."""

    name = "SCRAM-SHA-256"
    algorithm = "SHA-256"


class ScramSha256PlusClient(ScramClient):
    """SCRAM-SHA-256-PLUS (RFC 7677), client half: needs channel binding data."""

    name = "SCRAM-SHA-256-PLUS"
    algorithm = "SHA-256"
    needs_channel_binding = True


for _client in (ScramSha1Client, ScramSha1PlusClient, ScramSha256Client, ScramSha256PlusClient):
    CLIENT_MECHANISMS[_client.name] = _client
