"""Section ``core``, part 1: the DATA hot path without I/O (issue 6, item 1).

For each body the same wire bytes, split in 64 KiB chunks (or 1-octet chunks for the worst case),
go through every contender:

* ``bytes.find`` — one ``find(b"\\r\\n.\\r\\n")`` over the whole wire buffer: the practical ceiling
  of anything written in Python (it does not even unstuff).
* ``naive per-line loop`` — the floor: buffer the chunks, cut lines with ``find``, compare each
  line with ``.``, strip a leading dot, collect the lines (no bare-LF or line-length checks).
* ``ServerConnection DATA`` — our server core in DATA state with the strict default rules
  (bare LF/CR rejected, 1000-octet line limit), fed the chunks, consuming ``BodyChunk`` events.
* ``ServerConnection BDAT`` — the same body sent as ``BDAT <n> LAST`` (RFC 3030): no stuffing.
* ``ClientConnection dot-stuffing`` — the client core (after its DATA got 354) encoding the raw
  body, fed in the same chunk sizes, with ``send_body()``/``end_body()``/``data_to_send()``.

Rates are octets of *message body* per CPU second. Every contender's output is checked against the
expected body once before timing: a fast wrong parser would be worthless.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .bodies import chunks, dot_heavy_body, realistic_body, stuff, unstuff_reference
from .core_drivers import (
    client_in_body,
    encode_into,
    feed_server,
    server_in_data_state,
    server_in_transaction,
)
from .harness import Case, Group, Metric, measure_cpu_throughput

__all__ = ["build"]

KIB = 1024
MIB = 1024 * 1024
CHUNK = 64 * KIB

END = b"\r\n.\r\n"


def naive_unstuff(pieces: list[bytes]) -> bytes:
    """The floor: a per-line Python loop (what a first attempt at a DATA reader looks like)."""
    out: list[bytes] = []
    buf = b""
    for piece in pieces:
        buf += piece
        start = 0
        while True:
            end = buf.find(b"\r\n", start)
            if end < 0:
                break
            line = buf[start : end + 2]
            start = end + 2
            if line == b".\r\n":
                return b"".join(out)
            if line[:1] == b".":
                line = line[1:]
            out.append(line)
        buf = buf[start:]
    raise ValueError("no end of data")


def _check(name: str, got: bytes, expected: bytes) -> None:
    if got != expected:
        raise AssertionError(
            f"{name} produced a wrong body ({len(got)} octets instead of {len(expected)})"
        )


def _cases(body: bytes, piece_size: int, min_time: float) -> list[Case]:
    wire = stuff(body)
    pieces = chunks(wire, piece_size)
    bdat_pieces = chunks(b"BDAT %d LAST\r\n" % len(body) + body, piece_size)
    assert unstuff_reference(wire) == body
    nbytes = len(body)
    measure: Callable[[Callable[[int], Any], Callable[[Any], object]], dict[str, float]] = partial(
        measure_cpu_throughput, nbytes=nbytes, min_time=min_time
    )

    def run_find() -> dict[str, float]:
        if wire.find(END) != len(wire) - len(END) and len(wire) > 3:
            raise AssertionError("bytes.find did not find the end of data at the end")

        def passes(n: int) -> None:
            find = wire.find
            for _ in range(n):
                find(END)

        return measure(lambda n: n, passes)

    def run_naive() -> dict[str, float]:
        _check("naive loop", naive_unstuff(pieces), body)

        def passes(n: int) -> None:
            for _ in range(n):
                naive_unstuff(pieces)

        return measure(lambda n: n, passes)

    def run_core_data() -> dict[str, float]:
        conn = server_in_data_state()
        _check("ServerConnection DATA", feed_server(conn, pieces, collect=True), body)
        return measure(lambda n: [server_in_data_state() for _ in range(n)],
                       lambda conns: [feed_server(c, pieces) for c in conns])

    def run_core_bdat() -> dict[str, float]:
        conn = server_in_transaction()
        _check("ServerConnection BDAT", feed_server(conn, bdat_pieces, collect=True), body)
        return measure(lambda n: [server_in_transaction() for _ in range(n)],
                       lambda conns: [feed_server(c, bdat_pieces) for c in conns])

    raw_pieces = chunks(body, piece_size)

    def run_encoder() -> dict[str, float]:
        _check("ClientConnection dot-stuffing", encode_into(client_in_body(), raw_pieces), wire)
        return measure(lambda n: [client_in_body() for _ in range(n)],
                       lambda conns: [encode_into(c, raw_pieces) for c in conns])

    return [
        Case("bytes.find", run_find),
        Case("naive per-line loop", run_naive),
        Case("ServerConnection DATA", run_core_data, ours=True),
        Case("ServerConnection BDAT", run_core_bdat, ours=True),
        Case("ClientConnection dot-stuffing", run_encoder, ours=True),
    ]


METRICS = (
    Metric("GB/s", "GB/s (CPU)"),
    Metric("us", "CPU µs/body", higher_is_better=False, ratio=False),
)


def build(quick: bool) -> list[Group]:
    """The DATA parsing groups; ``quick`` keeps only small bodies and short timings."""
    min_time = 0.02 if quick else 0.25
    plan: list[tuple[str, str, bytes, int]] = []
    sizes = [KIB, 100 * KIB] if quick else [KIB, 100 * KIB, MIB, 10 * MIB]
    for size in sizes:
        label = f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"
        plan.append((f"data-realistic-{label.replace(' ', '')}", f"realistic {label}",
                     realistic_body(size), CHUNK))
    dots = 100 * KIB if quick else MIB
    plan.append((f"data-dots-{dots // KIB}KiB", f"worst case: every line a short dot line, "
                 f"{dots // KIB} KiB", dot_heavy_body(dots), CHUNK))
    tiny = 4 * KIB if quick else 64 * KIB
    plan.append((f"data-1byte-{tiny // KIB}KiB", f"worst case: 1-octet chunks, realistic "
                 f"{tiny // KIB} KiB", realistic_body(tiny), 1))
    groups = []
    for key, title, body, piece in plan:
        groups.append(Group(
            section="core",
            key=key,
            title=f"DATA parse, {title}"
            + (" (fed 1 octet at a time)" if piece == 1 else " body, fed in 64 KiB chunks"),
            metrics=METRICS,
            cases=_cases(body, piece, min_time),
            baselines=("bytes.find", "naive per-line loop"),
            params={"body_octets": len(body), "chunk_octets": piece,
                    "dot_lines": body.count(b"\r\n.") + body.startswith(b".")},
        ))
    return groups
