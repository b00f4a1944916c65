"""Executor throughput and memory: the simulator at zero latency, the whole path (budget guard,
limits, litellm.acompletion through the custom provider, ledger with group commit) for 1k,
10k and 100k tasks. Not a test; prints a table.

    .venv/bin/python benchmarks/bench_executor.py            # 1k 10k 100k
    .venv/bin/python benchmarks/bench_executor.py 1000 5000  # chosen sizes
    .venv/bin/python benchmarks/bench_executor.py --direct   # also without litellm (attribution)
    .venv/bin/python benchmarks/bench_executor.py --reps 3   # median of 3 runs per size (by tasks/s)
    .venv/bin/python benchmarks/bench_executor.py --floor    # bare litellm.acompletion, no executor (x3)

Each size runs in a fresh process so peak RSS is its own. ``rss_plan_mb`` is the process
after loading the plan (the plan itself grows with the batch); ``run_extra_mb`` is what the
run adds on top of that at its peak: flat when the executor keeps nothing per task in memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def build_plan(n_tasks: int):  # type: ignore[no-untyped-def]
    from planner.plan import Assignment, Fallback, Limits, ModelSnapshot, Plan, SolverInfo, Totals

    models = [
        ModelSnapshot(name="openai/gpt-4o-mini", litellm_model="openai/gpt-4o-mini", provider="openai",
                      input_cost_per_token=1.5e-7, output_cost_per_token=6e-7, price_source="bench",
                      ttft_s=0.4, output_tokens_per_s=80),
        ModelSnapshot(name="groq/llama-3.1-8b-instant", litellm_model="groq/llama-3.1-8b-instant",
                      provider="groq", input_cost_per_token=5e-8, output_cost_per_token=8e-8,
                      price_source="bench", ttft_s=0.2, output_tokens_per_s=500),
    ]
    assignments = []
    for i in range(n_tasks):
        m, f = models[i % 2], models[1 - i % 2]
        assignments.append(Assignment(
            task_id=f"t{i:07d}", model=m.name, type="summarize",
            messages=[{"role": "user", "content": f"Summarise document {i}."}], max_tokens=300,
            projected_input_tokens=60, projected_output_tokens=150,
            projected_cost_usd=60 * m.input_cost_per_token + 150 * m.output_cost_per_token,
            projected_latency_s=m.ttft_s + 150 / m.output_tokens_per_s, projected_quality=0.8,
            worst_case_cost_usd=60 * m.input_cost_per_token + 300 * m.output_cost_per_token,
            fallbacks=[Fallback(model=f.name, projected_cost_usd=0.0, projected_latency_s=1.0,
                                projected_quality=0.8)]))
    total = sum(a.projected_cost_usd for a in assignments)
    return Plan(catalog="bench", goal="minimize_cost", limits=Limits(budget_usd=total * 10), models=models,
                assignments=assignments,
                totals=Totals(n_tasks=n_tasks, n_assigned=n_tasks, n_queued=0, projected_cost_usd=total,
                              projected_worst_case_cost_usd=total * 2, makespan_s=0, mean_latency_s=0,
                              mean_quality=0.8),
                solver=SolverInfo(name="bench", status="optimal", objective=total, bound=total, gap=0.0,
                                  wall_time_s=0.0))


def use_direct_transport() -> None:
    """Attribution only: answer from the simulator without going through litellm, to show how
    much of the per-task time is litellm's own work and how much is the executor's."""
    import planner.executor.run as run_module
    from planner.executor.caller import Caller, CallResult
    from planner.executor.classify import MalformedResponse
    from planner.executor.simulator import answer, lookup

    class DirectCaller(Caller):
        async def call(self, model, req):  # type: ignore[no-untyped-def]
            config, snap = lookup({"run": self.run_id}, model.name)
            a = await answer(config, snap, req.task_id, req.attempt, req.max_tokens, req.timeout_s,
                             req.expected_output_tokens, req.input_tokens)
            if a.malformed:
                raise MalformedResponse("malformed")
            return CallResult(a.text, a.input_tokens, a.output_tokens, a.latency_s, a.finish_reason)

    run_module.Caller = DirectCaller  # type: ignore[misc]


def floor(n_calls: int = 10_000, concurrency: int = 64, inline: bool = True) -> dict[str, float]:
    """litellm's own floor: bare ``litellm.acompletion`` calls to a custom provider that returns
    at once, no executor, no ledger. Returns calls/s and CPU ms per call (CPU is the steadier
    figure on a shared machine). ``inline``: litellm's set-up step in the loop thread, as
    simulated runs do (InlineSetupExecutor); False = litellm's default worker threads."""
    import asyncio

    import litellm
    from litellm import CustomLLM

    class Instant(CustomLLM):
        async def acompletion(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            # a complete answer, as the simulator gives: without usage litellm counts tokens itself
            response = kwargs["model_response"]
            response.choices[0].message.content = "ok"
            response.usage = litellm.Usage(prompt_tokens=60, completion_tokens=150, total_tokens=210)
            response._hidden_params["response_cost"] = 0.0
            return response

    litellm.suppress_debug_info = True
    litellm.custom_provider_map = [*litellm.custom_provider_map, {"provider": "bench-instant", "custom_handler": Instant()}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()

    async def run() -> dict[str, float]:
        if inline:
            from planner.executor.caller import InlineSetupExecutor

            asyncio.get_running_loop().set_default_executor(InlineSetupExecutor())
        sem = asyncio.Semaphore(concurrency)

        async def call(i: int) -> None:
            async with sem:
                await litellm.acompletion(model="bench-instant/openai/gpt-4o-mini", custom_llm_provider="bench-instant",
                                          messages=[{"role": "user", "content": f"Summarise document {i}."}],
                                          max_tokens=300, timeout=600.0, num_retries=0, max_retries=0)

        await asyncio.gather(*(call(i) for i in range(200)))  # warm-up: first-call set-up
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(call(i) for i in range(n_calls)))
        wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        return {"calls": n_calls, "calls_per_s": n_calls / wall_s, "cpu_ms_per_call": cpu_s / n_calls * 1e3}

    return asyncio.run(run())


def one(n_tasks: int, concurrency: int, transport: str) -> dict[str, float]:
    """Run one size in this process; returns its figures."""
    from planner.executor import RunOptions, run_plan
    from planner.executor.caller import import_litellm

    import_litellm()
    if transport == "direct":
        use_direct_transport()
    plan = build_plan(n_tasks)
    rss_plan_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_plan(plan, Path(tmp), RunOptions(mode="simulate", progress=False, concurrency=concurrency),
                          report=False)
        run_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        run_peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t1 = time.perf_counter()
        from planner.executor.run_report import write_run_report

        write_run_report(tmp)
        report_s = time.perf_counter() - t1
        ledger_mb = (Path(tmp) / "ledger.sqlite").stat().st_size / 2**20
    assert result.counts == {"done": n_tasks}, result.counts
    return {"tasks": n_tasks, "run_s": run_s, "tasks_per_s": n_tasks / run_s,
            "cpu_ms_per_task": cpu_s / n_tasks * 1e3, "report_s": report_s,
            "rss_plan_mb": rss_plan_kb / 1024, "peak_rss_mb": run_peak_kb / 1024,
            "run_extra_mb": (run_peak_kb - rss_plan_kb) / 1024, "ledger_mb": ledger_mb, "transport": transport}


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--floor-one":
        print(json.dumps(floor(inline=argv[1] == "inline")))
        return
    if argv and argv[0] == "--floor":
        for how in ["inline", "threads"]:
            for _ in range(3):  # fresh processes: litellm's logging worker is tied to one event loop
                out = subprocess.run([sys.executable, __file__, "--floor-one", how],
                                     check=True, capture_output=True, text=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"bare litellm.acompletion, do-nothing custom provider, set-up {how}: "
                      f"{r['calls_per_s']:,.0f} calls/s, {r['cpu_ms_per_call']:.2f} ms CPU per call")
        return
    if argv and argv[0] == "--one":
        print(json.dumps(one(int(argv[1]), int(argv[2]), argv[3])))
        return
    direct = "--direct" in argv
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 1
    if "--reps" in argv:
        del argv[argv.index("--reps"):argv.index("--reps") + 2]
    sizes = [int(a) for a in argv if not a.startswith("--")] or [1_000, 10_000, 100_000]
    concurrency = 64
    rows = []
    for transport in ["litellm", "direct"] if direct else ["litellm"]:
        for n in sizes:
            runs = []
            for _ in range(reps):
                out = subprocess.run([sys.executable, __file__, "--one", str(n), str(concurrency), transport],
                                     check=True, capture_output=True, text=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"{transport:>8} {n:>8,} tasks: {runs[-1]['tasks_per_s']:,.0f} tasks/s", file=sys.stderr)
            rows.append(sorted(runs, key=lambda r: r["tasks_per_s"])[len(runs) // 2])  # the median run
    print(f"simulator at zero latency, concurrency {concurrency}, ledger on (WAL, group commit), "
          f"{os.cpu_count()} CPUs, median of {reps} run(s) per row\n")
    print("| path | tasks | run (s) | tasks/s | CPU ms/task | report (s) | RSS after plan load (MB) | peak RSS in run (MB) | run adds (MB) | ledger (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['transport']} | {r['tasks']:,} | {r['run_s']:.2f} | {r['tasks_per_s']:,.0f} | {r['cpu_ms_per_task']:.2f} | {r['report_s']:.2f} | "
              f"{r['rss_plan_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['run_extra_mb']:.0f} | {r['ledger_mb']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
