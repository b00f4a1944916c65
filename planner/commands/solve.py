"""``routeplan solve`` and ``routeplan validate``: a task batch and a catalog to a plan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from planner.commands._options import (
    AllowQueueOpt,
    AvgQualityOpt,
    CascadesOpt,
    CatalogOpt,
    GapOpt,
    MaxLatencyOpt,
    MinQualityOpt,
    ModelsOpt,
    ShareCapOpt,
    SolverOpt,
    TasksArg,
    WeightsOpt,
    check_common,
    check_number,
    check_out_file,
    parse_models,
    parse_shares,
    parse_weights,
)
from planner.errors import InputError
from planner.goals import GOAL_LIST
from planner.plan import check_budget

if TYPE_CHECKING:
    from planner.plan import Plan

FormatOpt = Annotated[str, typer.Option("--format", help="What to print: table, json or csv.")]
RowsOpt = Annotated[int, typer.Option("--rows", help="Task rows shown in the table.")]


def solve_command(
    tasks: TasksArg,
    *,
    goal: Annotated[str, typer.Option(
        "--goal", help=f"{GOAL_LIST}.")] = "minimize_cost",
    catalog: CatalogOpt = None,
    models: ModelsOpt = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Total budget in USD.")] = None,
    max_latency: MaxLatencyOpt = None,
    deadline: Annotated[float | None, typer.Option(
        "--deadline", help="Batch deadline in seconds: caps per-model concurrency/rpm/tpm; allows batch APIs.")] = None,
    min_quality: MinQualityOpt = None,
    avg_quality: AvgQualityOpt = None,
    weights: WeightsOpt = None,
    allow_queue: AllowQueueOpt = False,
    share_cap: ShareCapOpt = None,
    solver: SolverOpt = "auto",
    time_limit: Annotated[float | None, typer.Option("--time-limit", help="Solver time limit in seconds.")] = None,
    gap: GapOpt = 1e-4,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the plan here: .json (full plan), .csv or .parquet (per task). "
        "Default plan.json; '-' to write nothing.")] = None,
    fmt: FormatOpt = "table",
    max_rows: RowsOpt = 25,
    workers: Annotated[int, typer.Option(
        "--workers", help="Plan on N Ray workers (fast, sharded: its budget/quality knapsack or its "
        "Lagrangian for capacities and share caps): the "
        "Parquet task file is read and formulated shard by shard on the workers and the plan written "
        "as Parquet parts into the --out folder; needs `pip install 'routeplan[ray]'` [default: 0 = in this "
        "process].", show_default=False)] = 0,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="With --workers: an existing Ray cluster instead of a local Ray.")] = None,
    cascades: CascadesOpt = True,
) -> None:
    """Plan a task batch: pick a model for every task under the limits, print it, write plan.json."""
    from planner.plan import Limits
    from planner.render import write_plan
    from planner.solve import make_plan

    check_format(fmt, max_rows)
    if budget is not None:
        check_budget(budget)
    check_number("--deadline", deadline, positive=True)
    check_common(max_latency=max_latency, min_quality=min_quality, avg_quality=avg_quality,
                 time_limit=time_limit, gap=gap)
    parsed_weights = parse_weights(weights)
    if weights is not None and goal != "balanced":  # as `routeplan sweep` says: no silent no-op
        raise InputError(f"--weights: the weights belong to goal balanced, got goal {goal!r}; "
                         f"add --goal balanced or drop --weights")
    limits = Limits(budget_usd=budget, deadline_s=deadline, max_latency_s=max_latency,
                    min_quality=min_quality, avg_quality=avg_quality, weights=parsed_weights,
                    allow_queue=allow_queue, share_caps=parse_shares(share_cap))
    if ray_address and not workers:
        raise InputError("--ray-address: needs --workers N (the number of planning processes)")
    if workers:
        solve_sharded_command(tasks, catalog=catalog, goal=goal, limits=limits, solver=solver, gap=gap,
                              models=parse_models(models), out=out, workers=workers, ray_address=ray_address)
        return
    target = Path("plan.json") if out is None else out
    check_out_file(target)
    if str(target) != "-" and target.suffix.lower() not in (".json", ".csv", ".parquet"):
        raise InputError(f"--out: expected a .json, .csv or .parquet file name, got {target.name!r}")
    from planner.status import status

    with status(f"planning {tasks} (goal {goal}, solver {solver})"):
        plan = make_plan(tasks, catalog, goal=goal, limits=limits, solver=solver,
                         time_limit_s=time_limit, models=parse_models(models), rel_gap=gap, cascades=cascades)
    written = None if str(target) == "-" else write_plan(plan, target)
    show_plan(plan, fmt, max_rows, written)


def solve_sharded_command(tasks: Path, *, catalog: Path | None, goal: str, limits: object, solver: str,
                          gap: float, models: list[str] | None, out: Path | None, workers: int,
                          ray_address: str | None) -> None:
    """``solve --workers N``: the sharded fast planner (planner.distributed); prints its summary."""
    from planner.catalog import load_catalog
    from planner.distributed.cluster import check_workers, require_ray
    from planner.distributed.shards import TaskFileSource

    check_workers(workers)
    require_ray()
    if solver not in ("auto", "fast"):
        raise InputError(f"--solver {solver}: with --workers the planner is fast's (sharded); use --solver fast")
    folder = Path("plan") if out is None else out
    if str(folder) == "-" or folder.suffix or (folder.exists() and not folder.is_dir()):
        raise InputError("--out: with --workers the plan is written shard by shard: give a folder name",
                         file=str(folder))
    if folder.is_dir() and any(folder.glob("part-*.parquet")):
        raise InputError("--out: this folder already holds a plan's parts; choose another --out", file=str(folder))
    source = TaskFileSource(str(tasks), load_catalog(catalog), goal, limits,
                            tuple(models) if models else None, catalog_file=None if catalog is None else str(catalog))
    if source.n_shards == 0:
        raise InputError("no row groups: expected task rows", file=str(tasks))
    from planner.distributed.plan_driver import solve_sharded
    from planner.status import status

    with status(f"planning {tasks} on {workers} ray worker(s) ({source.n_shards} shards)"):
        res, _ = solve_sharded(source, workers, folder, rel_gap=gap, ray_address=ray_address)
    if res.objective is None:
        raise InputError(f"no plan: {res.message or res.status}", file=str(tasks))
    price = "" if res.budget_shadow_price is None else f"; budget shadow price {res.budget_shadow_price:.6g}"
    typer.echo(f"{res.status}: {res.n_tasks} task(s), {res.n_queued} queued; objective {res.objective:.6g}, "
               f"bound {res.bound:.6g}, gap {res.gap if res.gap is not None else float('nan'):.2e}{price}; "
               f"{res.wall_s:.1f}s on {workers} worker(s)")
    typer.echo(f"plan written to {folder}/part-*.parquet (one per shard) and {folder}/summary.json; "
               f"run it with `routeplan run {folder}`")


def check_format(fmt: str, max_rows: int) -> None:
    if fmt not in ("table", "json", "csv"):
        raise InputError(f"--format: expected table, json or csv, got {fmt!r}")
    if max_rows < 0:
        raise InputError(f"--rows: expected a number of rows >= 0, got {max_rows}")


def show_plan(plan: Plan, fmt: str, max_rows: int, written: Path | None = None) -> None:
    """Print a plan as `solve` does: the table (or JSON, CSV), then where it was written."""
    from planner.render import plan_csv, print_plan

    if fmt == "json":
        typer.echo(plan.model_dump_json(indent=1))
    elif fmt == "csv":
        typer.echo(plan_csv(plan), nl=False)
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # logs and pipes: no need to squeeze into 80 columns
            console.width = 150
        print_plan(plan, console, max_rows=max_rows)
        if written:
            console.print(f"plan written to {written}", style="dim", markup=False, emoji=False)


def validate_command(
    tasks: TasksArg,
    *,
    catalog: CatalogOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Check a task batch (and that the catalog can serve every task) without solving."""
    from planner.catalog import load_catalog
    from planner.formulation import formulate
    from planner.plan import Limits
    from planner.status import status
    from planner.tasks import load_tasks

    with status(f"checking {tasks}"):
        batch = load_tasks(tasks)
        cat = load_catalog(catalog)
        f = formulate(batch, cat, limits=Limits(allow_queue=True), models=parse_models(models))
    lonely = np.flatnonzero(~f.feasible.any(axis=1))
    if lonely.size:
        more = f" (and {lonely.size - 1} more)" if lonely.size > 1 else ""
        raise InputError(f"no model can serve {f.explain_task(int(lonely[0]))}{more}", file=str(tasks))
    types: dict[str, int] = {}
    for t in batch:
        types[t.type] = types.get(t.type, 0) + 1
    counted = sum(t.input_tokens is None for t in batch)
    typer.echo(f"{tasks}: {len(batch)} tasks OK ({', '.join(f'{k} {v}' for k, v in sorted(types.items()))}); "
               f"{counted} counted with litellm's tokenizer, every task has a feasible model among "
               f"{len(f.offerings)} offerings")


def register(app: typer.Typer) -> None:
    app.command("solve")(solve_command)
    app.command("validate")(validate_command)
