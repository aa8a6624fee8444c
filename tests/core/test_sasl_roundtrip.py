"""Every mechanism's client half against its server half, directly (no connection): success and
failure for each, with the answers an application would give; plus hypothesis fuzzing of both
halves with hostile input (a step or SaslError, never a crash)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sasl_helpers import BINDING, TOKEN_MECHANISMS, answer_query
from sasl_helpers import credentials as credentials_for

from esmtp_core import (
    CLIENT_MECHANISMS,
    SERVER_MECHANISMS,
    ChannelBinding,
    SaslContext,
    SaslError,
    ScramSecrets,
)
from esmtp_core._sasl import (
    AUTH_FAILED,
    AuthQuery,
    AuthSecretLookup,
    ClientMechanism,
    CredentialAnswer,
    SaslChallenge,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
    ServerMechanism,
    ServerStep,
)

PASSWORD_MECHANISMS = [
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS",
]


def test_every_registered_mechanism_is_covered() -> None:
    expected = set(PASSWORD_MECHANISMS + TOKEN_MECHANISMS)
    assert set(SERVER_MECHANISMS) == expected
    assert set(CLIENT_MECHANISMS) == expected
    for name in expected:
        assert SERVER_MECHANISMS[name].name == name
        assert CLIENT_MECHANISMS[name].name == name


def application(store_secrets: bool) -> Callable[[AuthQuery], CredentialAnswer]:
    """An application's answers: passwords checked, secrets looked up (as the password or as
    stored SCRAM secrets), tokens checked."""

    def answer(query: AuthQuery) -> CredentialAnswer:
        return answer_query(query, store_secrets=store_secrets, salt=b"fixed salt")

    return answer


def exchange(
    client: ClientMechanism,
    server: ServerMechanism,
    answer: Callable[[AuthQuery], CredentialAnswer],
    *,
    send_initial_response: bool = True,
) -> tuple[ServerStep | SaslError, int]:
    """Run the exchange through base64, as AUTH would; returns the outcome and the number of
    334 challenges. A client-side SaslError ends it (the connection would send "*")."""
    initial = client.initial_response() if send_initial_response else None
    step = server.start(None if initial is None else base64.b64decode(base64.b64encode(initial)))
    challenges = 0
    while True:
        if isinstance(step, SaslNeedsCredentials):
            step = server.resume(answer(step.query))
        elif isinstance(step, SaslChallenge):
            challenges += 1
            assert challenges < 10
            wire = base64.b64decode(base64.b64encode(step.data))
            try:
                response = client.respond(wire)
            except SaslError as exc:
                return exc, challenges
            step = server.respond(base64.b64decode(base64.b64encode(response)))
        else:
            return step, challenges


def context_for(name: str) -> SaslContext:
    return SaslContext(channel_binding=BINDING) if name.endswith("-PLUS") else SaslContext()


@pytest.mark.parametrize("store_secrets", [False, True])
@pytest.mark.parametrize("name", PASSWORD_MECHANISMS + TOKEN_MECHANISMS)
def test_success(name: str, store_secrets: bool) -> None:
    client = CLIENT_MECHANISMS[name](credentials_for(name), context_for(name))
    server = SERVER_MECHANISMS[name](context_for(name))
    assert SERVER_MECHANISMS[name].available(context_for(name))
    assert CLIENT_MECHANISMS[name].available(credentials_for(name), context_for(name))
    outcome, _ = exchange(client, server, application(store_secrets))
    assert outcome == SaslSuccess("alice", None)
    assert client.complete


@pytest.mark.parametrize("name", PASSWORD_MECHANISMS + TOKEN_MECHANISMS)
def test_success_without_initial_response(name: str) -> None:
    client = CLIENT_MECHANISMS[name](credentials_for(name), context_for(name))
    server = SERVER_MECHANISMS[name](context_for(name))
    outcome, _ = exchange(client, server, application(False), send_initial_response=False)
    assert outcome == SaslSuccess("alice", None)
    assert client.complete


@pytest.mark.parametrize("store_secrets", [False, True])
@pytest.mark.parametrize("name", PASSWORD_MECHANISMS + TOKEN_MECHANISMS)
def test_wrong_secret_and_unknown_user_fail_alike(name: str, store_secrets: bool) -> None:
    outcomes = []
    for credentials in (
        credentials_for(name, wrong=True),
        credentials_for(name, username="mallory"),
    ):
        client = CLIENT_MECHANISMS[name](credentials, context_for(name))
        server = SERVER_MECHANISMS[name](context_for(name))
        outcome, challenges = exchange(client, server, application(store_secrets))
        assert outcome == SaslFailure(AUTH_FAILED)
        assert not isinstance(outcome, SaslSuccess)
        outcomes.append((outcome, challenges))
    # Same reply, after the same number of challenges: nothing tells the two cases apart.
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("name", TOKEN_MECHANISMS)
def test_token_refusal_carries_the_error_to_the_client(name: str) -> None:
    client = CLIENT_MECHANISMS[name](credentials_for(name, wrong=True), SaslContext())
    outcome, challenges = exchange(
        client, SERVER_MECHANISMS[name](SaslContext()), application(False)
    )
    assert outcome == SaslFailure(AUTH_FAILED)
    assert challenges == 1
    assert isinstance(client.error, dict)  # type: ignore[attr-defined]
    assert client.error["status"] in ("401", "invalid_token")  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
def test_plus_binding_mismatch_fails(name: str) -> None:
    client = CLIENT_MECHANISMS[name](
        credentials_for(name), SaslContext(channel_binding=ChannelBinding("tls-exporter", b"A"))
    )
    server = SERVER_MECHANISMS[name](
        SaslContext(channel_binding=ChannelBinding("tls-exporter", b"B"))
    )
    outcome, _ = exchange(client, server, application(False))
    assert outcome == SaslFailure(AUTH_FAILED)
    assert not client.complete


@pytest.mark.parametrize("name", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_impostor_server_is_detected_by_the_client(name: str) -> None:
    # The server does not know alice's password but accepts whatever proof it gets; the client
    # must refuse its server signature.
    class Impostor(SERVER_MECHANISMS[name]):  # type: ignore[misc,valid-type]
        def _client_final(self, message: bytes) -> ServerStep:
            self._known_user = True
            self._secrets = ScramSecrets(
                algorithm=self._secrets.algorithm,
                salt=self._secrets.salt,
                iterations=self._secrets.iterations,
                stored_key=self._secrets.stored_key,
                server_key=b"\x00" * len(self._secrets.stored_key),
            )
            self._state = "server-final-sent"
            return SaslChallenge(b"v=" + base64.b64encode(b"\x00" * len(self._secrets.stored_key)))

    client = CLIENT_MECHANISMS[name](credentials_for(name), SaslContext())
    outcome, _ = exchange(client, Impostor(SaslContext()), lambda query: None)
    assert isinstance(outcome, SaslError)
    assert "signature" in str(outcome)
    assert not client.complete


# --- fuzzing --------------------------------------------------------------------------------------

ALL_NAMES = PASSWORD_MECHANISMS + TOKEN_MECHANISMS
answers = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=20),
)


def _valid_answer(query: AuthQuery, raw: object) -> CredentialAnswer:
    """Bend a drawn answer into the type the query takes (wrong types are LocalProtocolErrors,
    tested elsewhere)."""
    if isinstance(query, AuthSecretLookup):
        return raw if raw is None or isinstance(raw, str) else None
    return bool(raw)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(ALL_NAMES),
    initial=st.one_of(st.none(), st.binary(max_size=200)),
    responses=st.lists(st.binary(max_size=200), max_size=4),
    raw_answers=st.lists(answers, min_size=4, max_size=4),
)
def test_server_halves_survive_garbage(
    name: str, initial: bytes | None, responses: list[bytes], raw_answers: list[object]
) -> None:
    server = SERVER_MECHANISMS[name](context_for(name))
    step = server.start(initial)
    feed = iter(responses)
    answers_left = iter(raw_answers)
    while isinstance(step, SaslChallenge | SaslNeedsCredentials):
        if isinstance(step, SaslNeedsCredentials):
            step = server.resume(_valid_answer(step.query, next(answers_left, None)))
            continue
        response = next(feed, None)
        if response is None:
            return
        step = server.respond(response)
    assert isinstance(step, SaslSuccess | SaslFailure)
    if isinstance(step, SaslFailure):
        assert step.reply.code in (501, 535)


def _scram_like(draw: st.DrawFn) -> bytes:
    """Server-first-shaped messages: correct prefix, hostile attributes."""
    parts = [
        "r=" + draw(st.sampled_from(["cnonce", "cnonceSRV", "other"])) + draw(st.text(max_size=5)),
        "s=" + draw(st.sampled_from(["c2FsdA==", "", "!!", "c2FsdA"])),
        "i=" + draw(st.sampled_from(["4096", "0", "-1", "99999999999", "x", ""])),
    ]
    parts += draw(st.lists(st.text(max_size=6), max_size=2))
    return ",".join(draw(st.permutations(parts))).encode("utf-8", "surrogatepass")


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(ALL_NAMES),
    challenges=st.lists(
        st.one_of(st.binary(max_size=200), st.composite(_scram_like)()), max_size=4
    ),
)
def test_client_halves_raise_only_sasl_error(name: str, challenges: list[bytes]) -> None:
    context = SaslContext(nonce="cnonce", channel_binding=BINDING if "PLUS" in name else None)
    client = CLIENT_MECHANISMS[name](credentials_for(name), context)
    client.initial_response()
    try:
        for challenge in challenges:
            assert isinstance(client.respond(challenge), bytes)
    except SaslError:
        assert not (client.complete and name.startswith("SCRAM"))
