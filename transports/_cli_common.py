"""Argument types shared by ``esmtp serve`` and ``esmtp send`` (see :mod:`transports.cli`)."""

from __future__ import annotations

import argparse

__all__ = ["UsageError", "host_port", "seconds"]


class UsageError(Exception):
    """A bad combination of options (exit status 2)."""


def host_port(value: str, *, listening: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` as ``(host, port)``.

    To listen on, ``:PORT`` means every interface and port 0 a free port; to connect to, both
    parts are required and the port is 1-65535.
    """
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    lowest = 0 if listening else 1
    valid_port = port_text.isdigit() and lowest <= int(port_text) <= 65535
    if not sep or not valid_port or not (host or listening):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    if not host:  # ":PORT" to listen on asks for every interface
        host = "0.0.0.0"  # noqa: S104
    return host, int(port_text)


def seconds(text: str) -> float:
    """A positive number of seconds (a timeout)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("the timeout must be positive")
    return value
