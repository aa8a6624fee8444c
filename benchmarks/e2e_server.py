"""Section ``server``: servers end to end over loopback under ``smtp-source`` (issue 6, item 3).

For each workload (1 KiB and 100 KiB messages; 1 and 20 parallel sessions, each session sending
its share of the messages over one connection, ``smtp-source -d``) every server gets one run per
round, interleaved: Postfix's ``smtp-sink`` (C, the ceiling), aiosmtpd with a discarding handler
(the Python peer) and each of our adapters with a discarding handler. Reported: messages/s and
MB/s of payload (wall time of the smtp-source run) and the server's CPU µs per message; ratios to
aiosmtpd and to smtp-sink. smtp-source runs on the same two cores and takes its share of them.
"""

from __future__ import annotations

from .harness import Case, Group, Metric
from .peers import PythonServer, SmtpSink, postfix_missing, run_smtp_source
from .serve import OUR_KINDS, kind_missing

__all__ = ["build"]

KIB = 1024

METRICS = (
    Metric("msg/s", "msg/s"),
    Metric("MB/s", "MB/s", ratio=False),
    Metric("cpu_us", "server CPU µs/msg", higher_is_better=False),
    Metric("user_us", "of which user", higher_is_better=False, ratio=False),
)


class ServerPool:
    """Python servers started on first use and kept for every round of one group."""

    def __init__(self) -> None:
        self.servers: dict[str, PythonServer] = {}

    def get(self, kind: str) -> PythonServer:
        server = self.servers.get(kind)
        if server is None or server.proc.poll() is not None:
            server = self.servers[kind] = PythonServer(kind)
        return server

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()


def _sample(messages: int, size: int, wall: float, cpu: float, user: float) -> dict[str, float]:
    return {"msg/s": messages / wall, "MB/s": messages * size / wall / 1e6,
            "cpu_us": cpu / messages * 1e6, "user_us": user / messages * 1e6}


def _group(size: int, sessions: int, messages: int) -> Group:
    pool = ServerPool()
    missing = postfix_missing()

    def run_sink() -> dict[str, float]:
        sink = SmtpSink()
        try:
            times = run_smtp_source(sink.port, messages=messages, size=size, sessions=sessions)
        finally:
            cpu = sink.stop()
        # The sink's start-up (about 3 ms, mostly system time) is subtracted from the total only.
        return _sample(messages, size, times.wall, max(0.0, cpu.cpu - SmtpSink.startup_cpu()),
                       cpu.user)

    def python_case(kind: str) -> dict[str, float]:
        server = pool.get(kind)
        user, system = server.cpu_split()
        times = run_smtp_source(server.port, messages=messages, size=size, sessions=sessions)
        user_after, system_after = server.cpu_split()
        return _sample(messages, size, times.wall, user_after + system_after - user - system,
                       user_after - user)

    cases = [
        Case("smtp-sink (C)", run_sink, skip=missing),
        Case("aiosmtpd", lambda: python_case("aiosmtpd"), skip=missing),
    ]
    for kind, label in OUR_KINDS.items():
        cases.append(Case(label, lambda kind=kind: python_case(kind),  # type: ignore[misc]
                          skip=missing or kind_missing(kind), ours=True))
    label = f"{size // KIB} KiB"
    return Group(
        section="server",
        key=f"server-{size // KIB}KiB-{sessions}s",
        title=f"Server end to end: {messages} x {label} messages, {sessions} parallel "
              f"session{'s' if sessions > 1 else ''} (smtp-source -d)",
        metrics=METRICS,
        cases=cases,
        baselines=("aiosmtpd", "smtp-sink (C)"),
        params={"messages": messages, "payload_octets": size, "sessions": sessions},
        cleanup=pool.close,
    )


def build(quick: bool) -> list[Group]:
    """The server groups; ``quick`` keeps 1 KiB messages and small counts."""
    if quick:
        return [_group(KIB, 1, 100), _group(KIB, 20, 200)]
    return [
        _group(KIB, 1, 2000),
        _group(KIB, 20, 3000),
        _group(100 * KIB, 1, 300),
        _group(100 * KIB, 20, 400),
    ]
