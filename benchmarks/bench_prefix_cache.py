"""Batch APIs and cached prompt prefixes: what they save on one batch, and what each backend takes.

A generated batch of ``--n`` tasks (default 10,000) in ``--groups`` prefix groups (default 50),
each group sharing a prompt prefix of 1,500-6,000 tokens (``prefix_tokens``), with a 24 h
deadline, planned on the default catalog for ``minimize_cost`` under an average-quality floor
(``--avg-quality``, default 0.7, so the plan is a mix of models, not one cheap model):

1. realtime only: the batch offerings removed, no prefix groups;
2. with batch: ``@batch`` offerings (about half price, 24 h window), no prefix groups;
3. with batch and caching: the same, with the prefix groups priced (one cache write per
   group and model, cache reads after; constraint 6, ``planner.prefix_cache``);
4. realtime and caching (for reference).

The first table is the projected cost of each (solved with ``auto``); the second the solve
time of each backend on problem 3 (the one with group fixed charges), with its status,
objective and proven gap. Nothing calls a provider; the figures are projections.

    python benchmarks/bench_prefix_cache.py
    python benchmarks/bench_prefix_cache.py --n 2000 --groups 20 --backends fast highs --time-limit 60
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import solvers  # noqa: E402
from planner.catalog import Catalog, load_catalog  # noqa: E402
from planner.formulation import formulate  # noqa: E402
from planner.plan import Limits  # noqa: E402
from planner.solve import build_plan  # noqa: E402
from planner.tasks import Task, tasks_from_records  # noqa: E402

TYPES = ("qa", "summarize", "extraction", "classification", "analysis", "code", "chat", "translate")
DAY_S = 86_400.0


def make_tasks(n: int, groups: int, seed: int) -> list[Task]:
    """``n`` tasks; task i in group i % groups; token counts given (no tokenizer needed)."""
    rng = np.random.default_rng(seed)
    prefix = rng.integers(1500, 6001, groups)
    group_type = rng.choice(TYPES, groups)
    records = []
    for i in range(n):
        g = i % groups
        own = int(rng.integers(50, 600))
        records.append({"id": f"t{i:06d}", "type": str(group_type[g]), "prompt": f"task {i} of group {g}",
                        "input_tokens": int(prefix[g]) + own, "prefix_tokens": int(prefix[g]),
                        "prefix_group": f"g{g:03d}", "expected_output_tokens": int(rng.integers(20, 400)),
                        "max_tokens": 4096, "complexity": float(rng.uniform(0.2, 0.8))})
    return tasks_from_records(records)


def without_groups(tasks: list[Task]) -> list[Task]:
    return [t.model_copy(update={"prefix_group": None, "prefix_tokens": None}) for t in tasks]


def realtime_only(cat: Catalog) -> Catalog:
    return dataclasses.replace(cat, offerings=tuple(o for o in cat.offerings if o.mode == "realtime"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--avg-quality", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", nargs="+", default=["fast", "highs", "cpsat", "cbc", "auto"])
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per backend solve")
    args = ap.parse_args()

    cat = load_catalog()
    tasks = make_tasks(args.n, args.groups, args.seed)
    limits = Limits(deadline_s=DAY_S, avg_quality=args.avg_quality)
    setups = {
        "realtime only": (realtime_only(cat), without_groups(tasks)),
        "with batch": (cat, without_groups(tasks)),
        "with batch and caching": (cat, tasks),
        "realtime and caching": (realtime_only(cat), tasks),
    }
    print(f"# {args.n:,} tasks in {args.groups} prefix groups, deadline 24 h, minimize_cost, "
          f"avg quality >= {args.avg_quality}\n")
    print("| plan | projected cost | vs realtime only | batch tasks | cached groups | cache savings | solver | "
          "gap | solve s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    base = None
    problems = {}
    for name, (catalog, batch) in setups.items():
        t0 = time.perf_counter()
        f = formulate(batch, catalog, goal="minimize_cost", limits=limits)
        form_s = time.perf_counter() - t0
        problems[name] = f
        sol = solvers.solve(f.problem, backend="auto", time_limit_s=args.time_limit, rel_gap=1e-4)
        if not sol.status.has_plan:
            print(f"| {name} | no plan: {sol.backend} {sol.status.value} {sol.message} | | | | | | | |")
            continue
        plan = build_plan(f, sol, catalog_name="default")
        cost = plan.totals.projected_cost_usd
        base = cost if base is None else base
        n_batch = sum(1 for a in plan.assignments if a.model.endswith("@batch"))
        cached = sum(1 for g in plan.prefix_groups if g.cached)
        saved = sum(g.projected_savings_usd for g in plan.prefix_groups)
        gap = "-" if sol.gap is None else f"{sol.gap:.1e}"
        print(f"| {name} | ${cost:,.2f} | {cost / base - 1:+.1%} | {n_batch:,} | {cached} | ${saved:,.2f} | "
              f"{sol.backend} ({sol.status.value}) | {gap} | {sol.wall_time_s:.1f} (+{form_s:.1f} formulate) |")

    f = problems["with batch and caching"]
    p = f.problem
    print(f"\n# Backends on 'with batch and caching': {p.n_tasks:,} tasks x {p.n_models} offerings, "
          f"{int(p.feasible_mask.sum()):,} feasible pairs, "
          f"{int((p.group_charges.setup > 0).sum()) if p.group_charges is not None else 0} charged (group, model) "
          f"pairs; time limit {args.time_limit:g} s\n")
    print("| backend | status | objective (USD) | bound | gap | wall s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for backend in args.backends:
        if backend not in solvers.available():
            print(f"| {backend} | not installed | | | | |")
            continue
        t0 = time.perf_counter()
        try:
            sol = solvers.solve(p, backend=backend, time_limit_s=args.time_limit, rel_gap=1e-4)
        except solvers.SolverError as exc:
            print(f"| {backend} | refused: {exc} | | | | {time.perf_counter() - t0:.1f} |")
            continue
        obj = "-" if sol.objective is None else f"{sol.objective:,.4f}"
        bound = "-" if sol.bound is None else f"{sol.bound:,.4f}"
        gap = "-" if sol.gap is None else f"{sol.gap:.1e}"
        print(f"| {sol.backend} | {sol.status.value} | {obj} | {bound} | {gap} | {sol.wall_time_s:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
