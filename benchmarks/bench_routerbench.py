"""Backtest on RouterBench outcomes: calibrate on part of the prompts, evaluate on the rest.

    .venv/bin/python benchmarks/bench_routerbench.py                  # 5 random halves
    .venv/bin/python benchmarks/bench_routerbench.py --splits 10 --train 0.7 --points 40

Reads ``../shared/data/routerbench/*.csv`` (or ``--data DIR``). For each split (seeded, by
prompt), calibrates on the training prompts and evaluates on the held-out ones, with the
category-level profiles alone and with the per-prompt predictor where calibration kept it.
Prints one row per split and the mean: AIQ of routeplan, of the best single-model hull and
of the oracle, and the least cost at which routeplan matches the best single model's score
(as a share of that model's cost).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.calibrate import calibrate  # noqa: E402
from planner.evaluate import HULL, ORACLE, ROUTEPLAN, evaluate_history  # noqa: E402
from planner.history import read_history  # noqa: E402
from planner.predictor import fit_predictor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "routerbench")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--train", type=float, default=0.5, help="share of the prompts to calibrate on")
    ap.add_argument("--points", type=int, default=30, help="budgets per evaluation")
    args = ap.parse_args()
    frame = read_history(sorted(args.data.glob("*.csv"))).frame
    ids = np.array(sorted(frame["task_id"].unique()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.splits):
            rng = np.random.default_rng(seed)
            train_ids = set(rng.choice(ids, size=int(len(ids) * args.train), replace=False).tolist())
            train, test = frame[frame["task_id"].isin(train_ids)], frame[~frame["task_id"].isin(train_ids)]
            t = time.perf_counter()
            flat = Path(tmp) / f"flat{seed}.yaml"
            calibrate(train).write(flat)
            pred = Path(tmp) / f"pred{seed}.yaml"
            cal = calibrate(train)
            kept = fit_predictor(train, cal, pred) is not None
            cal.write(pred)
            n_kept = sum(r["kept"] for r in cal.predictor_report)
            a = evaluate_history(test, flat, points=args.points)
            b = evaluate_history(test, pred, points=args.points) if kept else a
            rows.append({"seed": seed, "plan": a.aiq[ROUTEPLAN], "plan+pred": b.aiq[ROUTEPLAN],
                         "kept": f"{n_kept}/{len(cal.predictor_report)}", "hull": a.aiq[HULL],
                         "oracle": a.aiq[ORACLE], "best": a.best_model,
                         "match": None if a.match_cost is None else a.match_cost / a.best_model_cost,
                         "match+pred": None if b.match_cost is None else b.match_cost / b.best_model_cost,
                         "s": time.perf_counter() - t})
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    print("| split | AIQ routeplan | + predictor (pairs kept) | best single-model hull | oracle | "
          "cost to match the best model | + predictor | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['plan']:.4f} | {r['plan+pred']:.4f} ({r['kept']}) | {r['hull']:.4f} | "
              f"{r['oracle']:.4f} | {pct(r['match'])} | {pct(r['match+pred'])} | {r['s']:.1f} |")
    mean = lambda k: statistics.mean(r[k] for r in rows)  # noqa: E731
    matched = [r["match"] for r in rows if r["match"] is not None]
    matched_p = [r["match+pred"] for r in rows if r["match+pred"] is not None]
    print(f"| mean | {mean('plan'):.4f} | {mean('plan+pred'):.4f} | {mean('hull'):.4f} | {mean('oracle'):.4f} | "
          f"{pct(statistics.mean(matched)) if matched else '-'} ({len(matched)}/{len(rows)}) | "
          f"{pct(statistics.mean(matched_p)) if matched_p else '-'} ({len(matched_p)}/{len(rows)}) | |")
    print(f"best single model: {rows[0]['best']}; {len(ids):,} prompts, {args.train:.0%} to calibrate")


if __name__ == "__main__":
    main()
