"""Feasibility-first search: drive a plan's total overload to zero, losing little value.

The Lagrangian argmax plan usually breaks some limits. :func:`solvers.lagrangian.repair`
fixes them one row at a time with single-task moves, which fails on tight instances
(OR-Library GAP b/c, MMKP with 30-40 resources): every move that frees one row overloads
another. This search instead minimises the *total* relative overload over every row

    overload = sum_g max(0, G_g - b_g) / s_g + sum_{r, j} max(0, M_rj - cap_rj) / s_rj

with two neighbourhoods, each evaluated for all candidates at once with numpy:

- shift: move one task to another model;
- swap: exchange the models of two tasks (the classic GAP move that frees capacity on
  one model without loading a third).

Each step takes the move with the most overload relieved per unit of value lost (gains
first), so the descent is strict and cannot cycle. A step with neither move relieving
anything is a local minimum: the caller restarts from perturbed multipliers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from solvers.lagrangian import Coupled, RowUsage

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Candidate tasks per step (sampled when more): bounds each step's work at any size.
MAX_SHIFT_TASKS = 4096
#: Candidate tasks on each side of a swap (the pairs are their product).
MAX_SWAP_TASKS = 256


class Overload:
    """Relative overload of a plan's rows, and its change under shifts and swaps."""

    def __init__(self, form: Coupled, st: RowUsage):
        self.form, self.st = form, st
        n, k = form.shape
        self.gs = np.array([max(abs(r.limit), _typical_abs(r.coef, form.mask)) for r in form.global_rows])
        self.ms = np.ones((len(form.model_rows), k))
        for i, r in enumerate(form.model_rows):
            typ = 1.0 if r.coef is None else _typical_abs(r.coef, form.mask)
            self.ms[i] = np.where(np.isfinite(r.limit), np.maximum(r.limit, typ), 1.0)
        self.value_scale = max(_typical_abs(form.value, form.mask), 1e-12)

    # -- excess of row sums (same shapes in and out)
    def g_excess(self, g: int, x: FloatArray | float) -> FloatArray:
        st = self.st
        return np.maximum(np.asarray(x) - st.glim[g] - st.tg[g], 0.0) / self.gs[g]

    def m_excess(self, r: int, cols: IntArray | slice, x: FloatArray) -> FloatArray:
        st = self.st
        lim = st.mlim[r, cols] + st.tm[r, cols]
        return np.where(np.isfinite(lim), np.maximum(x - lim, 0.0), 0.0) / self.ms[r, cols]

    def total(self) -> float:
        st = self.st
        t = sum(float(self.g_excess(g, st.g[g])) for g in range(len(st.glim)))
        t += sum(float(self.m_excess(r, slice(None), st.m[r]).sum()) for r in range(st.m.shape[0]))
        return t

    def overloaded_models(self) -> IntArray:
        st = self.st
        over = np.zeros(self.form.shape[1], dtype=bool)
        for r in range(st.m.shape[0]):
            over |= self.m_excess(r, slice(None), st.m[r]) > 0
        return np.flatnonzero(over)

    def any_global_over(self) -> bool:
        st = self.st
        return any(float(self.g_excess(g, st.g[g])) > 0 for g in range(len(st.glim)))

    # -- moves
    def shift_delta(self, tasks: IntArray) -> FloatArray:
        """Change of the total overload when task tasks[c] moves to model k: shape (c, K);
        +inf on infeasible pairs and on the task's own model."""
        form, st = self.form, self.st
        cur = st.a[tasks]
        loc = np.arange(tasks.size)
        d = np.zeros((tasks.size, form.shape[1]))
        for g, row in enumerate(form.global_rows):
            c = row.coef[tasks]
            d += self.g_excess(g, st.g[g] + c - c[loc, cur][:, None]) - self.g_excess(g, st.g[g])
        for r, mrow in enumerate(form.model_rows):
            load = np.ones(d.shape) if mrow.coef is None else mrow.coef[tasks]
            d += self.m_excess(r, slice(None), st.m[r][None, :] + load) - self.m_excess(r, slice(None), st.m[r])[None, :]
            own = load[loc, cur]
            d += (self.m_excess(r, cur, st.m[r, cur] - own) - self.m_excess(r, cur, st.m[r, cur]))[:, None]
        d[~form.mask[tasks]] = np.inf
        d[loc, cur] = np.inf
        return d

    def swap_delta(self, left: IntArray, right: IntArray) -> FloatArray:
        """Change of the total overload when left[p] and right[q] exchange models: (p, q);
        +inf where the exchange is infeasible or the models are the same."""
        form, st = self.form, self.st
        j1 = st.a[left][:, None]
        j2 = st.a[right][None, :]
        li, ri = left[:, None], right[None, :]
        d = np.zeros((left.size, right.size))
        for g, row in enumerate(form.global_rows):
            c = row.coef
            dd = c[li, j2] - c[li, j1] + c[ri, j1] - c[ri, j2]
            d += self.g_excess(g, st.g[g] + dd) - self.g_excess(g, st.g[g])
        for r, mrow in enumerate(form.model_rows):
            if mrow.coef is None:
                continue  # a swap leaves every count unchanged
            c = mrow.coef
            new1 = st.m[r][j1] - c[li, j1] + c[ri, j1]
            new2 = st.m[r][j2] - c[ri, j2] + c[li, j2]
            d += self.m_excess(r, j1, new1) - self.m_excess(r, j1, st.m[r][j1])
            d += self.m_excess(r, j2, new2) - self.m_excess(r, j2, st.m[r][j2])
        bad = (j1 == j2) | ~form.mask[li, j2] | ~form.mask[ri, j1]
        d[bad] = np.inf
        return d


def _typical_abs(coef: FloatArray, mask: NDArray[np.bool_]) -> float:
    vals = np.abs(coef[mask])
    m = float(vals.mean()) if vals.size else 0.0
    return m if m > 0 else 1.0


def _pick(relief: FloatArray, loss: FloatArray, value_scale: float) -> tuple[int, float]:
    """Flat index of the move with the most relief per unit of value lost, and its relief.

    Moves that gain value rank by relief alone, ahead of every losing move.
    """
    ok = relief > 1e-12
    if not ok.any():
        return -1, 0.0
    eps = 1e-6 * value_scale
    with np.errstate(invalid="ignore"):  # inf / inf on excluded moves, masked out here
        score = np.where(ok, relief / (np.maximum(loss, 0.0) + eps), -np.inf)
    best = int(np.argmax(score))
    return best, float(relief.flat[best])


def _sample(pool: IntArray, size: int, rng: np.random.Generator) -> IntArray:
    return pool if pool.size <= size else rng.choice(pool, size, replace=False)


def reduce_overload(form: Coupled, st: RowUsage, rng: np.random.Generator, deadline: float | None,
                    max_steps: int = 5000) -> bool:
    """Move ``st`` (in place) towards zero overload; True when it is feasible.

    Stops at a local minimum (no shift or swap relieves anything), after ``max_steps``,
    or at ``deadline`` (time.perf_counter()).
    """
    ov = Overload(form, st)
    n = form.shape[0]
    everyone = np.arange(n)
    for _ in range(max_steps):
        if ov.total() <= 0:
            return True
        if deadline is not None and time.perf_counter() > deadline:
            return False
        hot = ov.overloaded_models()
        pool = everyone if ov.any_global_over() or hot.size == 0 else np.flatnonzero(np.isin(st.a, hot))
        # shift
        tasks = _sample(pool, MAX_SHIFT_TASKS, rng)
        d = ov.shift_delta(tasks)
        cur_v = form.value[tasks, st.a[tasks]]
        loss = cur_v[:, None] - np.where(form.mask[tasks], form.value[tasks], -np.inf)
        flat, relief = _pick(-d, loss, ov.value_scale)
        if flat >= 0:
            c, k = divmod(flat, form.shape[1])
            st.apply(int(tasks[c]), int(k))
            continue
        if not form.model_rows:
            return False  # with global rows only, exchanging two tasks' model indices means nothing
        # swap: a task on an overloaded model (or any task) with any other task
        left = _sample(pool, MAX_SWAP_TASKS, rng)
        right = _sample(everyone, MAX_SWAP_TASKS, rng)
        d = ov.swap_delta(left, right)
        j1, j2 = st.a[left][:, None], st.a[right][None, :]
        li, ri = left[:, None], right[None, :]
        loss = (form.value[li, j1] + form.value[ri, j2]) - (form.value[li, j2] + form.value[ri, j1])
        flat, relief = _pick(-d, np.where(np.isfinite(d), loss, np.inf), ov.value_scale)
        if flat < 0:
            return False
        p, q = divmod(flat, right.size)
        i1, i2 = int(left[p]), int(right[q])
        k1, k2 = int(st.a[i2]), int(st.a[i1])
        st.apply(i1, k1)
        st.apply(i2, k2)
    return ov.total() <= 0


def improve_by_swaps(form: Coupled, st: RowUsage, rng: np.random.Generator, deadline: float | None,
                     max_steps: int = 2000) -> int:
    """Exchange the models of two tasks while that raises the value and keeps every limit.

    ``st`` must be feasible and stays so (a swap is taken only when it adds no overload).
    Returns the number of swaps made. Single-task moves cannot free one model's capacity
    for another task; swaps can, which is where most of a tight GAP's gap lies.
    """
    ov = Overload(form, st)
    if ov.total() > 0:
        return 0
    everyone = np.arange(form.shape[0])
    made = 0
    for _ in range(max_steps):
        if deadline is not None and time.perf_counter() > deadline:
            break
        left = _sample(everyone, MAX_SWAP_TASKS, rng)
        right = _sample(everyone, MAX_SWAP_TASKS, rng)
        d = ov.swap_delta(left, right)
        j1, j2 = st.a[left][:, None], st.a[right][None, :]
        li, ri = left[:, None], right[None, :]
        gain = (form.value[li, j2] + form.value[ri, j1]) - (form.value[li, j1] + form.value[ri, j2])
        gain = np.where(d <= 0, gain, -np.inf)
        flat = int(np.argmax(gain))
        if not gain.flat[flat] > 1e-12 * ov.value_scale:
            break
        p, q = divmod(flat, right.size)
        i1, i2 = int(left[p]), int(right[q])
        k1, k2 = int(st.a[i2]), int(st.a[i1])
        st.apply(i1, k1)
        st.apply(i2, k2)
        made += 1
    return made
