"""EHLO reply parsing into typed capabilities (RFC 5321 §4.1.1.1 and the extension RFCs)."""

from __future__ import annotations

from esmtp_core import Capabilities, Reply
from esmtp_core._capabilities import parse_capabilities

POSTFIX = Reply(
    code=250,
    lines=(
        "mx.example",
        "PIPELINING",
        "SIZE 10240000",
        "VRFY",
        "ETRN",
        "STARTTLS",
        "AUTH PLAIN LOGIN SCRAM-SHA-256",
        "AUTH=PLAIN LOGIN",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
        "BINARYMIME",
        "REQUIRETLS",
        "XCLIENT NAME ADDR PROTO",
    ),
)


def test_everything_known_is_typed() -> None:
    caps = parse_capabilities(POSTFIX)
    assert caps.server_name == "mx.example"
    assert caps.size == 10240000
    assert caps.size_limit == 10240000
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN", "SCRAM-SHA-256")
    flags = ("pipelining", "chunking", "binarymime", "eightbitmime", "smtputf8", "dsn")
    flags += ("starttls", "enhanced_status_codes", "requiretls")
    assert all(getattr(caps, flag) for flag in flags)


def test_unknown_keywords_are_kept_with_parameters() -> None:
    caps = parse_capabilities(POSTFIX)
    assert caps.has("xclient")
    assert caps.params("XCLIENT") == ("NAME", "ADDR", "PROTO")
    assert caps.params("ETRN") == ()
    assert caps.params("NOPE") is None
    assert [name for name, _ in caps.keywords].count("AUTH") == 1


def test_keywords_are_case_insensitive() -> None:
    caps = parse_capabilities(Reply(code=250, lines=("h", "pipelining", "auth plain", "size")))
    assert caps.pipelining
    assert caps.auth_mechanisms == ("PLAIN",)
    assert caps.size == 0
    assert caps.size_limit is None  # SIZE without a number: no fixed limit (RFC 1870 §4)


def test_size_zero_and_garbage() -> None:
    assert parse_capabilities(Reply(code=250, lines=("h", "SIZE 0"))).size_limit is None
    assert parse_capabilities(Reply(code=250, lines=("h", "SIZE big"))).size == 0


def test_no_size_means_none() -> None:
    assert parse_capabilities(Reply(code=250, lines=("h",))).size is None


def test_junk_lines_are_ignored() -> None:
    caps = parse_capabilities(Reply(code=250, lines=("h", "", "  ", "-bad", "ok_not_keyword")))
    assert caps.keywords == ()


def test_single_line_reply_has_no_extensions() -> None:
    caps = parse_capabilities(Reply(code=250, lines=("mx.example greets you",)))
    assert caps == Capabilities(server_name="mx.example")
