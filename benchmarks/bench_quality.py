"""Calibrate and evaluate at scale: wall time and peak memory, each step in a fresh process.

    .venv/bin/python benchmarks/bench_quality.py                       # 1,000,000 rows; 100,000 tasks x 50 budgets
    .venv/bin/python benchmarks/bench_quality.py --rows 100000 --repeats 1

The history is generated as in ``bench_history.py`` (``--rows`` rows: tasks x ``--models``
models in ``--categories`` categories, every column, 1 % empty scores) and written as Parquet.
Steps, each the median of ``--repeats`` runs in a new Python process:

- ``calibrate``: ``planner.calibrate.calibrate`` on the frame (per (model, category) shrinkage,
  output-token medians, prices fitted by NNLS for the generated models, speed fits), and the
  catalog written; the read is timed apart.
- ``evaluate``: ``planner.evaluate.evaluate_history`` of the same history against that catalog
  at ``--budgets`` budgets (the default range: from the cheapest plan to the dearest single model; plan with the profiles at every budget, score with the truth,
  single models, their hull, the oracle frontier, AIQ).

Peak memory is the process's ``VmHWM`` (Linux) and that peak minus the resident memory after
the imports (what the step itself took).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_history import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, re, sys, time
def hwm_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
import numpy as np
from planner.history import read_history
from planner.calibrate import calibrate
from planner.evaluate import evaluate_history
step, history, catalog, budgets = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = hwm_kb()
t = time.perf_counter()
frame = read_history([history]).frame
read_s = time.perf_counter() - t
t = time.perf_counter()
if step == "calibrate":
    calibrate(frame, count_tokens=False, files=[history]).write(catalog)
    extra = {}
else:
    n = frame["task_id"].nunique()
    ev = evaluate_history(frame, catalog, points=budgets)
    extra = {"aiq_routeplan": ev.aiq["routeplan"], "aiq_hull": ev.aiq["best single-model hull"],
             "tasks": int(n)}
wall = time.perf_counter() - t
print(json.dumps({"read_s": read_s, "wall_s": wall, "peak_kb": hwm_kb(), "base_kb": base,
                  "rows": len(frame), **extra}))
"""


def run(step: str, history: Path, catalog: Path, budgets: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, step, str(history), str(catalog), str(budgets)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="history rows for calibrate")
    ap.add_argument("--eval-tasks", type=int, default=100_000, help="tasks in the evaluated history")
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--categories", type=int, default=57)
    ap.add_argument("--budgets", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        hist = folder / "history.parquet"
        generate(args.rows, args.models, args.categories, 0).to_parquet(hist, index=False)
        held = folder / "held_out.parquet"
        generate(args.eval_tasks * args.models, args.models, args.categories, 0, seed=1).to_parquet(held, index=False)
        catalog = folder / "profiles.yaml"
        rows = []
        for step, path in (("calibrate", hist), ("evaluate", held)):
            runs = [run(step, path, catalog, args.budgets) for _ in range(args.repeats)]
            med = statistics.median(r["wall_s"] for r in runs)
            peak = max(r["peak_kb"] for r in runs) / 1024
            used = max(r["peak_kb"] - r["base_kb"] for r in runs) / 1024
            what = (f"{runs[0]['rows']:,} rows" if step == "calibrate"
                    else f"{runs[0]['tasks']:,} tasks x {args.models} models, {args.budgets} budgets")
            rows.append((step, what, statistics.median(r["read_s"] for r in runs), med, peak, used,
                         runs[0].get("aiq_routeplan"), runs[0].get("aiq_hull")))
    print(f"| step | input | read s | step s (median of {args.repeats}) | peak RSS MB | RSS for the step MB | AIQ plan / hull |")
    print("|---|---|---:|---:|---:|---:|---|")
    for step, what, read_s, wall, peak, used, a, h in rows:
        aiq = f"{a:.4f} / {h:.4f}" if a is not None else ""
        print(f"| {step} | {what} | {read_s:.2f} | {wall:.2f} | {peak:,.0f} | {used:,.0f} | {aiq} |")


if __name__ == "__main__":
    main()
