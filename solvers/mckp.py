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
_BLOCK = 8192


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
        self.eff = h.inc_key  # dv/dw, made non-increasing along each task's steps
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
        return self._select(room)

    def _select(self, room: float) -> tuple[IntArray, int, float]:
        """The cut without a full sort: estimate the critical efficiency from a sample,
        split the increments into surely-taken / near-the-cut / surely-not by two
        thresholds around it, and sort only the near-the-cut ones."""
        h = self.hulls
        eff, dw = self.eff, h.inc_dw
        m = eff.size
        rng = np.random.default_rng(0)
        if m > 200_000:
            sample = rng.integers(0, m, 50_000)
            se = eff[sample]
            o = np.argsort(-se, kind="stable")
            cum = np.cumsum(dw[sample][o]) * (m / sample.size)
            pos = int(np.searchsorted(cum, room))
            spread = 2_000  # sample ranks either side: ~9 standard errors of the rank estimate
            t_hi = float(se[o[max(pos - spread, 0)]]) if pos - spread > 0 else np.inf
            t_lo = float(se[o[pos + spread]]) if pos + spread < sample.size else -np.inf
            hi = eff > t_hi
            s_hi = float(dw[hi].sum())
            if s_hi <= room:
                mid = np.flatnonzero((eff > t_lo) & ~hi)
                s_mid = float(dw[mid].sum())
                if s_hi + s_mid > room:  # the cut lies among the mid ones
                    return self._finish_cut(np.flatnonzero(hi), mid, room - s_hi, room)
        # fallback: halve the candidates around the cut until few remain
        taken_parts: list[IntArray] = []
        cand = np.arange(m)
        above = 0.0
        while cand.size > 50_000:
            ce = eff[cand]
            pivot = float(np.median(ce[rng.integers(0, cand.size, 1001)]))
            hi_c = ce > pivot
            s_hi = float(dw[cand[hi_c]].sum())
            if above + s_hi <= room:
                taken_parts.append(cand[hi_c])
                above += s_hi
                cand = cand[~hi_c]
            else:
                cand = cand[hi_c]
        taken_parts.append(np.zeros(0, np.int64))
        return self._finish_cut(np.concatenate(taken_parts), cand, room - above, room)

    def _finish_cut(self, surely: IntArray, near: IntArray, left: float, room: float) -> tuple[IntArray, int, float]:
        """Sort the ``near`` increments, take them while ``left`` allows; the next is critical."""
        h = self.hulls
        order = near[np.argsort(-self.eff[near], kind="stable")]
        cum = np.cumsum(h.inc_dw[order])
        k = int(np.searchsorted(cum, left, side="right"))
        taken = np.concatenate([surely, order[:k]])
        if k >= order.size:  # cannot happen: room < total_dw; kept for safety
            return taken, -1, 0.0
        crit = int(order[k])
        used = left - (float(cum[k - 1]) if k else 0.0)
        return taken, crit, min(max(used / float(h.inc_dw[crit]), 0.0), 1.0)

    def solve(self, capacity: float, fill: bool = True, rel_gap: float = 0.0) -> KnapsackPoint:
        """LP bound and integer plan at ``capacity``.

        fill: spend the left-over capacity on upgrades, first to each task's next hull
        vertex (one pass over the tasks), then, while the gap is above ``rel_gap``, on any
        pair that fits (one pass over every pair).
        """
        n = self.n_tasks
        h = self.hulls
        # a limit the lightest plan meets exactly (a quality floor equal to the best reachable
        # mean) can read as overrun by a rounding error of the sum: that is no proof of infeasibility
        if self.base_weight > capacity + 1e-9 * max(1.0, abs(capacity), abs(self.base_weight)):
            return KnapsackPoint(np.full(n, -1, np.int64), float("nan"), float("-inf"), float("inf"),
                                 self.base_weight, False, 0, 0)
        capacity = max(capacity, self.base_weight)
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
            assignment, used, value, moves = self._fill_hull(assignment, steps, capacity, used, value)
            if bound - value > rel_gap * max(abs(bound), abs(value), 1e-12):
                assignment, used, value, more = self._fill(assignment, capacity, used, value)
                moves += more
        return KnapsackPoint(assignment, value, max(bound, value), multiplier, used, True,
                             int(taken.size), moves)

    def _totals(self, assignment: IntArray) -> tuple[float, float]:
        """(sum w, sum v) of an assignment, summed from the data, not from the cumsums."""
        rows = np.flatnonzero(assignment >= 0)
        cols = assignment[rows]
        return float(self.weight[rows, cols].sum()), float(self.value[rows, cols].sum())

    def _fill_hull(self, assignment: IntArray, steps: IntArray, capacity: float, used: float,
                   value: float) -> tuple[IntArray, float, float, int]:
        """Upgrade tasks to their next hull vertex, largest value gain first, while they fit."""
        room = capacity - used
        h = self.hulls
        rows = np.flatnonzero((steps + 1 < h.size) & (assignment >= 0))
        if room <= 0 or rows.size == 0:
            return assignment, used, value, 0
        nxt = h.vertices[rows, steps[rows] + 1].astype(np.int64)
        cur = assignment[rows]
        dw = self.weight[rows, nxt] - self.weight[rows, cur]
        fits = dw <= room
        rows, nxt, dw = rows[fits], nxt[fits], dw[fits]
        if rows.size == 0:
            return assignment, used, value, 0
        gain = self.value[rows, nxt] - self.value[rows, assignment[rows]]
        assignment = assignment.copy()
        moves = 0
        for c in np.argsort(-gain, kind="stable"):
            if dw[c] <= room and gain[c] > 0:
                assignment[rows[c]] = nxt[c]
                room -= float(dw[c])
                used += float(dw[c])
                value += float(gain[c])
                moves += 1
        return assignment, used, value, moves

    def _fill(self, assignment: IntArray, capacity: float, used: float, value: float,
              max_moves: int = 64) -> tuple[IntArray, float, float, int]:
        """Spend the left-over capacity on single-task upgrades, best value gain first.

        Only heavier pairs whose extra weight fits the left-over are candidates (a lighter,
        more valuable pair cannot exist: the plan sits on hull vertices); they are few, so
        the sequential part is short. Any model counts, not only the next hull vertex.
        """
        room = capacity - used
        if room <= 0:
            return assignment, used, value, 0
        cand_task, cand_model, cand_gain, cand_dw = [], [], [], []
        n, k = self.weight.shape
        d_buf = np.empty((min(n, _BLOCK), k))
        ok_buf = np.empty((min(n, _BLOCK), k), dtype=bool)
        tmp_buf = np.empty((min(n, _BLOCK), k), dtype=bool)
        for s in range(0, n, _BLOCK):
            a = assignment[s : s + _BLOCK]
            rows = np.flatnonzero(a >= 0)
            w = self.weight[s : s + _BLOCK]
            wa = np.full(a.size, np.inf)  # unassigned tasks have no upgrade
            wa[rows] = w[rows, a[rows]]
            # heavier by at most the room: few pairs, so the value test runs on them only
            d, ok, tmp = d_buf[: a.size], ok_buf[: a.size], tmp_buf[: a.size]
            np.subtract(w, wa[:, None], out=d)
            np.greater(d, 0, out=ok)
            np.less_equal(d, room, out=tmp)
            ok &= tmp
            ok &= self.mask[s : s + _BLOCK]
            i, j = np.nonzero(ok)
            if i.size == 0:
                continue
            gain = self.value[s + i, j] - self.value[s + i, a[i]]
            keep = gain > 0
            cand_task.append(i[keep] + s)
            cand_model.append(j[keep])
            cand_gain.append(gain[keep])
            cand_dw.append(d[i[keep], j[keep]])
        if not cand_task:
            return assignment, used, value, 0
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
