"""The property of issue 3: a ClientConnection wired to a ServerConnection in memory delivers any
body byte-exact (DATA: as its canonical CRLF form; BDAT: CRLF-normalised, or exactly with
BINARYMIME when asked for), whatever the splits of the bytes in both directions, with and without
PIPELINING, SMTP and LMTP. Unless BINARYMIME was asked for, the client never sends a bare CR or LF
(issue 7)."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from pair import ConnectionPair, random_splitter

from esmtp_core import (
    AuthResult,
    ClientConfig,
    ClientCredentials,
    EhloReply,
    ServerConfig,
    TransactionResult,
)

PIECES = [
    b".",
    b"..",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r.\r",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"abc",
    b"x" * 50,
    b" ",
    b"\t",
]
bodies = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join),
)


def crlf(body: bytes) -> bytes:
    """What BDAT without BINARYMIME delivers: every line ending made CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", body)


def canonical(body: bytes) -> bytes:
    """What DATA delivers: CRLF line endings, and a final CRLF when missing (RFC 5321 §4.1.1.4)."""
    out = crlf(body)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def no_bare_line_ends(wire: bytes | bytearray) -> bool:
    """Every CR and LF the client sent is part of a CRLF."""
    return wire.count(b"\n") == wire.count(b"\r\n") == wire.count(b"\r")


def make_pair(
    rng: random.Random,
    *,
    chunking: bool,
    pipelining: bool = True,
    lmtp: bool = False,
    chunk_size: int = 1_048_576,
    refuse: frozenset[str] = frozenset(),
) -> ConnectionPair:
    pair = ConnectionPair(
        ClientConfig(use_chunking=chunking, lmtp=lmtp, bdat_chunk_size=chunk_size),
        ServerConfig(
            hostname="mx.test", pipelining=pipelining, lmtp=lmtp, max_data_line_length=None
        ),
        split_to_server=random_splitter(rng, rng.choice([1, 7, 64, 5000])),
        split_to_client=random_splitter(rng, rng.choice([1, 5, 64, 5000])),
        refuse=refuse,
    )
    pair.start()
    return pair


def stream(pair: ConnectionPair, body: bytes, rng: random.Random, **kwargs: object) -> None:
    """Send ``body`` in random pieces, pumping between them (replies arrive mid-stream)."""
    pair.client.start_transaction("from@example.org", ["to@example.org"], **kwargs)  # type: ignore[arg-type]
    start = 0
    while start < len(body):
        end = start + rng.randint(1, 500)
        pair.client.send_body(body[start:end])
        start = end
        if rng.random() < 0.3:
            assert pair.pump() == []
    pair.client.end_body()


def only_result(events: list[object]) -> TransactionResult:
    assert len(events) == 1, events
    result = events[0]
    assert isinstance(result, TransactionResult)
    return result


@settings(max_examples=150, deadline=None)
@given(bodies, st.randoms(use_true_random=False), st.booleans())
def test_data_delivers_the_canonical_body(body: bytes, rng: random.Random, pipe: bool) -> None:
    pair = make_pair(rng, chunking=False, pipelining=pipe)
    pair.client.send_message("from@example.org", ["to@example.org"], body)
    result = only_result(pair.pump())
    assert result.ok, result
    assert pair.messages == [("from@example.org", ("to@example.org",), canonical(body))]
    assert no_bare_line_ends(pair.wire)


@settings(max_examples=150, deadline=None)
@given(bodies, st.randoms(use_true_random=False), st.booleans())
def test_data_streamed_in_pieces(body: bytes, rng: random.Random, pipe: bool) -> None:
    pair = make_pair(rng, chunking=False, pipelining=pipe)
    stream(pair, body, rng)
    assert only_result(pair.pump()).ok
    assert pair.messages[0][2] == canonical(body)
    assert no_bare_line_ends(pair.wire)


@settings(max_examples=150, deadline=None)
@given(bodies, st.randoms(use_true_random=False), st.booleans(), st.integers(1, 700))
def test_bdat_binarymime_is_byte_exact(
    body: bytes, rng: random.Random, pipe: bool, chunk_size: int
) -> None:
    pair = make_pair(rng, chunking=True, pipelining=pipe, chunk_size=chunk_size)
    stream(pair, body, rng, binary=True)
    assert only_result(pair.pump()).ok
    assert pair.messages == [("from@example.org", ("to@example.org",), body)]


@settings(max_examples=100, deadline=None)
@given(bodies, st.randoms(use_true_random=False), st.booleans())
def test_send_message_over_bdat(body: bytes, rng: random.Random, binary: bool) -> None:
    """``send_message`` over BDAT: CRLF-normalised (no bare CR or LF, no final CRLF added); byte
    for byte as ``BODY=BINARYMIME`` only when asked for with ``binary=True``."""
    pair = make_pair(rng, chunking=True, chunk_size=rng.randint(1, 2000))
    pair.client.send_message("from@example.org", ["to@example.org"], body, binary=binary)
    assert only_result(pair.pump()).ok
    # BDAT payloads arrive whole (a chunk may cut a CRLF in two, so the wire is no proof).
    assert pair.messages[0][2] == (body if binary else crlf(body))
    assert (b"BODY=BINARYMIME" in pair.wire) == binary


@settings(max_examples=100, deadline=None)
@given(
    bodies,
    st.randoms(use_true_random=False),
    st.booleans(),
    st.booleans(),
    st.lists(st.booleans(), min_size=1, max_size=5),
)
def test_recipients_refused_and_lmtp(
    body: bytes, rng: random.Random, chunking: bool, lmtp: bool, accepted: list[bool]
) -> None:
    recipients = [f"r{i}@example.org" for i in range(len(accepted))]
    refuse = frozenset(r for r, ok in zip(recipients, accepted, strict=True) if not ok)
    pair = make_pair(rng, chunking=chunking, lmtp=lmtp, refuse=refuse)
    pair.client.send_message("from@example.org", recipients, body)
    result = only_result(pair.pump())
    good = tuple(r for r in recipients if r not in refuse)
    assert result.accepted == good
    assert set(result.outcomes()) == set(recipients)
    if good:
        assert len(pair.messages) == 1
        assert pair.messages[0][1] == good
        delivered = pair.messages[0][2]
        assert delivered == (crlf(body) if chunking else canonical(body))
        if lmtp:
            assert [r for r, _ in result.data_replies] == list(good)
    else:
        assert pair.messages == []
    # The session is still in step: another message goes through.
    pair.refuse = frozenset()
    pair.client.send_message("from@example.org", ["again@example.org"], b"again\r\n")
    assert only_result(pair.pump()).ok


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 4))
def test_many_messages_pipelined_back_to_back(rng: random.Random, count: int) -> None:
    pair = make_pair(rng, chunking=rng.random() < 0.5)
    for i in range(count):
        pair.client.send_message("a@example.org", [f"b{i}@example.org"], b"m%d\r\n" % i)
    results = pair.pump()
    assert len(results) == count
    assert all(isinstance(r, TransactionResult) and r.ok for r in results)
    assert [m[2] for m in pair.messages] == [b"m%d\r\n" % i for i in range(count)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(bodies, st.booleans()), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
    st.booleans(),
    st.booleans(),
)
def test_back_to_back_messages_arrive_exact_and_in_order(
    messages: list[tuple[bytes, bool]], rng: random.Random, chunking: bool, pipe: bool
) -> None:
    """N messages queued behind each other's end of data (RFC 2920 §3.1: with PIPELINING the
    next MAIL shares the flight of the previous final dot or BDAT LAST), some refused at RCPT,
    with random pumping in between: each result comes once, in order, and every accepted body
    arrives byte-exact and in order."""
    pair = make_pair(rng, chunking=chunking, pipelining=pipe, refuse=frozenset({"no@example.org"}))
    results: list[object] = []
    for i, (body, refused) in enumerate(messages):
        rcpt = "no@example.org" if refused else f"m{i}@example.org"
        pair.client.send_message("a@example.org", [rcpt], body)
        if rng.random() < 0.4:
            results += pair.pump()
    results += pair.pump()
    assert len(results) == len(messages)
    for result, (_, refused) in zip(results, messages, strict=True):
        assert isinstance(result, TransactionResult)
        assert result.ok is not refused
    expected = [
        ((f"m{i}@example.org",), crlf(body) if chunking else canonical(body))
        for i, (body, refused) in enumerate(messages)
        if not refused
    ]
    assert [(m[1], m[2]) for m in pair.messages] == expected
    assert no_bare_line_ends(pair.wire)


def test_starttls_and_auth_against_the_server_core() -> None:
    pair = ConnectionPair(
        ClientConfig(),
        ServerConfig(hostname="mx.test", starttls=True, auth_mechanisms=("PLAIN", "LOGIN")),
    )
    pair.start()
    assert pair.client.capabilities.auth_mechanisms == ()  # AUTH only after TLS by default
    pair.client.starttls()
    events = pair.pump()
    assert [type(e).__name__ for e in events] == ["StartTLSReply"]
    assert pair.client.tls_active
    assert pair.server.tls_active
    pair.client.ehlo()
    (ehlo,) = pair.pump()
    assert isinstance(ehlo, EhloReply)
    assert ehlo.capabilities.auth_mechanisms == ("PLAIN", "LOGIN")
    for mechanism in ("LOGIN", "PLAIN"):
        pair.client.auth(ClientCredentials(username="u", password="wrong"), mechanism)
        (failed,) = pair.pump()
        assert isinstance(failed, AuthResult)
        assert failed.reply.code == 535
    pair.client.auth(ClientCredentials(username="u", password="secret"))
    (result,) = pair.pump()
    assert isinstance(result, AuthResult)
    assert result.ok, result
    assert pair.server.authenticated == "u"
    pair.client.send_message("a@example.org", ["b@example.org"], b"hi\r\n")
    assert only_result(pair.pump()).ok


def test_helo_fallback_against_the_server_core() -> None:
    pair = ConnectionPair(ClientConfig(), ServerConfig(hostname="mx.test"))
    pair.pump()
    pair.client.helo()
    (helo,) = pair.pump()
    assert isinstance(helo, EhloReply)
    assert helo.ok
    assert not pair.client.pipelining
    pair.client.send_message("a@example.org", ["b@example.org"], b".\r\n")
    assert only_result(pair.pump()).ok
    assert pair.messages[0][2] == b".\r\n"


def test_size_declared_and_enforced() -> None:
    pair = ConnectionPair(ClientConfig(), ServerConfig(hostname="mx.test", max_message_size=100))
    pair.start()
    assert pair.client.capabilities.size_limit == 100
    pair.client.start_transaction("a@example.org", ["b@example.org"], size=50)
    pair.client.send_body(b"x" * 50)
    pair.client.end_body()
    assert only_result(pair.pump()).ok
