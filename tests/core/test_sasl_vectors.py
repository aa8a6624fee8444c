"""The RFC example exchanges of ../shared/vectors/sasl, reproduced byte for byte.

Both halves are checked separately: the client half must produce the RFC's messages from the
RFC's nonce, and the server half must produce the RFC's challenges from the RFC's nonce, salt and
iteration count (given as stored :class:`ScramSecrets`).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from esmtp_core import ClientCredentials, SaslContext, scram_secrets_from_password
from esmtp_core._cram_md5 import CramMd5Client, CramMd5Server
from esmtp_core._oauth import XOAuth2Client, XOAuth2Server
from esmtp_core._sasl import (
    AuthPasswordCheck,
    AuthSecretLookup,
    AuthTokenCheck,
    PlainClient,
    PlainServer,
    SaslChallenge,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
)
from esmtp_core._scram import (
    ScramClient,
    ScramServer,
    ScramSha1Client,
    ScramSha1Server,
    ScramSha256Client,
    ScramSha256Server,
)

# ../shared/vectors next to the work tree (read-only, see its SOURCES.md).
VECTORS_PATH = Path(__file__).resolve().parents[3] / "shared/vectors/sasl/sasl_vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

SCRAM_CASES = [
    ("scram_sha_1_rfc5802_s5", "SHA-1", ScramSha1Client, ScramSha1Server),
    ("scram_sha_256_rfc7677_s3", "SHA-256", ScramSha256Client, ScramSha256Server),
]


def _secrets_for(vector: dict[str, Any], algorithm: str) -> Any:
    return scram_secrets_from_password(
        vector["password"],
        algorithm=algorithm,
        salt=base64.b64decode(vector["salt_b64"]),
        iterations=vector["iterations"],
    )


@pytest.mark.parametrize(("key", "algorithm", "client_cls", "server_cls"), SCRAM_CASES)
def test_scram_client_half_reproduces_rfc(
    key: str, algorithm: str, client_cls: type[ScramClient], server_cls: type[ScramServer]
) -> None:
    vector = VECTORS[key]
    client = client_cls(
        ClientCredentials(username=vector["username"], password=vector["password"]),
        SaslContext(nonce=vector["client_nonce"]),
    )
    assert client.initial_response() == vector["client_first"].encode()
    assert client.respond(vector["server_first"].encode()) == vector["client_final"].encode()
    assert not client.complete
    assert client.respond(vector["server_final"].encode()) == b""
    assert client.complete


@pytest.mark.parametrize(
    "initial_response", [True, False], ids=["initial-response", "empty-challenge-first"]
)
@pytest.mark.parametrize(("key", "algorithm", "client_cls", "server_cls"), SCRAM_CASES)
def test_scram_server_half_reproduces_rfc(
    key: str,
    algorithm: str,
    client_cls: type[ScramClient],
    server_cls: type[ScramServer],
    initial_response: bool,
) -> None:
    vector = VECTORS[key]
    server = server_cls(SaslContext(nonce=vector["server_nonce_suffix"]))
    client_first = vector["client_first"].encode()
    if initial_response:
        step = server.start(client_first)
    else:  # RFC 4954 §4: AUTH without an initial response gets an empty 334 first
        assert server.start(None) == SaslChallenge(b"")
        step = server.respond(client_first)
    assert step == SaslNeedsCredentials(
        AuthSecretLookup(mechanism=server_cls.name, username="user", authzid=None)
    )
    assert server.resume(_secrets_for(vector, algorithm)) == SaslChallenge(
        vector["server_first"].encode()
    )
    assert server.respond(vector["client_final"].encode()) == SaslChallenge(
        vector["server_final"].encode()
    )
    assert server.respond(b"") == SaslSuccess("user", None)


@pytest.mark.parametrize(("key", "algorithm", "client_cls", "server_cls"), SCRAM_CASES)
def test_scram_stored_keys_match_rfc_intermediates(
    key: str, algorithm: str, client_cls: type[ScramClient], server_cls: type[ScramServer]
) -> None:
    vector = VECTORS[key]
    secrets = _secrets_for(vector, algorithm)
    assert secrets.stored_key.hex() == vector["derived_intermediates"]["stored_key_hex"]
    assert secrets.server_key.hex() == vector["derived_intermediates"]["server_key_hex"]
    assert secrets.iterations == 4096
    assert secrets.algorithm == algorithm


def test_cram_md5_rfc2195_both_halves() -> None:
    vector = VECTORS["cram_md5_rfc2195"]
    challenge = vector["challenge"].encode()
    # "<1896.697170952@postoffice.reston.mci.net>": nonce and hostname fixed by the context.
    server = CramMd5Server(
        SaslContext(nonce="1896.697170952", hostname="postoffice.reston.mci.net")
    )
    step = server.start(None)
    assert step == SaslChallenge(challenge)
    assert base64.b64encode(challenge).decode() == vector["challenge_b64"]

    client = CramMd5Client(
        ClientCredentials(username=vector["username"], password=vector["secret"]), SaslContext()
    )
    assert client.initial_response() is None
    response = client.respond(challenge)
    assert response == vector["response"].encode()
    assert base64.b64encode(response).decode() == vector["response_b64"]

    assert server.respond(response) == SaslNeedsCredentials(
        AuthSecretLookup(mechanism="CRAM-MD5", username="tim")
    )
    assert server.resume(vector["secret"]) == SaslSuccess("tim")


def test_cram_md5_rfc4954_example_parses() -> None:
    vector = VECTORS["smtp_auth_rfc4954_s4_1"]["cram_md5"]
    server = CramMd5Server(
        SaslContext(nonce="4192942341.12828472", hostname="sourcefour.andrew.cmu.edu")
    )
    step = server.start(None)
    assert isinstance(step, SaslChallenge)
    assert base64.b64encode(step.data).decode() == vector["server_challenge_b64"]
    response = base64.b64decode(vector["client_response_b64"])
    assert response.decode() == vector["client_response_decoded"]
    assert server.respond(response) == SaslNeedsCredentials(
        AuthSecretLookup(mechanism="CRAM-MD5", username="rjs3")
    )
    # The RFC does not give the secret: any other password is a plain 535.
    assert server.resume("not the secret") == SaslFailure()


@pytest.mark.parametrize("case", VECTORS["plain_rfc4616_s4"]["cases"])
def test_plain_rfc4616_both_halves(case: dict[str, str]) -> None:
    client = PlainClient(
        ClientCredentials(
            username=case["authcid"], password=case["passwd"], authzid=case["authzid"] or None
        ),
        SaslContext(),
    )
    message = client.initial_response()
    assert message.hex() == case["message_hex"]
    assert base64.b64encode(message).decode() == case["message_b64"]

    server = PlainServer(SaslContext())
    step = server.start(base64.b64decode(case["message_b64"]))
    assert step == SaslNeedsCredentials(
        AuthPasswordCheck(
            mechanism="PLAIN",
            username=case["authcid"],
            password=case["passwd"],
            authzid=case["authzid"] or None,
        )
    )
    assert server.resume(True) == SaslSuccess(case["authcid"], case["authzid"] or None)


def test_plain_rfc4954_example() -> None:
    vector = VECTORS["smtp_auth_rfc4954_s4_1"]["plain_initial_response"]
    encoded = vector["line"].split()[-1]
    decoded = base64.b64decode(encoded)
    assert decoded.hex() == vector["decoded_hex"]
    server = PlainServer(SaslContext())
    step = server.start(decoded)
    assert isinstance(step, SaslNeedsCredentials)
    assert isinstance(step.query, AuthPasswordCheck)
    assert (step.query.authzid, step.query.username, step.query.password) == (
        "test",
        "test",
        "1234",
    )
    # Without an initial response: "334 " with an empty challenge, then the same message.
    server = PlainServer(SaslContext())
    assert server.start(None) == SaslChallenge(b"")
    no_ir = VECTORS["smtp_auth_rfc4954_s4_1"]["plain_no_initial_response"]
    assert isinstance(
        server.respond(base64.b64decode(no_ir["client_response"])), SaslNeedsCredentials
    )


def test_xoauth2_google_initial_response_both_halves() -> None:
    vector = VECTORS["xoauth2_google"]
    raw = bytes.fromhex(vector["initial_response_raw_hex"])
    client = XOAuth2Client(
        ClientCredentials(
            username="someuser@example.com", token="ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        ),
        SaslContext(),
    )
    assert client.initial_response() == raw
    assert base64.b64encode(raw).decode() == vector["initial_response_b64"]

    server = XOAuth2Server(SaslContext())
    assert server.start(raw) == SaslNeedsCredentials(
        AuthTokenCheck(
            mechanism="XOAUTH2",
            username="someuser@example.com",
            token="ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        )
    )


def test_xoauth2_client_understands_google_error_challenge() -> None:
    vector = VECTORS["xoauth2_google"]
    client = XOAuth2Client(
        ClientCredentials(username="someuser@example.com", token="t"), SaslContext()
    )
    client.initial_response()
    challenge = base64.b64decode(vector["error_challenge_b64"])
    assert challenge.decode() == vector["error_challenge_decoded"]
    # Google's clients answer the error challenge with an empty response; the server then 535s.
    assert client.respond(challenge) == b""
    assert client.error == {
        "status": "401",
        "schemes": "bearer mac",
        "scope": "https://mail.google.com/",
    }
