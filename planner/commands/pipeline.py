"""``routeplan pipeline run|validate``: the multi-step pipelines (the model routing demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from planner.commands._options import flag

pipeline_app = typer.Typer(
    help="Run or check a pipeline file (steps, tools, {{ }} templates, one shared budget).",
    no_args_is_help=True,
)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

FileArg = Annotated[Path, typer.Argument(help="The pipeline YAML, e.g. examples/model_routing_demo.yaml.")]


@pipeline_app.command("run")
def run_command(
    file: FileArg,
    *,
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", "-i", help="An input as key=value, typed by the pipeline's declared inputs "
        "(repeatable), e.g. -i task_budget=5 -i priority=cost.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder: report.md, results.json, each step's plan and ledger "
        "(default: run-<pipeline file name>).")] = None,
    live: Annotated[bool, flag(
        "--live", help="Call real providers (needs their API keys); default is the simulator.",
    )] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulator's noise.")] = 0,
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", help="Model catalog YAML (default: the built-in catalog).")] = None,
    solver: Annotated[str | None, typer.Option(
        "--solver", help="Solver for every routing step: auto, highs, cpsat, cbc or fast "
        "(default: each step's own solver, else auto).")] = None,
) -> None:
    """Run a pipeline: each step in dependency order under one budget; print the report.

    Simulated unless --live. Exit status: 0 every task done or queued by the budget, 1 some task failed, 2 bad input or an output folder that cannot be written, 130 interrupted.
    """
    from planner.pipeline import PipelineOptions, prepare, run_pipeline
    from planner.pipeline.runner import check_options
    from planner.pipeline.schema import parse_assignments

    out = out or Path(f"run-{file.stem}")
    options = PipelineOptions(out_dir=out, live=live, seed=seed,
                         catalog_path=str(catalog) if catalog else None, solver=solver)
    check_options(options)  # before the pipeline is even read: nothing runs on a bad option
    checked, values = prepare(file, parse_assignments(inputs or []))
    run = run_pipeline(checked, values, options)
    if run.report_markdown is not None:
        typer.echo(run.report_markdown)
    b = run.budget
    n_done, n_failed = sum(s.n_done for s in b.steps), sum(s.n_failed for s in b.steps)
    mode = "live run" if live else "simulated run (only --live calls providers)"
    _err.print(f"{mode}: tasks: {n_done} done, {n_failed} failed, "
               f"{b.n_queued} queued; spent ${b.spent_usd:.6f} of ${b.initial_usd:g}; "
               f"report: {run.report_path or '(no report step)'}; results: {out / 'results.json'}",
               markup=False)
    if n_failed:
        _err.print(f"exit status 1: {n_failed} task(s) failed (reasons in the report)", markup=False)
        raise typer.Exit(1)


@pipeline_app.command("validate")
def validate_command(
    file: FileArg,
    *,
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", "-i", help="Inputs to check as key=value (repeatable).")] = None,
) -> None:
    """Check a pipeline without running it: schema, tools, templates, dependencies, inputs."""
    from planner.pipeline import prepare
    from planner.pipeline.schema import parse_assignments

    checked, values = prepare(file, parse_assignments(inputs or []))
    shown = ", ".join(f"{k}={v}" for k, v in values.items())
    typer.echo(f"{file}: ok: {len(checked.order)} steps: {' -> '.join(checked.order)}")
    typer.echo(f"inputs: {shown or '(none)'}")


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
