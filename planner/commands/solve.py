"""``routeplan solve`` and ``routeplan validate``: a task batch and a catalog to a plan."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from planner.errors import InputError

TasksArg = Annotated[Path, typer.Argument(help="Task batch: .yaml, .json, .jsonl, .csv or .parquet.")]
CatalogOpt = Annotated[Path | None, typer.Option(
    "--catalog", help="Model catalog YAML (default: the built-in catalog; `extends: default` to add to it).")]


def parse_weights(text: str | None) -> dict[str, float]:
    """'cost=0.4,quality=0.4,speed=0.2' -> dict; unknown names and bad numbers are InputError."""
    w = {"cost": 0.4, "quality": 0.4, "speed": 0.2}
    if not text:
        return w
    out = {"cost": 0.0, "quality": 0.0, "speed": 0.0}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in out:
            raise InputError(f"--weights: expected name=number with names cost, quality, speed, got {part!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise InputError(f"--weights: {name}: expected a number, got {value!r}") from None
        if not math.isfinite(out[name]) or out[name] < 0:
            raise InputError(f"--weights: {name}: expected a number >= 0, got {value!r}")
    if sum(out.values()) <= 0:
        raise InputError("--weights: at least one weight must be > 0")
    return out


def parse_shares(items: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.rpartition("=")
        try:
            share = float(value)
        except ValueError:
            share = math.nan
        if not sep or not name or not 0 <= share <= 1:
            raise InputError(f"--share-cap: expected model=fraction in [0, 1], got {item!r}")
        out[name] = share
    return out


def _nonneg(name: str, v: float | None, positive: bool = False) -> None:
    if v is None:
        return
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise InputError(f"{name}: expected a number {'> 0' if positive else '>= 0'}, got {v:g}")


def solve_command(
    tasks: TasksArg,
    *,
    goal: Annotated[str, typer.Option(
        "--goal", help="minimize_cost, maximize_quality, minimize_latency or balanced.")] = "minimize_cost",
    catalog: CatalogOpt = None,
    models: Annotated[str | None, typer.Option(
        "--models", help="Only these catalog models, comma-separated (an id keeps its @batch twin).")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Total budget in USD.")] = None,
    max_latency: Annotated[float | None, typer.Option(
        "--max-latency", help="Latency limit in seconds for every task (a task's own max_latency_s may be stricter).")] = None,
    deadline: Annotated[float | None, typer.Option(
        "--deadline", help="Batch deadline in seconds: caps per-model concurrency/rpm/tpm; allows batch APIs.")] = None,
    min_quality: Annotated[float | None, typer.Option(
        "--min-quality", help="Quality floor in [0, 1] for every task (a task's own min_quality may be stricter).")] = None,
    avg_quality: Annotated[float | None, typer.Option(
        "--avg-quality", help="Floor on the mean quality of the served tasks, in [0, 1].")] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Balanced goal weights, e.g. cost=0.4,quality=0.4,speed=0.2.")] = None,
    allow_queue: Annotated[bool, typer.Option(
        "--allow-queue", help="Queue tasks the limits cannot fit instead of failing.")] = False,
    share_cap: Annotated[list[str] | None, typer.Option(
        "--share-cap", help="model=fraction: at most that share of the tasks on a model (repeatable).")] = None,
    solver: Annotated[str, typer.Option(
        "--solver", help="auto, highs, cpsat, cbc or fast.")] = "auto",
    time_limit: Annotated[float | None, typer.Option("--time-limit", help="Solver time limit in seconds.")] = None,
    gap: Annotated[float, typer.Option(
        "--gap", help="Relative optimality gap to prove before stopping (default 1e-4).")] = 1e-4,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the plan here: .json (full plan), .csv or .parquet (per task). "
        "Default plan.json; '-' to write nothing.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="What to print: table, json or csv.")] = "table",
    max_rows: Annotated[int, typer.Option("--rows", help="Task rows shown in the table.")] = 25,
) -> None:
    """Plan a task batch: pick a model for every task under the limits, print it, write plan.json."""
    from planner.plan import Limits
    from planner.render import plan_csv, print_plan, write_plan
    from planner.solve import make_plan

    if fmt not in ("table", "json", "csv"):
        raise InputError(f"--format: expected table, json or csv, got {fmt!r}")
    if max_rows < 0:
        raise InputError(f"--rows: expected a number of rows >= 0, got {max_rows}")
    _nonneg("--budget", budget)
    _nonneg("--max-latency", max_latency, positive=True)
    _nonneg("--deadline", deadline, positive=True)
    _nonneg("--time-limit", time_limit, positive=True)
    if not (math.isfinite(gap) and 0 <= gap < 1):
        raise InputError(f"--gap: expected a relative gap in [0, 1), got {gap:g}")
    for name, q in (("--min-quality", min_quality), ("--avg-quality", avg_quality)):
        if q is not None and not 0 <= q <= 1:
            raise InputError(f"{name}: expected a number in [0, 1], got {q:g}")
    parsed_weights = parse_weights(weights)
    if weights is not None and goal != "balanced":  # as `routeplan sweep` says: no silent no-op
        raise InputError(f"--weights: the weights belong to goal balanced, got goal {goal!r}; "
                         f"add --goal balanced or drop --weights")
    limits = Limits(budget_usd=budget, deadline_s=deadline, max_latency_s=max_latency,
                    min_quality=min_quality, avg_quality=avg_quality, weights=parsed_weights,
                    allow_queue=allow_queue, share_caps=parse_shares(share_cap))
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    plan = make_plan(tasks, catalog, goal=goal, limits=limits, solver=solver,
                     time_limit_s=time_limit, models=model_list, rel_gap=gap)
    target = Path("plan.json") if out is None else out
    written = None if str(target) == "-" else write_plan(plan, target)
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
    models: Annotated[str | None, typer.Option("--models", help="Only these catalog models.")] = None,
) -> None:
    """Check a task batch (and that the catalog can serve every task) without solving."""
    from planner.catalog import load_catalog
    from planner.formulation import formulate
    from planner.plan import Limits
    from planner.tasks import load_tasks

    batch = load_tasks(tasks)
    cat = load_catalog(catalog)
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    f = formulate(batch, cat, limits=Limits(allow_queue=True), models=model_list)
    lonely = (~f.feasible.any(axis=1)).nonzero()[0]
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
