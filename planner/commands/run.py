"""``routeplan run`` (execute a plan) and ``routeplan report`` (re-render a run's report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from planner.commands._options import flag
from planner.errors import InputError


def run_command(
    plan: Annotated[Path, typer.Argument(help="plan.json written by `routeplan solve`, or the folder (or its "
                                         "summary.json) of a sharded plan written by `routeplan solve --workers`.")],
    *,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder for the ledger and report (default: run-<plan name>).")] = None,
    simulate: Annotated[bool, flag(
        "--simulate", help="Use the built-in simulator (the default without --live).")] = False,
    live: Annotated[bool, flag(
        "--live", help="Call the real providers (the only way anything is called); an error if any key "
        "is missing.")] = False,
    resume: Annotated[bool, flag(
        "--resume", help="Continue the run recorded in --out (after a crash or an interruption).")] = False,
    budget: Annotated[float | None, typer.Option(
        "--budget", help="Budget in USD (default: the plan's budget; none = unlimited).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Calls in flight across all models.")] = 32,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the simulator's noise and faults [default: 0; a resumed run keeps its own].",
        show_default=False)] = None,
    time_scale: Annotated[float | None, typer.Option(
        "--time-scale", help="Simulator: real seconds per simulated second, 0 = no waiting "
        "[default: 0; a resumed run keeps its own].", show_default=False)] = None,
    fail_rate: Annotated[float | None, typer.Option(
        "--fail-rate", help="Simulator: probability of an injected fault per attempt "
        "[default: 0; a resumed run keeps its own].", show_default=False)] = None,
    max_retries: Annotated[int, typer.Option(
        "--max-retries", help="Retries per model on transient errors before the next fallback.")] = 3,
    workers: Annotated[int, typer.Option(
        "--workers", help="Run on N executor processes (Ray actors) fed by one coordinator that owns "
        "the budget and the ledger; needs `pip install 'routeplan[ray]'` [default: 0 = in this process].",
        show_default=False)] = 0,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="With --workers: an existing Ray cluster (e.g. ray://head:10001) instead of "
        "a local Ray started on this machine.")] = None,
    grace: Annotated[float, typer.Option(
        "--grace", help="On Ctrl-C: seconds to wait for calls in flight to answer before writing them "
        "off (a second Ctrl-C stops at once).")] = 10.0,
    batch_poll: Annotated[float, typer.Option(
        "--batch-poll", help="Batch jobs: seconds before the first poll, doubled after each poll up to "
        "10 minutes (simulator: on its clock).")] = 30.0,
) -> None:
    """Run a plan: simulated unless --live (keys in the environment alone never make a live run).

    Every call's worst case is reserved against the budget before it is sent, so spend never exceeds it; every attempt is in OUT/ledger.sqlite, and OUT/report.md compares projected with actual. Tasks on @batch offerings go to the provider's batch API as jobs (docs/batch.md). Exit status: 0 every task done or queued by the budget, 1 some task failed, 2 bad input or an output folder that cannot be written, 130 interrupted.
    """
    from planner.executor.options import RetryPolicy, RunOptions
    from planner.executor.run import run_plan

    if simulate and live:
        raise InputError("--simulate and --live: choose one")
    if ray_address and not workers:
        raise InputError("--ray-address: needs --workers N (the number of executor processes)")
    options = RunOptions(mode="simulate" if simulate else "live" if live else "auto", budget_usd=budget,
                         resume=resume, concurrency=concurrency, seed=seed, time_scale=time_scale,
                         fail_rate=fail_rate, retry=RetryPolicy(max_retries=max_retries), grace_s=grace,
                         workers=workers, ray_address=ray_address, batch_poll_s=batch_poll,
                         batch_poll_max_s=max(batch_poll, 600.0))
    out_dir = out or Path(f"run-{_plan_name(plan)}")
    try:
        result = run_plan(plan, out_dir, options)
    except KeyboardInterrupt:
        if (out_dir / "ledger.sqlite").exists():
            again = f"routeplan run {plan} -o {out_dir} --resume" + (" --live" if live else "")
            typer.echo(f"interrupted: finished tasks are kept in {out_dir / 'ledger.sqlite'}; continue "
                       f"with `{again}`", err=True)
        raise
    for line in summary_lines(simulated=result.simulated, mode_reason=result.mode_reason,
                              counts=result.counts, spent_usd=result.spent_usd,
                              budget_usd=result.budget_usd, out_dir=out_dir,
                              lost_attempts=result.lost_attempts,
                              ran=(result.ran_tasks, result.wall_s),
                              graded=(result.graded, result.passed, result.grade_errors),
                              cascades=_report_cascades(out_dir)):
        typer.echo(line)
    failed = result.counts.get("failed", 0)
    if failed:
        typer.echo(f"exit status 1: {failed} task(s) failed (reasons in the report)", err=True)
        raise typer.Exit(1)


def _plan_name(plan: Path) -> str:
    """A plan's name for its default output folder: a sharded plan's is its folder's."""
    from planner.plan import is_sharded_plan

    if plan.name == "summary.json" and is_sharded_plan(plan):
        return plan.resolve().parent.name
    return plan.resolve().name if plan.is_dir() else plan.stem


def summary_lines(*, simulated: bool, mode_reason: str, counts: dict[str, int], spent_usd: float,
                  budget_usd: float | None, out_dir: Path, lost_attempts: int = 0,
                  ran: tuple[int, float] | None = None,
                  graded: tuple[int, int, int] | None = None,
                  cascades: list[dict[str, Any]] | None = None) -> list[str]:
    """What `run` prints when it ends and `report` prints for a run's folder: the mode, the
    tasks by status, the spend against the budget, each cascade's acceptance against its
    projection, where the report is."""
    budget_text = "unlimited" if budget_usd is None else f"${budget_usd:.4f}"
    lines = [f"{'SIMULATED' if simulated else 'LIVE'} run: {mode_reason}"]
    if lost_attempts:
        lines.append(f"resumed: {lost_attempts} attempt(s) interrupted in flight counted at their "
                     f"reserved worst case")
    unfinished = counts.get("pending", 0) + counts.get("running", 0)
    tasks = (f"tasks: {counts.get('done', 0)} done, {counts.get('failed', 0)} failed, "
             f"{counts.get('queued', 0)} queued"
             + (f", {unfinished} not finished (resume with --resume)" if unfinished else "")
             + f"; spent ${spent_usd:.6f} of {budget_text}")
    if ran is not None:
        tasks += f"; {ran[0]} task(s) run in {ran[1]:.2f}s"
    lines.append(tasks)
    if graded is not None and (graded[0] or graded[2]):
        lines.append(f"graded: {graded[0]} answer(s) by their checks, {graded[1]} passed"
                     + (f"; {graded[2]} could not be graded (`routeplan grade {out_dir}` retries)"
                        if graded[2] else ""))
    for c in cascades or []:
        if c.get("decided"):
            lines.append(f"cascade {c['cascade']}: accepted {c['accepted']}/{c['decided']} "
                         f"({100 * c['actual_accept_rate']:.1f} %, projected {100 * c['projected_accept_rate']:.1f} %), "
                         f"escalations ${c['escalation_cost_usd']:.6f}")
    lines.append(f"report: {out_dir / 'report.md'}")
    return lines


def _report_cascades(out_dir: Path) -> list[dict[str, Any]]:
    """The cascades section of the report the run just wrote (none when it wrote none)."""
    import json

    try:
        return list(json.loads((out_dir / "report.json").read_text()).get("cascades") or [])
    except (OSError, ValueError):
        return []


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run's output folder (holding ledger.sqlite).")],
) -> None:
    """Re-render a run's report (report.md/json, tasks.csv, chart) from its ledger; print its summary."""
    from planner.executor.run_report import write_run_report_data
    from planner.status import status

    with status(f"rendering the report of {run_dir} from its ledger"):
        report, _ = write_run_report_data(run_dir)
    t = report["totals"]
    counts = {k: t[f"n_{k}"] for k in ("done", "failed", "queued", "pending", "running")}
    q = report["quality"]
    graded = (q["n_graded"], (q["overall"] or {}).get("n_passed", 0), q["n_ungraded"])
    for line in summary_lines(simulated=report["simulated"], mode_reason=report["mode"], counts=counts,
                              spent_usd=report["spent_usd"], budget_usd=report["budget_usd"],
                              out_dir=run_dir, lost_attempts=t["lost_attempts"], graded=graded,
                              cascades=report.get("cascades")):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("report")(report_command)
