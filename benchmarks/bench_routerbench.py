"""Backtest on RouterBench outcomes: calibrate on part of the prompts, evaluate on the rest.

    .venv/bin/python benchmarks/bench_routerbench.py                  # 5 random halves
    .venv/bin/python benchmarks/bench_routerbench.py --splits 10 --train 0.7 --points 40

Reads ``../shared/data/routerbench/*.csv`` (or ``--data DIR``). For each split (seeded, by
prompt), calibrates on the training prompts and evaluates on the held-out ones, with the
category-level profiles alone, with the per-prompt predictor where calibration kept it, and
with the cascades calibration fitted (``first -> agree(first, witnesses) -> second``, scored
offline from the recorded answers). Prints one row per split and the mean: AIQ of routeplan,
of the best single-model hull and of the oracle, and the least cost at which routeplan
matches the best single model's held-out score (as a share of that model's cost).
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
from planner.catalog import load_catalog  # noqa: E402
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
            a = evaluate_history(test, flat, points=args.points, cascades=False)
            b = evaluate_history(test, pred, points=args.points, cascades=False) if kept else a
            c = evaluate_history(test, flat, points=args.points, cascades=True)
            n_casc = len(load_catalog(flat).cascades.cascades) if load_catalog(flat).cascades else 0
            rows.append({"seed": seed, "plan": a.aiq[ROUTEPLAN], "plan+pred": b.aiq[ROUTEPLAN],
                         "kept": f"{n_kept}/{len(cal.predictor_report)}", "hull": a.aiq[HULL],
                         "oracle": a.aiq[ORACLE], "best": a.best_model,
                         "match": None if a.match_cost is None else a.match_cost / a.best_model_cost,
                         "match+pred": None if b.match_cost is None else b.match_cost / b.best_model_cost,
                         "casc": c.aiq[ROUTEPLAN], "n_casc": n_casc,
                         "match+casc": None if c.match_cost is None else c.match_cost / c.best_model_cost,
                         "s": time.perf_counter() - t})
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    print("| split | AIQ routeplan | + predictor (pairs kept) | + cascades (kept) | best single-model hull | "
          "oracle | cost to match the best model | + predictor | + cascades | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['plan']:.4f} | {r['plan+pred']:.4f} ({r['kept']}) | {r['casc']:.4f} "
              f"({r['n_casc']}) | {r['hull']:.4f} | {r['oracle']:.4f} | {pct(r['match'])} | "
              f"{pct(r['match+pred'])} | {pct(r['match+casc'])} | {r['s']:.1f} |")
    mean = lambda k: statistics.mean(r[k] for r in rows)  # noqa: E731

    def matched(key: str) -> str:
        got = [r[key] for r in rows if r[key] is not None]
        return f"{pct(statistics.mean(got)) if got else '-'} ({len(got)}/{len(rows)})"
    print(f"| mean | {mean('plan'):.4f} | {mean('plan+pred'):.4f} | {mean('casc'):.4f} | {mean('hull'):.4f} | "
          f"{mean('oracle'):.4f} | {matched('match')} | {matched('match+pred')} | {matched('match+casc')} | |")
    print(f"best single model: {rows[0]['best']}; {len(ids):,} prompts, {args.train:.0%} to calibrate")


if __name__ == "__main__":
    main()
