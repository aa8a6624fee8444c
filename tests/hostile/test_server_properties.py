"""Property tests of the server core against hostile byte streams (hypothesis).

* Chunk-split invariance: the same client bytes cut at any points give the same events and the
  same reply bytes (RFC 5321 §4.5.3 limits and RFC 2920 pipelining must not depend on how TCP
  segments the stream). Body chunk boundaries are the one thing allowed to differ, so
  consecutive :class:`~esmtp_core.BodyChunk` events are merged before comparing.
* Random bytes, fed whole and byte by byte, raise nothing but
  :class:`~esmtp_core.RemoteProtocolError`, and every output byte is a well-formed reply.
* Memory stays bounded: megabytes of input without a line ending, inside and outside DATA, keep
  the core's buffers below a bound set by its configured limits.
"""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esmtp_core import BareLineEndingPolicy, BodyChunk, ServerConfig
from fuzz.harness import (
    drive_server,
    retained_bytes,
    server_bound,
    server_config_from_flags,
)

from ._sessions import SESSION, examples, splits

PROPERTY = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# STARTTLS is left out: what a client pipelines behind it is dropped only if it already arrived,
# which depends on the split by design (RFC 3207 §5); test_starttls_injection covers it.
CONFIGS = st.integers(0, 255).map(lambda flags: server_config_from_flags(flags & ~0x02))


def merged(events: list[object]) -> list[object]:
    """Events with runs of body chunks joined into one (their boundaries follow the splits)."""
    out: list[object] = []
    for event in events:
        if isinstance(event, BodyChunk) and out and isinstance(out[-1], BodyChunk):
            out[-1] = BodyChunk(data=out[-1].data + event.data)
        else:
            out.append(event)
    return out


@PROPERTY
@given(config=CONFIGS, mask=st.integers(0, 0xFFFF), stream=SESSION, data=st.data())
def test_split_invariance(
    config: ServerConfig, mask: int, stream: bytes, data: st.DataObject
) -> None:
    def rejects(number: int) -> bool:
        return bool(mask >> (number % 16) & 1)

    whole = drive_server([stream], config=config, rejects=rejects)
    pieces = data.draw(splits(stream))
    cut = drive_server(pieces, config=config, rejects=rejects)
    assert merged(cut.events) == merged(whole.events)
    assert bytes(cut.output) == bytes(whole.output)
    assert (cut.remote_error is None) == (whole.remote_error is None)
    one_by_one = drive_server(
        [stream[i : i + 1] for i in range(len(stream))], config=config, rejects=rejects
    )
    assert merged(one_by_one.events) == merged(whole.events)
    assert bytes(one_by_one.output) == bytes(whole.output)


@PROPERTY
@given(config=CONFIGS, mask=st.integers(0, 0xFFFF), stream=SESSION, data=st.data())
def test_late_decisions_change_nothing(
    config: ServerConfig, mask: int, stream: bytes, data: st.DataObject
) -> None:
    """RFC 2920: a decision answered later, while the client's pipelined commands keep
    arriving, gives the same events and replies, in the same order, as an immediate answer."""

    def rejects(number: int) -> bool:
        return bool(mask >> (number % 16) & 1)

    now = drive_server([stream], config=config, rejects=rejects)
    pieces = data.draw(splits(stream))
    late = drive_server(pieces, config=config, rejects=rejects, answer_late=True)
    assert merged(late.events) == merged(now.events)
    assert bytes(late.output) == bytes(now.output)


@PROPERTY
@given(config=CONFIGS, noise=st.binary(max_size=2000))
def test_random_bytes_whole_and_bytewise(config: ServerConfig, noise: bytes) -> None:
    # drive_server lets nothing but RemoteProtocolError through and checks every reply line.
    drive_server([noise], config=config)
    drive_server([noise[i : i + 1] for i in range(len(noise))], config=config)


@PROPERTY
@given(config=CONFIGS, prefix=SESSION, noise=st.binary(max_size=500))
def test_random_bytes_after_a_session_prefix(
    config: ServerConfig, prefix: bytes, noise: bytes
) -> None:
    drive_server([prefix, noise], config=config, rejects=lambda n: n % 3 == 2)


MIB = 1024 * 1024


def _flood(prefix: bytes, filler: bytes, total: int, config: ServerConfig) -> int:
    """Feed ``prefix`` then ``total`` bytes of ``filler`` in 64 KiB pieces; return the peak of
    traced allocations (the harness checks the retained-bytes bound after every piece)."""
    piece = (filler * (65536 // len(filler) + 1))[:65536]
    count = total // len(piece)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        drive_server([prefix, *([piece] * count)], config=config)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


LIMITED = ServerConfig(
    hostname="mx.example",
    max_chunk_size=65536,
    max_message_size=1_000_000,
    bare_line_endings=BareLineEndingPolicy.REJECT,
)


def test_endless_command_line_is_bounded() -> None:
    peak = _flood(b"EHLO c\r\nMAIL FROM:<", b"a", 16 * MIB, LIMITED)
    assert peak < 4 * MIB


def test_endless_data_line_is_bounded() -> None:
    envelope = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
    peak = _flood(envelope, b"x", 16 * MIB, LIMITED)
    assert peak < 4 * MIB


def test_endless_bare_lf_body_is_bounded() -> None:
    envelope = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
    peak = _flood(envelope, b"line\n.\n", 16 * MIB, LIMITED)
    assert peak < 4 * MIB


def test_endless_auth_line_is_bounded() -> None:
    config = ServerConfig(hostname="mx.example", auth_require_tls=False)
    peak = _flood(b"EHLO c\r\nAUTH PLAIN\r\n", b"QUFB", 16 * MIB, config)
    assert peak < 4 * MIB


def test_endless_pipelined_commands_are_bounded() -> None:
    # Each NOOP is answered as it is read; the reply bytes are drained after every piece, so
    # nothing may accumulate, and the command limit ends the session long before 16 MiB.
    peak = _flood(b"EHLO c\r\n", b"NOOP\r\n", 16 * MIB, LIMITED)
    assert peak < 4 * MIB


def test_retained_bytes_sees_buffers() -> None:
    """The bound check itself must be able to fail: it sees bytes held in nested objects."""

    class Holder:
        def __init__(self) -> None:
            self.inner = {"queue": [bytearray(5000)]}

    assert retained_bytes(Holder()) >= 5000
    assert server_bound(LIMITED) < 16 * MIB
