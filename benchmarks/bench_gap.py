"""Time every exact backend on the OR-Library GAP instances (minimisation, proven optima).

    .venv/bin/python benchmarks/bench_gap.py                   # gap1-gap12, every exact backend
    .venv/bin/python benchmarks/bench_gap.py --files gapa gapb gapc --backends highs cpsat
    .venv/bin/python benchmarks/bench_gap.py --markdown        # the table in docs/benchmarks.md

Prints one row per instance and backend: time, objective, the proven optimum, and whether
they agree; then a per-file summary (total and worst time). Data: ../shared/data/gap/.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import solvers
from solvers.orlib import read_gap

DEFAULT_DIR = Path(os.environ.get("GAP_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared/data/gap"))
SMALL = [f"gap{i}" for i in range(1, 13)]


def optima(data_dir: Path) -> dict[tuple[str, int], tuple[str, float]]:
    """(file, 1-based index) -> (instance name, proven minimum)."""
    with open(data_dir / "known_optima.csv") as f:
        return {(r["orlib_file"], int(r["index_in_file"])): (r["instance"], float(r["min_best"]))
                for r in csv.DictReader(f) if r["min_proven"] == "True"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--files", nargs="+", default=SMALL)
    ap.add_argument("--backends", nargs="+", default=solvers.available(exact_only=True))
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print the per-file summary as a markdown table")
    args = ap.parse_args(argv)
    if not (args.data / "known_optima.csv").exists():
        print(f"no GAP data in {args.data}", file=sys.stderr)
        return 2
    best = optima(args.data)
    summary: dict[tuple[str, str], list[float]] = {}
    wrong = 0
    print(f"{'instance':10} {'backend':7} {'time_s':>8} {'objective':>10} {'optimum':>8}  status")
    for name in args.files:
        for idx, problem in enumerate(read_gap(args.data / f"{name}.txt"), start=1):
            instance, opt = best[(name, idx)]
            for backend in args.backends:
                t0 = time.perf_counter()
                sol = solvers.solve(problem, backend=backend, time_limit_s=args.time_limit, threads=args.threads)
                dt = time.perf_counter() - t0
                ok = sol.objective is not None and abs(sol.objective - opt) < 1e-6
                wrong += not ok
                summary.setdefault((name, backend), []).append(dt)
                print(f"{instance:10} {backend:7} {dt:8.3f} {sol.objective!s:>10} {opt:8.0f}  "
                      f"{sol.status.value}{'' if ok else '  MISMATCH'}", flush=True)
    print()
    header = "| file | backend | instances | total s | worst s |"
    print(header if args.markdown else header.replace("|", " "))
    if args.markdown:
        print("| --- | --- | ---: | ---: | ---: |")
    for (name, backend), times in summary.items():
        row = f"| {name} | {backend} | {len(times)} | {sum(times):.2f} | {max(times):.2f} |"
        print(row if args.markdown else row.replace("|", " "))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
