"""Reading outcome history: ``read_history`` on N generated long rows, per file format.

    .venv/bin/python benchmarks/bench_history.py                      # 1,000,000 rows, CSV and Parquet
    .venv/bin/python benchmarks/bench_history.py --n 100000 --formats csv jsonl parquet --prompt-chars 200

Rows are (task, model) observations of ``--tasks`` tasks x ``--models`` models in
``--categories`` categories, with every history column (scores 0/1 and partial credit,
costs, tokens, latencies; 1 % empty score cells, skipped as the reader does) and, with
``--prompt-chars``, a prompt of that length per row. Each read runs in a fresh Python
process: the table shows the median wall time of ``--repeats`` reads (import excluded),
the process's peak resident memory (``VmHWM``, Linux) and that peak minus the resident memory
after importing pandas and routeplan (what reading itself took).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

# VmHWM (this process's peak RSS) rather than ru_maxrss, which Linux carries over from the
# parent across exec and would report the generator's peak instead.
CHILD = """
import json, re, sys, time
def hwm_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
from planner.history import read_history
base = hwm_kb()
t = time.perf_counter()
h = read_history([sys.argv[1]])
wall = time.perf_counter() - t
peak = hwm_kb()
print(json.dumps({"wall_s": wall, "peak_kb": peak, "base_kb": base, "records": len(h.frame),
                  "skipped": sum(f.skipped_total for f in h.files)}))
"""


def generate(n_rows: int, n_models: int, n_categories: int, prompt_chars: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_tasks = -(-n_rows // n_models)
    task = np.repeat(np.arange(n_tasks), n_models)[:n_rows]
    model = np.tile(np.arange(n_models), n_tasks)[:n_rows]
    skill = np.linspace(0.4, 0.9, n_models)[model]
    score = (rng.random(n_rows) < skill).astype(float)
    partial = rng.random(n_rows) < 0.1
    score[partial] = rng.random(int(partial.sum())).round(3)
    score[rng.random(n_rows) < 0.01] = np.nan
    inp = rng.integers(20, 4000, n_tasks)[task]
    out = rng.integers(1, 2000, n_rows)
    price = np.geomspace(0.1, 30, n_models)[model] / 1e6
    df = pd.DataFrame({
        "task_id": np.char.add("t", task.astype(str)),
        "category": np.char.add("cat", (task % n_categories).astype(str)),
        "model": np.char.add("provider/model-", model.astype(str)),
        "score": score,
        "cost_usd": (inp * price + out * price * 4).round(8),
        "input_tokens": inp,
        "output_tokens": out,
        "latency_s": (0.3 + out / rng.uniform(30, 200, n_rows)).round(3),
    })
    if prompt_chars:
        words = np.array(["plan", "route", "budget", "model", "score", "tokens", "latency", "quality"])
        base = " ".join(rng.choice(words, prompt_chars // 5 + 1))[:prompt_chars]
        df["prompt"] = np.char.add(np.char.add("Task ", task.astype(str)), ": " + base)
    return df


def write(df: pd.DataFrame, fmt: str, folder: Path) -> Path:
    path = folder / f"history.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        raise SystemExit(f"unknown format {fmt}")
    return path


def measure(path: Path, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                              cwd=ROOT, check=False)
        if proc.returncode:
            raise SystemExit(proc.stderr.strip().splitlines()[-1])
        runs.append(json.loads(proc.stdout))
    return {"wall_s": statistics.median(r["wall_s"] for r in runs),
            "peak_mb": max(r["peak_kb"] for r in runs) / 1024,
            "read_mb": max(r["peak_kb"] - r["base_kb"] for r in runs) / 1024,
            "records": runs[0]["records"], "skipped": runs[0]["skipped"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="rows (observations) to generate")
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--categories", type=int, default=57)
    ap.add_argument("--prompt-chars", type=int, default=0, help="add a prompt of this length to every row")
    ap.add_argument("--formats", nargs="+", default=["csv", "parquet"], choices=["csv", "parquet", "jsonl"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    df = generate(args.n, args.models, args.categories, args.prompt_chars)
    print(f"{args.n:,} rows ({args.n // args.models:,} tasks x {args.models} models, {args.categories} "
          f"categories, prompts {args.prompt_chars or 'none'}), median of {args.repeats} reads, "
          f"each in a fresh process\n")
    print("| format | file MB | records | skipped | read s | peak RSS MB | read RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats:
            path = write(df, fmt, Path(tmp))
            r = measure(path, args.repeats)
            size = path.stat().st_size / 1e6
            print(f"| {fmt} | {size:,.0f} | {r['records']:,} | {r['skipped']:,} | {r['wall_s']:.2f} | "
                  f"{r['peak_mb']:,.0f} | {r['read_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
