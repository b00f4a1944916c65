"""``routeplan sweep``: the frontier of one batch as a budget, deadline or weight changes.

Exactly one of ``--budget``, ``--deadline`` and ``--quality-weight`` is a range
``START:STOP:COUNT`` (evenly spaced, or geometrically with ``--log``); ``--budget`` and
``--deadline`` may instead be a single number, a limit fixed across the sweep.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    check_out_file,
    flag,
    parse_models,
    parse_shares,
    parse_weights,
)
from planner.errors import InputError
from planner.goals import GOAL_LIST
from planner.money import usd
from planner.plan import MAX_BUDGET_USD, check_budget

if TYPE_CHECKING:
    import pandas as pd

MAX_COUNT = 10_000
RANGE_HELP = "START:STOP:COUNT to sweep"
RANGE_EXAMPLES = {"--budget": "0.5:25:50", "--deadline": "60:3600:10", "--quality-weight": "0:1:11"}


def parse_range(option: str, text: str, *, log: bool, lo: float = 0.0, hi: float = math.inf,
                positive: bool = False) -> list[float]:
    """'START:STOP:COUNT' -> COUNT values from START to STOP (both included), linear or geometric.

    Values must lie in [lo, hi] (or (lo, hi] with ``positive``); ``log`` needs START > 0.
    """
    want = f"{option}: expected START:STOP:COUNT (e.g. {RANGE_EXAMPLES.get(option, '0.5:25:50')})"
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(f"{want}, got {text!r}")
    try:
        start, stop = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"{want}, got {text!r}: START and STOP must be numbers") from None
    try:
        count = int(parts[2])
    except ValueError:
        raise InputError(f"{want}, got {text!r}: COUNT must be a whole number") from None
    if not (1 <= count <= MAX_COUNT):
        raise InputError(f"{option}: COUNT must be between 1 and {MAX_COUNT}, got {count}")
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise InputError(f"{option}: START and STOP must be finite numbers, got {text!r}")
    if start > stop:
        raise InputError(f"{option}: START must not exceed STOP, got {text!r}")
    bound = f"in ({lo:g}, {hi:g}]" if positive else f"in [{lo:g}, {hi:g}]"
    if start < lo or (positive and start <= lo) or stop > hi:
        raise InputError(f"{option}: values must be {bound.replace(', inf]', ', inf)')}, got {text!r}")
    if log and start <= 0:
        raise InputError(f"{option}: --log needs START > 0, got {text!r}")
    import numpy as np

    values = np.geomspace(start, stop, count) if log else np.linspace(start, stop, count)
    return [float(v) for v in values]


def _fixed(option: str, text: str | None, positive: bool = False) -> float | None:
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{option}: expected a number or START:STOP:COUNT, got {text!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise InputError(f"{option}: expected a number {'> 0' if positive else '>= 0'}, got {text!r}")
    return v


def sweep_command(
    tasks: TasksArg,
    *,
    budget: Annotated[str | None, typer.Option(
        "--budget", help=f"Budget in USD: {RANGE_HELP} (e.g. 0.5:25:50), or one number held fixed.")] = None,
    deadline: Annotated[str | None, typer.Option(
        "--deadline", help=f"Batch deadline in seconds: {RANGE_HELP} (e.g. 60:3600:10), or one number held fixed.")] = None,
    quality_weight: Annotated[str | None, typer.Option(
        "--quality-weight", help=f"Quality weight of the balanced goal in [0, 1], {RANGE_HELP} (e.g. 0:1:11); "
        "cost and speed share the rest in the ratio of --weights (default 0.4 : 0.2).")] = None,
    log: Annotated[bool, flag("--log", help="Space the range geometrically (START > 0).")] = False,
    goal: Annotated[str | None, typer.Option(
        "--goal", help=f"{GOAL_LIST} (default: "
        "maximize_quality for --budget, minimize_cost for --deadline, balanced for --quality-weight).")] = None,
    catalog: CatalogOpt = None,
    models: ModelsOpt = None,
    max_latency: MaxLatencyOpt = None,
    min_quality: MinQualityOpt = None,
    avg_quality: AvgQualityOpt = None,
    weights: WeightsOpt = None,
    allow_queue: AllowQueueOpt = False,
    share_cap: ShareCapOpt = None,
    solver: SolverOpt = "auto",
    per_point: Annotated[bool, flag(
        "--per-point", help="One solve per point even where one parametric pass would do.")] = False,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", help="Solver time limit per point, in seconds.")] = None,
    gap: GapOpt = 1e-4,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the frontier table: .csv, .json or .parquet.")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Draw the frontier and the model mix to this PNG.")] = None,
    cascades: CascadesOpt = True,
) -> None:
    """What-if sweep: solve the batch across budgets, deadlines or quality weights; print the frontier."""
    ranges = {name: text for name, text in
              (("--budget", budget), ("--deadline", deadline), ("--quality-weight", quality_weight))
              if text is not None and (":" in text or name == "--quality-weight")}
    if len(ranges) != 1:
        have = f"got {len(ranges)} ({', '.join(ranges)})" if ranges else "got none"
        raise InputError("sweep: expected exactly one range START:STOP:COUNT among --budget, --deadline "
                         f"and --quality-weight; {have}")
    (option, text), = ranges.items()
    check_common(max_latency=max_latency, min_quality=min_quality, avg_quality=avg_quality,
                 time_limit=time_limit, gap=gap)
    if out is not None and out.suffix.lower() not in (".csv", ".json", ".parquet"):
        raise InputError(f"--out: expected a .csv, .json or .parquet file name, got {out.name!r}")
    check_out_file(out)

    axes: dict[str, list[float]] = {}
    if option == "--budget":
        axes["budget"] = parse_range(option, text, log=log, hi=MAX_BUDGET_USD)
    elif option == "--deadline":
        axes["deadline"] = parse_range(option, text, log=log, positive=True)
    else:
        axes["weights"] = parse_range(option, text, log=log, hi=1.0)

    from planner.plan import Limits
    from planner.sweeps import sweep

    fixed_budget = None if option == "--budget" else _fixed("--budget", budget)
    if fixed_budget is not None:
        check_budget(fixed_budget)
    limits = Limits(budget_usd=fixed_budget,
                    deadline_s=None if option == "--deadline" else _fixed("--deadline", deadline, positive=True),
                    max_latency_s=max_latency, min_quality=min_quality, avg_quality=avg_quality,
                    weights=parse_weights(weights), allow_queue=allow_queue, share_caps=parse_shares(share_cap))
    from planner.status import status

    n_points = len(next(iter(axes.values())))
    with status(f"sweeping {tasks}: {n_points} {option.removeprefix('--')} point(s)"):
        df = sweep(tasks, catalog, goal=goal, limits=limits, solver=solver, time_limit_s=time_limit,
                   models=parse_models(models), parametric=False if per_point else None, rel_gap=gap,
                   cascades=cascades, **axes)  # type: ignore[arg-type]

    from rich.console import Console

    console = Console()
    console.print(sweep_table(df))
    if out is not None:
        console.print(f"frontier written to {write_frame(df, out)}", style="dim", markup=False,
                      soft_wrap=True)  # a path broken across lines cannot be copied
    if plot is not None:
        from planner.sweeps_plot import save_sweep_plot

        with status(f"drawing {plot}"):
            written = save_sweep_plot(df, plot, log_x=log)
        console.print(f"plot written to {written}", style="dim", markup=False, soft_wrap=True)


def write_frame(df: pd.DataFrame, path: Path) -> Path:
    """The sweep's table by suffix: .csv, .json (records) or .parquet. The per-model counts
    ``n_<litellm id>`` get the same mix by short name beside them, ``models_short``
    ("deepseek-chat=3; llama3-3-70b=2"), the names the tables print."""
    models = df.attrs.get("models", [])
    df = df.assign(models_short=["; ".join(f"{_name(m)}={int(r[f'n_{m}'])}" for m in models
                                           if r[f"n_{m}"] > 0) for _, r in df.iterrows()])
    suffix = path.suffix.lower()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            df.to_csv(path, index=False)
        elif suffix == ".json":
            df.to_json(path, orient="records", indent=1)
        else:
            df.to_parquet(path, index=False)
    except OSError as exc:
        raise InputError(f"--out: cannot write it: {exc.strerror or exc}", file=str(path)) from None
    return path


def _name(column: str) -> str:
    """A short model name, or a cascade's label as it is (it is made of short names)."""
    from planner.catalog import short_name

    return column if " -> " in column else short_name(column)


def _mix_text(row: pd.Series, models: list[str], top: int = 2) -> str:
    from planner.render import fit_name

    counts = sorted(((int(row[f"n_{m}"]), m) for m in models if row[f"n_{m}"] > 0), reverse=True)
    total = sum(c for c, _ in counts)
    if not total:
        return "-"
    text = ", ".join(f"{m if ' -> ' in m else fit_name(m, 22)} {c / total:.0%}" for c, m in counts[:top])
    return text + (f", +{len(counts) - top}" if len(counts) > top else "")


def sweep_table(df: pd.DataFrame):  # -> rich.table.Table
    """The frontier for people: one row per point, the model mix as its top two models."""
    from rich.markup import escape
    from rich.table import Table

    a = df.attrs
    col = a["column"]
    title = (f"{a['axis']} sweep · goal {a['goal']} · {a['n_tasks']} tasks · {len(df)} points · "
             f"{a['method']} · {a['wall_time_s']:.2f} s")
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    head = {"budget_usd": "budget", "deadline_s": "deadline", "quality_weight": "q weight"}[col]
    # a narrow terminal still shows the models: each axis keeps the columns its question needs
    cols = [head, "cost", "quality"]
    cols += ["$ price"] if col == "budget_usd" else ["makespan"]
    cols += ["queued"] if (df["queued_tasks"] > 0).any() else []
    cols += ["gap", "models"]
    for name in cols:
        table.add_column(name, justify="left" if name == "models" else "right", no_wrap=name != "models",
                         min_width=24 if name == "models" else None)
    for _, r in df.iterrows():
        v = r[col]
        cells = {head: f"${v:.3g}" if col == "budget_usd" else (f"{v:.4g}s" if col == "deadline_s" else f"{v:.3f}"),
                 "queued": str(r["queued_tasks"])}
        if r["served_tasks"] == 0 and r["status"] not in ("optimal", "feasible", "time_limit_feasible"):
            cells.update(cost=f"[red]{r['status']}[/red]", models=f"[dim]{escape(str(r['message']))}[/dim]")
        else:
            gap = "opt" if r["status"] == "optimal" else _opt(r["gap"], "{:.0e}")
            cells.update({"cost": usd(r["projected_cost_usd"]), "quality": f"{r['mean_quality']:.3f}",
                          "$ price": _opt(r["budget_shadow_price"], "{:.3g}"), "makespan": f"{r['makespan_s']:.3g}s",
                          "gap": gap + ("*" if r["carried_from"] == r["carried_from"] else ""),
                          "models": escape(_mix_text(r, a["models"]))})
        table.add_row(*[cells.get(c, "") for c in cols])
    notes = ["gap: to the proven bound (opt: proven optimal)"]
    if col == "budget_usd":
        notes.insert(0, "$ price: the budget's shadow price (objective per extra USD)")
    if df["carried_from"].notna().any():
        notes.append("*: kept the previous point's better plan")
    table.caption = "; ".join(notes)
    table.caption_justify = "left"
    return table


def _opt(x: float, fmt: str) -> str:
    return "-" if x != x else fmt.format(x)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
