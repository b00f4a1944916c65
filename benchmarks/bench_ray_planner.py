"""The sharded ``fast`` planner on a local Ray against single-process ``fast``.

    .venv/bin/python benchmarks/bench_ray_planner.py                      # 10M x 20 on 2 workers vs 1M x 20 in one process
    .venv/bin/python benchmarks/bench_ray_planner.py --sharded 1000000 --single 1000000 --workers 2

Batches are :class:`planner.distributed.shards.SyntheticSource` (budget case: maximise
priority-weighted quality under a budget a third of the way from the cheapest plan to the
best), generated shard by shard (250,000 tasks each) on the workers for the sharded runs and
stacked into one Problem for the single-process run. Each run is a fresh process, so every
peak RSS is its own: the driver's (which never holds a coefficient array) and each worker's
(its shards' arrays and hulls). Writing the Parquet parts is timed apart. Prints a table.
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


def sharded(n: int, k: int, workers: int, shard_tasks: int, write: bool) -> dict:
    import ray

    from planner.distributed.plan_driver import solve_sharded
    from planner.distributed.shards import SyntheticSource

    ray.init(num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res, _ = solve_sharded(SyntheticSource(n, k, shard_tasks=shard_tasks, seed=0), workers,
                               tmp if write else None)
        wall = time.perf_counter() - t
    ray.shutdown()
    s = res.stats
    return {"wall_s": wall, "status": res.status, "gap": res.gap, "objective": res.objective,
            "load_s": s["load_s"], "hulls_s": s["hulls_s"], "cut_s": s["cut_s"], "write_s": s.get("write_s"),
            "bisection_rounds": s.get("bisection_rounds"), "driver_mb": s["driver_peak_rss_mb"],
            "driver_mb_end": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers_mb": s["worker_peak_rss_mb"]}


def single(n: int, k: int, shard_tasks: int) -> dict:
    import numpy as np

    import solvers
    from planner.distributed.shards import SyntheticSource

    t = time.perf_counter()
    src = SyntheticSource(n, k, shard_tasks=shard_tasks, seed=0)
    shards = [src.load(i) for i in range(src.n_shards)]
    budget = src.limit([src.summary(s) for s in shards])
    ps = [s.problem for s in shards]
    stack = {a: np.concatenate([getattr(p, a) for p in ps]) for a in ("cost", "quality", "latency", "feasible",
                                                                       "priority")}
    del shards, ps
    p = solvers.Problem(**stack, budget=budget, goal=solvers.Goal.MAXIMIZE_QUALITY)
    del stack
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    sol = solvers.solve(p, backend="fast")
    solve_s = time.perf_counter() - t
    return {"wall_s": gen_s + solve_s, "gen_s": gen_s, "solve_s": solve_s, "status": sol.status.value,
            "gap": sol.gap, "objective": sol.objective,
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
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-tasks", type=int, default=250_000)
    ap.add_argument("--no-write", action="store_true", help="do not write the Parquet plan")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        kind, n = a.child[0], int(a.child[1])
        r = (sharded(n, a.k, a.workers, a.shard_tasks, not a.no_write) if kind == "sharded"
             else single(n, a.k, a.shard_tasks))
        print(json.dumps(r))
        return
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; k = {a.k}; shards of {a.shard_tasks} tasks")
    print("| run | tasks | wall s | phases s | status, gap | driver peak MB | worker peak MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    common = ["--k", str(a.k), "--workers", str(a.workers), "--shard-tasks", str(a.shard_tasks)]
    for n in a.single:
        r = _child(["single", str(n), *common])
        print(f"| fast, one process | {n:,} | {r['wall_s']:.1f} | generate {r['gen_s']:.1f}, solve {r['solve_s']:.2f} "
              f"| {r['status']}, {r['gap']:.1e} | {r['peak_mb']:.0f} (everything) | - |", flush=True)
    for n in a.sharded:
        r = _child(["sharded", str(n), *common, *(["--no-write"] if a.no_write else [])])
        write = f", write {r['write_s']:.1f}" if r["write_s"] is not None else ""
        print(f"| sharded fast, {a.workers} Ray workers | {n:,} | {r['wall_s']:.1f} | generate+formulate "
              f"{r['load_s']:.1f}, hulls {r['hulls_s']:.1f}, cut {r['cut_s']:.1f} ({r['bisection_rounds']} rounds)"
              f"{write} | {r['status']}, {r['gap']:.1e} | {r['driver_mb_end']:.0f} | "
              f"{', '.join(f'{m:.0f}' for m in r['workers_mb'])} |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
