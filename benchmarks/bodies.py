"""Message bodies for the DATA benchmarks, generated deterministically (fixed seeds).

* :func:`realistic_body` — lines of 70 to 80 octets (RFC 5322 §2.1.1 recommends at most 78 plus
  CRLF), printable ASCII with spaces, an empty line now and then, and about one line in fifty
  starting with a dot (quoted text, ``.signature`` lines), which DATA must dot-stuff
  (RFC 5321 §4.5.2).
* :func:`dot_heavy_body` — the worst case for a dot-unstuffer: every line is short and starts
  with a dot, so almost every octet sits next to a stuffed dot.

Bodies are *unstuffed* message content ending in CRLF; :func:`stuff` gives the DATA wire form
including the terminating ``.CRLF``, :func:`chunks` splits it the way a socket would hand it over.
"""

from __future__ import annotations

import random

__all__ = ["chunks", "dot_heavy_body", "realistic_body", "stuff", "unstuff_reference"]

_ALPHABET = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
             b"        ,;:-'\"()!?/=+")


def _line(rng: random.Random, length: int) -> bytes:
    return bytes(rng.choices(_ALPHABET, k=length))


def realistic_body(size: int, *, seed: int = 5321) -> bytes:
    """About ``size`` octets (exactly ``size``, trimmed at a line end) of realistic text."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    total = 0
    while total < size:
        roll = rng.random()
        if len(lines) == 5:  # so that even a 1 KiB body has a line to dot-stuff
            roll = 0.06
        if roll < 0.05:
            line = b"\r\n"  # paragraph break
        elif roll < 0.07:
            line = b"." + _line(rng, rng.randint(69, 79)) + b"\r\n"
        else:
            line = _line(rng, rng.randint(70, 80)) + b"\r\n"
        lines.append(line)
        total += len(line)
    return _trim(b"".join(lines), size)


def dot_heavy_body(size: int, *, seed: int = 1870) -> bytes:
    """About ``size`` octets where every line is 1 to 12 octets starting with a dot."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    total = 0
    while total < size:
        line = b"." + _line(rng, rng.randint(0, 11)) + b"\r\n"
        lines.append(line)
        total += len(line)
    return _trim(b"".join(lines), size)


def _trim(body: bytes, size: int) -> bytes:
    """Cut to ``size`` octets, then pad the last line so the body still ends in CRLF."""
    head = body[: max(0, size - 2)]
    if head.endswith(b"\r"):  # cut inside a CRLF: no bare CR may remain
        head = head[:-1] + b"x"
    return head + b"\r\n"


def stuff(body: bytes) -> bytes:
    """The DATA wire form: dot-stuffed (RFC 5321 §4.5.2) plus the final ``.CRLF``.

    ``body`` must end in CRLF (as the generated bodies do), so the terminator is CRLF.CRLF.
    """
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def unstuff_reference(wire: bytes) -> bytes:
    """The body ``wire`` (from :func:`stuff`) carries; used to check every contender's output."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    content = wire[:-3]
    if content.startswith(b"."):
        content = content[1:]
    return content.replace(b"\r\n..", b"\r\n.")


def chunks(data: bytes, size: int) -> list[bytes]:
    """``data`` split into pieces of ``size`` octets (the last one shorter)."""
    return [data[i : i + size] for i in range(0, len(data), size)]
