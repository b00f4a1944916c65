"""Every backend side by side on generated routing batches, in one process run.

For each N x K x case (see ``generate.py``) and each backend within its size cap: the
median wall time over repeats, the objective, the proven gap to the backend's own bound,
the gap to the best bound any backend proved, and the peak memory traced (numpy and
Python allocations; a native solver's own heap is not visible to tracemalloc). Then the
speed-up of ``fast`` over HiGHS and the growth of ``fast``'s time per 10x N.

    python benchmarks/bench_solvers.py                         # 1k, 10k x K=20, all cases
    python benchmarks/bench_solvers.py --n 1000 10000 100000 1000000 --k 10 20 50 \\
        --backends fast highs --out benchmarks/results.md

Each backend has a size cap (N x K pairs) so that exact MIPs run only where sensible.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generate import CASES, make_problem  # noqa: E402

import solvers  # noqa: E402
from solvers import Goal, Options, Problem, Solution  # noqa: E402

#: Largest N x K each backend is run on by default.
DEFAULT_CAPS = {"fast": 10**9, "highs": 200_000, "cpsat": 200_000, "cbc": 20_000, "auto": 10**9}


@dataclasses.dataclass
class Row:
    n: int
    k: int
    case: str
    backend: str
    status: str
    time_s: float
    objective: float | None
    bound: float | None
    gap: float | None
    peak_mb: float | None
    goal: Goal
    vs_best: float | None = None


def fresh(problem: Problem) -> Problem:
    """A new Problem over the same data, so no run reuses another's cached matrices."""
    return dataclasses.replace(problem)


def run_one(problem: Problem, backend: str, opts: Options, repeats: int, trace: bool) -> tuple[Solution, list[float], float | None]:
    times: list[float] = []
    sol: Solution | None = None
    peak = None
    if trace:
        p = fresh(problem)
        tracemalloc.start()
        sol = solvers.solve(p, backend=backend, options=opts)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        del p
    for _ in range(repeats):
        p = fresh(problem)
        t = time.perf_counter()
        sol = solvers.solve(p, backend=backend, options=opts)
        times.append(time.perf_counter() - t)
        del p
    assert sol is not None
    return sol, times, peak


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="task counts")
    ap.add_argument("--k", type=int, nargs="+", default=[20], help="model counts")
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--backends", nargs="+", default=["fast", "highs", "cpsat", "cbc"])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of fast (median reported)")
    ap.add_argument("--exact-repeats", type=int, default=1, help="timed runs of each exact backend")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per exact run")
    ap.add_argument("--rel-gap", type=float, default=1e-4, help="relative gap asked of every backend")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cap", action="append", default=[], metavar="BACKEND=PAIRS",
                    help="override a backend's size cap (N x K), e.g. highs=500000")
    ap.add_argument("--no-memory", action="store_true", help="skip the traced run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="also write the table as markdown")
    a = ap.parse_args(argv)
    caps = dict(DEFAULT_CAPS)
    for c in a.cap:
        name, _, val = c.partition("=")
        caps[name] = int(float(val))

    rows: list[Row] = []
    print(header(), flush=True)
    for k in a.k:
        for n in a.n:
            for case in a.cases:
                problem = make_problem(n, k, case, a.seed)
                group: list[Row] = []
                for backend in a.backends:
                    if n * k > caps.get(backend, 10**9):
                        continue
                    exact = solvers.get(backend).exact
                    opts = Options(time_limit_s=a.time_limit if exact or backend == "auto" else None,
                                   rel_gap=a.rel_gap, threads=a.threads)
                    reps = a.exact_repeats if exact else a.repeats
                    try:
                        sol, times, peak = run_one(problem, backend, opts, reps, trace=not a.no_memory and not exact)
                    except solvers.SolverError as exc:
                        print(f"| {n} | {k} | {case} | {backend} | refused: {exc} |", flush=True)
                        continue
                    row = Row(n, k, case, sol.backend, sol.status.value, statistics.median(times),
                              sol.objective, sol.bound, sol.gap, peak, Goal(problem.goal))
                    group.append(row)
                best_bound = tightest([r.bound for r in group], group[0].goal if group else Goal.MAXIMIZE_QUALITY)
                for r in group:
                    r.vs_best = solvers.relative_gap(r.objective, best_bound, r.goal)
                    print(fmt(r), flush=True)
                rows.extend(group)
    summary = summarise(rows)
    print(summary)
    if a.out:
        a.out.write_text(header() + "\n" + "\n".join(fmt(r) for r in rows) + "\n\n" + summary + "\n")
    return rows


def tightest(bounds: list[float | None], goal: Goal) -> float | None:
    vals = [b for b in bounds if b is not None and math.isfinite(b)]
    if not vals:
        return None
    return min(vals) if goal.maximize else max(vals)


def header() -> str:
    return ("| N | K | case | backend | status | median s | objective | gap (own bound) | "
            "gap (best bound) | peak MB |\n|---|---|---|---|---|---|---|---|---|---|")


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1e}"


def fmt(r: Row) -> str:
    obj = "n/a" if r.objective is None else f"{r.objective:.6g}"
    peak = "n/a" if r.peak_mb is None else f"{r.peak_mb:.0f}"
    return (f"| {r.n:,} | {r.k} | {r.case} | {r.backend} | {r.status} | {r.time_s:.3f} | {obj} | "
            f"{_g(r.gap)} | {_g(r.vs_best)} | {peak} |")


def summarise(rows: list[Row]) -> str:
    """Speed-up of fast over each exact backend, and fast's time growth per 10x N."""
    lines = []
    fast = {(r.n, r.k, r.case): r for r in rows if r.backend == "fast"}
    for r in rows:
        f = fast.get((r.n, r.k, r.case))
        if f is None or r.backend == "fast" or r.backend.startswith("auto"):
            continue
        lines.append(f"- {r.n:,} x {r.k} {r.case}: fast is {r.time_s / f.time_s:,.0f}x faster than {r.backend} "
                     f"(fast gap {_g(f.gap)}, {r.backend} gap {_g(r.gap)}, {r.status})")
    for (n, k, case), f in sorted(fast.items()):
        g = fast.get((n * 10, k, case))
        if g is not None:
            lines.append(f"- fast {case}, K={k}: {n:,} -> {n * 10:,} tasks: time x{g.time_s / f.time_s:.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
