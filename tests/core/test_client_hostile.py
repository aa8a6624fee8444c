"""Client core against arbitrary servers: whatever bytes arrive, in whatever pieces, the only
exceptions are the documented ones, nothing unbounded builds up, and no bare line ending or
unrequested command ever leaves the client."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    AuthResult,
    ClientConfig,
    ClientConnection,
    ClientCredentials,
    ClientEvent,
    EhloReply,
    Greeting,
    LocalProtocolError,
    RemoteProtocolError,
    SessionEnded,
    StartTLSReply,
)

CODES = [
    211,
    214,
    220,
    221,
    235,
    250,
    251,
    252,
    334,
    354,
    421,
    450,
    451,
    452,
    454,
    500,
    501,
    502,
    503,
    504,
    530,
    535,
    538,
    550,
    552,
    553,
    554,
    555,
]
KEYWORDS = [
    "PIPELINING",
    "CHUNKING",
    "BINARYMIME",
    "8BITMIME",
    "SMTPUTF8",
    "SIZE 100",
    "DSN",
    "STARTTLS",
    "ENHANCEDSTATUSCODES",
    "AUTH PLAIN LOGIN CRAM-MD5",
    "SIZE",
    "X-Y z",
]


@st.composite
def replies(draw: st.DrawFn) -> bytes:
    code = draw(st.sampled_from(CODES))
    if code in (250, 220) and draw(st.booleans()):
        lines = ["mx", *draw(st.lists(st.sampled_from(KEYWORDS), max_size=6))]
    elif code == 334:
        lines = [draw(st.sampled_from(["", "VXNlcm5hbWU6", "UGFzc3dvcmQ6", "%%%", "PDEyMz4="]))]
    else:
        lines = draw(
            st.lists(
                st.sampled_from(["", "ok", "2.0.0 ok", "5.1.1 no", "x y"]), min_size=1, max_size=3
            )
        )
    out = b""
    for index, line in enumerate(lines):
        sep = " " if index == len(lines) - 1 else "-"
        out += f"{code}{sep}{line}\r\n".encode()
    return out


server_bytes = st.lists(
    st.one_of(replies(), replies(), replies(), st.binary(max_size=20)), max_size=25
).map(b"".join)


def act(conn: ClientConnection, event: ClientEvent, rng: random.Random) -> None:
    """React to an event like a plausible embedding program would (random choices)."""
    actions = []
    if isinstance(event, Greeting):
        actions = [conn.hello, conn.quit]
    elif isinstance(event, EhloReply):
        actions = [
            lambda: conn.send_message("a@x.org", ["b@x.org", "c@x.org"], b".x\n\x00\xff"),
            lambda: conn.auth(ClientCredentials(username="u", password="p")),
            conn.starttls,
            conn.noop,
            lambda: conn.vrfy("u"),
            conn.quit,
        ]
    elif isinstance(event, StartTLSReply) and event.ready:
        actions = [conn.tls_started]
    else:
        actions = [
            conn.noop,
            conn.rset,
            conn.hello,
            lambda: conn.send_message("a@x.org", ["b@x.org"], b"hi"),
        ]
    with contextlib.suppress(LocalProtocolError):
        rng.choice(actions)()


@settings(max_examples=400, deadline=None)
@given(server_bytes, st.randoms(use_true_random=False), st.booleans())
def test_any_server_bytes(data: bytes, rng: random.Random, insecure: bool) -> None:
    conn = ClientConnection(
        ClientConfig(
            allow_insecure_auth=insecure,
            max_reply_lines=10,
            max_reply_line_length=512,
            bdat_chunk_size=3,
        )
    )
    sent = bytearray()
    position = 0
    try:
        for _ in range(200):
            event = conn.next_event()
            if isinstance(event, SessionEnded):
                assert conn.closed
                assert conn.next_event() == event
                break
            if event is PAUSED:
                conn.tls_started()
                continue
            if event is NEED_DATA:
                sent += conn.data_to_send()
                if position >= len(data):
                    conn.receive_data(b"")
                    continue
                step = rng.randint(1, 40)
                conn.receive_data(data[position : position + step])
                position += step
                continue
            assert isinstance(event, ClientEvent)
            if isinstance(event, AuthResult) and event.ok:
                assert conn.authenticated is not None
            act(conn, event, rng)
    except RemoteProtocolError:
        assert conn.closed
        assert conn.data_to_send() == b""
    sent += conn.data_to_send()
    # Outgoing commands never carry a bare CR or LF (BDAT binary payloads aside).
    if b"BDAT" not in sent:
        assert sent.count(b"\n") == sent.count(b"\r\n") == sent.count(b"\r")
