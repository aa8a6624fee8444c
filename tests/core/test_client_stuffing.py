"""The client's streaming DATA encoder and line-ending normaliser (RFC 5321 §4.5.2)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esmtp_core._stuffing import DotStuffer, LineEndingNormalizer, normalize_line_endings


def encode(*chunks: bytes) -> bytes:
    stuffer = DotStuffer()
    return b"".join(stuffer.feed(chunk) for chunk in chunks) + stuffer.end()


def unstuff(wire: bytes) -> bytes:
    """What a receiving server reconstructs (the reference: RFC 5321 §4.5.2)."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    body = wire[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def reference(body: bytes) -> bytes:
    canonical = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    if canonical and not canonical.endswith(b"\r\n"):
        canonical += b"\r\n"
    return canonical


@pytest.mark.parametrize(
    ("body", "wire"),
    [
        (b"", b".\r\n"),
        (b"hello\r\n", b"hello\r\n.\r\n"),
        (b"hello", b"hello\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.b\r\n..c\r\n", b"a\r\n..b\r\n...c\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r.\rb\r", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
        (b"\n", b"\r\n.\r\n"),
    ],
)
def test_examples(body: bytes, wire: bytes) -> None:
    assert encode(body) == wire


def test_dot_after_chunk_boundary() -> None:
    assert encode(b"a\r\n", b".b") == b"a\r\n..b\r\n.\r\n"
    assert encode(b"a\r", b"\n.b") == b"a\r\n..b\r\n.\r\n"
    assert encode(b"a\r", b".b") == b"a\r\n..b\r\n.\r\n"
    assert encode(b".", b".") == b"...\r\n.\r\n"


def test_trailing_cr_held_back() -> None:
    stuffer = DotStuffer()
    assert stuffer.feed(b"abc\r") == b"abc"
    assert stuffer.feed(b"\n") == b"\r\n"
    assert stuffer.feed(b"") == b""
    assert stuffer.end() == b".\r\n"


def test_no_bare_line_endings_ever() -> None:
    wire = encode(b"x\ny\rz\r\n\n\r\r\n")
    assert wire.count(b"\n") == wire.count(b"\r\n") == wire.count(b"\r")


def test_misuse() -> None:
    stuffer = DotStuffer()
    stuffer.end()
    with pytest.raises(ValueError):
        stuffer.end()
    with pytest.raises(ValueError):
        stuffer.feed(b"x")


@given(st.binary(max_size=400), st.data())
def test_any_body_any_split_round_trips(body: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    wire = encode(*chunks)
    assert wire == encode(body)
    assert unstuff(wire) == reference(body)
    assert b"\r\n.\r\n" not in wire[:-3] or wire.index(b"\r\n.\r\n") == len(wire) - 5


@given(
    st.lists(st.sampled_from([b"\r", b"\n", b".", b"a", b"\r\n", b"\x00", b"\xff"]), max_size=40),
    st.data(),
)
def test_line_ending_soup(parts: list[bytes], data: st.DataObject) -> None:
    body = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    assert unstuff(encode(*chunks)) == reference(body)
    normalizer = LineEndingNormalizer()
    streamed = b"".join(normalizer.feed(chunk) for chunk in chunks) + normalizer.end()
    assert streamed == normalize_line_endings(body) == re.sub(rb"\r\n|\r|\n", b"\r\n", body)


@given(st.binary(max_size=400), st.data())
def test_canonical_feed_matches_the_checked_one(body: bytes, data: st.DataObject) -> None:
    """``feed(canonical=True)`` (the line endings were normalised by the caller) gives the
    same wire as the normal path, also when a held-back CR from an earlier chunk is pending."""
    canonical = normalize_line_endings(body)
    cut = data.draw(st.integers(0, len(body)))
    head, tail = body[:cut], normalize_line_endings(body[cut:])
    stuffer = DotStuffer()
    wire = stuffer.feed(head) + stuffer.feed(tail, canonical=True) + stuffer.end()
    assert wire == encode(head, tail)
    whole = DotStuffer()
    assert whole.feed(canonical, canonical=True) + whole.end() == encode(body)


def test_dense_and_sparse_dot_lines_switch_strategies() -> None:
    """Chunks with many dot lines switch to ``replace``; the output is the same either way."""
    dense = b".a\r\n" * 200
    sparse = b"x" * 70 + b"\r\n.y\r\n" + b"z" * 300 + b"\r\n"
    for chunks in ([dense, sparse, dense], [sparse, dense, sparse]):
        assert unstuff(encode(*chunks)) == b"".join(chunks)
