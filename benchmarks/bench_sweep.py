"""A 50-point budget sweep on the 10,000-task batch x the default catalog: one parametric pass
against one solve per point (``fast``, and HiGHS on a few points, extrapolated).

    .venv/bin/python benchmarks/bench_sweep.py                 # the table in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_sweep.py --n 2000 --highs-points 5

Budgets run geometrically from 1 % above the cheapest feasible plan to the cost of the
best-quality plan (the whole frontier). Times are wall seconds of the sweep itself, the
formulation (done once either way) excluded; the median of ``--repeats`` runs. HiGHS takes
about a minute per point at this size, so it solves ``--highs-points`` evenly spaced budgets
(each hinted with the previous one's plan, as the sweep does) and its 50-point time is
extrapolated; those points also check the parametric objective against the exact optimum.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH = ROOT / "examples" / "tasks" / "batch_10k.jsonl"


def budgets_for(tasks, catalog, n_points: int) -> np.ndarray:
    from planner.formulation import formulate
    from planner.sweeps import sweep

    f = formulate(tasks, catalog, goal="maximize_quality")
    cheapest = float(np.where(f.feasible, f.cost_usd, np.inf).min(axis=1).sum())
    richest = float(sweep(tasks, catalog, budget=[1e12])["projected_cost_usd"].iloc[0])
    return np.geomspace(cheapest * 1.01, richest, n_points)


def timed(repeats: int, fn):
    """(median wall seconds of the sweep, last result)."""
    times, df = [], None
    for _ in range(repeats):
        df = fn()
        times.append(df.attrs["wall_time_s"])
    return statistics.median(times), df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=None, help="use the first N tasks (default: all 10,000)")
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3, help="runs of the parametric and fast sweeps")
    ap.add_argument("--highs-points", type=int, default=3, help="budgets solved with HiGHS (0: skip)")
    ap.add_argument("--highs-time-limit", type=float, default=300.0, help="seconds per HiGHS point")
    args = ap.parse_args()

    from planner.catalog import load_catalog
    from planner.sweeps import sweep
    from planner.tasks import load_tasks

    tasks = load_tasks(BATCH)[: args.n]
    catalog = load_catalog()
    budgets = budgets_for(tasks, catalog, args.points)
    n, k = len(tasks), len(catalog.offerings)
    one = sweep(tasks, catalog, budget=budgets[:1])
    print(f"{n:,} tasks x {k} offerings, {args.points} budgets ${budgets[0]:.2f} .. ${budgets[-1]:.2f} "
          f"(geometric); formulation (once per sweep, not in the times below): {one.attrs['formulate_s']:.2f} s")

    par_s, par = timed(args.repeats, lambda: sweep(tasks, catalog, budget=budgets))
    fast_s, fast = timed(args.repeats, lambda: sweep(tasks, catalog, budget=budgets, solver="fast",
                                                     parametric=False))
    rows = [("parametric (one hull pass)", args.points, par_s, par_s, par["gap"].max()),
            ("fast, one solve per point", args.points, fast_s, fast_s, fast["gap"].max())]
    same = np.allclose(par["objective"], fast["objective"], rtol=1e-12)

    check = ""
    if args.highs_points:
        idx = np.unique(np.linspace(0, args.points - 1, args.highs_points).round().astype(int))
        hi = sweep(tasks, catalog, budget=budgets[idx], solver="highs", parametric=False,
                   time_limit_s=args.highs_time_limit)
        per_point = hi["solve_time_s"].mean()
        rows.append((f"highs, one solve per point ({len(idx)} solved, x{args.points} extrapolated)",
                     len(idx), hi.attrs["wall_time_s"], per_point * args.points, hi["gap"].max()))
        p = par.iloc[idx].reset_index(drop=True)
        ok = hi["served_tasks"] > 0
        scale = np.maximum(p["objective"].abs(), 1e-12)
        below = ((hi["objective"] - p["objective"]) / scale)[ok].max()
        states = "; ".join(f"${b:.2f}: {st}" + (f" ({m})" if m else "")
                           for b, st, m in zip(hi["budget_usd"], hi["status"], hi["message"], strict=True))
        check = (f"HiGHS per point: {states}. Where HiGHS has a plan, the parametric objective is below "
                 f"its optimum by at most {below:.1e} (relative).")
    print()
    print(f"| method | points solved | wall s (solved) | wall s for {args.points} points | "
          f"s per point | worst gap to bound | speed-up of parametric |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, solved, wall, full, gap in rows:
        print(f"| {name} | {solved} | {wall:.3f} | {full:.2f} | {full / args.points:.4f} | {gap:.1e} | "
              f"{full / par_s:.0f}x |")
    print()
    print(f"parametric and per-point fast give {'identical' if same else 'different'} objectives at every point. "
          + check)


if __name__ == "__main__":
    main()
