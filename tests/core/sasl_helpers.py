"""Helpers for the SASL tests: one user, one token, channel binding data, and the answers an
application gives to the server's AUTH queries (RFC 4954 through :class:`AuthQuery` events)."""

from __future__ import annotations

from esmtp_core import (
    AuthPasswordCheck,
    AuthQuery,
    AuthSecretLookup,
    AuthTokenCheck,
    ChannelBinding,
    ClientCredentials,
    scram_secrets_from_password,
)
from esmtp_core._sasl import CredentialAnswer

USERS = {"alice": "wonder land\u00e9"}
TOKENS = {"alice": "ya29.good-token"}
BINDING = ChannelBinding("tls-exporter", bytes(range(32)))
TOKEN_MECHANISMS = ["XOAUTH2", "OAUTHBEARER"]


def answer_query(
    query: AuthQuery, *, store_secrets: bool, salt: bytes | None = None
) -> CredentialAnswer:
    """Passwords and tokens checked against :data:`USERS` / :data:`TOKENS`; a secret lookup
    answered with the password or, with ``store_secrets``, SCRAM's stored secrets (RFC 5802 §3;
    ``salt`` None: a random one)."""
    if isinstance(query, AuthPasswordCheck):
        return USERS.get(query.username) == query.password
    if isinstance(query, AuthTokenCheck):
        return TOKENS.get(query.username) == query.token
    assert isinstance(query, AuthSecretLookup)
    password = USERS.get(query.username)
    if password is None or not store_secrets or not query.mechanism.startswith("SCRAM"):
        return password
    algorithm = "SHA-256" if "SHA-256" in query.mechanism else "SHA-1"
    return scram_secrets_from_password(password, algorithm=algorithm, salt=salt)


def credentials(name: str, *, username: str = "alice", wrong: bool = False) -> ClientCredentials:
    """Alice's token (for the bearer mechanisms) or password; a wrong one with ``wrong``."""
    if name in TOKEN_MECHANISMS:
        return ClientCredentials(username=username, token="ya29.bad" if wrong else TOKENS["alice"])
    return ClientCredentials(username=username, password="guess" if wrong else USERS["alice"])
