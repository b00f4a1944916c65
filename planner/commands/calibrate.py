"""``routeplan calibrate``: learn a catalog's quality, output length, prices and speeds from outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.commands._options import CatalogOpt
from planner.errors import InputError

HistoryArg = Annotated[list[Path], typer.Argument(
    help="Outcome history: long tables (.csv, .jsonl, .json, .parquet), RouterBench-style wide tables, "
         "or run folders of graded runs.")]
MapOpt = Annotated[list[str] | None, typer.Option(
    "--map", help="column=field: read a long table's column as a history field (repeatable), e.g. correct=score.")]


def calibrate_command(
    history: HistoryArg,
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the calibrated catalog (YAML).")],
    catalog: CatalogOpt = None,
    mapping: MapOpt = None,
    prior_strength: Annotated[float, typer.Option(
        "--prior-strength", help="Weight of the base catalog's score, in observations (0: the data alone).")] = 10.0,
    interval: Annotated[float, typer.Option(
        "--interval", help="Credible interval level reported for each score.")] = 0.9,
    predictor: Annotated[bool, typer.Option(
        "--predictor/--no-predictor", help="Fit a per-prompt quality predictor where the history has "
        "prompts, and keep it only where cross-validation says it beats the category profile.")] = True,
    cascades: Annotated[bool, typer.Option(
        "--cascades/--no-cascades", help="Fit cascade statistics: agree cascades where the history has several "
        "models' answers to the same prompts, and every cascade that graded runs (run folders) executed.")] = True,
) -> None:
    """Fit per (model, category) profiles from outcome history into a catalog that extends --catalog."""
    from planner.calibrate import calibrate, cascade_rows, summary_rows
    from planner.history import parse_map, read_history

    if out.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(f"--out: expected a .yaml file name for the calibrated catalog, got {out.name!r}")
    if out.is_dir():
        raise InputError("--out: expected a file, got a directory", file=str(out))
    hist = read_history(history, parse_map(mapping or []), cascades=cascades)
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    console.print(hist.summary(), markup=False)
    cal = calibrate(hist.frame, catalog, prior_strength=prior_strength, interval=interval,
                    files=[str(p) for p in history], cascades=cascades, run_cascades=hist.cascades)
    if predictor and not hist.frame.empty:
        from planner.predictor import fit_predictor

        fit_predictor(hist.frame, cal, out)
    cal.write(out)
    _print_summary(cal, summary_rows(cal))
    _print_cascades(cal, cascade_rows(cal))
    for line in cal.notes:
        console.print(f"note: {line}", markup=False)
    for line in cal.warnings:
        console.print(f"warning: {line}", style="yellow", markup=False)
    console.print(f"calibrated catalog written to {out} (use it with --catalog {out})", markup=False)


def _print_summary(cal, rows) -> None:
    from rich.console import Console
    from rich.table import Table

    from planner.catalog import short_names

    t = Table(title=f"calibrated from {cal.n_records:,} outcomes · prior strength {cal.prior_strength:g} · "
                    f"{cal.interval:.0%} intervals", title_justify="left", show_edge=False)
    for col in ("model", "category", "n", "observed", "prior", "calibrated", "interval", "out tokens"):
        t.add_column(col, justify="left" if col in ("model", "category") else "right")
    names = short_names(sorted({r["model"] for r in rows}))
    for r in rows:
        t.add_row(names[r["model"]], r["category"], f"{r['n']:,}", f"{r['observed']:.3f}",
                  f"{r['prior']:.3f}", f"{r['calibrated']:.3f}", r["interval"], r["output_tokens"])
    console = Console()
    if not console.is_terminal:
        console.width = 140
    if rows:
        console.print(t)
    if cal.predictor_report:
        p = Table(title="per-prompt predictor against the category profile (5-fold cross-validated Brier "
                        "score, lower is better)", title_justify="left", show_edge=False)
        for col in ("model", "category", "n", "profile", "predictor", "kept"):
            p.add_column(col, justify="left" if col in ("model", "category", "kept") else "right")
        for r in cal.predictor_report:
            p.add_row(names[r["model"]], r["category"], f"{r['n']:,}", f"{r['brier_profile']:.4f}",
                      f"{r['brier_predictor']:.4f}", "yes" if r["kept"] else "no")
        console.print(p)


def _print_cascades(cal, rows) -> None:
    if not rows:
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"cascades calibrated from graded runs · prior strength {cal.prior_strength:g} · "
                    f"{cal.interval:.0%} intervals (n: decided tasks for p_accept, graded ones for the qualities)",
              title_justify="left", show_edge=False)
    for col in ("cascade", "category", "stat", "n", "prior", "calibrated", "interval", "prior from"):
        t.add_column(col, justify="left" if col in ("cascade", "category", "stat", "prior from") else "right")
    for r in rows:
        for i, stat in enumerate(("p_accept", "quality_accept", "quality_reject")):
            s = r[stat]
            t.add_row(r["cascade"] if i == 0 else "", r["category"] if i == 0 else "", stat, f"{s['n']:,}",
                      f"{s['prior']:.3f}", f"{s['calibrated']:.3f}", s["interval"], r["prior_from"] if i == 0 else "")
    console = Console()
    if not console.is_terminal:
        console.width = 160
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
