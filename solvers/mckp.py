"""The multiple-choice knapsack with one weight limit, solved through its hulls.

    maximise sum v[i, j] x[i, j]  s.t.  sum w[i, j] x[i, j] <= capacity,  one j per task

Its LP relaxation is solved exactly by greedy on the hulls (Sinha & Zoltners 1979): every
task starts at its lightest frontier vertex; the frontier increments, sorted once by
efficiency dv/dw, are taken in that order until the capacity runs out, the last one
fractionally. The LP optimum is therefore a proven upper bound, the efficiency of the
increment that is cut is the LP multiplier of the limit (the shadow price), and dropping
the fractional increment leaves an integer plan within one increment of the bound; a fill
pass then spends the left-over capacity on the best single upgrades that still fit.

:class:`Knapsack` sorts the increments once, so any number of capacities (a budget
frontier) can be cut from the same pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from solvers.hull import Hulls, upper_hulls

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Rows per block in the vectorised fill pass (keeps temporaries in cache).
_BLOCK = 65536


@dataclass(frozen=True)
class KnapsackPoint:
    """The answer at one capacity.

    assignment : int array of shape (n_tasks,); -1 only for tasks with no feasible model.
    value : sum v of the assignment; lp_bound : the LP optimum (>= value).
    multiplier : LP multiplier of the limit (value per unit weight at the cut; 0 when slack).
    weight_used : sum w of the assignment.
    feasible : False when even the lightest plan exceeds the capacity (then no plan).
    """

    assignment: IntArray
    value: float
    lp_bound: float
    multiplier: float
    weight_used: float
    feasible: bool
    increments_taken: int
    fill_moves: int


class Knapsack:
    """Hulls plus the efficiency order of their increments, for one or many cuts.

    weight, value : arrays of shape (n_tasks, n_models); mask : bool, same shape.
    A single :meth:`solve` only partially orders the increments (a few selection passes
    around the cut); :meth:`sort` orders them all once, for a frontier of many cuts.
    """

    def __init__(self, weight: FloatArray, value: FloatArray, mask: NDArray[np.bool_], hulls: Hulls | None = None):
        self.weight = weight
        self.value = value
        self.mask = mask
        self.hulls = hulls if hulls is not None else upper_hulls(weight, value, mask)
        h = self.hulls
        self.n_tasks = weight.shape[0]
        self.base = h.base
        rows = np.flatnonzero(self.base >= 0)
        self.base_weight = float(weight[rows, self.base[rows]].sum())
        self.base_value = float(value[rows, self.base[rows]].sum())
        self.eff = h.efficiency
        self.total_dw = float(h.inc_dw.sum())
        self.order: IntArray | None = None

    @property
    def max_useful_capacity(self) -> float:
        """Capacity past which the limit no longer binds (every task at its best vertex)."""
        return self.base_weight + self.total_dw

    def sort(self) -> None:
        """Order every increment by efficiency (descending; stable, so ties keep step order)."""
        if self.order is None:
            self.order = np.argsort(-self.eff, kind="stable")
            self._cum_dw = np.cumsum(self.hulls.inc_dw[self.order])

    def cut(self, capacity: float) -> tuple[IntArray, int, float]:
        """(increments taken whole, the critical increment or -1, its fraction) at a capacity.

        The increments taken are those of highest efficiency whose weights fit the room
        left by the lightest plan; the critical one is the next (taken fractionally by the LP).
        """
        room = capacity - self.base_weight
        h = self.hulls
        if room >= self.total_dw:
            return np.arange(self.eff.size), -1, 0.0
        if self.order is not None:
            k = int(np.searchsorted(self._cum_dw, room, side="right"))
            used = float(self._cum_dw[k - 1]) if k else 0.0
            crit = int(self.order[k])
            return self.order[:k], crit, min(max((room - used) / float(h.inc_dw[crit]), 0.0), 1.0)
        # selection: halve the candidates around the cut until few remain, then sort those
        taken_parts: list[IntArray] = []
        cand = np.arange(self.eff.size)
        above = 0.0
        rng = np.random.default_rng(0)
        while cand.size > 50_000:
            ce = self.eff[cand]
            pivot = float(np.median(ce[rng.integers(0, cand.size, 1001)]))
            hi = ce > pivot
            s_hi = float(h.inc_dw[cand[hi]].sum())
            if above + s_hi <= room:
                taken_parts.append(cand[hi])
                above += s_hi
                cand = cand[~hi]
            else:
                cand = cand[hi]
        order = cand[np.argsort(-self.eff[cand], kind="stable")]
        cum = np.cumsum(h.inc_dw[order])
        k = int(np.searchsorted(cum, room - above, side="right"))
        taken_parts.append(order[:k])
        taken = np.concatenate(taken_parts)
        if k >= order.size:  # cannot happen: room < total_dw; kept for safety
            return taken, -1, 0.0
        crit = int(order[k])
        used = above + (float(cum[k - 1]) if k else 0.0)
        return taken, crit, min(max((room - used) / float(h.inc_dw[crit]), 0.0), 1.0)

    def solve(self, capacity: float, fill: bool = True) -> KnapsackPoint:
        """LP bound and integer plan at ``capacity``."""
        n = self.n_tasks
        h = self.hulls
        if self.base_weight > capacity:
            return KnapsackPoint(np.full(n, -1, np.int64), float("nan"), float("-inf"), float("inf"),
                                 self.base_weight, False, 0, 0)
        taken, crit, frac = self.cut(capacity)
        bound = self.base_value + float(h.inc_dv[taken].sum())
        multiplier = 0.0
        if crit >= 0:
            bound += frac * float(h.inc_dv[crit])
            multiplier = float(self.eff[crit])
        steps = np.bincount(h.inc_task[taken], minlength=n)
        assignment = h.vertex_after(steps)
        used, value = self._totals(assignment)
        moves = 0
        if fill and crit >= 0:
            assignment, used, value, moves = self._fill(assignment, capacity, used, value)
        return KnapsackPoint(assignment, value, max(bound, value), multiplier, used, True,
                             int(taken.size), moves)

    def _totals(self, assignment: IntArray) -> tuple[float, float]:
        """(sum w, sum v) of an assignment, summed from the data, not from the cumsums."""
        rows = np.flatnonzero(assignment >= 0)
        cols = assignment[rows]
        return float(self.weight[rows, cols].sum()), float(self.value[rows, cols].sum())

    def _fill(self, assignment: IntArray, capacity: float, used: float, value: float,
              max_moves: int = 64) -> tuple[IntArray, float, float, int]:
        """Spend the left-over capacity on single-task upgrades, best value gain first.

        Only pairs whose extra weight fits the left-over are candidates; they are few, so the
        sequential part is short. Any model counts, not only the next hull vertex.
        """
        room = capacity - used
        if room <= 0:
            return assignment, used, value, 0
        cand_task, cand_model, cand_gain, cand_dw = [], [], [], []
        n = self.n_tasks
        for s in range(0, n, _BLOCK):
            a = assignment[s : s + _BLOCK]
            ok_rows = a >= 0
            loc = np.arange(a.size)
            w = self.weight[s : s + _BLOCK]
            v = self.value[s : s + _BLOCK]
            wa = np.where(ok_rows, w[loc, np.maximum(a, 0)], 0.0)
            va = np.where(ok_rows, v[loc, np.maximum(a, 0)], 0.0)
            dw = w - wa[:, None]
            dv = v - va[:, None]
            ok = self.mask[s : s + _BLOCK] & (dw <= room) & (dv > 0) & ok_rows[:, None]
            i, j = np.nonzero(ok)
            cand_task.append(i + s)
            cand_model.append(j)
            cand_gain.append(dv[i, j])
            cand_dw.append(dw[i, j])
        ti = np.concatenate(cand_task)
        if ti.size == 0:
            return assignment, used, value, 0
        mj = np.concatenate(cand_model)
        gain = np.concatenate(cand_gain)
        dws = np.concatenate(cand_dw)
        order = np.argsort(-gain, kind="stable")
        assignment = assignment.copy()
        moved: set[int] = set()
        moves = 0
        for c in order:
            if moves >= max_moves or room <= 0:
                break
            t = int(ti[c])
            if t in moved or dws[c] > room:
                continue
            # the gain was measured from the greedy vertex; the task has not moved since
            assignment[t] = mj[c]
            room -= float(dws[c])
            used += float(dws[c])
            value += float(gain[c])
            moved.add(t)
            moves += 1
        return assignment, used, value, moves
