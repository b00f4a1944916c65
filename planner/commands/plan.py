"""``routeplan plan show``: look at a plan.json again, as `solve` printed it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.commands.solve import FormatOpt, RowsOpt, check_format, show_plan

plan_app = typer.Typer(help="Look at a plan written by `routeplan solve`.", no_args_is_help=True)


@plan_app.command("show")
def show_command(
    plan: Annotated[Path, typer.Argument(help="plan.json written by `routeplan solve`.")],
    *,
    fmt: FormatOpt = "table",
    max_rows: RowsOpt = 25,
) -> None:
    """Print a plan: the table `solve` prints (or its JSON, or one CSV row per task)."""
    from planner.plan import Plan

    check_format(fmt, max_rows)
    show_plan(Plan.load(plan), fmt, max_rows)


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
