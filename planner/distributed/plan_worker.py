"""One worker of the sharded planner: its shards' arrays, hulls and plan, never the others'.

The ``fast`` knapsack (:mod:`solvers.mckp`) decomposes by task: every task's upper hull is
its own, and the LP cut is one threshold on the increments' efficiency. This actor loads and
formulates its shards, builds their hulls, and answers the driver's questions: the weight
and value of the increments above a threshold, the increments exactly at it (ties, ordered
by the driver as one process orders them), the plan after the cut, and the candidates of the
two fill passes. It writes its shards' part of the plan (Parquet) itself.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planner.distributed.coupled_worker import CoupledShards
from planner.distributed.shards import Shard
from solvers.hull import CHUNK_TASKS, Hulls, upper_hulls
from solvers.problem import Goal

_BLOCK = 8192  # rows per block of the pair scan (as solvers.mckp)


@dataclass
class _State:
    """One shard after :meth:`ShardPlanner.prepare`; rows are the shard's servable tasks."""

    index: int
    n: int
    task_ids: Any
    model_names: list[str]
    sub: NDArray[np.int64]  # servable rows of the shard
    weight: NDArray[np.float64] | None  # the knapsack's row (None on the Lagrangian path)
    value: NDArray[np.float64]
    mask: NDArray[np.bool_]
    cost: NDArray[np.float64] | None
    quality: NDArray[np.float64] | None
    priority: NDArray[np.float64]
    hulls: Hulls | None = None
    assignment: NDArray[np.int64] | None = None  # over the servable rows


class ShardPlanner(CoupledShards):
    """The actor (wrapped with ``ray.remote`` by the driver); the Lagrangian path's methods
    come from :class:`~planner.distributed.coupled_worker.CoupledShards`."""

    def __init__(self) -> None:
        self.loaded: dict[int, Shard] = {}
        self.states: list[_State] = []
        self.parts = []

    # -- loading -------------------------------------------------------------------------------
    def load(self, source: Any, shards: list[int]) -> list[dict[str, Any]]:
        """Read and formulate ``shards`` of ``source``; returns what the driver checks per shard."""
        out = []
        for i in shards:
            shard = source.load(i)
            p = shard.problem
            self.loaded[i] = shard
            out.append({
                "shard": i, "n": p.n_tasks, "k": p.n_models, "goal": Goal(p.goal).value,
                "budget": p.budget, "min_avg_quality": p.min_avg_quality, "allow_queue": p.allow_queue,
                "coupled": bool(p.capacity_rows()) or p.share_cap is not None,
                "group_charges": p.has_group_charges,
                "summary": source.summary(shard) if hasattr(source, "summary") else None,
            })
        return out

    def prepare(self, row: str, limit: float, sign: float) -> list[dict[str, Any]]:
        """The knapsack of each shard (value = sign x objective, weight = the row's coefficient),
        its hulls, and what the driver sums: base weight and value, total increment weight."""
        out = []
        for i in sorted(self.loaded):
            shard = self.loaded.pop(i)
            p = shard.problem
            mask_all = p.feasible_mask
            servable = mask_all.any(axis=1)
            sub = np.flatnonzero(servable)
            whole = sub.size == p.n_tasks

            def rows(a: Any, whole: bool = whole, sub: Any = sub) -> Any:
                return a if whole else a[sub]

            obj = p.objective_matrix
            value = rows(obj) if sign > 0 else -rows(obj)
            if row == "budget":
                assert p.cost is not None
                weight = rows(p.cost)
            else:
                assert p.quality is not None
                weight = limit - rows(p.quality)
            mask = rows(mask_all)
            c = rows(obj)[mask]
            st = _State(i, p.n_tasks, shard.task_ids, shard.model_names, sub, weight, value, mask,
                        p.cost, p.quality, rows(p.priority_weights))
            st.hulls = upper_hulls(weight, value, mask)
            base = st.hulls.base
            r = np.flatnonzero(base >= 0)
            self.states.append(st)
            out.append({"shard": i, "n": p.n_tasks, "n_sub": int(sub.size),
                        "base_weight": float(weight[r, base[r]].sum()), "base_value": float(value[r, base[r]].sum()),
                        "total_dw": float(st.hulls.inc_dw.sum()), "total_dv": float(st.hulls.inc_dv.sum()),
                        "increments": int(st.hulls.inc_key.size),
                        "integral": bool(np.array_equal(c, np.round(c))),
                        "hull_vertices": float(st.hulls.size.sum())})
            del shard, p
        self._index()
        return out

    def c_knapsack(self) -> list[dict[str, Any]]:
        """The knapsack of the coupled forms' one global row (fast's first multiplier):
        hulls and the sums the driver's cut needs, as :meth:`prepare`."""
        out = []
        self.states = []
        for p in self.parts:
            form = p.form
            st = _State(p.index, p.sub.size, None, [], p.sub, form.global_rows[0].coef, form.value, form.mask,
                        None, None, np.zeros(0))
            st.hulls = upper_hulls(st.weight, st.value, st.mask)  # type: ignore[arg-type]
            base = st.hulls.base
            r = np.flatnonzero(base >= 0)
            self.states.append(st)
            out.append({"shard": p.index, "n_sub": int(p.sub.size),
                        "base_weight": float(form.global_rows[0].coef[r, base[r]].sum()),
                        "total_dw": float(st.hulls.inc_dw.sum())})
        self._index()
        return out

    def c_knapsack_done(self) -> None:
        self.states = []
        self.neg_keys = self.cum_dw = self.cum_dv = np.zeros(0)

    def _index(self) -> None:
        """Every increment of this worker by efficiency (descending), with running sums."""
        keys = np.concatenate([s.hulls.inc_key for s in self.states if s.hulls is not None] or [np.zeros(0)])
        dw = np.concatenate([s.hulls.inc_dw for s in self.states if s.hulls is not None] or [np.zeros(0)])
        dv = np.concatenate([s.hulls.inc_dv for s in self.states if s.hulls is not None] or [np.zeros(0)])
        order = np.argsort(-keys, kind="stable")
        self.neg_keys = -keys[order]
        self.cum_dw = np.concatenate([[0.0], np.cumsum(dw[order])])
        self.cum_dv = np.concatenate([[0.0], np.cumsum(dv[order])])
        del order, keys, dw, dv

    # -- the cut ------------------------------------------------------------------------------
    def key_range(self) -> tuple[float, float]:
        if self.neg_keys.size == 0:
            return float("inf"), float("-inf")
        return float(-self.neg_keys[-1]), float(-self.neg_keys[0])

    def weight_at_least(self, t: float) -> float:
        """Weight of the increments of efficiency >= t."""
        return float(self.cum_dw[np.searchsorted(self.neg_keys, -t, side="right")])

    def above(self, t: float) -> tuple[float, float]:
        """(weight, value) of the increments of efficiency > t."""
        k = int(np.searchsorted(self.neg_keys, -t, side="left"))
        return float(self.cum_dw[k]), float(self.cum_dv[k])

    def ties(self, t: float, offsets: dict[int, int]) -> list[tuple[int, int, int, float, float, int, int]]:
        """The increments of efficiency exactly t, with their order key in one process:
        (hull block of the global servable row, step, global servable row, dw, dv, shard, increment)."""
        out = []
        for s in self.states:
            h = s.hulls
            assert h is not None
            for inc in np.flatnonzero(h.inc_key == t):
                g = offsets[s.index] + int(h.inc_task[inc])
                out.append((g // CHUNK_TASKS, int(h.inc_step[inc]), g, float(h.inc_dw[inc]),
                            float(h.inc_dv[inc]), s.index, int(inc)))
        return out

    def cut(self, t: float | None, taken_ties: dict[int, list[int]]) -> tuple[float, float]:
        """Take every increment above t (all when t is None) and the tied ones named; returns
        (sum of weights, sum of values) of the resulting plan."""
        used = value = 0.0
        for s in self.states:
            h = s.hulls
            assert h is not None
            take = np.ones(h.inc_key.size, bool) if t is None else h.inc_key > t
            if taken_ties.get(s.index):
                take[np.asarray(taken_ties[s.index], np.int64)] = True
            steps = np.bincount(h.inc_task[take], minlength=s.sub.size)
            s.assignment = h.vertex_after(steps)
            s.steps = steps  # type: ignore[attr-defined]
            u, v = self._totals(s)
            used += u
            value += v
        return used, value

    def best(self) -> None:
        """Every task's most valuable model (the plan without a limit, as fast's argmax)."""
        for s in self.states:
            s.assignment = np.argmax(np.where(s.mask, s.value, -np.inf), axis=1).astype(np.int64)

    @staticmethod
    def _totals(s: _State) -> tuple[float, float]:
        a = s.assignment
        assert a is not None
        r = np.flatnonzero(a >= 0)
        assert s.weight is not None
        return float(s.weight[r, a[r]].sum()), float(s.value[r, a[r]].sum())

    # -- the fill passes ----------------------------------------------------------------------
    def hull_candidates(self, room: float) -> list[tuple[int, NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]]:
        """Per shard: (shard, rows, next vertex, dw, gain) of the upgrades to the next hull
        vertex that fit ``room`` (as solvers.mckp's first fill pass)."""
        out = []
        for s in self.states:
            h, a, steps = s.hulls, s.assignment, s.steps  # type: ignore[attr-defined]
            assert h is not None and a is not None and s.weight is not None
            rows = np.flatnonzero((steps + 1 < h.size) & (a >= 0))
            if room <= 0 or rows.size == 0:
                continue
            nxt = h.vertices[rows, steps[rows] + 1].astype(np.int64)
            dw = s.weight[rows, nxt] - s.weight[rows, a[rows]]
            fits = dw <= room
            rows, nxt, dw = rows[fits], nxt[fits], dw[fits]
            if rows.size:
                out.append((s.index, rows, nxt, dw, s.value[rows, nxt] - s.value[rows, a[rows]]))
        return out

    def pair_candidates(self, room: float) -> list[tuple[Any, ...]]:
        """Per shard: (shard, rows, models, gain, dw) of every heavier pair whose extra weight
        fits ``room`` and raises the value (as solvers.mckp's second fill pass), in row order."""
        out = []
        for s in self.states:
            a = s.assignment
            assert a is not None and s.weight is not None
            n = a.size
            parts: list[tuple[Any, Any, Any, Any]] = []
            for b in range(0, n, _BLOCK):
                ab = a[b : b + _BLOCK]
                w = s.weight[b : b + _BLOCK]
                r = np.flatnonzero(ab >= 0)
                wa = np.full(ab.size, np.inf)
                wa[r] = w[r, ab[r]]
                d = w - wa[:, None]
                ok = (d > 0) & (d <= room) & s.mask[b : b + _BLOCK]
                i, j = np.nonzero(ok)
                if i.size == 0:
                    continue
                gain = s.value[b + i, j] - s.value[b + i, ab[i]]
                keep = gain > 0
                parts.append((i[keep] + b, j[keep], gain[keep], d[i[keep], j[keep]]))
            if parts:
                out.append((s.index, *(np.concatenate([p[c] for p in parts]) for c in range(4))))
        return out

    def move(self, moves: dict[int, tuple[list[int], list[int]]]) -> None:
        """Apply the driver's fill moves: shard -> (rows, models)."""
        for s in self.states:
            if s.index in moves:
                rows, models = moves[s.index]
                assert s.assignment is not None
                s.assignment[np.asarray(rows, np.int64)] = np.asarray(models, np.int64)

    # -- results -------------------------------------------------------------------------------
    def totals(self, sign: float) -> dict[str, float]:
        """Objective (the goal's own sense), weight used, priority served over this worker's shards."""
        objective = used = served = 0.0
        for s in self.states:
            a = s.assignment
            assert a is not None
            r = np.flatnonzero(a >= 0)
            objective += sign * float(s.value[r, a[r]].sum())
            used += float(s.weight[r, a[r]].sum()) if s.weight is not None else 0.0
            served += float(s.priority[r].sum())
        return {"objective": objective, "used": used, "served_weight": served}

    def assignments(self) -> dict[int, NDArray[np.int64]]:
        """Model index per task of each shard (-1 = queued): for checks on small instances."""
        out = {}
        for s in self.states:
            full = np.full(s.n, -1, np.int64)
            assert s.assignment is not None
            full[s.sub] = s.assignment
            out[s.index] = full
        return out

    def write(self, out_dir: str, starts: dict[int, int]) -> int:
        """One Parquet file per shard, ``part-<shard>.parquet``: task_id, model (null when
        queued), cost_usd, quality. Tasks without ids are named ``t<global index>``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = 0
        for s in self.states:
            a = np.full(s.n, -1, np.int64)
            assert s.assignment is not None
            a[s.sub] = s.assignment
            idx = np.flatnonzero(a >= 0)
            model = np.full(s.n, None, dtype=object)
            model[idx] = np.asarray(s.model_names, dtype=object)[a[idx]]
            ids = (list(s.task_ids) if s.task_ids is not None
                   else [f"t{starts[s.index] + r}" for r in range(s.n)])
            cols: dict[str, Any] = {"task_id": ids, "model": model}
            for name, arr in (("cost_usd", s.cost), ("quality", s.quality)):
                if arr is not None:
                    col = np.full(s.n, np.nan)
                    col[idx] = arr[idx, a[idx]]
                    cols[name] = col
            pq.write_table(pa.table(cols), Path(out_dir) / f"part-{s.index:05d}.parquet")
            rows += s.n
        return rows

    def shard_sizes(self) -> list[tuple[int, int]]:
        """(shard, tasks) of the shards this worker holds a plan of."""
        return [(s.index, s.n) for s in self.states]

    def reset(self) -> None:
        """Drop the finished plan's shards (the actor can plan again)."""
        self.loaded.clear()
        self.states = []
        self.parts = []
        self.neg_keys = self.cum_dw = self.cum_dv = np.zeros(0)

    def peak_rss_mb(self) -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def pid(self) -> int:
        return os.getpid()
