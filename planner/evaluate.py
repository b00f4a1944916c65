"""Backtests: ``routeplan evaluate`` (docs/commands/evaluate.md).

Held-out outcome history supplies the tasks (id, category, prompt, tokens) and the truth
(each model's recorded score and cost on each task). At every budget the batch is planned
with the *profiles only* (the catalog, and its per-prompt predictor where it kept one), then
the plan is scored with the truth: realised mean score and realised cost. Each single model,
the hull of the single models and the oracle (per task, the cheapest model with the best
recorded score) are scored on the same tasks.

**AIQ** (RouterBench, Hu et al. 2024): the area under a curve's non-decreasing upper hull of
(cost per task, score), over one common cost range (the cheapest single model's cost to the
dearest's), divided by that range. Between two plans the hull is linear (mixing them task by
task reaches every point between); right of its dearest point a curve keeps its best score;
left of its cheapest point it has none and scores 0 there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.catalog import Catalog, load_catalog
from planner.errors import InputError
from planner.plan import Limits
from planner.tasks import Task, category_label, tasks_from_records

ROUTEPLAN = "routeplan"
HULL = "best single-model hull"
ORACLE = "oracle"
DEFAULT_POINTS = 20


@dataclasses.dataclass
class Truth:
    """The recorded outcomes as (task x model) matrices; NaN where a pair was not observed."""

    task_ids: list[str]
    categories: list[str]
    models: list[str]
    score: np.ndarray
    cost: np.ndarray
    input_tokens: np.ndarray  # per task: the median recorded count, NaN when none
    prompts: list[str | None]
    response: np.ndarray | None = None  # (task x model) recorded answers, None where not recorded


def truth_from_history(frame: pd.DataFrame) -> Truth:
    """Pivot long outcome records into per (task, model) score and cost matrices."""
    if frame.empty:
        raise InputError("no outcome records to evaluate on")
    df = frame
    task_codes, task_ids = pd.factorize(df["task_id"].astype(str), sort=False)
    model_codes, models = pd.factorize(df["model"].astype(str), sort=True)
    n, k = len(task_ids), len(models)
    score = np.full((n, k), np.nan)
    cost = np.full((n, k), np.nan)
    score[task_codes, model_codes] = df["score"].to_numpy(dtype=float)  # a repeated pair: the last wins
    if "cost_usd" in df:
        cost[task_codes, model_codes] = df["cost_usd"].to_numpy(dtype=float)
    first = pd.DataFrame({"t": task_codes, "category": df["category"].astype(str).to_numpy()}).drop_duplicates("t")
    cats = np.empty(n, dtype=object)
    cats[first["t"].to_numpy()] = [category_label(c) for c in first["category"]]
    tok = np.full(n, np.nan)
    if "input_tokens" in df and df["input_tokens"].notna().any():
        med = pd.Series(df["input_tokens"].to_numpy(dtype=float)).groupby(task_codes).median()
        tok[med.index.to_numpy()] = med.to_numpy()
    prompts: list[str | None] = [None] * n
    if "prompt" in df and df["prompt"].notna().any():
        has = df["prompt"].notna().to_numpy()
        for t, p in zip(task_codes[has], df["prompt"].to_numpy()[has], strict=True):
            if prompts[t] is None:
                prompts[t] = str(p)
    response = None
    if "response" in df and df["response"].notna().any():
        response = np.full((n, k), None, dtype=object)
        response[task_codes, model_codes] = df["response"].to_numpy(dtype=object)
    return Truth(list(map(str, task_ids)), list(cats), list(map(str, models)), score, cost, tok, prompts,
                 response)


def upper_hull(cost: Sequence[float], score: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing upper concave hull of points (cost, score), as its vertices by cost."""
    pts = sorted((float(c), float(s)) for c, s in zip(cost, score, strict=True)
                 if math.isfinite(c) and math.isfinite(s))
    # keep only points that beat every cheaper point (non-decreasing), then the concave chain
    front: list[tuple[float, float]] = []
    for c, s in pts:
        if front and s <= front[-1][1]:
            continue
        if front and c == front[-1][0]:
            front.pop()
        front.append((c, s))
    hull: list[tuple[float, float]] = []
    for p in front:
        while len(hull) >= 2:
            (c1, s1), (c2, s2) = hull[-2], hull[-1]
            if (s2 - s1) * (p[0] - c1) <= (p[1] - s1) * (c2 - c1):  # hull[-1] on or below the chord
                hull.pop()
            else:
                break
        hull.append(p)
    arr = np.array(hull, dtype=float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def hull_value(hc: np.ndarray, hs: np.ndarray, c: float) -> float:
    """The hull's score at cost ``c`` (0 left of its cheapest point, flat right of its dearest)."""
    if hc.size == 0 or c < hc[0]:
        return 0.0
    return float(np.interp(c, hc, hs))


def aiq(cost: Sequence[float], score: Sequence[float], lo: float, hi: float) -> float:
    """Area under the non-decreasing upper hull over [lo, hi], divided by hi - lo."""
    hc, hs = upper_hull(cost, score)
    if hc.size == 0:
        return 0.0
    if hi <= lo:
        return hull_value(hc, hs, lo)
    xs = np.unique(np.concatenate([[lo, hi], hc[(hc > lo) & (hc < hi)]]))
    area = 0.0
    for a, b in zip(xs[:-1], xs[1:], strict=True):  # linear on each piece; a jump only at hc[0]
        left = hull_value(hc, hs, a) if a >= hc[0] else 0.0
        if b <= hc[0]:
            continue
        right = float(np.interp(b, hc, hs))
        area += (b - a) * (left + right) / 2 if a >= hc[0] else 0.0
    return area / (hi - lo)


@dataclasses.dataclass
class Evaluation:
    """Every scored point, the AIQ of each curve, and the cost at which routeplan matches the
    best single model."""

    points: pd.DataFrame
    aiq: dict[str, float]
    cost_range: tuple[float, float]
    best_model: str
    best_model_score: float
    best_model_cost: float
    match_cost: float | None  # least cost per task at which the plan reaches best_model_score
    notes: list[str]

    def frame(self) -> pd.DataFrame:
        """The points with the curve's AIQ on each row (what ``planner.evaluate`` returns)."""
        out = self.points.copy()
        out["aiq"] = out["curve"].map(self.aiq)
        out.attrs.update(aiq=dict(self.aiq), cost_range=self.cost_range, best_model=self.best_model,
                         best_model_score=self.best_model_score, best_model_cost=self.best_model_cost,
                         match_cost=self.match_cost, notes=list(self.notes))
        return out


def evaluate(history: Any, catalog: Catalog | str | Path | None = None, *,
             budgets: Sequence[float] | None = None, goal: str = "maximize_quality", solver: str = "auto",
             plans_dir: str | Path | None = None, mapping: dict[str, str] | None = None,
             cascades: bool | None = None) -> pd.DataFrame:
    """Backtest as a DataFrame: one row per scored point (``curve``: routeplan, model:<id>,
    oracle), with realised ``score`` and ``cost_usd``/``cost_per_task`` and the curve's ``aiq``;
    ``df.attrs`` holds the AIQs, the cost range and the cost that matches the best model.

    ``history``: outcome files (paths, as ``routeplan evaluate`` takes), a
    :class:`planner.history.History`, or its DataFrame.
    """
    from planner.history import history_frame

    return evaluate_history(history_frame(history, mapping), catalog, budgets=budgets, goal=goal,
                            solver=solver, plans_dir=plans_dir, cascades=cascades).frame()


def evaluate_history(frame: pd.DataFrame, catalog: Catalog | str | Path | None = None, *,
                     budgets: Sequence[float] | None = None, goal: str = "maximize_quality",
                     solver: str = "auto", plans_dir: str | Path | None = None,
                     rel_gap: float = 1e-4, points: int = DEFAULT_POINTS,
                     cascades: bool | None = None) -> Evaluation:
    """Backtest the catalog's plans on the recorded outcomes in ``frame`` (see module doc).

    ``budgets``: total USD for the whole batch (None: ``points`` geometric points from the
    cheapest plan the profiles allow to the dearest single model's cost).
    ``cascades``: plan the catalog's cascades too (None: when it has cascade statistics), see
    :mod:`planner.evaluate_cascades`.
    """
    import solvers
    from planner.formulation import formulate
    from solvers.parametric import budget_frontier

    truth = truth_from_history(frame)
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    notes: list[str] = []
    in_catalog = {o.model for o in cat.offerings if o.mode == "realtime"}
    usable = [m for m in truth.models if m in in_catalog]
    missing = [m for m in truth.models if m not in in_catalog]
    if not usable:
        raise InputError(f"none of the history's models ({', '.join(truth.models[:5])}...) is in catalog "
                         f"{cat.name}; calibrate one from the history first (routeplan calibrate)")
    if missing:
        notes.append(f"not in the catalog, so never planned (scored as single models only): {', '.join(missing)}")
    realtime = dataclasses.replace(cat, offerings=tuple(o for o in cat.offerings
                                                         if o.mode == "realtime" and o.model in set(usable)))
    tasks = _tasks(truth, notes)
    # its own cascade columns, scored from the recorded answers (evaluate_cascades), not the planner's
    f = formulate(tasks, realtime, goal=goal, limits=Limits(allow_queue=False), cascades=False)
    cols = [truth.models.index(o.model) for o in f.offerings]
    t_score, t_cost = truth.score[:, cols], truth.cost[:, cols]
    unknown_cost = np.isnan(t_cost) & ~np.isnan(t_score)
    if unknown_cost.any():
        notes.append(f"{int(unknown_cost.sum()):,} observations have a score but no cost: their projected "
                     f"cost stands in for the realised one")
        t_cost = np.where(unknown_cost, f.cost_usd, t_cost)
        truth.cost[:, cols] = t_cost  # the single models and the oracle are costed the same way
    quality = f.quality  # the category profiles, or the catalog's per-prompt predictor where it kept one
    feasible = f.feasible & ~np.isnan(t_score)
    if not feasible.any(axis=1).all():
        bad = int((~feasible.any(axis=1)).sum())
        raise InputError(f"{bad} tasks have no model that is both recorded in the history and allowed by "
                         f"the catalog; evaluate needs at least one per task")
    cc = _cascades(truth, f, cat, cascades, t_cost, t_score, notes)
    proj_cost, worst = f.cost_usd, f.worst_cost_usd
    k0 = len(f.offerings)
    if cc is not None:
        proj_cost, worst = np.hstack([f.cost_usd, cc.cost]), np.hstack([f.worst_cost_usd, cc.worst_cost])
        quality = np.hstack([quality, cc.quality])
        feasible = np.hstack([feasible, cc.feasible])
        t_cost, t_score = np.hstack([t_cost, cc.real_cost]), np.hstack([t_score, cc.real_score])
        problem = solvers.Problem(cost=proj_cost, quality=quality,
                                  latency=np.hstack([f.problem.latency if f.problem.latency is not None
                                                     else np.nan_to_num(f.latency_s), cc.latency]),
                                  feasible=feasible,
                                  priority=f.problem.priority, goal=f.problem.goal, weights=f.problem.weights)
    else:
        problem = dataclasses.replace(f.problem, feasible=feasible, quality=quality, budget=None)

    singles = _single_models(truth)
    lo, hi = float(singles["cost_per_task"].min()), float(singles["cost_per_task"].max())
    n = len(tasks)
    if budgets is None:  # from the cheapest plan the profiles allow to the best one
        cheapest = float(np.where(feasible, proj_cost, np.inf).min(axis=1).sum())
        top = max(hi * n, _best_plan_cost(proj_cost, quality, feasible) * (1 + 1e-6), cheapest * 1.01)
        budgets = list(np.geomspace(max(cheapest, 1e-12), top, points))
    sols = budget_frontier(problem, list(budgets), solvers.Options(rel_gap=rel_gap), backend=solver)
    rows = []
    plans = Path(plans_dir) if plans_dir is not None else None
    if plans is not None:
        if plans.exists() and not plans.is_dir():
            raise InputError("--plans: expected a directory, got a file", file=str(plans))
        plans.mkdir(parents=True, exist_ok=True)
    names = [o.name for o in f.offerings] + (cc.names if cc is not None else [])
    for idx, (b, sol) in enumerate(zip(budgets, sols, strict=True)):
        row: dict[str, Any] = {"curve": ROUTEPLAN, "budget_usd": float(b), "status": sol.status.value}
        if sol.status.has_plan:
            a = np.asarray(sol.assignment)
            i = np.arange(n)
            on_cascade = a >= k0
            row.update(projected_cost_usd=float(proj_cost[i, a].sum()),
                       projected_quality=float(quality[i, a].mean()),
                       cost_usd=float(t_cost[i, a].sum()), score=float(t_score[i, a].mean()),
                       models_used=int(np.unique(a).size), worst_cost_usd=float(worst[i, a].sum()))
            if cc is not None:
                row.update(cascade_tasks=int(on_cascade.sum()),
                           escalated=int((on_cascade & ~cc.accept[i, np.where(on_cascade, a - k0, 0)]).sum()))
            if plans is not None:
                _write_plan(plans / f"plan_{idx:03d}_budget_{b:.6g}.csv", truth, f, cc, a, k0, names)
        rows.append(row)
    pts = pd.DataFrame(rows)
    pts["cost_per_task"] = pts.get("cost_usd", np.nan) / n
    single_rows = singles.assign(curve=lambda d: "model:" + d["model"], status="recorded").drop(columns="model")
    oracle = _oracle(truth, lo, hi, rel_gap)
    pts = pd.concat([pts, single_rows, oracle], ignore_index=True)

    plan_pts = pts[(pts["curve"] == ROUTEPLAN) & pts["score"].notna()] if "score" in pts else pts.iloc[:0]
    scores = {ROUTEPLAN: aiq(plan_pts["cost_per_task"], plan_pts["score"], lo, hi),
              HULL: aiq(singles["cost_per_task"], singles["score"], lo, hi),
              ORACLE: aiq(oracle["cost_per_task"], oracle["score"], lo, hi)}
    for r in singles.itertuples(index=False):
        scores[f"model:{r.model}"] = aiq([r.cost_per_task], [r.score], lo, hi)
    best = singles.sort_values(["score", "cost_per_task"], ascending=[False, True]).iloc[0]
    return Evaluation(points=pts, aiq=scores, cost_range=(lo, hi), best_model=str(best["model"]),
                      best_model_score=float(best["score"]), best_model_cost=float(best["cost_per_task"]),
                      match_cost=_match_cost(plan_pts, float(best["score"])), notes=notes)


def _best_plan_cost(cost: np.ndarray, quality: np.ndarray, feasible: np.ndarray) -> float:
    """Projected cost of the plan with every task on its best projected offering (the cheapest
    of ties): the budget past which more money buys nothing. The dearest single model's
    *recorded* cost can fall short of it (its projected cost is a little higher, or a cascade
    projects above it), and a grid stopping there never shows the best plan."""
    q = np.where(feasible, quality, -np.inf)
    best = q.max(axis=1, keepdims=True)
    return float(np.where(feasible & (q >= best - 1e-12), cost, np.inf).min(axis=1).sum())


def _cascades(truth: Truth, f: Any, cat: Catalog, use: bool | None, t_cost: np.ndarray, t_score: np.ndarray,
              notes: list[str]) -> Any:
    """The cascade columns to plan with, or None (off, or no statistics in the catalog)."""
    stats = cat.cascades
    if use is False:
        return None
    if stats is None or not stats.cascades:
        if use:
            notes.append(f"catalog {cat.name} has no cascade statistics: planned without cascades "
                         f"(routeplan calibrate fits them from outcomes with every model's answers)")
        return None
    from planner.evaluate_cascades import cascade_columns

    cc = cascade_columns(truth, f, stats, t_cost, t_score)
    notes.extend(cc.notes)
    if not cc.cascades:
        notes.append("no cascade of the catalog applies to these tasks: planned without cascades")
        return None
    return cc


def _write_plan(path: Path, truth: Truth, f: Any, cc: Any, a: np.ndarray, k0: int, names: list[str]) -> None:
    """One budget's plan: per task the offering, every model called in order and the one kept."""
    called, final = [], []
    for i, j in enumerate(a):
        if j >= k0:
            models, keep = cc.called(i, int(j) - k0)
        else:
            models, keep = [f.offerings[j].model], f.offerings[j].model
        called.append(";".join(models))
        final.append(keep)
    pd.DataFrame({"task_id": truth.task_ids, "model": [names[j] for j in a], "offering": [names[j] for j in a],
                  "called_models": called, "final_model": final}).to_csv(path, index=False)


def _tasks(truth: Truth, notes: list[str]) -> list[Task]:
    no_tokens = np.isnan(truth.input_tokens) & np.array([p is None for p in truth.prompts])
    if no_tokens.any():
        notes.append(f"{int(no_tokens.sum()):,} tasks have neither a prompt nor input tokens: planned with 0 "
                     f"input tokens")
    records = []
    for tid, cat, tok, prompt in zip(truth.task_ids, truth.categories, truth.input_tokens, truth.prompts,
                                     strict=True):
        rec: dict[str, Any] = {"id": tid, "type": cat, "prompt": prompt if prompt is not None else f"(task {tid})"}
        if math.isfinite(tok):
            rec["input_tokens"] = int(round(tok))
        elif prompt is None:
            rec["input_tokens"] = 0
        records.append(rec)
    return tasks_from_records(records, source="history")


def _single_models(truth: Truth) -> pd.DataFrame:
    """Each model alone: its mean recorded score and cost over the tasks it was observed on."""
    seen = ~np.isnan(truth.score)
    n_seen = seen.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.nansum(truth.score, axis=0) / n_seen
        cost = np.nanmean(np.where(seen, truth.cost, np.nan), axis=0)
    out = pd.DataFrame({"model": truth.models, "score": score, "cost_per_task": cost, "n_tasks": n_seen})
    return out[(out["n_tasks"] > 0) & np.isfinite(out["cost_per_task"])].reset_index(drop=True)


def _oracle(truth: Truth, lo: float, hi: float, rel_gap: float) -> pd.DataFrame:
    """The oracle's curve: at each cost, the best mean recorded score any per-task choice
    reaches (the same knapsack, solved on the truth). Its last point is the classic oracle:
    per task, the cheapest model among those with the best recorded score."""
    import solvers
    from solvers.parametric import budget_frontier

    n = len(truth.task_ids)
    seen = ~np.isnan(truth.score) & ~np.isnan(truth.cost)
    keep = seen.any(axis=1)
    score, cost, mask = truth.score[keep], truth.cost[keep], seen[keep]
    s = np.where(mask, score, -np.inf)
    best = s.max(axis=1, keepdims=True)
    top = np.where(mask & (s == best), cost, np.inf).min(axis=1)
    problem = solvers.Problem(cost=np.where(mask, cost, 0.0), quality=np.where(mask, score, 0.0),
                              feasible=mask, goal="maximize_quality")
    floor = float(np.where(mask, cost, np.inf).min(axis=1).sum())
    budgets = sorted({*np.geomspace(max(floor, 1e-12), max(float(top.sum()), floor * 1.0001), 40).tolist(),
                      *(np.linspace(lo, hi, 40) * len(top)).tolist()})
    rows = []
    for b, sol in zip(budgets, budget_frontier(problem, budgets, solvers.Options(rel_gap=rel_gap)), strict=True):
        if not sol.status.has_plan:
            continue
        a = np.asarray(sol.assignment)
        i = np.arange(a.size)
        total = float(cost[i, a].sum())
        rows.append({"curve": ORACLE, "budget_usd": float(b), "status": sol.status.value,
                     "score": float(score[i, a].sum() / n), "cost_usd": total, "cost_per_task": total / n,
                     "n_tasks": n})
    return pd.DataFrame(rows).drop_duplicates(subset=["cost_usd", "score"]).reset_index(drop=True)


def _match_cost(plan_pts: pd.DataFrame, target: float) -> float | None:
    """Least cost per task on the plan's hull at which its score reaches ``target``."""
    hc, hs = upper_hull(plan_pts["cost_per_task"], plan_pts["score"])
    if hc.size == 0 or hs[-1] < target - 1e-12:
        return None
    k = int(np.argmax(hs >= target - 1e-12))
    if k == 0:
        return float(hc[0])
    c0, c1, s0, s1 = hc[k - 1], hc[k], hs[k - 1], hs[k]
    return float(c0 + (target - s0) * (c1 - c0) / (s1 - s0))
