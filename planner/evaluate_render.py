"""Tables and the chart of a backtest (:class:`planner.evaluate.Evaluation`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.catalog import short_names
from planner.errors import InputError
from planner.evaluate import HULL, ORACLE, ROUTEPLAN, Evaluation, upper_hull
from planner.money import usd

if TYPE_CHECKING:
    from rich.table import Table


def points_table(ev: Evaluation) -> Table:
    """routeplan's plan at each budget: projected against realised cost and score."""
    from rich.table import Table

    p = ev.points[ev.points["curve"] == ROUTEPLAN]
    t = Table(title="routeplan at each budget: planned with the profiles, scored with the recorded truth",
              title_justify="left", show_edge=False)
    for col in ("budget", "status", "projected cost", "realised cost", "cost/task", "projected score",
                "realised score", "models"):
        t.add_column(col, justify="left" if col == "status" else "right")
    for r in p.itertuples(index=False):
        if r.status in ("optimal", "feasible", "time_limit_feasible"):
            t.add_row(usd(r.budget_usd), r.status, usd(r.projected_cost_usd), usd(r.cost_usd),
                      usd(r.cost_per_task), f"{r.projected_quality:.3f}", f"{r.score:.3f}", f"{int(r.models_used)}")
        else:
            t.add_row(usd(r.budget_usd), r.status, "below the cheapest plan", "", "", "", "", "")
    return t


def curves_table(ev: Evaluation) -> Table:
    """Each curve's AIQ over the common cost range, its best score and the cost of that score."""
    from rich.table import Table

    lo, hi = ev.cost_range
    t = Table(title=f"AIQ over cost per task {usd(lo)} .. {usd(hi)} (cheapest to dearest single model)",
              title_justify="left", show_edge=False)
    for col in ("curve", "AIQ", "best score", "at cost/task"):
        t.add_column(col, justify="left" if col == "curve" else "right")
    pts = ev.points[ev.points["score"].notna()]
    names = short_names([c.removeprefix("model:") for c in ev.aiq if c.startswith("model:")])
    order = [ROUTEPLAN, HULL, ORACLE] + sorted((c for c in ev.aiq if c.startswith("model:")),
                                                key=lambda c: -ev.aiq[c])
    for curve in order:
        rows = pts[pts["curve"].str.startswith("model:")] if curve == HULL else pts[pts["curve"] == curve]
        if rows.empty:
            t.add_row(curve, f"{ev.aiq.get(curve, 0.0):.4f}", "-", "-")
            continue
        best = rows.sort_values(["score", "cost_per_task"], ascending=[False, True]).iloc[0]
        name = "model " + names[curve.removeprefix("model:")] if curve.startswith("model:") else curve
        t.add_row(name, f"{ev.aiq[curve]:.4f}", f"{best['score']:.3f}", usd(best["cost_per_task"]))
    best = names[ev.best_model]
    if ev.match_cost is None:
        t.caption = f"routeplan does not reach {best}'s score ({ev.best_model_score:.3f}) in the budgets tried"
    else:
        t.caption = (f"routeplan matches the best single model, {best} ({ev.best_model_score:.3f}), at "
                     f"{usd(ev.match_cost)} per task: {ev.match_cost / ev.best_model_cost:.0%} of its cost")
    t.caption_justify = "left"
    return t


def plot_curves(ev: Evaluation, ax) -> None:  # ax: matplotlib Axes
    """Realised score against cost per task: routeplan, the single models and their hull, the oracle."""
    pts = ev.points[ev.points["score"].notna()]
    plan = pts[pts["curve"] == ROUTEPLAN].sort_values("cost_per_task")
    singles = pts[pts["curve"].str.startswith("model:")]
    oracle = pts[pts["curve"] == ORACLE].sort_values("cost_per_task")
    hc, hs = upper_hull(singles["cost_per_task"], singles["score"])
    names = short_names([c.removeprefix("model:") for c in singles["curve"]])
    lo, hi = ev.cost_range
    if hc.size:  # linear in cost between vertices: sampled densely so the log axis shows its true shape
        xs = np.geomspace(hc[0], max(hi, hc[-1]), 200)
        ax.plot(xs, np.interp(xs, hc, hs), "--", color="grey", lw=1,
                label=f"single-model hull (AIQ {ev.aiq[HULL]:.3f})")
    ax.scatter(singles["cost_per_task"], singles["score"], s=14, color="grey")
    for r in singles.itertuples(index=False):
        ax.annotate(names[r.curve.removeprefix("model:")], (r.cost_per_task, r.score), fontsize=6,
                    xytext=(3, 2), textcoords="offset points", color="dimgrey")
    ax.plot(plan["cost_per_task"], plan["score"], "o-", ms=3, color="tab:blue",
            label=f"routeplan (AIQ {ev.aiq[ROUTEPLAN]:.3f})")
    ox, oy = oracle["cost_per_task"].to_numpy(), oracle["score"].to_numpy()
    if ox.size and ox[-1] < hi:  # the oracle keeps its best score right of its dearest point
        ox, oy = np.append(ox, hi), np.append(oy, oy.max())
    ax.plot(ox, oy, "-", color="tab:green", lw=1, label=f"oracle (AIQ {ev.aiq[ORACLE]:.3f})")
    ax.axvspan(lo, hi, color="tab:blue", alpha=0.04)
    ax.set_xscale("log")
    ax.set_xlabel("realised cost per task (USD, log scale)")
    ax.set_ylabel("realised mean score")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def save_plot(ev: Evaluation, path: str | Path) -> Path:
    from matplotlib.figure import Figure

    path = Path(path)
    if path.is_dir():
        raise InputError("--plot: expected a .png file name, got a directory", file=str(path))
    fig = Figure(figsize=(8, 5), dpi=120)
    plot_curves(ev, fig.add_subplot(1, 1, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path)
    except OSError as exc:
        raise InputError(f"--plot: cannot write it: {exc.strerror or exc}", file=str(path)) from None
    return path



