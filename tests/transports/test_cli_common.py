"""The argument types both commands share (``transports._cli_common``)."""

from __future__ import annotations

import argparse

import pytest

from transports._cli_common import host_port, seconds


@pytest.mark.parametrize(
    ("text", "listening", "expected"),
    [
        ("127.0.0.1:25", False, ("127.0.0.1", 25)),
        ("mx.example:587", False, ("mx.example", 587)),
        ("[::1]:465", False, ("::1", 465)),
        ("127.0.0.1:0", True, ("127.0.0.1", 0)),
        (":8025", True, ("0.0.0.0", 8025)),  # every interface, as asked
        ("[::]:25", True, ("::", 25)),
    ],
)
def test_host_port(text: str, listening: bool, expected: tuple[str, int]) -> None:
    assert host_port(text, listening=listening) == expected


@pytest.mark.parametrize(
    ("text", "listening"),
    [
        ("127.0.0.1", False),  # no port
        ("127.0.0.1:", True),
        ("127.0.0.1:smtp", False),
        ("127.0.0.1:65536", True),
        ("127.0.0.1:-1", True),
        ("127.0.0.1:0", False),  # nothing to connect to on port 0
        (":25", False),  # no host to connect to
        ("[]:25", False),
    ],
)
def test_host_port_refused(text: str, listening: bool) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected HOST:PORT"):
        host_port(text, listening=listening)


def test_seconds() -> None:
    assert seconds("0.5") == 0.5
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            seconds(bad)
