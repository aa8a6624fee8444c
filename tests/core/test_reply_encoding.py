"""Reply.to_bytes: the single-line fast path and the prebuilt bytes of registered constants."""

from __future__ import annotations

import pytest

from esmtp_core import _reply
from esmtp_core._reply import Reply, constant_reply
from esmtp_core._state import Replies


@pytest.mark.parametrize(
    ("reply", "enhanced", "plain"),
    [
        (Reply.make(250, "2.1.0", "Sender OK"), b"250 2.1.0 Sender OK\r\n", b"250 Sender OK\r\n"),
        (Reply.make(250, "2.0.0", ""), b"250 2.0.0\r\n", b"250 \r\n"),
        (Reply.make(354, None, "Go"), b"354 Go\r\n", b"354 Go\r\n"),
        (Reply.make(250, None), b"250 \r\n", b"250 \r\n"),
        (
            Reply.make(550, "5.1.1", "caf\u00e9"),
            "550 5.1.1 caf\u00e9\r\n".encode(),
            b"550 caf\xc3\xa9\r\n",
        ),
        (
            Reply.make(250, "2.0.0", "a", "", "c"),
            b"250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 c\r\n",
            b"250-a\r\n250-\r\n250 c\r\n",
        ),
    ],
)
def test_wire_form(reply: Reply, enhanced: bytes, plain: bytes) -> None:
    assert reply.to_bytes() == enhanced
    assert reply.to_bytes(enhanced_codes=False) == plain
    registered = constant_reply(Reply.make(reply.code, reply.enhanced, *reply.lines))
    assert registered.to_bytes() == enhanced
    assert registered.to_bytes(enhanced_codes=False) == plain


def test_constants_are_registered_and_equal_copies_encode_alike() -> None:
    for reply in (Replies.OK, Replies.START_DATA, Replies.TOO_MANY_ERRORS):
        copy = Reply.make(reply.code, reply.enhanced, *reply.lines)
        assert copy == reply
        assert copy is not reply
        assert reply.to_bytes() == copy.to_bytes()
        assert reply.to_bytes(enhanced_codes=False) == copy.to_bytes(enhanced_codes=False)


def test_dynamic_replies_are_not_registered() -> None:
    before = len(_reply._ENCODED)
    for n in range(50):
        Replies.syntax(f"X{n}").to_bytes()
        Replies.line_too_long(n).to_bytes()
    assert len(_reply._ENCODED) == before
