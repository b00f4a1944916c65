"""``routeplan evaluate``: backtest the plans a catalog would make on recorded outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.commands._options import CatalogOpt, GapOpt, SolverOpt
from planner.commands.calibrate import HistoryArg, MapOpt
from planner.errors import InputError
from planner.goals import GOAL_LIST, goal_spec


def evaluate_command(
    history: HistoryArg,
    *,
    catalog: CatalogOpt = None,
    budget: Annotated[str | None, typer.Option(
        "--budget", help="Total budget in USD for the batch: START:STOP:COUNT (default: 20 points from "
        "the cheapest plan to the dearest single model's cost).")] = None,
    log: Annotated[bool, typer.Option("--log", help="Space the budgets geometrically (START > 0).")] = False,
    goal: Annotated[str, typer.Option(
        "--goal", help=f"{GOAL_LIST} (default maximize_quality).")] = "maximize_quality",
    mapping: MapOpt = None,
    solver: SolverOpt = "auto",
    gap: GapOpt = 1e-4,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write every scored point: .csv, .json or .parquet.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the cost-score curves to this PNG.")] = None,
    plans: Annotated[Path | None, typer.Option(
        "--plans", help="Write each budget's assignment as CSV into this directory: task_id, offering, "
        "called_models (in order, ';' between), final_model.")] = None,
    cascades: Annotated[bool | None, typer.Option(
        "--cascades/--no-cascades", help="Plan the catalog's cascades (first -> agree(first, witness) -> "
        "second) as extra offerings, scored from the recorded answers (default: when the catalog has "
        "cascade statistics).")] = None,
) -> None:
    """Plan held-out tasks with the catalog's profiles, score the plans with the recorded truth, and
    compare with every single model, their hull and the oracle (AIQ)."""
    from planner.commands.sweep import parse_range, write_frame
    from planner.evaluate import evaluate_history
    from planner.history import parse_map, read_history

    goal_spec(goal)
    budgets = parse_range("--budget", budget, log=log) if budget is not None else None
    if out is not None and out.suffix.lower() not in (".csv", ".json", ".parquet"):
        raise InputError(f"--out: expected a .csv, .json or .parquet file name, got {out.name!r}")
    if plot is not None and plot.suffix.lower() != ".png":
        raise InputError(f"--plot: expected a .png file name, got {plot.name!r}")
    if not (0 <= gap < 1):
        raise InputError(f"--gap: expected a relative gap in [0, 1), got {gap!r}")
    hist = read_history(history, parse_map(mapping or []))
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    err.print(hist.summary(), markup=False)
    ev = evaluate_history(hist.frame, catalog, budgets=budgets, goal=goal, solver=solver,
                          plans_dir=plans, rel_gap=gap, cascades=cascades)
    console = Console()
    if not console.is_terminal:
        console.width = 140
    from planner.evaluate_render import curves_table, points_table

    console.print(points_table(ev))
    console.print(curves_table(ev))
    for line in ev.notes:
        err.print(f"note: {line}", markup=False)
    if out is not None:
        console.print(f"points written to {write_frame(ev.frame(), out)}", style="dim", markup=False)
    if plot is not None:
        from planner.evaluate_render import save_plot

        console.print(f"plot written to {save_plot(ev, plot)}", style="dim", markup=False)
    if plans is not None:
        console.print(f"plans written to {plans}/", style="dim", markup=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
