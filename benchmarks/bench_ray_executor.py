"""Executor throughput against Ray workers: ``run --workers N`` on a local Ray, simulated at
zero latency, with the budget guard (grants) and the ledger on, against one process.

    .venv/bin/python benchmarks/bench_ray_executor.py                  # 20k tasks, 1 and 2 workers, 3 reps
    .venv/bin/python benchmarks/bench_ray_executor.py --tasks 5000 --workers 1 2 4 --reps 5
    .venv/bin/python benchmarks/bench_ray_executor.py --cascades --tasks 5000  # agree cascades

Each repetition runs every configuration once, in turn (so a change in the machine's load
hits all of them alike); the table gives each run's tasks/s (run phase: the actors are up,
their imports done, as for a long batch), the median, and the median ratio to one worker.
``--cascades``: every task an ``agree`` cascade (cheap first model and a witness, escalated
to the other model on 30 % of the tasks); each of its 2-3 calls is recorded in flight by the
coordinator before the worker sends it (one round trip per call).
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


def cascade_plan(n_tasks: int):  # type: ignore[no-untyped-def]
    """build_plan's tasks, each an agree cascade: llama first, gpt-4o-mini the witness and
    the escalation (p_accept 0.7; a choice question, so the witness's answer is read)."""
    from planner.checks.schema import parse_check
    from planner.plan import CascadeSpec, CascadeStage

    plan = build_plan(n_tasks)
    strong, cheap = plan.models

    def stage(role: str, m) -> CascadeStage:  # type: ignore[no-untyped-def]
        return CascadeStage(role=role, model=m.name, max_tokens=300, projected_input_tokens=60,
                            projected_output_tokens=150,
                            projected_cost_usd=60 * m.input_cost_per_token + 150 * m.output_cost_per_token,
                            worst_case_cost_usd=60 * m.input_cost_per_token + 300 * m.output_cost_per_token)

    stages = [stage("first", cheap), stage("verify", strong), stage("second", strong)]
    spec = CascadeSpec(label="llama-3.1-8b-instant -> gpt-4o-mini (agree)", category="qa",
                       verifier={"verifier": "agree", "witnesses": [strong.name], "extractor": "choice"},
                       p_accept=0.7, quality_accept=0.9, quality_reject=0.85, basis="independence",
                       worst_case_latency_s=10.0, stages=stages)
    check = parse_check({"kind": "choice", "answer": "B"})
    expected = sum(s.projected_cost_usd for s in stages[:2]) + 0.3 * stages[2].projected_cost_usd
    worst = sum(s.worst_case_cost_usd for s in stages)
    assignments = [a.model_copy(update={
        "model": cheap.name, "fallbacks": [], "cascade": spec, "check": check, "projected_cost_usd": expected,
        "worst_case_cost_usd": worst,
        "messages": [{"role": "user", "content": f"Document {i}: which letter?\nA) one\nB) two\nC) three"}]})
        for i, a in enumerate(plan.assignments)]
    limits = plan.limits.model_copy(update={"budget_usd": expected * n_tasks * 10})
    return plan.model_copy(update={"assignments": assignments, "limits": limits})


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
    ap.add_argument("--cascades", action="store_true", help="every task an agree cascade")
    a = ap.parse_args()
    build = cascade_plan if a.cascades else build_plan
    import ray

    ray.init(num_cpus=max(max(a.workers), os.cpu_count() or 1), include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    plan = build(a.tasks)
    configs = ([] if a.no_single else [0]) + list(a.workers)
    t = time.perf_counter()
    for w in a.workers:  # warm the actors (start-up and imports are not the run's throughput)
        run_once(build(200), w, a.concurrency)
    print(f"# {a.tasks} {'cascade ' if a.cascades else ''}tasks, concurrency {a.concurrency}, {os.cpu_count()} cores, "
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
