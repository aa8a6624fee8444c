"""Section ``commands``: the command path without I/O (issue 6, item 2).

One full transaction per pass: greeting, EHLO, MAIL, two RCPT, DATA with a 1 KiB body, QUIT, on a
fresh connection, every decision accepted. Measured in CPU µs per transaction:

* ``server core, one command per read`` — the bytes a non-pipelining client sends, one
  ``receive_data`` per command (what the server does for smtplib);
* ``server core, pipelined`` — the same bytes in the groups a PIPELINING client sends (EHLO;
  MAIL+RCPT+RCPT+DATA; body; QUIT);
* ``client core + server core (DATA)`` — our client core (``send_message`` with PIPELINING)
  producing the commands and reading the replies, wired in memory to our server core (both
  sides' costs); ``(BDAT)`` the same with CHUNKING offered, so the body goes as ``BDAT LAST``;
* ``server core, next message on an open session`` — MAIL, one RCPT, DATA and the 1 KiB body on
  a session already past EHLO, one read each: what ``smtp-source -d`` sends per message, i.e. the
  core's share of the server CPU per message measured in section ``server``.
"""

from __future__ import annotations

from collections.abc import Callable

from .bodies import realistic_body, stuff
from .core_drivers import (
    client_server_transaction,
    server_after_ehlo,
    server_message,
    server_transaction,
)
from .harness import Case, Group, Metric, measure_cpu_throughput

__all__ = ["build"]

BODY = realistic_body(1024)
WIRE = stuff(BODY)

ONE_PER_READ = [
    b"EHLO client.example\r\n",
    b"MAIL FROM:<sender@client.example>\r\n",
    b"RCPT TO:<one@bench.example>\r\n",
    b"RCPT TO:<two@bench.example>\r\n",
    b"DATA\r\n",
    WIRE,
    b"QUIT\r\n",
]
PIPELINED = [
    ONE_PER_READ[0],
    b"".join(ONE_PER_READ[1:5]),
    WIRE,
    ONE_PER_READ[6],
]

#: What smtp-source -d sends for each message after the first (one recipient, no pipelining).
NEXT_MESSAGE = [
    b"MAIL FROM:<sender@client.example>\r\n",
    b"RCPT TO:<one@bench.example>\r\n",
    b"DATA\r\n",
    WIRE,
]

METRICS = (Metric("us", "CPU µs/transaction", higher_is_better=False),)


def _next_message_case(min_time: float) -> Case:
    """The server core's share of one message in the end-to-end server benchmarks."""

    def run() -> dict[str, float]:
        check = server_message(server_after_ehlo(), NEXT_MESSAGE)
        if check != BODY:
            raise AssertionError(f"next message: body delivered wrong ({len(check)} octets)")
        sample = measure_cpu_throughput(
            lambda n: [server_after_ehlo() for _ in range(n)],
            lambda conns: [server_message(c, NEXT_MESSAGE) for c in conns],
            nbytes=1024, min_time=min_time,
        )
        return {"us": sample["us"]}

    return Case("server core, next message on an open session (as smtp-source -d)", run,
                ours=True)


def _case(name: str, transaction: Callable[[], bytes], min_time: float) -> Case:
    def run() -> dict[str, float]:
        check = transaction()
        if check != BODY:
            raise AssertionError(f"{name}: body delivered wrong ({len(check)} octets)")

        def passes(n: int) -> None:
            for _ in range(n):
                transaction()

        sample = measure_cpu_throughput(lambda n: n, passes, nbytes=1024, min_time=min_time)
        return {"us": sample["us"]}

    return Case(name, run, ours=True)


def build(quick: bool) -> list[Group]:
    """One group with the transaction paths."""
    min_time = 0.02 if quick else 0.3
    cases = [
        _case("server core, one command per read",
              lambda: server_transaction(ONE_PER_READ), min_time),
        _case("server core, pipelined",
              lambda: server_transaction(PIPELINED), min_time),
        _case("client core + server core (DATA)", lambda: client_server_transaction(BODY),
              min_time),
        _case("client core + server core (BDAT)",
              lambda: client_server_transaction(BODY, "BDAT"), min_time),
        _next_message_case(min_time),
    ]
    return [Group(
        section="commands",
        key="commands-transaction",
        title="Command path: EHLO, MAIL, 2 x RCPT, DATA (1 KiB), QUIT on a fresh connection",
        metrics=METRICS,
        cases=cases,
        baselines=("server core, one command per read",),
        params={"body_octets": len(BODY)},
    )]
