"""The client's strict, incremental reply parser (RFC 5321 §4.2, RFC 3463 codes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esmtp_core import RemoteProtocolError, Reply
from esmtp_core._replies import ReplyParser, split_enhanced


def parse_all(data: bytes, *, max_line_length: int = 4096, max_lines: int = 200) -> list[Reply]:
    parser = ReplyParser(max_line_length=max_line_length, max_lines=max_lines)
    parser.feed(data)
    replies = []
    while (reply := parser.next_reply()) is not None:
        replies.append(reply)
    return replies


def test_single_line() -> None:
    assert parse_all(b"250 OK\r\n") == [Reply(code=250, lines=("OK",))]


def test_code_only_and_empty_text() -> None:
    assert parse_all(b"250\r\n250 \r\n") == [Reply(code=250), Reply(code=250)]


def test_multi_line() -> None:
    data = b"250-mx.example Hello\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    assert parse_all(data) == [
        Reply(code=250, lines=("mx.example Hello", "PIPELINING", "8BITMIME"))
    ]


def test_continuation_with_empty_text() -> None:
    assert parse_all(b"250-\r\n250 done\r\n") == [Reply(code=250, lines=("", "done"))]


def test_enhanced_code_split_from_every_line() -> None:
    data = b"550-5.1.1 No such user\r\n550 5.1.1 here\r\n"
    assert parse_all(data) == [Reply(code=550, lines=("No such user", "here"), enhanced="5.1.1")]


def test_enhanced_code_alone() -> None:
    assert parse_all(b"250 2.0.0\r\n") == [Reply(code=250, lines=("",), enhanced="2.0.0")]


def test_enhanced_code_of_wrong_class_stays_text() -> None:
    assert parse_all(b"250 5.1.1 odd\r\n") == [Reply(code=250, lines=("5.1.1 odd",))]


def test_version_like_text_is_not_an_enhanced_code() -> None:
    assert parse_all(b"220 2.0.0.1 server\r\n")[0].enhanced is None
    assert split_enhanced(220, ["2.0.0x"]) == (None, ("2.0.0x",))


def test_utf8_text_and_invalid_octets() -> None:
    (reply,) = parse_all("250 héllo \xff\r\n".encode("latin-1"))
    assert reply.lines == ("h\ufffdllo \ufffd",)
    (reply,) = parse_all("250 héllo\r\n".encode())
    assert reply.lines == ("héllo",)


def test_incremental_feeding_gives_the_same_replies() -> None:
    data = b"220 hi\r\n250-a\r\n250-b\r\n250 c\r\n354 go\r\n"
    parser = ReplyParser(max_line_length=512, max_lines=10)
    replies = []
    for octet in data:
        parser.feed(bytes([octet]))
        while (reply := parser.next_reply()) is not None:
            replies.append(reply)
    assert replies == parse_all(data)
    assert not parser.in_reply


@pytest.mark.parametrize(
    "data",
    [
        b"25 OK\r\n",  # two digits
        b"2500 OK\r\n",  # fourth octet is a digit
        b"650 OK\r\n",  # first digit out of range
        b"160 OK\r\n",
        b"260 OK\r\n",  # second digit out of range (RFC 5321: 0-5)
        b"25x OK\r\n",
        b"abc\r\n",
        b"\r\n",  # empty line
        b"250_OK\r\n",
        b"250 OK\n",  # bare LF
        b"250 O\rK\r\n",  # bare CR
        b"250-a\r\n251 b\r\n",  # mixed codes
        b"250-a\r\n550-b\r\n250 c\r\n",
        b"\xff\xfe\r\n",
        b"+OK POP3 ready\r\n",  # not an SMTP server at all
        b"HTTP/1.1 400 Bad Request\r\n",
    ],
)
def test_malformed_replies_are_remote_errors(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_all(data)


def test_over_long_complete_line() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_all(b"250 " + b"x" * 600 + b"\r\n", max_line_length=512)
    assert parse_all(b"250 " + b"x" * 506 + b"\r\n", max_line_length=512)


def test_over_long_line_detected_before_its_end() -> None:
    parser = ReplyParser(max_line_length=512, max_lines=10)
    parser.feed(b"250 " + b"x" * 400)
    assert parser.next_reply() is None
    parser.feed(b"x" * 200)
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()


def test_too_many_lines() -> None:
    data = b"250-x\r\n" * 10 + b"250 end\r\n"
    with pytest.raises(RemoteProtocolError):
        parse_all(data, max_lines=10)
    assert len(parse_all(data, max_lines=11)[0].lines) == 11


def test_endless_continuation_is_bounded() -> None:
    parser = ReplyParser(max_line_length=512, max_lines=200)
    with pytest.raises(RemoteProtocolError):  # noqa: PT012
        for _ in range(1000):
            parser.feed(b"250-" + b"y" * 500 + b"\r\n")
            assert parser.next_reply() is None


def test_discard_forgets_partial_reply() -> None:
    parser = ReplyParser(max_line_length=512, max_lines=10)
    parser.feed(b"250-first\r\n250 sec")
    assert parser.next_reply() is None
    assert parser.in_reply
    parser.discard()
    assert not parser.in_reply
    parser.feed(b"220 fresh\r\n")
    assert parser.next_reply() == Reply(code=220, lines=("fresh",))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_replies_or_remote_errors(data: bytes) -> None:
    parser = ReplyParser(max_line_length=512, max_lines=20)
    parser.feed(data)
    try:
        while parser.next_reply() is not None:
            pass
    except RemoteProtocolError:
        pass


@given(
    st.lists(
        st.tuples(
            st.integers(200, 559).filter(lambda c: c % 100 < 60),
            st.lists(
                st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20),
                min_size=1,
                max_size=4,
            ),
        ),
        min_size=1,
        max_size=5,
    ),
    st.data(),
)
def test_round_trip_with_any_split(specs: list[tuple[int, list[str]]], data: st.DataObject) -> None:
    replies = [Reply(code=code, lines=tuple(lines)) for code, lines in specs]
    wire = b"".join(reply.to_bytes() for reply in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    parser = ReplyParser(max_line_length=4096, max_lines=20)
    got = []
    previous = 0
    for cut in [*cuts, len(wire)]:
        parser.feed(wire[previous:cut])
        previous = cut
        while (reply := parser.next_reply()) is not None:
            got.append(reply)
    # Text that happens to start with an enhanced code of the right class is split off.
    assert [(r.code, r.enhanced, r.text) for r in got] == [
        (r.code, *_expected_split(r)) for r in replies
    ]


def _expected_split(reply: Reply) -> tuple[str | None, str]:
    enhanced, lines = split_enhanced(reply.code, list(reply.lines))
    return enhanced, "\n".join(lines)


def test_known_single_line_replies_are_reused() -> None:
    """The same single-line reply parses to the very same (immutable) value again."""
    parser = ReplyParser(max_line_length=512, max_lines=10)
    parser.feed(b"250 2.1.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
    first, second, third = parser.next_reply(), parser.next_reply(), parser.next_reply()
    assert first == Reply(code=250, lines=("Ok",), enhanced="2.1.0")
    assert second is first
    assert third == Reply(code=250, lines=("Ok",), enhanced="2.1.5")
    assert parser.next_reply() is None


def test_known_reply_line_inside_a_multi_line_reply_is_parsed_as_a_line() -> None:
    """A remembered line arriving as the last line of a multi-line reply ends that reply; it is
    not returned on its own."""
    parser = ReplyParser(max_line_length=512, max_lines=10)
    parser.feed(b"250 done\r\n250-first\r\n250 done\r\n")
    assert parser.next_reply() == Reply(code=250, lines=("done",))
    assert parser.next_reply() == Reply(code=250, lines=("first", "done"))
    parser.feed(b"251-other\r\n250 done\r\n")  # a mixed-code reply is refused as before
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()


def test_remembered_replies_are_bounded() -> None:
    parser = ReplyParser(max_line_length=512, max_lines=10)
    for number in range(ReplyParser.KNOWN_REPLIES * 4):
        parser.feed(b"250 queued as %d\r\n" % number)
        assert parser.next_reply() == Reply(code=250, lines=(f"queued as {number}",))
    assert len(parser._known) == ReplyParser.KNOWN_REPLIES


def test_known_line_split_across_reads() -> None:
    parser = ReplyParser(max_line_length=512, max_lines=10)
    parser.feed(b"354 go\r\n")
    known = parser.next_reply()
    for piece in (b"35", b"4 g", b"o\r", b"\n250 x\r"):
        parser.feed(piece)
    assert parser.next_reply() is known
    assert parser.next_reply() is None
    parser.feed(b"\n")
    assert parser.next_reply() == Reply(code=250, lines=("x",))
