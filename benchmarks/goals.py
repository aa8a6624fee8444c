"""The goals of issue 6, as ratios the results are checked against (reported, never asserted)."""

from __future__ import annotations

from .harness import Goal
from .send import OUR_KINDS as OUR_CLIENTS
from .serve import OUR_KINDS as OUR_SERVERS

__all__ = ["GOALS"]


def _goals() -> list[Goal]:
    goals: list[Goal] = []
    for size in ("1MiB", "10MiB"):
        group = f"data-realistic-{size}"
        goals.append(Goal(f"core DATA parse {size} >= 0.25x bytes.find", group,
                          "ServerConnection DATA", "GB/s", 0.25, baseline="bytes.find"))
        goals.append(Goal(f"core DATA parse {size} >= 3x naive loop", group,
                          "ServerConnection DATA", "GB/s", 3.0, baseline="naive per-line loop"))
    for label in OUR_SERVERS.values():
        goals.append(Goal(f"{label}: >= 4x aiosmtpd msg/s (1 KiB, 20 sessions)",
                          "server-1KiB-20s", label, "msg/s", 4.0, baseline="aiosmtpd"))
        goals.append(Goal(f"{label}: CPU/msg <= 3x smtp-sink's (1 KiB, 20 sessions)",
                          "server-1KiB-20s", label, "cpu_us", 3.0, baseline="smtp-sink (C)",
                          at_least=False))
    for label in OUR_CLIENTS.values():
        for group in ("client-1KiB", "client-100KiB"):
            goals.append(Goal(f"{label}: >= 3x aiosmtplib msg/s ({group})", group, label,
                              "msg/s", 3.0, baseline="aiosmtplib"))
            goals.append(Goal(f"{label}: >= 2x smtplib msg/s ({group})", group, label,
                              "msg/s", 2.0, baseline="smtplib"))
    for label in OUR_SERVERS.values():
        goals.append(Goal(f"{label}: a 100 MiB message costs < 20 MiB extra RSS",
                          "memory-100MiB", label, "extra_mib", 20.0, at_least=False,
                          unit="MiB"))
    return goals


GOALS = _goals()
