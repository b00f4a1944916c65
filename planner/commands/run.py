"""``routeplan run`` (execute a plan) and ``routeplan report`` (re-render a run's report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.errors import InputError


def run_command(
    plan: Annotated[Path, typer.Argument(help="plan.json written by `routeplan solve`.")],
    *,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder for the ledger and report (default: run-<plan name>).")] = None,
    simulate: Annotated[bool, typer.Option("--simulate", help="Use the built-in simulator.")] = False,
    live: Annotated[bool, typer.Option(
        "--live", help="Call the real providers; an error if any key is missing.")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run recorded in --out (after a crash or an interruption).")] = False,
    budget: Annotated[float | None, typer.Option(
        "--budget", help="Budget in USD (default: the plan's budget; none = unlimited).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Calls in flight across all models.")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulator's noise and faults.")] = 0,
    time_scale: Annotated[float, typer.Option(
        "--time-scale", help="Simulator: real seconds per simulated second (0 = no waiting).")] = 0.0,
    fail_rate: Annotated[float, typer.Option(
        "--fail-rate", help="Simulator: probability of an injected fault per attempt.")] = 0.0,
    max_retries: Annotated[int, typer.Option(
        "--max-retries", help="Retries per model on transient errors before the next fallback.")] = 3,
) -> None:
    """Run a plan: live through litellm, or simulated when no provider keys are set.

    Every call's worst case is reserved against the budget before it is sent, so spend never exceeds it; every attempt is in OUT/ledger.sqlite, and OUT/report.md compares projected with actual.
    """
    from planner.executor.options import RetryPolicy, RunOptions
    from planner.executor.run import run_plan

    if simulate and live:
        raise InputError("--simulate and --live: choose one")
    options = RunOptions(mode="simulate" if simulate else "live" if live else "auto", budget_usd=budget,
                         resume=resume, concurrency=concurrency, seed=seed, time_scale=time_scale,
                         fail_rate=fail_rate, retry=RetryPolicy(max_retries=max_retries))
    out_dir = out or Path(f"run-{plan.stem}")
    try:
        result = run_plan(plan, out_dir, options)
    except KeyboardInterrupt:
        if (out_dir / "ledger.sqlite").exists():
            typer.echo(f"interrupted: finished tasks are kept in {out_dir / 'ledger.sqlite'}; continue with "
                       f"`routeplan run {plan} -o {out_dir} --resume`", err=True)
        raise
    c = result.counts
    budget_text = "unlimited" if result.budget_usd is None else f"${result.budget_usd:.4f}"
    typer.echo(f"{'SIMULATED' if result.simulated else 'LIVE'} run: {result.mode_reason}")
    if result.lost_attempts:
        typer.echo(f"resumed: {result.lost_attempts} attempt(s) interrupted in flight counted at their "
                   f"reserved worst case")
    typer.echo(f"tasks: {c.get('done', 0)} done, {c.get('failed', 0)} failed, {c.get('queued', 0)} queued; "
               f"spent ${result.spent_usd:.6f} of {budget_text}; "
               f"{result.ran_tasks} task(s) run in {result.wall_s:.2f}s")
    typer.echo(f"report: {out_dir / 'report.md'}")


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run's output folder (holding ledger.sqlite).")],
) -> None:
    """Re-render a run's report (report.md/json, tasks.csv, chart) from its ledger."""
    from planner.executor.report import write_report

    for path in write_report(run_dir):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("report")(report_command)
