"""The sharded planner's Lagrangian path: ``fast`` with capacities, share caps or several
limits, its tasks on Ray workers.

``fast`` relaxes the coupling rows with multipliers (:mod:`solvers.lagrangian`); every
per-task step decomposes by task. The driver runs the same
:func:`solvers.lagrangian.solve_parts` as one process, with :class:`RayParts` as its parts:

- the dual's value and gradient at the driver's multipliers are exact sums of the workers'
  per-shard sums (each task's best response stays on its worker), so L-BFGS-B takes the
  same steps as in one process;
- the repair and improvement passes rank their moves on the workers, a chunk at a time
  per shard; the driver merges the ranked streams in one process's order and applies the
  moves against the rows' totals, sending back only (task, model) pairs;
- when the repair fails at a multiplier (tight GAP/MMKP-like instances), the overload
  descent (:mod:`solvers.overload`) runs as in one process: the driver holds the rows'
  totals and each shard's tasks per model and draws the same samples; the workers return
  their best shift among their sampled tasks (with its row deltas), or the rows of at most
  256 sampled tasks a side for a swap.
- fast's steps around it are the same: the per-task best plan when it breaks no limit,
  the knapsack multiplier of a single global row as the starting point (the sharded cut's
  bisection), and the same status, bound and gap.

So the same instance gives the same plan, bound and gap. On problems of at most
:data:`~solvers.lagrangian.RESTART_MAX_PAIRS` pairs (a few MB), one process polishes the
plan with swaps and restarts that need random access to every task: such a problem is
gathered on the driver and solved by one process's code, so nothing differs there either.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from planner.errors import InputError
from solvers.exact_sum import to_float
from solvers.lagrangian import (
    RESTART_MAX_PAIRS,
    Coupled,
    solve_coupled,
    solve_parts,
)
from solvers.lagrangian_moves import Chunk, RowLimits
from solvers.lagrangian_parts import Sums, floats, total
from solvers.overload import Scales, ShiftPick, stack
from solvers.problem import Goal
from solvers.solution import Status

FloatArray = np.ndarray


class RayStream:
    """One shard's ranked candidates of a round, fetched from its worker a chunk at a time."""

    def __init__(self, ray: Any, handle: Any, shard: int, first: Chunk | None):
        self.ray, self.handle, self.shard, self.pending, self.pos = ray, handle, shard, first, 0

    def next(self) -> Chunk | None:
        if self.pending is not None:
            c, self.pending = self.pending, None
            self.pos = c.size
            return c
        if self.pos == 0:
            return None
        c = self.ray.get(self.handle.c_chunk.remote(self.shard, self.pos))
        if c is None:
            self.pos = 0
            return None
        self.pos += c.size
        return c


class RayParts:
    """:class:`solvers.lagrangian_parts.Parts` over the planner actors' shards."""

    def __init__(self, ray: Any, handles: list[Any], n: int, layout: dict[str, Any], offsets: dict[int, int]):
        self.ray, self.handles = ray, handles
        self.n, self.k = n, int(layout["k"])
        self.limits: RowLimits = layout["limits"]
        self.weighted: tuple[bool, ...] = layout["weighted"]
        self.shards = sorted(offsets)
        self.starts = np.array([offsets[s] for s in self.shards], dtype=np.int64)
        self._scales: Scales | None = None

    def _all(self, method: str, *args: Any) -> list[Any]:
        return [x for x in self.ray.get([getattr(h, method).remote(*args) for h in self.handles]) if x is not None]

    def _sums(self, method: str, *args: Any) -> Sums:
        return total(self._all(method, *args))

    def bounds(self) -> FloatArray:
        return np.maximum.reduce(self._all("c_bounds"))

    def scales(self, exps: Any) -> Sums:
        return self._sums("c_scales", exps)

    def min_value(self) -> float:
        return to_float(self._sums("c_min_value").values["min"])

    def dual(self, mu: Any, lam: Any, t: float, exps: Any) -> Sums:
        return self._sums("c_dual", mu, lam, t, exps)

    def start(self, mu: Any, lam: Any) -> None:
        self._all("c_start", mu, lam)

    def usage(self) -> Sums:
        return self._sums("c_usage")

    def value(self) -> float:
        return to_float(sum(self._all("c_value")))

    def _streams(self, method: str, *args: Any) -> list[Any]:
        refs = [(h, getattr(h, method).remote(*args)) for h in self.handles]
        return [RayStream(self.ray, h, shard, first) for h, ref in refs for shard, first in self.ray.get(ref)]

    def repair_round(self, kind: str, idx: int, j: int, m_use: Any, mu: Any, lam: Any) -> list[Any]:
        return self._streams("c_repair", kind, idx, j, m_use, mu, lam)

    def improve_round(self, g_use: Any, m_use: Any, mu: Any, lam: Any, max_moves: int) -> list[Any]:
        return self._streams("c_improve", g_use, m_use, mu, lam, max_moves)

    def _by_shard(self, moves: list[tuple[int, int]]) -> dict[int, tuple[list[int], list[int]]]:
        if not moves:
            return {}
        rows, models = np.array(moves, dtype=np.int64).T
        shard_of = np.searchsorted(self.starts, rows, side="right") - 1
        return {self.shards[s]: (rows[shard_of == s].tolist(), models[shard_of == s].tolist())
                for s in np.unique(shard_of)}

    def apply(self, moves: list[tuple[int, int]]) -> None:
        if moves:
            self._all("c_apply", self._by_shard(moves))

    def keep(self) -> None:
        self._all("c_keep")

    def plan(self) -> Any:
        return np.zeros(0, np.int64)  # the plan stays on the workers

    def whole(self) -> Coupled | None:
        return None

    # -- the overload descent: the driver's part p is the shard self.shards[p]
    def overload_scales(self) -> Scales:
        if self._scales is None:
            self._scales = Scales.of(self._sums("c_scale_sums"), self.limits, self.weighted)
        return self._scales

    def descent_begin(self) -> tuple[Any, Any]:
        counts = dict(x for part in self._all("c_descent_begin") for x in part)
        return self.starts.copy(), np.array([counts[s] for s in self.shards], dtype=np.int64)

    def descent_shift(self, moves: list[tuple[int, int]], ranks: dict[int, Any], hot: Any, g: Any,
                      m: Any) -> list[tuple[int, ShiftPick]]:
        picks = self._all("c_descent_shift", self._by_shard(moves), self._shards(ranks), hot, g, m,
                          self.overload_scales())
        part = {s: p for p, s in enumerate(self.shards)}
        return [(part[s], pick) for got in picks for s, pick in got]

    def descent_rows(self, moves: list[tuple[int, int]], samples: list[tuple[dict[int, Any], Any]]) -> list[Any]:
        got = self._all("c_descent_rows", self._by_shard(moves), [(self._shards(r), hot) for r, hot in samples])
        part = {s: p for p, s in enumerate(self.shards)}
        return [{part[s]: rows for worker in got for s, rows in worker[i].items()} for i in range(len(samples))]

    def _shards(self, ranks: dict[int, Any]) -> dict[int, Any]:
        return {self.shards[p]: r for p, r in ranks.items()}


def gather(ray: Any, handles: list[Any], owners: dict[int, Any], shards: list[int]) -> Coupled:
    """The shards' forms stacked in shard order (only for a problem of a few MB)."""
    return stack(ray.get([owners[s].c_form.remote(s) for s in shards]))


def solve_coupled_sharded(ray: Any, handles: list[Any], loaded: list[dict[str, Any]], source: Any,
                          rel_gap: float, stats: dict[str, Any]) -> dict[str, Any] | None:
    """``fast``'s path for coupled limits on the workers' shards (see the module docstring).

    Returns what the caller needs to finish: status (None: a plan, to be finished with
    :func:`finish_status`), bound (the goal's sense), price, the numbers of tasks and of
    servable tasks, a message; the workers hold the plan (their ``states``) when there is
    one. None when no per-model row binds after all (fast's knapsack path applies).
    """
    first = loaded[0]
    goal = Goal(first["goal"])
    sign = 1.0 if goal.maximize else -1.0
    n_total = sum(x["n"] for x in loaded)
    t = time.perf_counter()
    per_worker = ray.get([h.c_masks.remote(n_total) for h in handles])
    masks = sorted((x for part in per_worker for x in part), key=lambda x: x["shard"])
    owners = {x["shard"]: h for h, part in zip(handles, per_worker, strict=True) for x in part}
    n_sub = sum(x["n_sub"] for x in masks)
    out: dict[str, Any] = {"n": n_total, "n_sub": n_sub, "price": None, "bound": None, "message": ""}
    starts = np.concatenate([[0], np.cumsum([x["n"] for x in masks])[:-1]])
    if n_sub < n_total and not first["allow_queue"]:
        none = [int(s) + i for x, s in zip(masks, starts, strict=True) for i in x["no_model"]][:10]
        count = sum(x["no_model_count"] for x in masks)
        shown = ", ".join(str(i) for i in none) + (" ..." if count > len(none) else "")
        return out | {"status": Status.INFEASIBLE,
                      "message": f"task {shown} fits no model's capacity or share cap ({count} task(s))"}
    limits: dict[str, Any] = {}
    if hasattr(source, "limit") and first["summary"] is not None:
        row = "budget" if first["budget"] is not None else "min_avg_quality"
        limits[row] = float(source.limit([x["summary"] for x in loaded]))
    offsets = dict(zip([x["shard"] for x in masks],
                       np.concatenate([[0], np.cumsum([x["n_sub"] for x in masks])[:-1]]).tolist(), strict=True))
    layouts = [x for x in ray.get([h.c_forms.remote(sign, n_total, n_sub, offsets, limits) for h in handles]) if x]
    layout = layouts[0]
    stats["formulate_s"] = time.perf_counter() - t
    if len(layout["global"]) <= 1 and not layout["model"]:
        ray.get([h.c_drop_parts.remote() for h in handles])
        return None  # no per-model row binds after all: fast's knapsack path (the caller's)
    ray.get([h.c_drop_loaded.remote() for h in handles])
    out["integral"] = all(x["integral"] for x in layouts)
    out["budget_row"] = "budget" in layout["global"]
    out["has_budget"] = first["budget"] is not None
    if n_sub == 0:  # nothing can be served: queuing every task is the only (optimal) plan
        ray.get([h.c_finish.remote(sign) for h in handles])
        return out | {"status": Status.OPTIMAL, "message": "no task has a feasible model"}
    parts = RayParts(ray, handles, n_sub, layout, offsets)
    lim = parts.limits
    # 2. the per-task best model, when it breaks no limit
    parts.start(np.zeros(len(lim.glim)), np.zeros((len(lim.mlim), parts.k)))
    u = parts.usage().values
    g, m = floats(u["g"]).reshape(len(lim.glim)), floats(u["m"]).reshape(len(lim.mlim), parts.k)
    if (g <= lim.glim + lim.tg).all() and (m <= lim.mlim + lim.tm).all():
        parts.keep()
        ray.get([h.c_finish.remote(sign) for h in handles])
        stats["method"] = "argmax"
        return out | {"status": None, "price": 0.0 if out["has_budget"] else None}
    # 3. the Lagrangian, from the knapsack multiplier of a single global row
    mu0 = None
    if len(lim.glim) == 1:
        from planner.distributed.plan_driver import critical_efficiency

        prepared = [x for part in ray.get([h.c_knapsack.remote() for h in handles]) for x in part]
        base_w = sum(x["base_weight"] for x in prepared)
        room = float(lim.glim[0]) - base_w
        if room < 0:
            ray.get([h.c_knapsack_done.remote() for h in handles])
            what = (f"the cheapest plan costs {base_w:.6g} > budget {lim.glim[0]:.6g} (before the other limits)"
                    if layout["global"][0] == "budget" else
                    "no plan reaches the average-quality floor (before the other limits)")
            return _refuse_or_infeasible(out, first, what)
        mu = 0.0 if room >= sum(x["total_dw"] for x in prepared) else critical_efficiency(ray, handles, room)[0]
        ray.get([h.c_knapsack_done.remote() for h in handles])
        mu0 = np.array([mu])
    t = time.perf_counter()
    if n_sub * parts.k <= RESTART_MAX_PAIRS:  # a few MB: one process's code, swaps and restarts included
        form = gather(ray, handles, owners, parts.shards)
        res = solve_coupled(form, rel_gap=rel_gap, mu0=mu0)
        if res.assignment is not None:
            a = res.assignment
            ray.get([owners[s].c_set_best.remote({s: a[offsets[s]: offsets[s] + x["n_sub"]]})
                     for s, x in zip(parts.shards, masks, strict=True)])
        stats["gathered"] = True
    else:
        res = solve_parts(parts, rel_gap=rel_gap, mu0=mu0)
    stats.update(method="lagrangian (sharded)", lagrangian_wall_s=time.perf_counter() - t,
                 **{k: v for k, v in res.stats.items() if k != "repaired_by"}, repaired_by=res.stats["repaired_by"])
    if res.infeasible:
        return _refuse_or_infeasible(out, first, (
            "the LP relaxation is infeasible: no plan meets every limit "
            f"(Lagrangian bound {sign * res.bound:.6g} is past every plan's value)"))
    if res.assignment is None:
        msg = ("the sharded planner found no plan meeting every limit within fast's own search limit (the repair "
               "and the overload descent failed at every multiplier tried); the problem may still be feasible "
               "(the bound does not prove otherwise): plan it in one process with an exact backend "
               "(routeplan solve without --workers, --solver highs or cpsat)")
        if first["allow_queue"]:
            raise InputError(msg)
        return out | {"status": Status.TIME_LIMIT_NO_PLAN, "bound": sign * res.bound, "message": msg}
    ray.get([h.c_finish.remote(sign) for h in handles])
    price = None
    if out["has_budget"]:
        price = sign * float(res.mu[layout["global"].index("budget")]) if out["budget_row"] else 0.0
    return out | {"status": None, "bound": sign * res.bound, "price": price}


def _refuse_or_infeasible(out: dict[str, Any], first: dict[str, Any], what: str) -> dict[str, Any]:
    """Without queuing: proven infeasible. With it: which tasks to queue needs an exact backend."""
    if first["allow_queue"]:
        raise InputError(f"the sharded planner cannot serve every task within the limits and does not prove "
                         f"which to queue ({what}); plan in one process with an exact backend")
    return out | {"status": Status.INFEASIBLE, "message": what}

