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

The **bound** columns say what category-level cascades could do at best on those held-out
prompts: every single model and every cascade of the family calibrate tries (first, one to
three witnesses, a dearer second), scored on the held-out outcomes themselves, the best mix
per category at each cost (chosen knowing the answers, so no plan fitted on other prompts
reaches it). Where the bound stays under a target, no choice of such cascades per category
reaches it on these prompts; closing that gap needs per-prompt knowledge.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.calibrate import calibrate  # noqa: E402
from planner.cascade import choose_extractor  # noqa: E402
from planner.cascade_fit import MAX_WITNESSES, answers  # noqa: E402
from planner.catalog import load_catalog  # noqa: E402
from planner.evaluate import HULL, ORACLE, ROUTEPLAN, aiq, evaluate_history, upper_hull  # noqa: E402
from planner.history import read_history  # noqa: E402
from planner.predictor import fit_predictor  # noqa: E402


def category_options(sub: pd.DataFrame) -> list[tuple[float, float]]:
    """(total cost, total score) on ``sub``'s prompts of every single model and every cascade
    of the family calibrate tries, scored on these outcomes (prompts some model missed: left out
    of the cascades, as calibrate leaves them out of its counts)."""
    score = sub.pivot_table(index="task_id", columns="model", values="score", aggfunc="last")
    cost = sub.pivot_table(index="task_id", columns="model", values="cost_usd", aggfunc="last").reindex_like(score)
    out = [(float(cost[m].sum()), float(score[m].sum())) for m in score.columns]
    if "response" not in sub or sub["response"].isna().all():
        return out
    resp = sub.pivot(index="task_id", columns="model", values="response").reindex_like(score)
    prompts = sub.groupby("task_id")["prompt"].first().reindex(score.index).tolist()
    full = score.notna().all(axis=1).to_numpy() & cost.notna().all(axis=1).to_numpy()
    r = resp.to_numpy(dtype=object)
    kind, _ = choose_extractor(list(r.ravel()), [p for p in prompts for _ in range(r.shape[1])])
    if kind is None:
        return out
    ans = answers(kind, r[full], [p for p, f in zip(prompts, full, strict=True) if f])
    s, c = score.to_numpy()[full], cost.to_numpy()[full]
    rest_s = score.to_numpy()[~full]
    rest = float(np.nansum(np.nanmax(rest_s, axis=1))) if len(rest_s) else 0.0  # at best: not counted against
    mean_c = c.mean(axis=0)
    k = s.shape[1]
    for a in range(k):
        others = [w for w in range(k) if w != a]
        for size in range(1, MAX_WITNESSES + 1):
            for ws in combinations(others, size):
                top = max(mean_c[a], *(mean_c[w] for w in ws))
                bs = [b for b in range(k) if b != a and b not in ws and mean_c[b] > top]
                if not bs:
                    continue
                acc = np.array([x is not None for x in ans[:, a]])
                for w in ws:
                    acc &= ans[:, w] == ans[:, a]
                base = c[:, a].sum() + sum(c[:, w].sum() for w in ws)
                q = s[acc, a].sum() + s[~acc][:, bs].sum(axis=0)
                cc = base + c[~acc][:, bs].sum(axis=0)
                out.extend(zip(cc.tolist(), (q + rest).tolist(), strict=True))
    return out


def bound(test: pd.DataFrame, lo: float, hi: float, target: float, target_cost: float) -> tuple[float, float | None]:
    """(AIQ, least cost share of ``target_cost`` reaching ``target``) of the best category-level
    mix of single models and cascades on ``test`` itself (see module doc)."""
    n = test["task_id"].nunique()
    start_c = start_s = 0.0
    steps = []
    for _, sub in test.groupby("category"):
        opts = category_options(sub)
        hc, hs = upper_hull([o[0] for o in opts], [o[1] for o in opts])
        start_c, start_s = start_c + hc[0], start_s + hs[0]
        steps += [((hs[i] - hs[i - 1]) / (hc[i] - hc[i - 1]), hc[i] - hc[i - 1], hs[i] - hs[i - 1])
                  for i in range(1, len(hc))]
    xs, ys = [start_c], [start_s]
    for _, dc, ds in sorted(steps, key=lambda x: -x[0]):  # the best mix: steepest steps first
        xs.append(xs[-1] + dc)
        ys.append(ys[-1] + ds)
    cx, cy = np.array(xs) / n, np.array(ys) / n
    match = None
    if cy[-1] >= target - 1e-12:
        i = int(np.argmax(cy >= target - 1e-12))
        match = cx[0] if i == 0 else cx[i - 1] + (target - cy[i - 1]) * (cx[i] - cx[i - 1]) / (cy[i] - cy[i - 1])
        match /= target_cost
    return aiq(cx, cy, lo, hi), match


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "routerbench")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--train", type=float, default=0.5, help="share of the prompts to calibrate on")
    ap.add_argument("--points", type=int, default=30, help="budgets per evaluation")
    ap.add_argument("--no-predictor", action="store_true", help="skip the per-prompt predictor columns")
    ap.add_argument("--no-bound", action="store_true", help="skip the bound columns")
    args = ap.parse_args()
    frame = read_history(sorted(args.data.glob("*.csv"))).frame
    ids = np.array(sorted(frame["task_id"].unique()))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.splits):
            rng = np.random.default_rng(seed)
            train_ids = set(rng.choice(ids, size=int(len(ids) * args.train), replace=False).tolist())
            train, test = frame[frame["task_id"].isin(train_ids)], frame[~frame["task_id"].isin(train_ids)]
            t = time.perf_counter()
            flat = Path(tmp) / f"flat{seed}.yaml"
            cal = calibrate(train)
            cal_s = time.perf_counter() - t
            cal.write(flat)
            a = evaluate_history(test, flat, points=args.points, cascades=False)
            c = evaluate_history(test, flat, points=args.points, cascades=True)
            b, n_kept, n_pairs = a, 0, 0
            if not args.no_predictor:
                pred = Path(tmp) / f"pred{seed}.yaml"
                pcal = calibrate(train, cascades=False)
                kept = fit_predictor(train, pcal, pred) is not None
                pcal.write(pred)
                n_kept, n_pairs = sum(r["kept"] for r in pcal.predictor_report), len(pcal.predictor_report)
                b = evaluate_history(test, pred, points=args.points, cascades=False) if kept else a
            stats = load_catalog(flat).cascades
            share = lambda e: None if e.match_cost is None else e.match_cost / e.best_model_cost  # noqa: E731
            bound_aiq, bound_match = (None, None) if args.no_bound else bound(
                test, *a.cost_range, a.best_model_score, a.best_model_cost)
            rows.append({"seed": seed, "plan": a.aiq[ROUTEPLAN], "plan+pred": b.aiq[ROUTEPLAN],
                         "kept": f"{n_kept}/{n_pairs}", "hull": a.aiq[HULL], "oracle": a.aiq[ORACLE],
                         "best": a.best_model, "match": share(a), "match+pred": share(b),
                         "casc": c.aiq[ROUTEPLAN], "n_casc": len(stats.cascades) if stats else 0,
                         "match+casc": share(c), "bound": bound_aiq, "match bound": bound_match,
                         "cal_s": cal_s, "s": time.perf_counter() - t})
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    num = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    print("| split | AIQ routeplan | + predictor (pairs kept) | + cascades (kept) | bound, cascades | "
          "best single-model hull | oracle | cost to match the best model | + predictor | + cascades | "
          "bound | calibrate s | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['plan']:.4f} | {r['plan+pred']:.4f} ({r['kept']}) | {r['casc']:.4f} "
              f"({r['n_casc']}) | {num(r['bound'])} | {r['hull']:.4f} | {r['oracle']:.4f} | {pct(r['match'])} | "
              f"{pct(r['match+pred'])} | {pct(r['match+casc'])} | {pct(r['match bound'])} | {r['cal_s']:.1f} | "
              f"{r['s']:.1f} |")

    def mean(key: str) -> str:
        got = [r[key] for r in rows if r[key] is not None]
        return f"{statistics.mean(got):.4f}" if got else "-"

    def matched(key: str) -> str:
        got = [r[key] for r in rows if r[key] is not None]
        return f"{pct(statistics.mean(got)) if got else '-'} ({len(got)}/{len(rows)})"
    print(f"| mean | {mean('plan')} | {mean('plan+pred')} | {mean('casc')} | {mean('bound')} | {mean('hull')} | "
          f"{mean('oracle')} | {matched('match')} | {matched('match+pred')} | {matched('match+casc')} | "
          f"{matched('match bound')} | | |")
    print(f"best single model: {', '.join(sorted({r['best'] for r in rows}))}; {len(ids):,} prompts, "
          f"{args.train:.0%} to calibrate")


if __name__ == "__main__":
    main()
