"""Pictures of a sweep (a DataFrame from :func:`planner.sweep`): the frontier and the model mix.

Figures are built with ``matplotlib.figure.Figure``, not pyplot, so saving a PNG needs no
display and leaves no global figure state behind; in a notebook, return the figure to show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.errors import InputError
from planner.render import fit_name
from planner.sweeps import model_mix

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

AXIS_LABEL = {"budget_usd": "budget (USD)", "deadline_s": "deadline (s)",
              "quality_weight": "quality weight of the balanced goal"}


def plot_frontier(df: pd.DataFrame, ax: Axes, *, log_x: bool = False) -> None:
    """Mean quality (left axis) and projected cost (right axis) against the swept value."""
    col = df.attrs.get("column", df.columns[0])
    x = df[col].to_numpy(dtype=float)
    ax.plot(x, df["mean_quality"], "o-", color="tab:blue", ms=3, label="mean quality")
    ax.set_ylabel("mean quality (0-1)", color="tab:blue")
    twin = ax.twinx()
    twin.plot(x, df["projected_cost_usd"], "s--", color="tab:red", ms=2.5, label="projected cost")
    twin.set_ylabel("projected cost (USD)", color="tab:red")
    if col == "budget_usd":
        twin.plot(x, x, ":", color="grey", lw=1, label="budget")
    ax.grid(alpha=0.3)
    if log_x:
        ax.set_xscale("log")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [str(ln.get_label()) for ln in lines], loc="lower right", fontsize=8)


def plot_mix(df: pd.DataFrame, ax: Axes, *, log_x: bool = False, min_share: float = 0.03) -> None:
    """The share of served tasks on each model as a stacked area over the swept value."""
    col = df.attrs.get("column", df.columns[0])
    mix = model_mix(df[df["served_tasks"] > 0], share=True, min_share=min_share)  # points with a plan
    x = mix.index.to_numpy(dtype=float)
    if mix.shape[1]:
        from matplotlib import colormaps

        order = mix.sum(axis=0).sort_values(ascending=False).index
        palette = colormaps["tab10" if len(order) <= 10 else "tab20"].colors  # type: ignore[attr-defined]
        ax.stackplot(x, *[mix[c].to_numpy() for c in order], labels=[fit_name(str(c), 28) for c in order],
                     colors=[palette[i % len(palette)] for i in range(len(order))], alpha=0.85)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of served tasks")
    ax.set_xlabel(AXIS_LABEL.get(col, col))
    if log_x:
        ax.set_xscale("log")


def sweep_figure(df: pd.DataFrame, *, log_x: bool = False, title: str | None = None) -> Figure:
    """Two panels sharing the x axis: the frontier above, the model mix below."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    plot_frontier(df, top, log_x=log_x)
    plot_mix(df, bottom, log_x=log_x)
    if title is None:
        axis = df.attrs.get("axis", "")
        title = f"{axis} sweep, goal {df.attrs.get('goal', '')}, {df.attrs.get('n_tasks', '?')} tasks"
    fig.suptitle(title)
    return fig


def save_sweep_plot(df: pd.DataFrame, path: str | Path, *, log_x: bool = False) -> Path:
    """Write :func:`sweep_figure` to a PNG (or any format matplotlib knows by the suffix).
    A folder gets ``frontier.png`` inside it; a name without a suffix gets ``.png``. Returns
    the file written."""
    path = Path(path)
    if path.is_dir():
        path = path / "frontier.png"
    elif not path.suffix:
        path = path.with_name(path.name + ".png")
    if not np.isfinite(df["mean_quality"].to_numpy(dtype=float)).any():
        raise InputError("--plot: no point of the sweep has a plan; nothing to draw", file=str(path))
    fig = sweep_figure(df, log_x=log_x)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise InputError(f"--plot: cannot write it: {exc}", file=str(path)) from None
    return path
