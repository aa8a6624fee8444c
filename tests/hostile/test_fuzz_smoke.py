"""The atheris fuzzers, run for a bounded time in CI, and their seed corpus replayed.

Each fuzzer runs in a subprocess for ``ESMTP_FUZZ_SECONDS`` seconds (default 20 each, chosen so
the whole hostile suite stays within about three minutes on two cores; ``fuzz/README.md`` has the
long run). A crash — any exception the core must not raise, a hang, a malformed reply or an
unbounded buffer — fails the test and leaves the crashing input in the test's temporary
directory, printed in the failure message. The long mode (``ESMTP_SLOW=1``) runs each for
five minutes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import esmtp_core
from fuzz import harness

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
SECONDS = int(os.environ.get("ESMTP_FUZZ_SECONDS", "20"))

needs_atheris = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris not installed (extra [fuzz])"
)


def _core_has(name: str) -> bool:
    return hasattr(esmtp_core, name)


SIDES = [
    pytest.param(
        "server",
        marks=pytest.mark.skipif(not _core_has("ServerConnection"), reason="no server core yet"),
    ),
    pytest.param(
        "client",
        marks=pytest.mark.skipif(not _core_has("ClientConnection"), reason="no client core yet"),
    ),
]


@pytest.mark.parametrize("side", SIDES)
def test_seed_corpus_replays_cleanly(side: str) -> None:
    """Every committed seed runs through the harness without a broken promise."""
    run = harness.run_server_case if side == "server" else harness.run_client_case
    seeds = sorted((CORPUS / side).iterdir())
    assert len(seeds) >= 10
    for seed in seeds:
        run(harness.Case.decode(seed.read_bytes()))


def _fuzz(side: str, seconds: int, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS / side, corpus)  # libFuzzer adds inputs to its first directory
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    command = [
        sys.executable, "-m", f"fuzz.fuzz_{side}", str(corpus),
        f"-max_total_time={seconds}",
        "-timeout=10",  # one input taking 10 s is a hang
        "-rss_limit_mb=2048",
        "-max_len=8192",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, timeout=seconds + 120, check=False
    )
    found = sorted(artifacts.iterdir())
    if result.returncode != 0 or found:
        tail = result.stderr.decode(errors="replace")[-6000:]
        pytest.fail(
            f"fuzz_{side} failed (exit {result.returncode}); crashing inputs: "
            f"{[str(p) for p in found]}\n{tail}"
        )
    assert b"Done" in result.stderr or b"stat::number_of_executed_units" in result.stderr


@needs_atheris
@pytest.mark.parametrize("side", SIDES)
def test_fuzzer_short_run(side: str, tmp_path: Path) -> None:
    _fuzz(side, SECONDS, tmp_path)


@needs_atheris
@pytest.mark.slow
@pytest.mark.parametrize("side", SIDES)
def test_fuzzer_long_run(side: str, tmp_path: Path) -> None:
    _fuzz(side, 300, tmp_path)


@pytest.mark.parametrize(
    "bad", [b"250 ok\n", b"25 ok\r\n", b"250 ok\r\n250", b"250 o\rk\r\n", b"650 x\r\n"]
)
def test_reply_oracle_rejects_malformed_output(bad: bytes) -> None:
    """The oracles the fuzzers rely on can fail: malformed reply bytes are caught..."""
    with pytest.raises(harness.HarnessFailure):
        harness.check_reply_bytes(bad)


@pytest.mark.parametrize("bad", [b"MAIL\n", b"a\rb\r\n", b"\r", b"BDAT 1\r\n\n"])
def test_wire_oracle_rejects_bare_line_endings(bad: bytes) -> None:
    """... and so are bare CR and LF on a client's wire."""
    with pytest.raises(harness.HarnessFailure):
        harness.check_no_bare_line_endings(bad)
