"""Property tests of the client core against hostile servers and hostile bodies (hypothesis).

* Chunk-split invariance: a client core driven by a scripted application against a server core,
  with the bytes of every transfer cut at any points in both directions, gives the same events and
  the same bytes on both sides. (Replaying a recorded server stream would not do: a reply that
  arrives before the command it answers was even flushed is rightly an unsolicited reply.)
* Random bytes from the server, whole and byte by byte, raise nothing but
  :class:`~esmtp_core.RemoteProtocolError` (and :class:`~esmtp_core.LocalProtocolError` for
  commands the core refuses), and never grow the client's buffers without bound.
* Whatever body the application hands over, no bare CR or LF ever leaves the client (RFC 5321
  §2.3.8; SMTP smuggling), through DATA and through BDAT, and a server core receives exactly the
  canonical form of the body.
"""

from __future__ import annotations

import dataclasses
import random
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esmtp_core import ClientConfig, ServerConfig, TransactionResult
from fuzz.harness import (
    ClientRun,
    ScriptedApplication,
    check_no_bare_line_endings,
    client_config_from_flags,
    drive_client,
    server_config_from_flags,
)

from ._pair import Pair, StoredMessage
from ._sessions import examples, splits
from .test_server_properties import merged

PROPERTY = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Replies a hostile server might send, right or wrong, in any order.
REPLY = st.sampled_from(
    [
        b"250 ok\r\n",
        b"250 2.1.0 Sender ok\r\n",
        b"250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
        b"250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 300\r\n",
        b"250-mx.example\r\n250 8BITMIME\r\n",
        b"354 go ahead\r\n",
        b"550 5.1.1 no such user\r\n",
        b"452 4.5.3 too many recipients\r\n",
        b"502 5.5.1 no\r\n",
        b"334 VXNlcm5hbWU6\r\n",
        b"334 UGFzc3dvcmQ6\r\n",
        b"334 =notbase64\r\n",
        b"235 2.7.0 ok\r\n",
        b"535 5.7.8 bad\r\n",
        b"421 4.4.2 timeout\r\n",
        b"221 bye\r\n",
        b"250-a\r\n251 mixed\r\n",
        b"250 bare lf\n",
        b"2x0 nonsense\r\n",
    ]
)
SERVER_STREAM = st.tuples(
    st.sampled_from([b"220 mx.example ESMTP\r\n", b"554 go away\r\n", b""]),
    st.lists(st.one_of(REPLY, st.binary(max_size=6)), max_size=25),
).map(lambda parts: parts[0] + b"".join(parts[1]))
CONFIGS = st.integers(0, 255).map(client_config_from_flags)


@dataclass
class LiveRun:
    """Everything observable in one live client-server session."""

    client_events: list[object]
    client_wire: bytes
    server_events: list[object]
    server_wire: bytes
    messages: list[StoredMessage]


def live_session(
    config: ClientConfig, server_flags: int, seed: int, cut: Callable[[bytes], list[bytes]]
) -> LiveRun:
    """The scripted application (``seed``) against a server core answering 4 in 5 decisions
    positively, with every transfer cut by ``cut``."""
    decisions = random.Random(seed)
    holder: list[ScriptedApplication] = []
    pair = Pair(
        config,
        # No STARTTLS: plaintext behind a 220 is dropped only if it already arrived, which
        # depends on the split by design (RFC 3207 §5); test_starttls_injection covers it.
        # Both sides speak the same protocol (LMTP or SMTP), or the session ends at once.
        dataclasses.replace(
            server_config_from_flags((server_flags & ~0x03) | int(config.lmtp)), max_errors=50
        ),
        decide=lambda event: decisions.random() < 0.8,
        on_client_event=lambda event: holder[0].on_event(event),  # noqa: PLW0108  (late bound)
        cut=cut,
    )
    holder.append(ScriptedApplication(pair.client, seed, ClientRun()))
    holder[0].act()
    pair.pump()
    for _ in range(8):  # a few more commands once the session is quiet
        if pair.client.closed:
            break
        holder[0].act()
        pair.pump()
    return LiveRun(
        pair.client_events,
        bytes(pair.client_wire),
        merged(pair.server_events),
        bytes(pair.server_wire),
        pair.app.messages,
    )


def random_cuts(seed: int) -> Callable[[bytes], list[bytes]]:
    """Cut every transfer at pseudo-random points drawn from ``seed``."""
    rng = random.Random(seed)

    def cut(data: bytes) -> list[bytes]:
        pieces, start = [], 0
        while start < len(data):
            size = rng.choice([1, 1, 2, 3, 5, 8, 64, 4096])
            pieces.append(data[start : start + size])
            start += size
        return pieces

    return cut


@PROPERTY
@given(
    config=CONFIGS,
    server_flags=st.integers(0, 255),
    seed=st.integers(0, 0xFFFF),
    cut_seed=st.integers(0, 2**32),
)
def test_split_invariance_in_a_live_session(
    config: ClientConfig, server_flags: int, seed: int, cut_seed: int
) -> None:
    """Client core against server core: cutting the bytes in both directions anywhere changes
    nothing that either side observes (body chunk boundaries apart)."""
    whole = live_session(config, server_flags, seed, lambda data: [data])
    for cut in (random_cuts(cut_seed), lambda data: [data[i : i + 1] for i in range(len(data))]):
        assert live_session(config, server_flags, seed, cut) == whole


@PROPERTY
@given(
    config=CONFIGS,
    seed=st.integers(0, 0xFFFF),
    noise=st.one_of(st.binary(max_size=2000), SERVER_STREAM),
)
def test_random_bytes_whole_and_bytewise(config: ClientConfig, seed: int, noise: bytes) -> None:
    drive_client([noise], config=config, seed=seed)
    drive_client([noise[i : i + 1] for i in range(len(noise))], config=config, seed=seed)


@PROPERTY
@given(seed=st.integers(0, 0xFFFF), noise=st.binary(max_size=500))
def test_random_bytes_after_a_good_start(seed: int, noise: bytes) -> None:
    start = (
        b"220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
        b"250 8BITMIME\r\n"
    )
    drive_client([start, noise], config=client_config_from_flags(0), seed=seed)


MIB = 1024 * 1024


def _peak(pieces: list[bytes]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        drive_client(pieces, config=ClientConfig(), seed=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_endless_reply_line_is_bounded() -> None:
    assert _peak([b"220-", *([b"x" * 65536] * 256)]) < 4 * MIB


def test_endless_multiline_reply_is_bounded() -> None:
    assert _peak([b"220 hi\r\n", *([b"250-capability\r\n" * 4096] * 256)]) < 4 * MIB


# --- no bare line endings on the wire, whatever the body --------------------------------------

LINE_ENDINGS = st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\r", b"\n\n", b"\n\r"])
BODY = st.lists(
    st.one_of(
        LINE_ENDINGS,
        st.sampled_from([b".", b"..", b".\r\n", b"\r\n.\r\n", b"\xc3\xa9", b"\x00", b" "]),
        st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b),
    ),
    max_size=40,
).map(b"".join)


def canonical(body: bytes) -> bytes:
    """CRLF for every CRLF, bare CR and bare LF (an independent reimplementation)."""
    out = bytearray()
    index = 0
    while index < len(body):
        byte = body[index : index + 1]
        if byte == b"\r":
            out += b"\r\n"
            index += 2 if body[index + 1 : index + 2] == b"\n" else 1
        elif byte == b"\n":
            out += b"\r\n"
            index += 1
        else:
            out += byte
            index += 1
    return bytes(out)


@settings(max_examples=examples(200), deadline=None)
@given(
    body=BODY,
    data=st.data(),
    mode=st.sampled_from(["send_message", "stream", "data"]),
    chunking=st.booleans(),
    pipelining=st.booleans(),
)
def test_client_never_emits_bare_line_endings(
    body: bytes, data: st.DataObject, mode: str, chunking: bool, pipelining: bool
) -> None:
    pair = Pair(
        ClientConfig(local_hostname="c.example", use_binarymime=False, bdat_chunk_size=16),
        ServerConfig(
            hostname="mx.example",
            chunking=chunking,
            pipelining=pipelining,
            max_data_line_length=None,
        ),
    )
    pair.pump()
    pair.client.hello()
    pair.pump()
    pieces = data.draw(splits(body))
    if mode == "send_message":
        pair.client.send_message("a@example.org", ["b@example.net"], body)
    elif mode == "stream":
        pair.client.start_transaction("a@example.org", ["b@example.net"])
        for piece in pieces:
            pair.client.send_body(piece)
        pair.client.end_body()
    else:
        pair.client.mail("a@example.org")
        pair.client.rcpt("b@example.net")
        pair.client.data()
        for piece in pieces:
            pair.client.send_body(piece)
        pair.client.end_body()
    pair.pump()
    check_no_bare_line_endings(bytes(pair.client_wire))
    assert len(pair.app.messages) == 1, (pair.client_events, bytes(pair.server_wire))
    expected = canonical(body)
    used_bdat = chunking and mode != "data"
    if not used_bdat and expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"  # DATA needs the CRLF before the final dot (RFC 5321 §4.1.1.4)
    assert pair.app.messages[0].content == expected
    if mode != "data":
        assert isinstance(pair.client_events[-1], TransactionResult)
        assert pair.client_events[-1].ok
