"""Section ``client``: clients end to end into ``smtp-sink`` over one connection (issue 6, item 4).

2,000 messages of 1 KiB and 200 of 100 KiB, each over a single connection, into one smtp-sink
(which offers PIPELINING, so a pipelining client can save round trips): our async and sync
clients against smtplib, aiosmtplib and ``smtp-source -s 1 -d`` (C, the ceiling). Reported:
messages/s (wall) and the client's own CPU µs per message; ratios to each peer.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .harness import Case, Group, Metric
from .peers import ROOT, SmtpSink, postfix_missing, run_smtp_source
from .send import OUR_KINDS, client_missing

__all__ = ["build"]

KIB = 1024

METRICS = (
    Metric("msg/s", "msg/s"),
    Metric("cpu_us", "client CPU µs/msg", higher_is_better=False),
)


def _python_client(kind: str, port: int, count: int, size: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.send", kind, "--port", str(port),
         "--count", str(count), "--size", str(size)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} client failed: {done.stderr[-1500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"msg/s": count / result["wall"], "cpu_us": result["cpu"] / count * 1e6}


def _group(size: int, count: int) -> Group:
    missing = postfix_missing()
    sinks: list[SmtpSink] = []

    def port() -> int:
        if not sinks:
            sinks.append(SmtpSink())
        return sinks[0].port

    def run_source() -> dict[str, float]:
        times = run_smtp_source(port(), messages=count, size=size, sessions=1)
        return {"msg/s": count / times.wall, "cpu_us": times.cpu / count * 1e6}

    def cleanup() -> None:
        for sink in sinks:
            sink.stop()

    cases = [
        Case("smtp-source -s 1 (C)", run_source, skip=missing),
        Case("smtplib", lambda: _python_client("smtplib", port(), count, size), skip=missing),
        Case("aiosmtplib", lambda: _python_client("aiosmtplib", port(), count, size),
             skip=missing),
    ]
    for kind, label in OUR_KINDS.items():
        cases.append(Case(
            label, lambda kind=kind: _python_client(kind, port(), count, size),  # type: ignore[misc]
            skip=missing or client_missing(kind), ours=True,
        ))
    return Group(
        section="client",
        key=f"client-{size // KIB}KiB",
        title=f"Client end to end: {count} x {size // KIB} KiB messages over one connection "
              "into smtp-sink",
        metrics=METRICS,
        cases=cases,
        baselines=("smtplib", "aiosmtplib", "smtp-source -s 1 (C)"),
        params={"messages": count, "message_octets": size},
        cleanup=cleanup,
    )


def build(quick: bool) -> list[Group]:
    """The client groups; ``quick`` sends a few dozen messages only."""
    if quick:
        return [_group(KIB, 100)]
    return [_group(KIB, 2000), _group(100 * KIB, 200)]
