"""PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER: every failure path of both halves, and the
client's mechanism choice."""

from __future__ import annotations

import json

import pytest

from esmtp_core import (
    DEFAULT_CLIENT_PREFERENCE,
    ChannelBinding,
    ClientCredentials,
    LocalProtocolError,
    SaslContext,
    SaslError,
    scram_secrets_from_password,
    select_client_mechanism,
)
from esmtp_core._cram_md5 import (
    INITIAL_RESPONSE_NOT_ALLOWED,
    CramMd5Client,
    CramMd5Server,
    cram_md5_digest,
)
from esmtp_core._oauth import OAuthBearerClient, OAuthBearerServer, XOAuth2Client, XOAuth2Server
from esmtp_core._sasl import (
    AUTH_FAILED,
    MALFORMED,
    AuthPasswordCheck,
    AuthTokenCheck,
    LoginClient,
    LoginServer,
    PlainClient,
    PlainServer,
    SaslChallenge,
    SaslFailure,
    SaslNeedsCredentials,
    SaslSuccess,
)

# --- PLAIN (RFC 4616) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"user\x00pass",  # one NUL
        b"\x00user\x00pass\x00",  # three
        b"\x00\x00pass",  # empty authcid
        b"\x00user\x00",  # empty passwd
        b"\x00us\xffer\x00pass",  # not UTF-8
    ],
)
def test_plain_malformed(message: bytes) -> None:
    assert PlainServer(SaslContext()).start(message) == SaslFailure(MALFORMED)


def test_plain_rejected_password_is_535() -> None:
    server = PlainServer(SaslContext())
    step = server.start(b"\x00user\x00wrong")
    assert isinstance(step, SaslNeedsCredentials)
    assert "wrong" not in repr(step.query)  # passwords never reach a log line
    assert server.resume(False) == SaslFailure(AUTH_FAILED)


def test_plain_client_refuses_nul_and_empty() -> None:
    for credentials in (
        ClientCredentials(username="u", password="p\x00w"),
        ClientCredentials(username="u\x00", password="pw"),
        ClientCredentials(username="u", password="pw", authzid="a\x00"),
        ClientCredentials(username="", password="pw"),
        ClientCredentials(username="u", password=""),
        ClientCredentials(username="u"),
    ):
        with pytest.raises(SaslError):
            PlainClient(credentials, SaslContext()).initial_response()


def test_plain_client_answers_one_empty_challenge() -> None:
    client = PlainClient(ClientCredentials(username="u", password="p"), SaslContext())
    assert client.respond(b"") == b"\x00u\x00p"
    with pytest.raises(SaslError):
        client.respond(b"")
    with pytest.raises(SaslError):
        PlainClient(ClientCredentials(username="u", password="p"), SaslContext()).respond(b"?")


# --- LOGIN ---------------------------------------------------------------------------------------


def test_login_exchange() -> None:
    server = LoginServer(SaslContext())
    assert server.start(None) == SaslChallenge(b"Username:")
    assert server.respond(b"user") == SaslChallenge(b"Password:")
    step = server.respond(b"pass word")
    assert step == SaslNeedsCredentials(
        AuthPasswordCheck(mechanism="LOGIN", username="user", password="pass word")
    )
    assert server.resume(True) == SaslSuccess("user")


def test_login_initial_response_is_the_username() -> None:
    server = LoginServer(SaslContext())
    assert server.start(b"user") == SaslChallenge(b"Password:")


@pytest.mark.parametrize(("first", "second"), [(b"", None), (b"u\x00", None), (b"u", b"\xff")])
def test_login_malformed(first: bytes, second: bytes | None) -> None:
    server = LoginServer(SaslContext())
    server.start(None)
    step = server.respond(first)
    if second is not None:
        step = server.respond(second)
    assert step == SaslFailure(MALFORMED)


def test_login_client() -> None:
    client = LoginClient(ClientCredentials(username="u", password="p"), SaslContext())
    assert client.initial_response() is None
    assert client.respond(b"Username:") == b"u"
    assert client.respond(b"Password:") == b"p"
    with pytest.raises(SaslError):
        client.respond(b"More:")


# --- CRAM-MD5 (RFC 2195) ------------------------------------------------------------------------


def test_cram_md5_refuses_initial_response() -> None:
    step = CramMd5Server(SaslContext()).start(b"tim 0123")
    assert step == SaslFailure(INITIAL_RESPONSE_NOT_ALLOWED)
    assert step.reply.code == 501
    assert step.reply.enhanced == "5.7.0"


def test_cram_md5_random_challenges_differ() -> None:
    first = CramMd5Server(SaslContext(hostname="mx.example")).start(None)
    second = CramMd5Server(SaslContext(hostname="mx.example")).start(None)
    assert isinstance(first, SaslChallenge)
    assert isinstance(second, SaslChallenge)
    assert first.data != second.data
    assert first.data.startswith(b"<")
    assert first.data.endswith(b"@mx.example>")


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"tim",
        b"b913a602c7eda7a495b4e6e7334d3890",  # no user name
        b"tim b913a602c7eda7a495b4e6e7334d389",  # 31 digits
        b"tim b913a602c7eda7a495b4e6e7334d3890f",  # 33 digits
        b"tim g913a602c7eda7a495b4e6e7334d3890",  # not hex
        b"tim\x00 b913a602c7eda7a495b4e6e7334d3890",  # control character in the name
        b"\xff b913a602c7eda7a495b4e6e7334d3890",  # not UTF-8
        b"x" * 9000,
    ],
)
def test_cram_md5_malformed(response: bytes) -> None:
    server = CramMd5Server(SaslContext())
    server.start(None)
    assert server.respond(response) == SaslFailure(MALFORMED)


def _cram_server_at_lookup(username: str, password: str) -> CramMd5Server:
    server = CramMd5Server(SaslContext(nonce="1.2", hostname="h"))
    server.start(None)
    digest = cram_md5_digest(password, b"<1.2@h>")
    assert isinstance(server.respond(f"{username} {digest}".encode()), SaslNeedsCredentials)
    return server


def test_cram_md5_user_name_with_spaces_and_upper_case_digest() -> None:
    server = CramMd5Server(SaslContext(nonce="1.2", hostname="h"))
    server.start(None)
    digest = cram_md5_digest("secret", b"<1.2@h>").upper()
    step = server.respond(f"John Smith {digest}".encode())
    assert isinstance(step, SaslNeedsCredentials)
    assert step.query.username == "John Smith"
    assert server.resume("secret") == SaslSuccess("John Smith")


def test_cram_md5_unknown_user_and_wrong_password_look_alike() -> None:
    assert _cram_server_at_lookup("tim", "guess").resume(None) == SaslFailure(AUTH_FAILED)
    assert _cram_server_at_lookup("tim", "guess").resume(False) == SaslFailure(AUTH_FAILED)
    assert _cram_server_at_lookup("tim", "guess").resume("secret") == SaslFailure(AUTH_FAILED)


def test_cram_md5_needs_the_password() -> None:
    with pytest.raises(LocalProtocolError):
        _cram_server_at_lookup("tim", "x").resume(scram_secrets_from_password("x"))
    with pytest.raises(LocalProtocolError):
        _cram_server_at_lookup("tim", "x").resume(True)


def test_cram_md5_out_of_order_is_a_local_error() -> None:
    server = CramMd5Server(SaslContext())
    with pytest.raises(LocalProtocolError):
        server.respond(b"tim 00")
    with pytest.raises(LocalProtocolError):
        server.resume("x")
    server.start(None)
    with pytest.raises(LocalProtocolError):
        server.start(None)


def test_cram_md5_bad_hostname_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        CramMd5Server(SaslContext(hostname="bad host")).start(None)


def test_cram_md5_client_errors() -> None:
    client = CramMd5Client(ClientCredentials(username="tim", password="x"), SaslContext())
    with pytest.raises(SaslError):
        client.respond(b"")
    client.respond(b"<1@h>")
    with pytest.raises(SaslError):
        client.respond(b"<2@h>")
    with pytest.raises(SaslError):
        CramMd5Client(ClientCredentials(username="t\r", password="x"), SaslContext()).respond(b"c")
    with pytest.raises(SaslError):
        CramMd5Client(ClientCredentials(username="tim"), SaslContext()).respond(b"c")


# --- XOAUTH2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"user=u\x01auth=Bearer t\x01",  # one terminator missing
        b"user=u\x01auth=Bearer t",
        b"auth=Bearer t\x01\x01",  # no user
        b"user=u\x01\x01",  # no token
        b"user=\x01auth=Bearer t\x01\x01",  # empty user
        b"user=u\x01auth=Basic dTpw\x01\x01",  # not a bearer token
        b"user=u\x01auth=Bearer \x01\x01",
        b"user=u\x01auth=Bearer a b\x01\x01",
        b"user=u\x01user=v\x01auth=Bearer t\x01\x01",  # repeated key
        b"user=u\x01auth=Bearer t\x01extra=1\x01\x01",
        b"user=u\x01auth=Bearer t\x01\x01\x01",
        b"user=u\x00\x01auth=Bearer t\x01\x01",
        b"\xff",
    ],
)
def test_xoauth2_malformed(message: bytes) -> None:
    assert XOAuth2Server(SaslContext()).start(message) == SaslFailure(MALFORMED)


def test_xoauth2_accepts_case_insensitive_scheme_and_no_initial_response() -> None:
    server = XOAuth2Server(SaslContext())
    assert server.start(None) == SaslChallenge(b"")
    step = server.respond(b"user=u@example\x01auth=bearer abc.DEF-_~+/==\x01\x01")
    assert step == SaslNeedsCredentials(
        AuthTokenCheck(mechanism="XOAUTH2", username="u@example", token="abc.DEF-_~+/==")
    )
    assert "abc.DEF" not in repr(step.query)
    assert server.resume(True) == SaslSuccess("u@example")


def test_xoauth2_refusal_sends_error_json_then_535() -> None:
    server = XOAuth2Server(SaslContext())
    server.start(b"user=u\x01auth=Bearer t\x01\x01")
    step = server.resume(False)
    assert isinstance(step, SaslChallenge)
    assert json.loads(step.data) == {"status": "401", "schemes": "bearer"}
    assert server.respond(b"") == SaslFailure(AUTH_FAILED)


def test_xoauth2_error_scope_can_be_configured() -> None:
    class GoogleLike(XOAuth2Server):
        error_scope = "https://mail.google.com/"

    server = GoogleLike(SaslContext())
    server.start(b"user=u\x01auth=Bearer t\x01\x01")
    step = server.resume(None)
    assert isinstance(step, SaslChallenge)
    assert json.loads(step.data)["scope"] == "https://mail.google.com/"


def test_xoauth2_token_check_answer_must_be_bool() -> None:
    server = XOAuth2Server(SaslContext())
    server.start(b"user=u\x01auth=Bearer t\x01\x01")
    with pytest.raises(LocalProtocolError):
        server.resume("password")


def test_xoauth2_client() -> None:
    credentials = ClientCredentials(username="u@example", token="tok")
    assert XOAuth2Client.available(credentials, SaslContext())
    assert not XOAuth2Client.available(ClientCredentials(username="u", password="p"), SaslContext())
    client = XOAuth2Client(credentials, SaslContext())
    message = client.initial_response()
    assert message == b"user=u@example\x01auth=Bearer tok\x01\x01"
    assert client.respond(b"") == message  # the server did not take the initial response
    assert client.respond(b"not json") == b""
    assert client.error == "not json"
    with pytest.raises(SaslError):
        client.respond(b"again")


@pytest.mark.parametrize(
    "credentials",
    [
        ClientCredentials(username="u", token="has space"),
        ClientCredentials(username="u", token=""),
        ClientCredentials(username="u"),
        ClientCredentials(username="", token="t"),
        ClientCredentials(username="u\x01", token="t"),
    ],
)
def test_xoauth2_client_refuses_bad_credentials(credentials: ClientCredentials) -> None:
    with pytest.raises(SaslError):
        XOAuth2Client(credentials, SaslContext()).initial_response()


def test_oauth_client_without_initial_response() -> None:
    client = OAuthBearerClient(ClientCredentials(username="u", token="t"), SaslContext())
    assert client.respond(b"") == b"n,a=u,\x01auth=Bearer t\x01\x01"
    with pytest.raises(LocalProtocolError):
        client.initial_response()
    with pytest.raises(SaslError):
        OAuthBearerClient(ClientCredentials(username="u", token="t"), SaslContext()).respond(b"x")


# --- OAUTHBEARER (RFC 7628) ---------------------------------------------------------------------


def test_oauthbearer_rfc7628_style_message() -> None:
    # RFC 7628 §4.1 shape: GS2 header with a=, host and port pairs, then auth.
    message = (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    )
    step = OAuthBearerServer(SaslContext()).start(message)
    assert step == SaslNeedsCredentials(
        AuthTokenCheck(
            mechanism="OAUTHBEARER",
            username="user@example.com",
            token="vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        )
    )


def test_oauthbearer_without_authzid_and_with_unknown_key() -> None:
    server = OAuthBearerServer(SaslContext())
    step = server.start(b"y,,\x01auth=Bearer t\x01future=x y\x01\x01")
    assert step == SaslNeedsCredentials(
        AuthTokenCheck(mechanism="OAUTHBEARER", username="", token="t")
    )
    assert server.resume(True) == SaslSuccess("")


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x01",  # the dummy response is not a first message
        b"p=tls-exporter,,\x01auth=Bearer t\x01\x01",  # no channel binding in OAUTHBEARER
        b"n,a=u,auth=Bearer t\x01\x01",  # no kvsep after the header
        b"n,a=u,\x01auth=Bearer t\x01",
        b"n,a=u,\x01host=h\x01\x01",  # no auth
        b"n,a=u,\x01auth=Token t\x01\x01",
        b"n,a=u,\x01auth=Bearer t\x01auth=Bearer s\x01\x01",
        b"n,a=u,\x011key=v\x01auth=Bearer t\x01\x01",
        b"n,a=u,\x01host=h\x7f\x01auth=Bearer t\x01\x01",
        b"x,a=u,\x01auth=Bearer t\x01\x01",
        b"n,a=u=,\x01auth=Bearer t\x01\x01",
    ],
)
def test_oauthbearer_malformed(message: bytes) -> None:
    assert OAuthBearerServer(SaslContext()).start(message) == SaslFailure(MALFORMED)


def test_oauthbearer_refusal_exchange() -> None:
    server = OAuthBearerServer(SaslContext())
    server.start(b"n,a=u,\x01auth=Bearer t\x01\x01")
    step = server.resume(False)
    assert isinstance(step, SaslChallenge)
    assert json.loads(step.data) == {"status": "invalid_token"}
    assert server.respond(b"\x01") == SaslFailure(AUTH_FAILED)


def test_oauthbearer_wrong_dummy_response_is_501() -> None:
    server = OAuthBearerServer(SaslContext())
    server.start(b"n,a=u,\x01auth=Bearer t\x01\x01")
    server.resume(None)
    assert server.respond(b"") == SaslFailure(MALFORMED)
    with pytest.raises(LocalProtocolError):
        server.respond(b"\x01")


def test_oauthbearer_error_json_options() -> None:
    class Configured(OAuthBearerServer):
        error_scope = "mail"
        openid_configuration = "https://example.com/.well-known/openid-configuration"

    server = Configured(SaslContext())
    server.start(b"n,,\x01auth=Bearer t\x01\x01")
    step = server.resume(False)
    assert isinstance(step, SaslChallenge)
    assert json.loads(step.data) == {
        "status": "invalid_token",
        "scope": "mail",
        "openid-configuration": "https://example.com/.well-known/openid-configuration",
    }


def test_oauthbearer_client_messages() -> None:
    client = OAuthBearerClient(ClientCredentials(username="a,b", token="t"), SaslContext())
    assert client.initial_response() == b"n,a=a=2Cb,\x01auth=Bearer t\x01\x01"
    assert client.respond(b'{"status":"invalid_token"}') == b"\x01"
    assert client.error == {"status": "invalid_token"}
    with pytest.raises(SaslError):
        client.respond(b"{}")
    anonymous = OAuthBearerClient(ClientCredentials(username="", token="t"), SaslContext())
    assert anonymous.initial_response() == b"n,,\x01auth=Bearer t\x01\x01"
    acting = OAuthBearerClient(
        ClientCredentials(username="u", authzid="other", token="t"), SaslContext()
    )
    assert acting.initial_response().startswith(b"n,a=other,")
    with pytest.raises(SaslError):
        OAuthBearerClient(
            ClientCredentials(username="u\x00", token="t"), SaslContext()
        ).initial_response()


# --- choosing a mechanism on the client ---------------------------------------------------------

ALL = (
    "LOGIN",
    "PLAIN",
    "CRAM-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS",
    "XOAUTH2",
)
PASSWORD = ClientCredentials(username="u", password="p")
TOKEN = ClientCredentials(username="u", token="t")
BINDING = SaslContext(channel_binding=ChannelBinding("tls-exporter", b"x"))


@pytest.mark.parametrize(
    ("offered", "credentials", "context", "expected"),
    [
        (ALL, PASSWORD, SaslContext(), "SCRAM-SHA-256"),
        (ALL, PASSWORD, BINDING, "SCRAM-SHA-256-PLUS"),
        (("PLAIN", "LOGIN", "SCRAM-SHA-1"), PASSWORD, SaslContext(), "SCRAM-SHA-1"),
        (("plain", "login", "cram-md5"), PASSWORD, SaslContext(), "CRAM-MD5"),
        (("LOGIN", "PLAIN"), PASSWORD, SaslContext(), "PLAIN"),
        (("LOGIN",), PASSWORD, SaslContext(), "LOGIN"),
        (ALL, TOKEN, SaslContext(), "XOAUTH2"),
        (("XOAUTH2", "OAUTHBEARER"), TOKEN, SaslContext(), "OAUTHBEARER"),
        (("PLAIN",), TOKEN, SaslContext(), None),
        (("XOAUTH2",), PASSWORD, SaslContext(), None),
        (("GSSAPI", "NTLM"), PASSWORD, SaslContext(), None),
        ((), PASSWORD, SaslContext(), None),
    ],
)
def test_select_client_mechanism(
    offered: tuple[str, ...],
    credentials: ClientCredentials,
    context: SaslContext,
    expected: str | None,
) -> None:
    chosen = select_client_mechanism(offered, credentials, context)
    assert (chosen.name if chosen else None) == expected


def test_select_client_mechanism_preference_override() -> None:
    chosen = select_client_mechanism(ALL, PASSWORD, SaslContext(), preference=("plain", "LOGIN"))
    assert chosen is PlainClient
    assert DEFAULT_CLIENT_PREFERENCE.index("SCRAM-SHA-256") < DEFAULT_CLIENT_PREFERENCE.index(
        "SCRAM-SHA-1"
    )


def test_bearer_server_out_of_order_is_a_local_error() -> None:
    for server in (XOAuth2Server(SaslContext()), OAuthBearerServer(SaslContext())):
        with pytest.raises(LocalProtocolError):
            server.resume(True)
        with pytest.raises(LocalProtocolError):
            server.respond(b"x")
        server.start(None)
        with pytest.raises(LocalProtocolError):
            server.start(None)
