"""SCRAM (RFC 5802): SCRAM-SHA-1, SCRAM-SHA-256 (RFC 7677) and their -PLUS channel-binding variants.

The exchange, as carried by SMTP AUTH (RFC 4954)::

    C: AUTH SCRAM-SHA-256 <client-first-message>          n,,n=user,r=<client nonce>
    S: 334 <server-first-message>                         r=<nonce>,s=<salt>,i=<iterations>
    C: <client-final-message>                             c=<binding>,r=<nonce>,p=<proof>
    S: 334 <server-final-message>                         v=<server signature>
    C: (empty line)
    S: 235 2.7.0

The server-final message is "additional data with success" (RFC 4422 §5), which SMTP can only send
as one more ``334`` challenge; the client answers it with an empty line.

Decisions where the RFCs leave room:

* **Storage.** The server asks the application with an :class:`AuthSecretLookup` and accepts a
  :class:`ScramSecrets` (salt, iterations, StoredKey, ServerKey: the password is never needed) or
  the plain password. With a password, the salt is derived from a per-process random key and the
  user name, and the count is :attr:`SaslContext.scram_iterations` (set from
  ``ServerConfig.scram_iterations`` by the server connection), so the same user sees the same salt
  on every attempt, exactly like a stored record.
* **Unknown users.** ``None`` (or ``False``) still yields a plausible server-first message whose
  salt is derived the same way, so probing clients cannot tell unknown users from wrong passwords
  (RFC 5802 §9). The fake salt is 16 octets and the count ``scram_iterations``: store secrets with
  :func:`scram_secrets_from_password` defaults to keep them alike. The per-process key means that
  two server processes show different fake salts for the same unknown user.
* **Failure.** A wrong proof, a nonce or channel-binding mismatch or a downgrade is
  ``535 5.7.8``; unparsable messages are ``501 5.5.2``. SMTP cannot carry the RFC 5802 ``e=``
  attribute with a failure, so the server never sends one (the client still understands it).
* **Iteration counts (client).** The client refuses counts below 4096 (the minimum RFC 5802 §5.1
  and RFC 7677 §4 tell servers to announce) and above 1,000,000 (a hostile server could otherwise
  make the client burn CPU); adjust :attr:`ScramClient.min_iterations` /
  :attr:`ScramClient.max_iterations` in a subclass if a deployment needs it.
* **SASLprep.** User names and passwords are prepared as query strings (RFC 5802 §5.1). A
  password that SASLprep rejects is used as it is (UTF-8), as PostgreSQL does, on both sides; a
  user name that SASLprep rejects fails the exchange.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from typing import ClassVar

from ._errors import LocalProtocolError
from ._gs2 import Gs2Header, Gs2SyntaxError, escape_saslname, parse_gs2_header, unescape_saslname
from ._reply import Reply
from ._sasl import (
    AUTH_FAILED,
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
    _initial_response_on_request,
    _require_password,
)
from ._saslprep import SaslprepError, saslprep

__all__ = [
    "DEFAULT_ITERATIONS",
    "ScramClient",
    "ScramServer",
    "ScramSha1Client",
    "ScramSha1PlusClient",
    "ScramSha1PlusServer",
    "ScramSha1Server",
    "ScramSha256Client",
    "ScramSha256PlusClient",
    "ScramSha256PlusServer",
    "ScramSha256Server",
    "scram_secrets_from_password",
]

#: Iteration count of :func:`scram_secrets_from_password` (RFC 5802 §5.1, RFC 7677 §4 minimum).
DEFAULT_ITERATIONS = 4096

#: algorithm name (as in :class:`ScramSecrets`) -> (hashlib name, digest size in octets)
_ALGORITHMS: dict[str, tuple[str, int]] = {"SHA-1": ("sha1", 20), "SHA-256": ("sha256", 32)}

# RFC 5802 §7: printable = %x21-2B / %x2D-7E  ;; printable ASCII except ","
_NONCE_RE = re.compile(r"[\x21-\x2b\x2d-\x7e]+\Z")
# RFC 5802 §7: attr-val = ALPHA "=" value; value = 1*value-char (any UTF-8 except NUL and ",")
_EXTENSION_RE = re.compile(r"[A-Za-z]=[^\x00,]+\Z")
_ITERATIONS_RE = re.compile(r"[1-9][0-9]{0,9}\Z")
# Canonical base64 only: the alphabet, correct padding, nothing else (RFC 4648 §4).
_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")

# Key for the salts the server derives itself (plain-password answers and unknown users). Random per
# process: never stored, never sent; it only has to make salts unpredictable and stable.
_PROCESS_KEY = secrets.token_bytes(32)

_Handler = Callable[[bytes], ServerStep]
_ClientHandler = Callable[[bytes], bytes]


class _Malformed(Exception):
    """Internal: a message does not follow the grammar (-> 501 on the server, SaslError on the
    client)."""


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _BASE64_RE.match(text):
        raise _Malformed("malformed base64 in SCRAM attribute")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the regex already rules this out
        raise _Malformed("malformed base64 in SCRAM attribute") from exc


def _decode(message: bytes) -> str:
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed("SCRAM message is not UTF-8") from exc


def _attribute(text: str, name: str) -> str:
    """The value of ``name=value``; raise :class:`_Malformed` when the attribute is another one
    or empty."""
    if not text.startswith(name + "=") or len(text) == 2:
        raise _Malformed(f"expected SCRAM attribute {name!r}")
    return text[2:]


def _check_extensions(attributes: list[str]) -> None:
    # RFC 5802 §5.1: unknown optional extensions are ignored, but they must still be attributes.
    for attribute in attributes:
        if not _EXTENSION_RE.match(attribute):
            raise _Malformed("malformed SCRAM extension attribute")


def _check_nonce(nonce: str) -> None:
    if not _NONCE_RE.match(nonce):
        raise _Malformed("malformed SCRAM nonce")


def _algorithm(algorithm: str) -> tuple[str, int]:
    try:
        return _ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown SCRAM algorithm {algorithm!r}") from None


def _prepare_password(password: str) -> bytes:
    """``Normalize(password)`` of RFC 5802 §2.2, falling back to the raw text (see module doc)."""
    try:
        prepared = saslprep(password)
    except SaslprepError:
        prepared = password
    return (prepared or password).encode("utf-8")


def _salted_password(algorithm: str, password: str, salt: bytes, iterations: int) -> bytes:
    # RFC 5802 §2.2: Hi() is PBKDF2 (RFC 2898) with HMAC as the PRF and dkLen = the hash size.
    hash_name, _ = _algorithm(algorithm)
    return hashlib.pbkdf2_hmac(hash_name, _prepare_password(password), salt, iterations)


def _hmac(algorithm: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, _algorithm(algorithm)[0]).digest()


def _hash(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(_algorithm(algorithm)[0], data).digest()


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _derive_keys(algorithm: str, salted_password: bytes) -> tuple[bytes, bytes, bytes]:
    """ClientKey, StoredKey and ServerKey from SaltedPassword (RFC 5802 §3)."""
    client_key = _hmac(algorithm, salted_password, b"Client Key")
    stored_key = _hash(algorithm, client_key)
    server_key = _hmac(algorithm, salted_password, b"Server Key")
    return client_key, stored_key, server_key


def _new_nonce(context: SaslContext) -> str:
    """This side's nonce part, checked against RFC 5802 §7's ``printable`` (no ``,``)."""
    nonce = context.make_nonce()
    if not _NONCE_RE.match(nonce):
        raise LocalProtocolError("SaslContext.nonce must be printable ASCII without ','")
    return nonce


def _channel_binding_input(gs2_header: str, context: SaslContext, *, bound: bool) -> bytes:
    """What the ``c=`` attribute carries (RFC 5802 §7 ``cbind-input``): the GS2 header, followed
    by the channel binding data when the header's flag is ``p``."""
    data = gs2_header.encode("utf-8")
    if bound:
        assert context.channel_binding is not None
        data += context.channel_binding.data
    return data


def scram_secrets_from_password(
    password: str,
    *,
    algorithm: str = "SHA-256",
    salt: bytes | None = None,
    iterations: int = DEFAULT_ITERATIONS,
) -> ScramSecrets:
    """Derive what a server stores for SCRAM instead of the password (RFC 5802 §3)::

        SaltedPassword  := Hi(Normalize(password), salt, i)
        StoredKey       := H(HMAC(SaltedPassword, "Client Key"))
        ServerKey       := HMAC(SaltedPassword, "Server Key")

    ``algorithm`` is ``"SHA-1"`` or ``"SHA-256"``; ``salt`` defaults to 16 random octets. Keep
    ``iterations`` between 4096 and 1,000,000: clients (this library's included) refuse others.
    """
    _algorithm(algorithm)
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if salt is None:
        salt = secrets.token_bytes(16)
    if not salt:
        raise ValueError("the salt must not be empty")
    _, stored_key, server_key = _derive_keys(
        algorithm, _salted_password(algorithm, password, salt, iterations)
    )
    return ScramSecrets(
        algorithm=algorithm,
        salt=salt,
        iterations=iterations,
        stored_key=stored_key,
        server_key=server_key,
    )


def _plus_advertised(context: SaslContext, *, unknown: bool) -> bool:
    """Whether the server advertised a ``-PLUS`` mechanism (see
    :attr:`SaslContext.advertised_mechanisms`; ``unknown`` when the context does not say); only
    meaningful with channel binding data."""
    if context.channel_binding is None:
        return False
    if context.advertised_mechanisms is None:
        return unknown
    return any(name.upper().endswith("-PLUS") for name in context.advertised_mechanisms)


def _derived_salt(algorithm: str, username: str) -> bytes:
    message = b"esmtp-core scram salt\0" + algorithm.encode() + b"\0" + username.encode("utf-8")
    return hmac.new(_PROCESS_KEY, message, "sha256").digest()[:16]


# --- server half ---------------------------------------------------------------------------------


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


# --- client half ---------------------------------------------------------------------------------


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


for _server in (ScramSha1Server, ScramSha1PlusServer, ScramSha256Server, ScramSha256PlusServer):
    SERVER_MECHANISMS[_server.name] = _server
for _client in (ScramSha1Client, ScramSha1PlusClient, ScramSha256Client, ScramSha256PlusClient):
    CLIENT_MECHANISMS[_client.name] = _client
