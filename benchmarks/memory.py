"""Section ``memory``: peak RSS of a server receiving one huge message (issue 6, item 5).

Each round starts every server afresh, reads its resident set size once it is listening, resets
its high-water mark (``/proc/<pid>/clear_refs``), has ``smtp-source`` send one message of 100 MiB
(10 MiB with ``--quick``), and reads the new high-water mark (``VmHWM``). The difference is what
the message cost in memory. aiosmtpd keeps the whole message in ``envelope.content`` before its
handler runs; a streaming server should need about one chunk.
"""

from __future__ import annotations

from .harness import Case, Group, Metric
from .peers import PythonServer, postfix_missing, read_status_kib, reset_peak_rss, run_smtp_source
from .serve import OUR_KINDS, kind_missing

__all__ = ["build"]

MIB = 1024 * 1024

METRICS = (
    Metric("extra_mib", "extra peak RSS MiB", higher_is_better=False, digits=3),
    Metric("base_mib", "RSS before MiB", higher_is_better=False, ratio=False),
    Metric("MB/s", "MB/s", ratio=False),
)


def _measure(kind: str, size: int) -> dict[str, float]:
    with PythonServer(kind, "--max-size", str(size + MIB)) as server:
        base = read_status_kib(server.pid, "VmRSS")
        reset_peak_rss(server.pid)
        times = run_smtp_source(server.port, messages=1, size=size, sessions=1)
        peak = read_status_kib(server.pid, "VmHWM")
    return {"extra_mib": (peak - base) / 1024, "base_mib": base / 1024,
            "MB/s": size / times.wall / 1e6}


def build(quick: bool) -> list[Group]:
    """One group: every server receiving one message of 100 MiB (10 MiB when ``quick``)."""
    size = 10 * MIB if quick else 100 * MIB
    missing = postfix_missing()
    cases = [Case("aiosmtpd", lambda: _measure("aiosmtpd", size), skip=missing)]
    for kind, label in OUR_KINDS.items():
        cases.append(Case(label, lambda kind=kind: _measure(kind, size),  # type: ignore[misc]
                          skip=missing or kind_missing(kind), ours=True))
    return [Group(
        section="memory",
        key=f"memory-{size // MIB}MiB",
        title=f"Memory: one {size // MIB} MiB message (smtp-source -l), peak RSS growth",
        metrics=METRICS,
        cases=cases,
        baselines=("aiosmtpd",),
        params={"message_octets": size},
    )]
