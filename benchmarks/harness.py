"""The measuring machinery: cases, interleaved rounds, statistics, paired ratios, goals, output.

A :class:`Group` is one comparison (for example "DATA parse, realistic 1 MiB body"): a set of
:class:`Case` objects measured against each other. :func:`run_group` runs every case once per
round, rotating the order each round so that no case always runs first (cache warmth, CPU
frequency, the neighbours' load), and keeps every round's sample. Statistics are the median,
minimum and maximum over rounds; a ratio is computed per round (our value over the baseline's value
*in the same round*) and summarised the same way, which cancels most of the slow drifts of a
shared machine.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Case",
    "CaseResult",
    "Goal",
    "Group",
    "GroupResult",
    "Metric",
    "Stats",
    "machine_description",
    "render_markdown",
    "render_text",
    "run_group",
]

#: One measurement: metric key -> value (for example ``{"GB/s": 1.7}``).
Sample = dict[str, float]


@dataclass(frozen=True, slots=True)
class Metric:
    """A quantity a group reports. ``ratio`` says whether ratios to the baselines are shown."""

    key: str
    label: str
    higher_is_better: bool = True
    digits: int = 3
    ratio: bool = True


@dataclass(slots=True)
class Case:
    """One contender in a group. ``run`` performs one measurement and returns its sample;
    ``skip`` (a reason) marks a case that cannot run here (a peer or an adapter missing)."""

    name: str
    run: Callable[[], Sample]
    skip: str | None = None
    ours: bool = False


@dataclass(slots=True)
class Group:
    """One comparison: cases measured against each other in interleaved rounds.

    ``baselines`` names the cases every other case is divided by (in the table's ratio columns).
    ``params`` describes the workload (sizes, counts) and is copied into the JSON output.
    """

    section: str
    key: str
    title: str
    metrics: tuple[Metric, ...]
    cases: list[Case]
    baselines: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    #: Called once after the last round (stops the servers the cases started).
    cleanup: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    """Median, minimum and maximum of a list of per-round values (``n`` rounds)."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats | None:
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return None
        return cls(statistics.median(finite), min(finite), max(finite), len(finite))

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


@dataclass(slots=True)
class CaseResult:
    """Everything measured for one case: raw per-round samples (``None`` for a failed round)."""

    name: str
    ours: bool
    samples: list[Sample | None] = field(default_factory=list)
    skip: str | None = None
    error: str | None = None

    def values(self, key: str) -> list[float]:
        return [s[key] if s is not None and key in s else math.nan for s in self.samples]

    def stats(self, key: str) -> Stats | None:
        return Stats.of(self.values(key))


@dataclass(slots=True)
class GroupResult:
    """The outcome of :func:`run_group`."""

    group: Group
    cases: list[CaseResult]
    seconds: float

    def case(self, name: str) -> CaseResult | None:
        return next((c for c in self.cases if c.name == name), None)

    def ratio(self, name: str, baseline: str, key: str) -> Stats | None:
        """Paired ratio ``name / baseline`` of metric ``key``: one value per round, summarised."""
        ours, base = self.case(name), self.case(baseline)
        if ours is None or base is None:
            return None
        pairs = zip(ours.values(key), base.values(key), strict=False)  # rounds align by index
        return Stats.of([a / b if b else math.nan for a, b in pairs])

    def as_dict(self) -> dict[str, Any]:
        group = self.group
        out: dict[str, Any] = {
            "section": group.section,
            "key": group.key,
            "title": group.title,
            "params": group.params,
            "note": group.note,
            "seconds": round(self.seconds, 3),
            "metrics": [
                {"key": m.key, "label": m.label, "higher_is_better": m.higher_is_better}
                for m in group.metrics
            ],
            "baselines": list(group.baselines),
            "cases": [],
        }
        for case in self.cases:
            entry: dict[str, Any] = {"name": case.name, "ours": case.ours}
            if case.skip:
                entry["skipped"] = case.skip
            if case.error:
                entry["error"] = case.error
            entry["samples"] = case.samples
            entry["stats"] = {}
            entry["ratios"] = {}
            for metric in group.metrics:
                stats = case.stats(metric.key)
                if stats is not None:
                    entry["stats"][metric.key] = stats.as_dict()
                for base in group.baselines:
                    ratio = self.ratio(case.name, base, metric.key)
                    if metric.ratio and base != case.name and ratio is not None:
                        entry["ratios"].setdefault(base, {})[metric.key] = ratio.as_dict()
            out["cases"].append(entry)
        return out


def run_group(
    group: Group, rounds: int, log: Callable[[str], None] = lambda _msg: None
) -> GroupResult:
    """Measure every case of ``group`` ``rounds`` times, interleaved, rotating the order.

    A case that raises is recorded with its error and dropped from later rounds; the others go on
    (a broken adapter must not hide the peers' numbers).
    """
    started = time.perf_counter()
    try:
        results = _run_rounds(group, rounds, log)
    finally:
        if group.cleanup is not None:
            group.cleanup()
    return GroupResult(group, results, time.perf_counter() - started)


def _run_rounds(group: Group, rounds: int, log: Callable[[str], None]) -> list[CaseResult]:
    results = [CaseResult(c.name, c.ours, skip=c.skip) for c in group.cases]
    live = [i for i, c in enumerate(group.cases) if c.skip is None]
    for round_no in range(rounds):
        shift = round_no % len(live) if live else 0
        for index in live[shift:] + live[:shift]:
            case, result = group.cases[index], results[index]
            if result.error is not None:
                continue
            try:
                sample = case.run()
            except Exception as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                log(f"  ! {group.key} / {case.name}: {result.error}")
                log("".join(traceback.format_exception(exc)).rstrip())
                continue
            result.samples.append(sample)
        log(f"  {group.key}: round {round_no + 1}/{rounds} done")
    return results


@dataclass(frozen=True, slots=True)
class Goal:
    """A target of issue 6, as a ratio: ``case / baseline`` of ``metric`` compared to ``threshold``
    (``at_least`` True: >=, else <=), or an absolute bound on a case's median when ``baseline`` is
    None. Evaluated on the median; reported, never asserted."""

    text: str
    group: str
    case: str
    metric: str
    threshold: float
    baseline: str | None = None
    at_least: bool = True
    unit: str = ""

    def evaluate(self, results: Sequence[GroupResult]) -> tuple[str, str]:
        """Return (verdict, measured) where verdict is "met", "NOT met" or "not measured"."""
        result = next((r for r in results if r.group.key == self.group), None)
        if result is None:
            return "not measured", "-"
        stats = (
            result.ratio(self.case, self.baseline, self.metric)
            if self.baseline is not None
            else (c.stats(self.metric) if (c := result.case(self.case)) else None)
        )
        if stats is None:
            return "not measured", "-"
        unit = "x" if self.baseline is not None else f" {self.unit or self.metric}"
        measured = f"{_fmt(stats.median, 3)}{unit} ({_fmt(stats.low, 3)}-{_fmt(stats.high, 3)})"
        ok = stats.median >= self.threshold if self.at_least else stats.median <= self.threshold
        return ("met" if ok else "NOT met"), measured


def _fmt(value: float, digits: int) -> str:
    """Format with ``digits`` significant digits, without scientific notation for normal sizes."""
    if not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def _cells(result: GroupResult) -> tuple[list[str], list[list[str]]]:
    group = result.group
    header = ["case"]
    for metric in group.metrics:
        header.append(f"{metric.label} median (min-max)")
    ratio_cols = [
        (base, m) for base in group.baselines for m in group.metrics if m.ratio
    ]
    for base, metric in ratio_cols:
        header.append(f"{metric.label} / {base}")
    rows = []
    for case in result.cases:
        row = [case.name + (" *" if case.ours else "")]
        if case.skip or (case.error and not case.samples):
            reason = case.skip or case.error or ""
            rows.append([*row, f"skipped: {reason}"[:90]] + [""] * (len(header) - 2))
            continue
        for metric in group.metrics:
            stats = case.stats(metric.key)
            row.append(
                "-" if stats is None
                else f"{_fmt(stats.median, metric.digits)} "
                f"({_fmt(stats.low, metric.digits)}-{_fmt(stats.high, metric.digits)})"
            )
        for base, metric in ratio_cols:
            ratio = result.ratio(case.name, base, metric.key)
            if case.name == base:
                row.append("1")
            elif ratio is None:
                row.append("-")
            else:
                row.append(f"{_fmt(ratio.median, 3)}x ({_fmt(ratio.low, 2)}-{_fmt(ratio.high, 2)})")
        rows.append(row)
    return header, rows


def render_text(result: GroupResult) -> str:
    """A fixed-width table of one group for the terminal."""
    header, rows = _cells(result)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"== {result.group.title}  [{result.group.key}, {result.seconds:.1f} s]"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    if result.group.note:
        lines.append(f"   note: {result.group.note}")
    return "\n".join(lines)


NOTES_START = "<!-- notes: hand-written, kept when RESULTS.md is regenerated -->"
NOTES_END = "<!-- /notes -->"


def extract_notes(markdown: str) -> str:
    """The hand-written block (between the notes markers, markers included) of a report."""
    start, end = markdown.find(NOTES_START), markdown.find(NOTES_END)
    if start < 0 or end < start:
        return ""
    return markdown[start : end + len(NOTES_END)]


def render_markdown(
    results: Sequence[GroupResult], goals: Sequence[Goal], meta: dict[str, Any], notes: str = ""
) -> str:
    """The Markdown report: how it was measured, hand-written ``notes`` (analysis, profiles)
    if any, the goals, one table per group, then the machine."""
    out = ["# esmtp-core benchmark results", ""]
    out.append(f"Run on {meta['date']} with `{meta['command']}` "
               f"({'quick smoke run' if meta['quick'] else 'full run'}, "
               f"{meta['rounds']} interleaved rounds per comparison, "
               f"{meta['seconds']:.0f} s in all; commit `{meta['commit']}`).")
    out.append("")
    out.append("Each cell is the median over rounds with (min-max). Ratios are paired per round "
               "(our value divided by the baseline's value in the same round), then summarised. "
               "`*` marks our code. Higher is better for rates; lower is better for CPU and "
               "memory. Core rates are octets of body per CPU second of this process; end-to-end "
               "rates are wall-clock, with every program on the same machine. The machine is "
               "shared: the load averages at the start and end of the run are under Machine.")
    out.append("")
    if notes:
        out.append(notes)
        out.append("")
    if goals:
        out.append("## Goals of issue 6")
        out.append("")
        out.append("| goal | measured (median, min-max) | verdict |")
        out.append("| --- | --- | --- |")
        for goal in goals:
            verdict, measured = goal.evaluate(results)
            out.append(f"| {goal.text} | {measured} | **{verdict}** |")
        out.append("")
    section = None
    for result in results:
        if result.group.section != section:
            section = result.group.section
            out.append(f"## Section `{section}`")
            out.append("")
        header, rows = _cells(result)
        out.append(f"### {result.group.title}")
        out.append("")
        params = ", ".join(f"{k}={v}" for k, v in result.group.params.items())
        if params:
            out.append(f"Workload: {params}.")
            out.append("")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + " --- |" * len(header))
        out.extend("| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows)
        out.append("")
        if result.group.note:
            out.append(result.group.note)
            out.append("")
    out.append("## Machine")
    out.append("")
    for key, value in meta["machine"].items():
        out.append(f"- {key}: {value}")
    out.append("")
    return "\n".join(out)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_description() -> dict[str, str]:
    """What the numbers ran on: CPU model and count, memory, kernel, Python, load average."""
    cpuinfo = _read("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
              if line.startswith("model name")]
    mhz = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
           if line.startswith("cpu MHz")]
    mem = next((line.split(":", 1)[1].strip() for line in _read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), "?")
    uname = os.uname()
    return {
        "cpu": f"{len(models) or os.cpu_count()} x {models[0] if models else platform.processor()}"
               + (f" ({mhz[0]} MHz)" if mhz else ""),
        "memory": mem,
        "kernel": f"{uname.sysname} {uname.release} {uname.machine}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "load average at start": _read("/proc/loadavg").strip(),
    }


def git_commit(root: Path) -> str:
    """The commit the benchmarked tree is at (with ``+dirty`` when files are modified)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit


def write_outputs(
    results: Sequence[GroupResult], goals: Sequence[Goal], meta: dict[str, Any], out_dir: Path
) -> tuple[Path, Path]:
    """Write ``<stamp>.json`` and ``<stamp>.md`` (and ``latest.*`` copies) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    document = {
        "meta": meta,
        "goals": [
            {"text": g.text, "verdict": v, "measured": m}
            for g in goals for v, m in [g.evaluate(results)]
        ],
        "groups": [r.as_dict() for r in results],
    }
    text = json.dumps(document, indent=1, sort_keys=False)
    markdown = render_markdown(results, goals, meta)
    json_path, md_path = out_dir / f"{stamp}.json", out_dir / f"{stamp}.md"
    for path, content in ((json_path, text), (md_path, markdown),
                          (out_dir / "latest.json", text), (out_dir / "latest.md", markdown)):
        path.write_text(content + "\n")
    return json_path, md_path


def measure_cpu_throughput(
    prepare: Callable[[int], Any],
    run: Callable[[Any], object],
    nbytes: int,
    min_time: float,
    max_passes: int = 2000,
) -> Sample:
    """Run ``run(prepare(batch))`` until ``min_time`` seconds of CPU were spent in ``run`` (or
    ``max_passes`` passes were made).

    Returns ``GB/s`` (octets per CPU second / 1e9) and ``us`` (CPU µs per pass). The clock is this
    process's CPU time, not wall time: on a shared machine another job taking the core for a
    moment stretches wall time but not our CPU time. ``prepare`` (untimed) builds ``batch`` fresh
    inputs (connections already in DATA state, ...) so that tiny bodies are timed in batches and
    the clock's own cost vanishes; one untimed-for-the-result pass first sizes the batches to
    about 5 ms each. The garbage collector is off while timing, as in ``timeit``.
    """
    spent = 0.0
    passes = 0
    gc_was_enabled = gc.isenabled()

    def timed(batch: int) -> float:
        state = prepare(batch)
        gc.disable()
        try:
            start = time.process_time()
            run(state)
            return time.process_time() - start
        finally:
            if gc_was_enabled:
                gc.enable()

    one = max(timed(1), 1e-7)  # warm-up and calibration
    batch = max(1, min(500, int(0.005 / one)))
    # Also stop after max_passes: preparing a fresh connection costs far more than parsing a
    # 1 KiB body, and 2,000 passes already give a stable figure.
    while spent < min_time and passes < max_passes:
        spent += timed(batch)
        passes += batch
    return {"GB/s": nbytes * passes / spent / 1e9, "us": spent / passes * 1e6}
