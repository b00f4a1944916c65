"""The sharded ``fast`` planner on a local Ray against single-process ``fast``.

    .venv/bin/python benchmarks/bench_ray_planner.py                      # 10M x 20 on 2 workers vs 1M x 20 in one process
    .venv/bin/python benchmarks/bench_ray_planner.py --sharded 1000000 --single 1000000 --workers 2
    .venv/bin/python benchmarks/bench_ray_planner.py --case budget-capacity --sharded 1000000 10000000

Batches are :class:`planner.distributed.shards.SyntheticSource`, generated shard by shard
(250,000 tasks each) on the workers for the sharded runs and stacked into one Problem for
the single-process run. ``--case budget`` (the knapsack path): maximise priority-weighted
quality under a budget a third of the way from the cheapest plan to the best;
``--case budget-capacity`` (the Lagrangian path): the same budget and each model's capacity
in seconds of model time. Each run is a fresh process, so every peak RSS is its own: the
driver's (which never holds a coefficient array) and each worker's (its shards' arrays and
hulls or Lagrangian rows). Writing the Parquet parts is timed apart. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from planner.distributed.shards import CASES


def sharded(n: int, k: int, workers: int, shard_tasks: int, write: bool, case: str) -> dict:
    import ray

    from planner.distributed.plan_driver import solve_sharded
    from planner.distributed.shards import SyntheticSource

    ray.init(num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res, _ = solve_sharded(SyntheticSource(n, k, shard_tasks=shard_tasks, seed=0, case=case), workers,
                               tmp if write else None)
        wall = time.perf_counter() - t
    ray.shutdown()
    s = res.stats
    return {"wall_s": wall, "status": res.status, "gap": res.gap, "objective": res.objective,
            "load_s": s["load_s"], "hulls_s": s.get("hulls_s"), "cut_s": s.get("cut_s"), "write_s": s.get("write_s"),
            "bisection_rounds": s.get("bisection_rounds"), "method": s.get("method"),
            "formulate_s": s.get("formulate_s"), "lagrangian_s": s.get("lagrangian_wall_s"),
            "dual_evaluations": s.get("dual_evaluations"), "repaired_by": s.get("repaired_by"),
            "driver_mb": s["driver_peak_rss_mb"],
            "driver_mb_end": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers_mb": s["worker_peak_rss_mb"]}


def single(n: int, k: int, shard_tasks: int, case: str) -> dict:
    import numpy as np

    import solvers
    from planner.distributed.shards import SyntheticSource

    t = time.perf_counter()
    src = SyntheticSource(n, k, shard_tasks=shard_tasks, seed=0, case=case)
    shards = [src.load(i) for i in range(src.n_shards)]
    budget = src.limit([src.summary(s) for s in shards])
    ps = [s.problem for s in shards]
    capacity = ps[0].capacity
    stack = {a: np.concatenate([getattr(p, a) for p in ps])
             for a in ("cost", "quality", "latency", "feasible", "priority", "load") if getattr(ps[0], a) is not None}
    del shards, ps
    p = solvers.Problem(**stack, capacity=capacity, budget=budget, goal=solvers.Goal.MAXIMIZE_QUALITY)
    del stack
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    sol = solvers.solve(p, backend="fast")
    solve_s = time.perf_counter() - t
    return {"wall_s": gen_s + solve_s, "gen_s": gen_s, "solve_s": solve_s, "status": sol.status.value,
            "gap": sol.gap, "objective": sol.objective, "method": sol.stats.get("method"),
            "dual_evaluations": sol.stats.get("dual_evaluations"),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sharded", type=int, nargs="*", default=[10_000_000])
    ap.add_argument("--single", type=int, nargs="*", default=[1_000_000])
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--case", choices=CASES, default="budget", help="budget: knapsack path; budget-capacity: "
                    "Lagrangian path")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-tasks", type=int, default=250_000)
    ap.add_argument("--no-write", action="store_true", help="do not write the Parquet plan")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        kind, n = a.child[0], int(a.child[1])
        r = (sharded(n, a.k, a.workers, a.shard_tasks, not a.no_write, a.case) if kind == "sharded"
             else single(n, a.k, a.shard_tasks, a.case))
        print(json.dumps(r))
        return
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; case {a.case}; k = {a.k}; "
          f"shards of {a.shard_tasks} tasks")
    print("| run | tasks | wall s | phases s | status, gap | driver peak MB | worker peak MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    common = ["--k", str(a.k), "--workers", str(a.workers), "--shard-tasks", str(a.shard_tasks), "--case", a.case]
    for n in a.single:
        r = _child(["single", str(n), *common])
        evals = f" ({r['dual_evaluations']} dual evaluations)" if r["dual_evaluations"] else ""
        print(f"| fast, one process | {n:,} | {r['wall_s']:.1f} | generate {r['gen_s']:.1f}, solve {r['solve_s']:.2f}"
              f"{evals} | {r['status']}, {r['gap']:.1e} | {r['peak_mb']:.0f} (everything) | - |", flush=True)
    for n in a.sharded:
        r = _child(["sharded", str(n), *common, *(["--no-write"] if a.no_write else [])])
        write = f", write {r['write_s']:.1f}" if r["write_s"] is not None else ""
        if r["hulls_s"] is not None:  # the knapsack path
            phases = (f"generate+formulate {r['load_s']:.1f}, hulls {r['hulls_s']:.1f}, cut {r['cut_s']:.1f} "
                      f"({r['bisection_rounds']} rounds)")
        else:  # the Lagrangian path
            made = ", ".join(f"{how} {c}" for how, c in (r["repaired_by"] or {}).items()) or "no plan"
            phases = (f"generate {r['load_s']:.1f}, formulate {r['formulate_s'] or 0:.1f}, Lagrangian "
                      f"{r['lagrangian_s'] or 0:.1f} ({r['dual_evaluations']} dual evaluations; {made})")
        print(f"| sharded fast, {a.workers} Ray workers | {n:,} | {r['wall_s']:.1f} | {phases}{write} | "
              f"{r['status']}, {r['gap']:.1e} | {r['driver_mb_end']:.0f} | "
              f"{', '.join(f'{m:.0f}' for m in r['workers_mb'])} |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
