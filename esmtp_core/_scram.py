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

This module holds what both halves share (the message grammar, the key derivation of RFC 5802 §3,
:func:`scram_secrets_from_password`); the server half is in ``_scram_server``, the client half in
``_scram_client``, and every public SCRAM name can be imported from here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from ._errors import LocalProtocolError
from ._sasl import SaslContext, ScramSecrets
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
# Canonical base64 only: the alphabet, correct padding, nothing else (RFC 4648 §4).
_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


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


# The two halves live in their own modules (they share only the helpers above) and register
# themselves; importing them here keeps every SCRAM name importable from this module.
from ._scram_client import (  # noqa: E402
    ScramClient,
    ScramSha1Client,
    ScramSha1PlusClient,
    ScramSha256Client,
    ScramSha256PlusClient,
)
from ._scram_server import (  # noqa: E402
    ScramServer,
    ScramSha1PlusServer,
    ScramSha1Server,
    ScramSha256PlusServer,
    ScramSha256Server,
)
