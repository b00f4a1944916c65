"""``routeplan grade``: grade (again) the answers a run stored, without calling its models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.errors import InputError


def grade_command(
    run_dir: Annotated[Path, typer.Argument(help="A run's output folder (holding ledger.sqlite).")],
    *,
    tasks: Annotated[Path | None, typer.Option(
        "--tasks", help="Task file whose checks replace the stored ones (matched by task id).")] = None,
    live: Annotated[bool, typer.Option(
        "--live", help="Call the real judge model for judge checks (default: simulated).")] = False,
    budget: Annotated[float | None, typer.Option(
        "--budget", help="Budget in USD for the run including judge calls (default: the run's).")] = None,
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", help="Catalog for a judge model the run does not have (default: built-in).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Answers graded at once.")] = 8,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the simulated judge (default: the run's).")] = None,
) -> None:
    """Grade a run's stored answers by their checks and rewrite its report; no model is asked again.

    Checks other than judge are free and always regraded; a judge is called only for answers
    with no score yet or whose judge check changed. Exit status: 0 every answer graded, 1 some
    could not be graded (judge failed or over budget), 2 bad input, 130 interrupted.
    """
    from planner.executor.regrade import grade_run

    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder")
    try:
        r = grade_run(run_dir, tasks_file=tasks, live=live, budget_usd=budget, catalog=catalog,
                      concurrency=concurrency, seed=seed)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: grades so far are kept in {run_dir / 'ledger.sqlite'}; run "
                   f"`routeplan grade {run_dir}` again to finish", err=True)
        raise
    if r.updated_checks:
        typer.echo(f"checks: {r.updated_checks} updated from {tasks}"
                   + (f" ({r.ignored_tasks} task(s) of the file are not in this run)" if r.ignored_tasks else ""))
    judge = "" if not r.judge_cost_usd else f"; judge cost ${r.judge_cost_usd:.6f} ({'live' if live else 'simulated'})"
    typer.echo(f"graded {r.graded} of {r.to_grade}: {r.passed} passed, {r.failed_check} failed their check, "
               f"{r.errors} could not be graded; {r.kept} judge grade(s) kept, {r.unanswered} task(s) "
               f"with a check but no answer{judge}")
    typer.echo(f"report: {run_dir / 'report.md'}")
    if r.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("grade")(grade_command)
