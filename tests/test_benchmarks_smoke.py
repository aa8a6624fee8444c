"""Smoke test of the benchmark harness (issue 6): ``python -m benchmarks --quick`` on the in-memory
sections runs in a few seconds and writes a well-formed JSON result. No timing is asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_core_sections_write_well_formed_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--sections", "core,commands",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((tmp_path / "latest.json").read_text())
    assert document["meta"]["quick"] is True
    assert document["meta"]["sections"] == ["core", "commands"]
    groups = {g["key"]: g for g in document["groups"]}
    assert "data-realistic-1KiB" in groups
    assert "commands-transaction" in groups
    for group in groups.values():
        assert group["cases"], group["key"]
        for case in group["cases"]:
            # A contender either ran cleanly in every round or says why it was skipped: an error
            # (a driver out of step with the core, a wrong body) fails the smoke test.
            assert "error" not in case, (group["key"], case["name"], case.get("error"))
            if "skipped" in case:
                continue
            assert len(case["samples"]) == document["meta"]["rounds"]
            for key, stats in case["stats"].items():
                assert math.isfinite(stats["median"]), (case["name"], key)
                assert stats["median"] > 0, (case["name"], key)
                assert stats["min"] <= stats["median"] <= stats["max"]
    data = groups["data-realistic-1KiB"]
    baselines = {c["name"]: c for c in data["cases"]}
    assert "skipped" not in baselines["bytes.find"]
    ratio = baselines["naive per-line loop"]["ratios"]["bytes.find"]["GB/s"]
    assert ratio["min"] <= ratio["median"] <= ratio["max"]
    assert (tmp_path / "latest.md").read_text().startswith("# esmtp-core benchmark results")
