"""Executor throughput against Ray workers: ``run --workers N`` on a local Ray, simulated at
zero latency, with the budget guard (grants) and the ledger on, against one process.

    .venv/bin/python benchmarks/bench_ray_executor.py                  # 20k tasks, 1 and 2 workers, 3 reps
    .venv/bin/python benchmarks/bench_ray_executor.py --tasks 5000 --workers 1 2 4 --reps 5

Each repetition runs every configuration once, in turn (so a change in the machine's load
hits all of them alike); the table gives each run's tasks/s (run phase: the actors are up,
their imports done, as for a long batch), the median, and the median ratio to one worker.
Needs the ray extra (``pip install 'routeplan[ray]'``). Not a test; prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_executor import build_plan  # noqa: E402

CPU_PER_TASK: dict[int, list[float]] = {}


def run_once(plan, workers: int, concurrency: int) -> float:  # type: ignore[no-untyped-def]
    """tasks/s of one run; records this process's CPU per task (the coordinator's, with Ray)."""
    from planner.executor import RunOptions, run_plan

    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        r = run_plan(plan, Path(tmp), RunOptions(mode="simulate", progress=False, workers=workers,
                                                 concurrency=concurrency))
        CPU_PER_TASK.setdefault(workers, []).append((time.process_time() - cpu) / r.ran_tasks)
        assert r.counts.get("done", 0) == r.ran_tasks, r.counts
        return r.ran_tasks / r.wall_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64, help="calls in flight, shared by the workers")
    ap.add_argument("--no-single", action="store_true", help="skip the one-process reference")
    a = ap.parse_args()
    import ray

    ray.init(num_cpus=max(max(a.workers), os.cpu_count() or 1), include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    plan = build_plan(a.tasks)
    configs = ([] if a.no_single else [0]) + list(a.workers)
    t = time.perf_counter()
    for w in a.workers:  # warm the actors (start-up and imports are not the run's throughput)
        run_once(build_plan(200), w, a.concurrency)
    print(f"# {a.tasks} tasks, concurrency {a.concurrency}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start (warm-up {time.perf_counter() - t:.0f} s)")
    rates: dict[int, list[float]] = {w: [] for w in configs}
    for _ in range(a.reps):
        for w in configs:
            rates[w].append(run_once(plan, w, a.concurrency))
    base = statistics.median(rates[a.workers[0]]) if a.workers else None
    print("| workers | tasks/s per run | median tasks/s | vs 1 worker (median) | CPU per task here |")
    print("| --- | --- | --- | --- | --- |")
    for w in configs:
        med = statistics.median(rates[w])
        name = "one process (no Ray)" if w == 0 else str(w)
        ratio = f"{med / base:.2f}x" if base and w else "-"
        cpu = statistics.median(CPU_PER_TASK[w][-a.reps:]) * 1e6
        where = "the whole run" if w == 0 else "the coordinator"
        print(f"| {name} | {', '.join(f'{r:.0f}' for r in rates[w])} | {med:.0f} | {ratio} | "
              f"{cpu:.0f} us ({where}) |")
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")
    ray.shutdown()


if __name__ == "__main__":
    main()
