"""``python -m benchmarks``: measure esmtp-core side by side with its peers and print ratios.

Examples::

    python -m benchmarks                       # everything (about 10-15 minutes on 2 cores)
    python -m benchmarks --quick               # smoke run, tiny sizes, well under a minute
    python -m benchmarks --sections core       # only the in-memory core benchmarks
    python -m benchmarks --groups realistic-1MiB,server-1KiB-20s   # only these comparisons
    python -m benchmarks --write-results-md    # also rewrite the committed benchmarks/RESULTS.md

Results go to ``benchmarks/results/<UTC stamp>.json`` and ``.md`` (plus ``latest.*``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import core_commands, core_data, e2e_client, e2e_server, memory
from .goals import GOALS
from .harness import (
    Group,
    GroupResult,
    extract_notes,
    git_commit,
    machine_description,
    render_markdown,
    render_text,
    run_group,
    write_outputs,
)

HERE = Path(__file__).resolve().parent

#: Section name -> (description, builder(quick) -> groups). Builders are called lazily, in order,
#: and their groups run one after the other; peers a section starts are stopped when it ends.
SECTIONS: dict[str, tuple[str, Callable[[bool], list[Group]]]] = {
    "core": ("DATA/BDAT parsing and dot-stuffing in memory", core_data.build),
    "commands": ("a full transaction through the server core and client+server cores",
                 core_commands.build),
    "server": ("servers end to end under smtp-source", e2e_server.build),
    "client": ("clients end to end into smtp-sink", e2e_client.build),
    "memory": ("peak RSS of a server receiving one huge message", memory.build),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="esmtp-core benchmarks: interleaved rounds, medians with min-max, ratios.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few rounds: a smoke run for CI (well under 60 s)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--groups", default="",
                        help="comma-separated substrings: run only the comparisons whose key "
                             "contains one (e.g. 'realistic-1MiB,server-1KiB-20s')")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per comparison (default: 5, quick: 2)")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="directory for the JSON and Markdown results")
    parser.add_argument("--write-results-md", action="store_true",
                        help="also write benchmarks/RESULTS.md (the committed summary)")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.section_names = names
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print the tables and write the results; 0 unless nothing ran."""
    args = _parse(argv)
    if args.list:
        for name, (text, _) in SECTIONS.items():
            print(f"{name:10} {text}")
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    machine = machine_description()
    results: list[GroupResult] = []
    for name in args.section_names:
        log(f"# section {name}: {SECTIONS[name][0]}")
        try:
            groups = SECTIONS[name][1](args.quick)
        except Exception as exc:  # a section that cannot even be set up is reported, not fatal
            log(f"  ! section {name} could not be built: {type(exc).__name__}: {exc}")
            continue
        wanted = [g.strip() for g in args.groups.split(",") if g.strip()]
        for group in groups:
            if wanted and not any(w in group.key for w in wanted):
                if group.cleanup is not None:
                    group.cleanup()
                continue
            result = run_group(group, args.rounds, log)
            results.append(result)
            print(render_text(result), flush=True)
            print(flush=True)
    with open("/proc/loadavg") as handle:
        machine["load average at end"] = handle.read().strip()
    command = "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command.strip(),
        "quick": args.quick,
        "rounds": args.rounds,
        "sections": args.section_names,
        "seconds": time.perf_counter() - started,
        "commit": git_commit(HERE.parent),
        "machine": machine,
    }
    goals = [g for g in GOALS if any(r.group.key == g.group for r in results)]
    json_path, md_path = write_outputs(results, goals, meta, args.out)
    for goal in goals:
        verdict, measured = goal.evaluate(results)
        print(f"goal: {goal.text}: {measured} -> {verdict}")
    if args.write_results_md:
        target = HERE / "RESULTS.md"
        notes = extract_notes(target.read_text()) if target.exists() else ""
        target.write_text(render_markdown(results, goals, meta, notes) + "\n")
        log(f"wrote {HERE / 'RESULTS.md'}")
    log(f"wrote {json_path} and {md_path} in {meta['seconds']:.0f} s")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
