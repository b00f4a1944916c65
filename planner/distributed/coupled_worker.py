"""A planner worker's side of ``fast``'s Lagrangian path: its shards as parts of the tasks.

:func:`solvers.lagrangian.solve_parts` runs on the driver and asks for sums over the tasks
and for ranked candidate moves (:mod:`solvers.lagrangian_parts`); this mixin of
:class:`~planner.distributed.plan_worker.ShardPlanner` answers for its shards: each shard
is formulated as one process's ``fast`` formulates the batch (the reduced mask and the share
caps count the whole batch's tasks, given by the driver), and keeps three plans of its own
rows (start, work, best). The coefficient arrays never leave the worker; a chunk of
candidates carries only each move's row deltas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planner.distributed.shards import Shard
from solvers.backends.fast import coupled_form, reduced_mask
from solvers.lagrangian import Coupled
from solvers.lagrangian_moves import (
    Candidates,
    Chunk,
    RowLimits,
    improve_candidates,
    repair_candidates,
)
from solvers.lagrangian_parts import (
    Sums,
    part_argmax,
    part_bounds,
    part_dual,
    part_min_value,
    part_scales,
    part_usage,
    total,
)
from solvers.overload import Overload, Scales, ShiftPick, part_rows, part_scale_sums, part_shift

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: Candidates per chunk sent to the driver.
CHUNK = 4096


@dataclass
class _Part:
    """One shard's rows of the coupled problem (its servable tasks) and its plans."""

    index: int
    offset: int  # the shard's first servable task in the batch's servable order
    shard: Shard
    sub: IntArray
    form: Coupled
    start: IntArray
    work: IntArray
    best: IntArray
    cands: Candidates | None = None


def share_limits(share_cap: FloatArray | None, n_tasks: int) -> IntArray | None:
    """The share caps' task counts over the whole batch (as :attr:`Problem.share_limits`)."""
    if share_cap is None:
        return None
    return np.floor(share_cap * n_tasks + 1e-9).astype(np.int64)


class CoupledShards:
    """Mixin: the coupled path's methods (``c_*``) of the planner actor."""

    loaded: dict[int, Shard]
    parts: list[_Part]

    # -- formulation ---------------------------------------------------------------------------
    def c_masks(self, n_tasks: int) -> list[dict[str, Any]]:
        """Per shard: its servable tasks under fast's reduced mask (the share caps over
        ``n_tasks``), and the first of those that no model can take."""
        out = []
        for i in sorted(self.loaded):
            p = self.loaded[i].problem
            mask = reduced_mask(p, share_limits(p.share_cap, n_tasks))
            servable = mask.any(axis=1)
            none = np.flatnonzero(~servable)
            out.append({"shard": i, "n": p.n_tasks, "n_sub": int(servable.sum()), "no_model": none[:10].tolist(),
                        "no_model_count": int(none.size)})
        return out

    def c_forms(self, sign: float, n_tasks: int, n_served: int, offsets: dict[int, int],
                limits: dict[str, Any]) -> dict[str, Any]:
        """Formulate every shard (limits: the batch's budget and floor); returns the layout
        of the rows (names, limits, tolerances), the same on every worker."""
        import dataclasses

        self.parts = []
        layout: dict[str, Any] = {}
        integral = True
        for i in sorted(self.loaded):
            shard = self.loaded[i]
            p = dataclasses.replace(shard.problem, **limits) if limits else shard.problem
            shard.problem = p
            lim = share_limits(p.share_cap, n_tasks)
            mask = reduced_mask(p, lim)
            sub = np.flatnonzero(mask.any(axis=1))
            whole = sub.size == p.n_tasks

            def rows(a: Any, whole: bool = whole, sub: Any = sub) -> Any:
                return a if whole else a[sub]

            form = coupled_form(p, rows, rows(mask), sign, share_limits=lim, n_served=n_served)
            c = p.objective_matrix[sub][p.feasible_mask[sub]]  # as fast's integral bound
            integral = integral and bool(np.array_equal(c, np.round(c)))
            empty = np.zeros(sub.size, np.int64)
            self.parts.append(_Part(i, offsets[i], shard, sub, form, empty, empty.copy(), empty.copy()))
            layout = {"global": [r.name for r in form.global_rows], "model": [r.name for r in form.model_rows],
                      "limits": RowLimits.of(form), "weighted": tuple(r.coef is not None for r in form.model_rows),
                      "k": form.shape[1]}
        return layout | {"integral": integral} if layout else layout

    def c_drop_parts(self) -> None:
        self.parts = []

    def c_drop_loaded(self) -> None:
        """The coupled path goes on: the shards live in the parts only."""
        self.loaded.clear()

    def c_form(self, shard: int) -> Coupled:
        """One shard's whole form (for a problem small enough to solve in one process)."""
        return next(p.form for p in self.parts if p.index == shard)

    # -- what solve_parts asks -----------------------------------------------------------------
    def c_bounds(self) -> FloatArray | None:
        b = [part_bounds(p.form) for p in self.parts]
        return np.maximum.reduce(b) if b else None

    def c_scales(self, exps: IntArray) -> Sums | None:
        return self._total([part_scales(p.form, exps) for p in self.parts])

    def c_min_value(self) -> Sums | None:
        return self._total([part_min_value(p.form) for p in self.parts])

    def c_dual(self, mu: FloatArray, lam: FloatArray, t: float, exps: IntArray) -> Sums | None:
        return self._total([part_dual(p.form, mu, lam, t, exps) for p in self.parts])

    def c_start(self, mu: FloatArray, lam: FloatArray) -> None:
        for p in self.parts:
            p.start = part_argmax(p.form, mu, lam)
            p.work = p.start.copy()

    def c_usage(self) -> Sums | None:
        return self._total([part_usage(p.form, p.work) for p in self.parts])

    def c_repair(self, kind: str, idx: int, j: int, m_use: FloatArray, mu: FloatArray,
                 lam: FloatArray) -> list[tuple[int, Chunk | None]]:
        """Rank each shard's repair moves; returns each shard's first chunk."""
        out = []
        for p in self.parts:
            lim = RowLimits.of(p.form)
            p.cands = repair_candidates(p.form, p.work, kind, idx, j, m_use, lim.mlim, lim.tm, mu, lam)
            out.append((p.index, p.cands.chunk(p.form, 0, CHUNK, p.offset)))
        return out

    def c_improve(self, g_use: FloatArray, m_use: FloatArray, mu: FloatArray, lam: FloatArray,
                  max_moves: int) -> list[tuple[int, Chunk | None]]:
        """Rank each shard's improving moves; returns each shard's first chunk."""
        out = []
        for p in self.parts:
            p.cands = improve_candidates(p.form, p.work, g_use, m_use, RowLimits.of(p.form), mu, lam, max_moves)
            out.append((p.index, p.cands.chunk(p.form, 0, CHUNK, p.offset)))
        return out

    def c_chunk(self, shard: int, start: int) -> Chunk | None:
        p = next(p for p in self.parts if p.index == shard)
        assert p.cands is not None
        return p.cands.chunk(p.form, start, CHUNK, p.offset)

    def c_apply(self, moves: dict[int, tuple[list[int], list[int]]]) -> None:
        """The driver's moves: shard -> (servable rows in the batch's numbering, models)."""
        for p in self.parts:
            if p.index in moves:
                rows, models = moves[p.index]
                p.work[np.asarray(rows, np.int64) - p.offset] = np.asarray(models, np.int64)

    def c_keep(self) -> None:
        for p in self.parts:
            p.best = p.work.copy()

    def c_set_best(self, plans: dict[int, IntArray]) -> None:
        for p in self.parts:
            if p.index in plans:
                p.best = np.asarray(plans[p.index], np.int64)

    def c_value(self) -> int:
        from solvers.exact_sum import exact_sum

        return sum(exact_sum(p.form.value[np.arange(p.sub.size), p.work]) for p in self.parts)

    # -- the overload descent (solvers.overload) ------------------------------------------------
    def c_scale_sums(self) -> Sums | None:
        return self._total([part_scale_sums(p.form) for p in self.parts])

    def c_descent_begin(self) -> list[tuple[int, IntArray]]:
        """Every shard's work plan back to its start; its tasks per model."""
        out = []
        for p in self.parts:
            p.work = p.start.copy()
            out.append((p.index, np.bincount(p.work, minlength=p.form.shape[1]).astype(np.int64)))
        return out

    def c_descent_shift(self, moves: dict[int, tuple[list[int], list[int]]], ranks: dict[int, IntArray],
                        hot: IntArray | None, g: FloatArray, m: FloatArray,
                        scales: Scales) -> list[tuple[int, ShiftPick]]:
        """After the driver's moves: each sampled shard's best shift (tasks: ranks in its pool)."""
        self.c_apply(moves)
        out = []
        for p in self.parts:
            if p.index in ranks:
                ov = Overload(g, m, RowLimits.of(p.form), scales)
                pick = part_shift(p.form, p.work, ranks[p.index], hot, ov, p.offset)
                if pick is not None:
                    out.append((p.index, pick))
        return out

    def c_descent_rows(self, moves: dict[int, tuple[list[int], list[int]]],
                       samples: list[tuple[dict[int, IntArray], IntArray | None]]) -> list[dict[int, Any]]:
        """After the driver's moves: per sample, each sampled shard's rows of its tasks."""
        self.c_apply(moves)
        return [{p.index: part_rows(p.form, p.work, ranks[p.index], hot, p.offset)
                 for p in self.parts if p.index in ranks} for ranks, hot in samples]

    # -- the end ---------------------------------------------------------------------------------
    def c_finish(self, sign: float) -> None:
        """The best plan becomes each shard's plan (for totals, write and assignments)."""
        from planner.distributed.plan_worker import _State

        self.states = []
        for p in self.parts:
            prob = p.shard.problem
            self.states.append(_State(
                p.index, prob.n_tasks, p.shard.task_ids, p.shard.model_names, p.sub, None,
                p.form.value, p.form.mask, prob.cost, prob.quality,
                prob.priority_weights if p.sub.size == prob.n_tasks else prob.priority_weights[p.sub],
                assignment=p.best))
        self.parts = []

    @staticmethod
    def _total(sums: list[Sums]) -> Sums | None:
        return total(sums) if sums else None

