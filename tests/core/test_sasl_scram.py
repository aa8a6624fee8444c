"""SCRAM (RFC 5802, RFC 7677): every failure path of both halves, channel binding, the GS2 flags,
storage without the password and the unknown-user disguise."""

from __future__ import annotations

import base64

import pytest

from esmtp_core import (
    SERVER_MECHANISMS,
    ChannelBinding,
    ClientCredentials,
    LocalProtocolError,
    SaslContext,
    SaslError,
    ScramSecrets,
    scram_secrets_from_password,
)
from esmtp_core._sasl import (
    AUTH_FAILED,
    MALFORMED,
    AuthSecretLookup,
    SaslChallenge,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
)
from esmtp_core._scram import (
    ScramClient,
    ScramServer,
    ScramSha1Client,
    ScramSha1PlusClient,
    ScramSha1Server,
    ScramSha256Client,
    ScramSha256PlusClient,
    ScramSha256PlusServer,
    ScramSha256Server,
)

# RFC 7677 §3 example values.
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SECRETS = scram_secrets_from_password("pencil", algorithm="SHA-256", salt=SALT, iterations=4096)
FULL_NONCE = CLIENT_NONCE + SERVER_NONCE
EXPORTER = ChannelBinding("tls-exporter", b"\x01" * 32)


def server_at_client_final(context: SaslContext | None = None) -> ScramSha256Server:
    server = ScramSha256Server(context or SaslContext(nonce=SERVER_NONCE))
    assert isinstance(server.start(CLIENT_FIRST), SaslNeedsCredentials)
    assert server.resume(SECRETS) == SaslChallenge(SERVER_FIRST)
    return server


def client_at_server_first(**context: object) -> ScramSha256Client:
    client = ScramSha256Client(
        ClientCredentials(username="user", password="pencil"),
        SaslContext(nonce=CLIENT_NONCE, **context),  # type: ignore[arg-type]
    )
    assert client.initial_response() == CLIENT_FIRST
    return client


def run(
    client: ScramClient, server: ScramServer, answer: object
) -> SaslSuccess | SaslFailure | SaslError:
    """Drive both halves directly; the client's SaslError is returned, not raised."""
    step = server.start(client.initial_response())
    while True:
        if isinstance(step, SaslNeedsCredentials):
            step = server.resume(answer)  # type: ignore[arg-type]
        elif isinstance(step, SaslChallenge):
            try:
                response = client.respond(step.data)
            except SaslError as exc:
                return exc
            step = server.respond(response)
        else:
            return step


# --- server half: the client-first message ------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"n=user,r=abc",  # no GS2 header
        b"x,,n=user,r=abc",  # unknown channel binding flag
        b"p=,,n=user,r=abc",  # empty cb-name
        b"p=tls exporter,,n=user,r=abc",  # bad cb-name characters
        b"n,b=other,n=user,r=abc",  # not an authzid
        b"n,a=,n=user,r=abc",  # empty authzid
        b"n,a=x=2Xy,n=user,r=abc",  # bad saslname escape
        b"n,,n=us=er,r=abc",  # bare "=" in the user name
        b"n,,n=,r=abc",  # empty user name
        b"n,,u=user,r=abc",  # wrong attribute
        b"n,,n=user",  # no nonce
        b"n,,n=user,r=",  # empty nonce
        b"n,,n=user,r=ab\x7fc",  # non-printable nonce
        b"n,,n=user,r=abc,bogus",  # extension that is not an attribute
        b"n,,r=abc,n=user",  # wrong order
        b"n,,m=ext,n=user,r=abc",  # reserved mandatory extension (RFC 5802 §5.1)
        b"n,,n=us\x00er,r=abc",  # NUL
        b"n,,n=\xff,r=abc",  # not UTF-8
    ],
)
def test_malformed_client_first_is_501(message: bytes) -> None:
    assert ScramSha256Server(SaslContext()).start(message) == SaslFailure(MALFORMED)


def test_malformed_client_first_without_initial_response() -> None:
    server = ScramSha256Server(SaslContext())
    assert server.start(None) == SaslChallenge(b"")
    assert server.respond(b"garbage") == SaslFailure(MALFORMED)


def test_unknown_extension_attribute_is_ignored() -> None:
    step = ScramSha256Server(SaslContext()).start(b"n,,n=user,r=abc,x=future")
    assert isinstance(step, SaslNeedsCredentials)


def test_username_and_authzid_unescaped_and_prepared() -> None:
    step = ScramSha256Server(SaslContext()).start(b"n,a=boss=2Cthe=3Done,n=I\xc2\xadX=2C,r=abc")
    assert step == SaslNeedsCredentials(
        AuthSecretLookup(mechanism="SCRAM-SHA-256", username="IX,", authzid="boss,the=one")
    )


@pytest.mark.parametrize("username", [b"a\x07b", b"\xc2\xad"])  # prohibited; prepares to ""
def test_username_failing_saslprep_is_535(username: bytes) -> None:
    assert ScramSha256Server(SaslContext()).start(b"n,,n=" + username + b",r=abc") == SaslFailure()


def test_very_long_username_is_handled() -> None:
    step = ScramSha256Server(SaslContext()).start(b"n,,n=" + b"u" * 9000 + b",r=abc")
    assert isinstance(step, SaslNeedsCredentials)
    assert step.query.username == "u" * 9000


# --- server half: GS2 channel-binding flags -----------------------------------------------------


def test_non_plus_refuses_p_flag() -> None:
    context = SaslContext(channel_binding=EXPORTER)
    assert ScramSha256Server(context).start(b"p=tls-exporter,,n=user,r=abc") == SaslFailure()


def test_y_flag_is_a_downgrade_when_plus_was_offered() -> None:
    context = SaslContext(channel_binding=EXPORTER)
    assert ScramSha256Server(context).start(b"y,,n=user,r=abc") == SaslFailure(AUTH_FAILED)
    advertised = SaslContext(
        channel_binding=EXPORTER, advertised_mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS")
    )
    assert ScramSha256Server(advertised).start(b"y,,n=user,r=abc") == SaslFailure()


def test_y_flag_is_fine_when_no_plus_was_offered() -> None:
    assert isinstance(
        ScramSha256Server(SaslContext()).start(b"y,,n=user,r=abc"), SaslNeedsCredentials
    )
    # Binding data exists but the server did not advertise any -PLUS name.
    context = SaslContext(channel_binding=EXPORTER, advertised_mechanisms=("SCRAM-SHA-256",))
    assert isinstance(ScramSha256Server(context).start(b"y,,n=user,r=abc"), SaslNeedsCredentials)


@pytest.mark.parametrize(
    "message",
    [
        b"n,,n=user,r=abc",  # a -PLUS mechanism without binding
        b"y,,n=user,r=abc",
        b"p=tls-server-end-point,,n=user,r=abc",  # a type this session does not have
    ],
)
def test_plus_needs_the_sessions_binding_type(message: bytes) -> None:
    server = ScramSha256PlusServer(SaslContext(channel_binding=EXPORTER))
    assert server.start(message) == SaslFailure()


def test_plus_only_available_with_binding() -> None:
    assert not ScramSha256PlusServer.available(SaslContext())
    assert ScramSha256PlusServer.available(SaslContext(channel_binding=EXPORTER))
    assert ScramSha256Server.available(SaslContext())
    credentials = ClientCredentials(username="user", password="pencil")
    assert not ScramSha256PlusClient.available(credentials, SaslContext())
    assert ScramSha256PlusClient.available(credentials, SaslContext(channel_binding=EXPORTER))
    assert not ScramSha256Client.available(
        ClientCredentials(username="u", token="t"), SaslContext()
    )


# --- server half: the client-final message ------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"c=biws",
        b"c=biws,r=" + FULL_NONCE.encode(),  # no proof
        b"r=" + FULL_NONCE.encode() + b",c=biws,p=AAAA",  # wrong order
        b"c=biws,r=" + FULL_NONCE.encode() + b",p=not*base64",
        b"c=bi=s,r=" + FULL_NONCE.encode() + b",p=AAAA",
        b"c=biws,r=" + FULL_NONCE.encode() + b",p=AAAA",  # proof of the wrong length
        b"c=biws,r=" + FULL_NONCE.encode() + b",junk,p=" + CLIENT_FINAL.split(b"p=")[1],
        b"c=biws,r=" + FULL_NONCE.encode() + b",p=",
        b"\xff\xfe",
    ],
)
def test_malformed_client_final_is_501(message: bytes) -> None:
    assert server_at_client_final().respond(message) == SaslFailure(MALFORMED)


def test_wrong_proof_is_535() -> None:
    proof = bytearray(base64.b64decode(CLIENT_FINAL.split(b"p=")[1]))
    proof[0] ^= 1
    message = CLIENT_FINAL.split(b"p=")[0] + b"p=" + base64.b64encode(bytes(proof))
    assert server_at_client_final().respond(message) == SaslFailure(AUTH_FAILED)


def test_nonce_mismatch_is_535() -> None:
    message = CLIENT_FINAL.replace(b"k0,", b"k1,")
    assert server_at_client_final().respond(message) == SaslFailure(AUTH_FAILED)


def test_channel_binding_attribute_mismatch_is_535() -> None:
    # "eSws" is base64("y,,"): the header the client claims now differs from the one it sent.
    message = CLIENT_FINAL.replace(b"c=biws", b"c=eSws")
    assert server_at_client_final().respond(message) == SaslFailure(AUTH_FAILED)


def test_extension_in_client_final_is_part_of_the_auth_message() -> None:
    # Inserting an extension changes AuthMessage, so the RFC's proof no longer matches.
    message = CLIENT_FINAL.replace(b",p=", b",x=1,p=")
    assert server_at_client_final().respond(message) == SaslFailure(AUTH_FAILED)


def test_acknowledgement_of_server_final_must_be_empty() -> None:
    server = server_at_client_final()
    assert server.respond(CLIENT_FINAL) == SaslChallenge(SERVER_FINAL)
    assert server.respond(b"v=whatever") == SaslFailure(MALFORMED)


def test_respond_out_of_order_is_a_local_error() -> None:
    server = ScramSha256Server(SaslContext())
    with pytest.raises(LocalProtocolError):
        server.respond(b"x")
    with pytest.raises(LocalProtocolError):
        server.resume("pencil")
    assert server.start(b"junk") == SaslFailure(MALFORMED)
    with pytest.raises(LocalProtocolError):
        server.respond(b"x")
    with pytest.raises(LocalProtocolError):
        server.start(None)


# --- server half: what the application answers --------------------------------------------------


def test_password_answer_authenticates() -> None:
    client = ScramSha256Client(ClientCredentials(username="user", password="pencil"), SaslContext())
    result = run(client, ScramSha256Server(SaslContext()), "pencil")
    assert result == SaslSuccess("user", None)
    assert client.complete


def test_password_answer_uses_context_iterations() -> None:
    server = ScramSha256Server(SaslContext(scram_iterations=5000))
    server.start(CLIENT_FIRST)
    step = server.resume("pencil")
    assert isinstance(step, SaslChallenge)
    assert step.data.endswith(b",i=5000")


def test_scram_iterations_must_be_positive() -> None:
    with pytest.raises(ValueError, match="scram_iterations"):
        SaslContext(scram_iterations=0)


@pytest.mark.parametrize("answer", [True, 42, b"pencil"])
def test_answer_of_the_wrong_type_is_a_local_error(answer: object) -> None:
    server = ScramSha256Server(SaslContext())
    server.start(CLIENT_FIRST)
    with pytest.raises(LocalProtocolError):
        server.resume(answer)  # type: ignore[arg-type]


def test_secrets_of_the_wrong_algorithm_are_a_local_error() -> None:
    server = ScramSha1Server(SaslContext())
    server.start(CLIENT_FIRST)
    with pytest.raises(LocalProtocolError, match="SHA-1"):
        server.resume(SECRETS)


def test_malformed_secrets_are_a_local_error() -> None:
    server = ScramSha256Server(SaslContext())
    server.start(CLIENT_FIRST)
    bad = ScramSecrets(
        algorithm="SHA-256", salt=SALT, iterations=4096, stored_key=b"short", server_key=b"x"
    )
    with pytest.raises(LocalProtocolError):
        server.resume(bad)


def _server_first_for(username: str, answer: object, nonce: str = "srv") -> bytes:
    server = ScramSha256Server(SaslContext(nonce=nonce))
    server.start(f"n,,n={username},r=cli".encode())
    step = server.resume(answer)  # type: ignore[arg-type]
    assert isinstance(step, SaslChallenge)
    return step.data


def test_unknown_user_gets_a_plausible_stable_server_first() -> None:
    first = _server_first_for("nobody", None)
    assert first == _server_first_for("nobody", None)  # the same salt on every attempt
    assert first == _server_first_for("nobody", False)
    assert first != _server_first_for("someone-else", None)
    nonce, salt, iterations = first.split(b",")
    assert nonce == b"r=clisrv"
    assert len(base64.b64decode(salt[2:])) == 16
    assert iterations == b"i=4096"


def test_unknown_user_and_password_user_look_alike() -> None:
    # A server answering with plain passwords derives the salt exactly as for unknown users, so the
    # server-first message of "alice" is the same whether she exists or not.
    assert _server_first_for("alice", "secret") == _server_first_for("alice", None)


def test_unknown_user_and_wrong_password_fail_identically() -> None:
    def attempt(answer: object) -> object:
        client = ScramSha256Client(
            ClientCredentials(username="bob", password="guess"), SaslContext()
        )
        return run(client, ScramSha256Server(SaslContext()), answer)

    unknown = attempt(None)
    wrong = attempt("right-password")
    stored = attempt(scram_secrets_from_password("right-password"))
    assert unknown == wrong == stored == SaslFailure(AUTH_FAILED)


def test_unknown_user_fails_even_with_a_valid_proof_for_the_fake_record() -> None:
    # Nobody can know the made-up StoredKey; swap in one we know, so that only the unknown-user
    # flag stands between a correct proof and success.
    client = ScramSha256Client(
        ClientCredentials(username="ghost", password="guess"), SaslContext(nonce="cli")
    )
    server = ScramSha256Server(SaslContext(nonce="srv"))
    server.start(client.initial_response())
    step = server.resume(None)
    assert isinstance(step, SaslChallenge)
    assert server._secrets is not None
    server._secrets = scram_secrets_from_password(
        "guess", salt=server._secrets.salt, iterations=server._secrets.iterations
    )
    assert server.respond(client.respond(step.data)) == SaslFailure(AUTH_FAILED)


# --- client half --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("challenge", "match"),
    [
        (b"r=somebody-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"r=" + CLIENT_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"r=" + FULL_NONCE.encode() + b",s=not*base64,i=4096", "base64"),
        (b"r=" + FULL_NONCE.encode() + b",s=,i=4096", "attribute"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+4096", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i= 4096", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4_096", "iteration"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==", "short"),
        (b"r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,junk", "extension"),
        (b"m=must,r=" + FULL_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension"),
        (b"e=other-error", "other-error"),
        (b"s=W22ZaJ0SNY7soEsUEjb6gQ==,r=" + FULL_NONCE.encode() + b",i=4096", "attribute"),
        (b"\xff", "UTF-8"),
    ],
)
def test_bad_server_first_raises(challenge: bytes, match: str) -> None:
    client = client_at_server_first()
    with pytest.raises(SaslError, match=match):
        client.respond(challenge)
    assert not client.complete
    with pytest.raises(SaslError):  # the exchange is over
        client.respond(SERVER_FIRST)


def test_wrong_server_signature_raises() -> None:
    client = client_at_server_first()
    assert client.respond(SERVER_FIRST) == CLIENT_FINAL
    with pytest.raises(SaslError, match="server signature"):
        client.respond(b"v=" + base64.b64encode(b"\x00" * 32))
    assert not client.complete


@pytest.mark.parametrize(
    ("challenge", "match"),
    [
        (b"e=invalid-proof", "invalid-proof"),
        (b"v=not*base64", "base64"),
        (b"x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "attribute"),
        (SERVER_FINAL + b",junk", "extension"),
    ],
)
def test_bad_server_final_raises(challenge: bytes, match: str) -> None:
    client = client_at_server_first()
    client.respond(SERVER_FIRST)
    with pytest.raises(SaslError, match=match):
        client.respond(challenge)
    assert not client.complete


def test_server_final_extension_is_ignored() -> None:
    client = client_at_server_first()
    client.respond(SERVER_FIRST)
    assert client.respond(SERVER_FINAL + b",x=later") == b""
    assert client.complete


def test_no_challenge_after_server_final() -> None:
    client = client_at_server_first()
    client.respond(SERVER_FIRST)
    client.respond(SERVER_FINAL)
    with pytest.raises(SaslError):
        client.respond(b"more")


def test_complete_is_false_until_the_signature_is_verified() -> None:
    # A server that says 235 right after the client-final message proved nothing.
    client = client_at_server_first()
    client.respond(SERVER_FIRST)
    assert not client.complete


def test_empty_challenge_repeats_client_first() -> None:
    client = client_at_server_first()
    assert client.respond(b"") == CLIENT_FIRST


def test_without_initial_response_client_first_follows_empty_challenge() -> None:
    client = ScramSha256Client(
        ClientCredentials(username="user", password="pencil"), SaslContext(nonce=CLIENT_NONCE)
    )
    assert client.respond(b"") == CLIENT_FIRST
    with pytest.raises(LocalProtocolError):
        client.initial_response()


def test_server_speaking_first_is_an_error() -> None:
    client = ScramSha256Client(ClientCredentials(username="user", password="pencil"), SaslContext())
    with pytest.raises(SaslError):
        client.respond(b"hello")


def test_client_needs_a_password() -> None:
    client = ScramSha256Client(ClientCredentials(username="user"), SaslContext())
    assert not ScramSha256Client.available(ClientCredentials(username="user"), SaslContext())
    with pytest.raises(SaslError, match="password"):
        client.initial_response()


@pytest.mark.parametrize("username", ["a\x07b", "\u00ad"])
def test_client_username_failing_saslprep_raises(username: str) -> None:
    client = ScramSha256Client(ClientCredentials(username=username, password="p"), SaslContext())
    with pytest.raises(SaslError):
        client.initial_response()


def test_bad_fixed_nonce_is_a_local_error() -> None:
    client = ScramSha256Client(
        ClientCredentials(username="user", password="p"), SaslContext(nonce="a,b")
    )
    with pytest.raises(LocalProtocolError):
        client.initial_response()
    server = ScramSha256Server(SaslContext(nonce="a b"))
    with pytest.raises(LocalProtocolError):
        server.start(CLIENT_FIRST)


def test_client_escapes_username_and_authzid() -> None:
    client = ScramSha256Client(
        ClientCredentials(username="a,b=c", password="p", authzid="x=y,z"),
        SaslContext(nonce="n0nce"),
    )
    assert client.initial_response() == b"n,a=x=3Dy=2Cz,n=a=2Cb=3Dc,r=n0nce"


@pytest.mark.parametrize(
    ("context", "header"),
    [
        (SaslContext(), b"n,,"),
        (SaslContext(channel_binding=EXPORTER), b"y,,"),
        (SaslContext(channel_binding=EXPORTER, advertised_mechanisms=("SCRAM-SHA-256",)), b"y,,"),
        (
            SaslContext(
                channel_binding=EXPORTER,
                advertised_mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"),
            ),
            b"n,,",
        ),
    ],
)
def test_client_gs2_flag(context: SaslContext, header: bytes) -> None:
    client = ScramSha256Client(ClientCredentials(username="u", password="p"), context)
    assert client.initial_response().startswith(header + b"n=u,r=")


def test_plus_client_binds() -> None:
    client = ScramSha256PlusClient(
        ClientCredentials(username="u", password="p"), SaslContext(channel_binding=EXPORTER)
    )
    assert client.initial_response().startswith(b"p=tls-exporter,,n=u,r=")


def test_plus_client_without_binding_raises() -> None:
    client = ScramSha256PlusClient(ClientCredentials(username="u", password="p"), SaslContext())
    with pytest.raises(SaslError, match="channel binding"):
        client.initial_response()


def test_client_refuses_iterations_outside_policy_subclass_can_widen() -> None:
    class Lenient(ScramSha256Client):
        min_iterations = 1

    secrets = scram_secrets_from_password("p", iterations=2)
    result = run(
        Lenient(ClientCredentials(username="u", password="p"), SaslContext()),
        ScramSha256Server(SaslContext()),
        secrets,
    )
    assert result == SaslSuccess("u", None)
    strict = run(
        ScramSha256Client(ClientCredentials(username="u", password="p"), SaslContext()),
        ScramSha256Server(SaslContext()),
        secrets,
    )
    assert isinstance(strict, SaslError)


# --- round trips with channel binding and identities --------------------------------------------


@pytest.mark.parametrize("client_cls", [ScramSha1PlusClient, ScramSha256PlusClient])
def test_plus_round_trip(client_cls: type[ScramClient]) -> None:
    server_type = SERVER_MECHANISMS[client_cls.name]
    for kind in ("tls-exporter", "tls-server-end-point"):
        binding = ChannelBinding(kind, b"binding-data-" + kind.encode())
        client = client_cls(
            ClientCredentials(username="user", password="pencil"),
            SaslContext(channel_binding=binding),
        )
        result = run(client, server_type(SaslContext(channel_binding=binding)), "pencil")
        assert result == SaslSuccess("user", None)
        assert client.complete


def test_plus_round_trip_with_different_binding_data_fails() -> None:
    # A man in the middle terminates TLS twice: the two sides see different exporter values.
    client = ScramSha256PlusClient(
        ClientCredentials(username="user", password="pencil"),
        SaslContext(channel_binding=ChannelBinding("tls-exporter", b"client view")),
    )
    server = ScramSha256PlusServer(
        SaslContext(channel_binding=ChannelBinding("tls-exporter", b"server view"))
    )
    assert run(client, server, "pencil") == SaslFailure(AUTH_FAILED)


def test_downgrade_round_trip_fails() -> None:
    # The attacker stripped SCRAM-SHA-256-PLUS from the EHLO reply: the client (which could bind)
    # falls back to SCRAM-SHA-256 and says "y"; the server, which offered -PLUS, refuses.
    client = ScramSha256Client(
        ClientCredentials(username="user", password="pencil"),
        SaslContext(channel_binding=EXPORTER, advertised_mechanisms=("SCRAM-SHA-256",)),
    )
    server = ScramSha256Server(
        SaslContext(
            channel_binding=EXPORTER,
            advertised_mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"),
        )
    )
    assert run(client, server, "pencil") == SaslFailure(AUTH_FAILED)


def test_round_trip_with_authzid_and_unicode() -> None:
    client = ScramSha1Client(
        ClientCredentials(username="j\u00fcrgen,=x", password="p\u00e4ss\u2168", authzid="boss"),
        SaslContext(),
    )
    stored = scram_secrets_from_password("p\u00e4ssIX", algorithm="SHA-1")  # SASLprep'd equal
    assert run(client, ScramSha1Server(SaslContext()), stored) == SaslSuccess(
        "j\u00fcrgen,=x", "boss"
    )


def test_password_failing_saslprep_is_used_raw_on_both_sides() -> None:
    client = ScramSha256Client(ClientCredentials(username="u", password="a\x07b"), SaslContext())
    assert run(client, ScramSha256Server(SaslContext()), "a\x07b") == SaslSuccess("u", None)


def test_secrets_helper_validates() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        scram_secrets_from_password("p", algorithm="MD5")
    with pytest.raises(ValueError, match="iterations"):
        scram_secrets_from_password("p", iterations=0)
    with pytest.raises(ValueError, match="salt"):
        scram_secrets_from_password("p", salt=b"")
    first, second = scram_secrets_from_password("p"), scram_secrets_from_password("p")
    assert first.salt != second.salt  # random salts by default
    assert len(first.salt) == 16
    assert first.iterations == 4096
