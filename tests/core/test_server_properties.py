"""Property tests: any split of the same input gives the same events and bytes; hostile input
only ever raises the two documented error types."""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from server_helpers import make

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    AuthQuery,
    AuthSecretLookup,
    BareLineEndingPolicy,
    BodyChunk,
    EndOfMessage,
    LocalProtocolError,
    MessageAborted,
    RemoteProtocolError,
    ServerConnection,
    _data,
)
from esmtp_core._data import DataDecoder

FAST = settings(max_examples=150, deadline=None)


def reference_decode(wire: bytes) -> tuple[bytes, int] | None:
    """The obvious reading of RFC 5321 §4.5.2 on a whole buffer: (body, octets consumed)."""
    stream = b"\r\n" + wire
    end = stream.find(b"\r\n.\r\n")
    if end < 0:
        return None
    return stream[: end + 2].replace(b"\r\n.", b"\r\n")[2:], end + 3


def feed_pieces(decoder: DataDecoder, pieces: list[bytes]) -> tuple[bytes, int]:
    """Feed ``pieces`` until the decoder is done: (body bytes out, octets consumed)."""
    out, consumed = [], 0
    for piece in pieces:
        if decoder.done:
            break
        data, used = decoder.feed(piece)
        out.append(data)
        consumed += used
    return b"".join(out), consumed


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    pieces, previous = [], 0
    for cut in cuts:
        pieces.append(data[previous:cut])
        previous = cut
    pieces.append(data[previous:])
    return pieces


wire_bytes = st.lists(
    st.sampled_from(
        [b"\r", b"\n", b".", b"a", b"\r\n", b"\r\n.", b"\r\n..", b"\r\n.\r\n", b"\x00"]
    ),
    max_size=30,
).map(b"".join)


@FAST
@given(wire=wire_bytes, points=st.lists(st.integers(0, 200), max_size=6))
def test_decoder_matches_reference_for_any_split(wire: bytes, points: list[int]) -> None:
    decoder = DataDecoder(max_line_length=None)
    out, consumed = feed_pieces(decoder, split_at(wire, points))
    expected = reference_decode(wire)
    if expected is None:
        assert not decoder.done
        return
    body, used = expected
    assert decoder.done
    assert consumed == used
    clean = body == body.replace(b"\r", b"").replace(b"\n", b"\r\n")
    if clean:
        assert decoder.problem is None
        assert out == body
        assert decoder.size == len(body)
    else:
        assert decoder.problem is not None
        assert out == b"" or decoder.size < len(body)


@pytest.mark.parametrize(
    ("strays", "loops"),
    [(0, 32), (1, 32), (16, 0), (16, 1), (0, 0)],
    ids=["search-at-once", "search-after-one", "split-at-once", "split-after-one", "search-split"],
)
@FAST
@given(
    wire=st.lists(
        st.sampled_from([b"a", b".", b". ", b"\r\n", b"\r\n.", b"\r\n..", b"\r\n.\r\n", b"\r"]),
        max_size=40,
    ).map(b"".join),
    points=st.lists(st.integers(0, 300), max_size=6),
)
# Full stops, the end, then more dot lines in the same read: only the first end counts.
@example(wire=b"a. b.\r\n..c\r\n.\r\nd\r\n.x\r\n..\r\n.\r\n", points=[])
def test_every_unstuffing_path_matches_reference(
    strays: int, loops: int, wire: bytes, points: list[int]
) -> None:
    # The decoder hops from dot to dot and hands over to a "CRLF ." search after _STRAY_DOTS
    # full stops, or to split/join after _LOOP_DOTS dot lines; with the thresholds lowered, short
    # inputs take every path and every hand-over point, and must all read RFC 5321 §4.5.2 alike.
    with (
        mock.patch.object(_data, "_STRAY_DOTS", strays),
        mock.patch.object(_data, "_LOOP_DOTS", loops),
    ):
        decoder = DataDecoder(max_line_length=None, policy=BareLineEndingPolicy.NORMALIZE)
        out, consumed = feed_pieces(decoder, split_at(wire, points))
    expected = reference_decode(wire)
    assert decoder.done == (expected is not None)
    if expected is not None:
        assert consumed == expected[1]
        body = expected[0]
        assert out == re.sub(rb"\r(?!\n)|(?<!\r)\n", b"\r\n", body)


@FAST
@given(wire=wire_bytes, points=st.lists(st.integers(0, 200), max_size=6))
def test_normalizing_decoder_is_split_independent(wire: bytes, points: list[int]) -> None:
    whole = DataDecoder(policy=BareLineEndingPolicy.NORMALIZE, max_line_length=None)
    expected = whole.feed(wire)
    decoder = DataDecoder(policy=BareLineEndingPolicy.NORMALIZE, max_line_length=None)
    out, consumed = feed_pieces(decoder, split_at(wire, points))
    assert decoder.done == whole.done
    if whole.done:
        assert (out, consumed) == expected
        body = expected[0]
        assert body == body.replace(b"\r", b"").replace(b"\n", b"\r\n")


# A session script: commands (some pipelined, some invalid) with DATA and BDAT bodies.
body_text = st.lists(
    st.sampled_from([b"line", b".", b"..", b"\r\n", b"x" * 50, b"\n", b"\r", b"\xff"]), max_size=12
).map(b"".join)


@st.composite
def scripts(draw: st.DrawFn) -> bytes:
    parts = [b"EHLO client\r\n"]
    for _ in range(draw(st.integers(1, 4))):
        parts.append(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n")
        if draw(st.booleans()):
            body = draw(body_text)
            parts.append(
                b"DATA\r\n" + body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"
            )
        else:
            chunks = draw(st.lists(body_text, min_size=1, max_size=3))
            for index, chunk in enumerate(chunks):
                last = b" LAST" if index == len(chunks) - 1 else b""
                parts.append(b"BDAT %d%s\r\n%s" % (len(chunk), last, chunk))
        parts.append(
            draw(st.sampled_from([b"NOOP\r\n", b"RSET\r\n", b"FROB\r\n", b"VRFY x\r\n", b""]))
        )
    parts.append(b"QUIT\r\n")
    return b"".join(parts)


def run(conn: ServerConnection, pieces: list[bytes]) -> tuple[list[Any], bytes]:
    """Feed pieces, accept every decision; merge consecutive body chunks (their boundaries
    legitimately depend on the reads)."""
    events: list[Any] = []
    out = []

    def drain() -> None:
        while True:
            event = conn.next_event()
            if event is NEED_DATA or (event is PAUSED and conn.pending is None):
                return
            if event is PAUSED:
                continue
            if isinstance(event, BodyChunk) and events and isinstance(events[-1], BodyChunk):
                events[-1] = BodyChunk(data=events[-1].data + event.data)
            elif isinstance(event, MessageAborted) and events and isinstance(events[-1], BodyChunk):
                # How much of a refused message was streamed before the refusal depends on the
                # reads; the application discards it anyway.
                events[-1] = event
            else:
                events.append(event)
            if conn.pending is event:
                conn.accept()

    for piece in pieces:
        if piece:
            conn.receive_data(piece)
        drain()
        out.append(conn.data_to_send())
    return events, b"".join(out)


@FAST
@given(script=scripts(), points=st.lists(st.integers(0, 2000), max_size=8), size=st.integers(1, 64))
def test_any_split_gives_same_events_and_bytes(script: bytes, points: list[int], size: int) -> None:
    options: dict[str, Any] = {"max_chunk_size": size}
    whole = run(make(**options), [script])
    split = run(make(**options), split_at(script, points))
    assert whole == split
    assert whole[0][-1].__class__.__name__ == "Quit"
    # Each DATA/BDAT transaction ends exactly once; no command was read from inside a body.
    ends = [e for e in whole[0] if type(e).__name__ in ("EndOfMessage", "MessageAborted")]
    assert len(ends) == script.count(b"MAIL FROM")


def answer(conn: ServerConnection, event: object, choice: int) -> None:
    if isinstance(event, AuthSecretLookup):
        conn.provide_secret(None)
    elif isinstance(event, AuthQuery) or choice % 2:
        conn.reject()
    else:
        conn.accept()


hostile = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"EHLO x\r\n",
                b"LHLO x\r\n",
                b"MAIL FROM:<a@b.c>\r\n",
                b"RCPT TO:<d@e.f>\r\n",
                b"DATA\r\n",
                b"BDAT 3\r\n",
                b"BDAT 2 LAST\r\n",
                b"\r\n.\r\n",
                b"AUTH PLAIN\r\n",
                b"AUTH LOGIN\r\n",
                b"AUTH CRAM-MD5\r\n",
                b"STARTTLS\r\n",
                b"*\r\n",
                b"AHVAcA==\r\n",
                b"RSET\r\n",
                b"VRFY x\r\n",
                b"\xff\xfe\r\n",
                b"\n.\n",
                b"X" * 3000,
            ]
        ),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(
    chunks=hostile,
    lmtp=st.booleans(),
    choices=st.lists(st.integers(0, 3), max_size=40),
)
def test_hostile_input_only_documented_errors(
    chunks: list[bytes], lmtp: bool, choices: list[int]
) -> None:
    conn = make(
        lmtp=lmtp,
        starttls=True,
        auth_require_tls=False,
        auth_mechanisms=("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "XOAUTH2"),
        max_errors=50,
        max_chunk_size=16,
    )
    choice = iter(choices)
    for chunk in [*chunks, b""]:
        conn.receive_data(chunk)
        for _ in range(1000):
            try:
                event = conn.next_event()
            except RemoteProtocolError:
                assert conn.closed
                assert re.search(rb"421 4\.7\.0 Too many", conn.data_to_send())
                return
            if event is NEED_DATA:
                break
            if event is PAUSED:
                if conn.closed:
                    return
                if conn.pending is None:
                    conn.tls_started()
                    continue
                answer(conn, conn.pending, next(choice, 0))
            elif isinstance(event, EndOfMessage) and conn.pending is event:
                answer(conn, event, next(choice, 0))
        else:
            raise AssertionError("next_event() did not settle")
        out = conn.data_to_send()
        # Every reply line is well formed.
        for line in out.split(b"\r\n")[:-1]:
            assert re.match(rb"[2-5][0-9][0-9][ -]", line), line
    assert conn.closed


def test_local_errors_are_local() -> None:
    conn = make()
    try:
        conn.accept()
    except LocalProtocolError:
        pass
    else:
        raise AssertionError("accept() without a pending decision must raise")
