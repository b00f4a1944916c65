"""Feasibility-first search: drive a plan's total overload to zero, losing little value.

The Lagrangian argmax plan usually breaks some limits. :func:`solvers.lagrangian_moves.repair`
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

The descent runs over *parts* of the tasks (:mod:`solvers.lagrangian_parts`), as the repair
does: the driver (:func:`reduce_overload`) holds only the rows' totals and each part's
count of tasks per model, and draws each step's sample of tasks as *positions* in the pool
(every task, or the tasks on an overloaded model, in task order), exactly as one process
draws them. A shift step asks every part for its best move among its sampled tasks
(:func:`part_shift`, with the move's row deltas) and keeps the first best in the sample's
order; a swap step needs both sides' rows of at most :data:`MAX_SWAP_TASKS` tasks each
(:func:`part_rows`), gathered on the driver. One process (one part) and Ray workers (a part
per shard) take the same steps: the plan is the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from solvers.exact_sum import exact_sum, to_float
from solvers.lagrangian_moves import Chunk, RowLimits, totals

if TYPE_CHECKING:
    from solvers.lagrangian import Coupled, RowUsage
    from solvers.lagrangian_parts import Parts, Sums

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Candidate tasks per step (sampled when more): bounds each step's work at any size.
MAX_SHIFT_TASKS = 4096
#: Candidate tasks on each side of a swap (the pairs are their product).
MAX_SWAP_TASKS = 256
#: Rows per block when summing the scales.
BLOCK = 8192


# ---------------------------------------------------------------------- the rows' scales
def part_scale_sums(form: Coupled) -> Sums:
    """A part's exact sums of |coefficient| over its feasible pairs (per global row, per
    weighted model row, of the value) and their count: the overload's scales are means."""
    from solvers.lagrangian_parts import Sums

    n = form.shape[0]
    coefs = [r.coef for r in form.global_rows] + [r.coef for r in form.model_rows if r.coef is not None]
    sums = [0] * len(coefs)
    v_sum = 0
    for s in range(0, n, BLOCK):
        mask = form.mask[s : s + BLOCK]
        for i, c in enumerate(coefs):
            sums[i] += exact_sum(np.abs(c[s : s + BLOCK][mask]))
        v_sum += exact_sum(np.abs(form.value[s : s + BLOCK][mask]))
    return Sums({"abs": sums, "value": v_sum, "count": int(form.mask.sum())})


@dataclass(frozen=True)
class Scales:
    """Each row's overload unit: gs (G,) and ms (R, K); value_scale: a typical |value|."""

    gs: FloatArray
    ms: FloatArray
    value_scale: float

    @classmethod
    def of(cls, sums: Sums, lim: RowLimits, weighted: tuple[bool, ...]) -> Scales:
        """From the parts' summed :func:`part_scale_sums` (so they do not depend on the split)."""
        s = sums.values
        count = s["count"]

        def typical(total: int) -> float:
            m = to_float(total) / count if count else 0.0
            return m if m > 0 else 1.0

        n_g = len(lim.glim)
        gs = np.array([max(abs(float(lim.glim[g])), typical(s["abs"][g])) for g in range(n_g)])
        ms = np.ones(lim.mlim.shape)
        pos = n_g
        for r, w in enumerate(weighted):
            typ = typical(s["abs"][pos]) if w else 1.0
            pos += w
            ms[r] = np.where(np.isfinite(lim.mlim[r]), np.maximum(lim.mlim[r], typ), 1.0)
        return cls(gs, ms, max(typical(s["value"]), 1e-12))


def take(form: Coupled, tasks: IntArray) -> Coupled:
    """The rows ``tasks`` of a problem, as a problem of their own (the limits kept)."""
    from solvers.lagrangian import Coupled, GlobalRow, ModelRow

    return Coupled(form.value[tasks], form.mask[tasks],
                   tuple(GlobalRow(r.name, r.coef[tasks], r.limit) for r in form.global_rows),
                   tuple(ModelRow(r.name, None if r.coef is None else r.coef[tasks], r.limit)
                         for r in form.model_rows))


def stack(forms: list[Coupled]) -> Coupled:
    """Problems' rows one after the other (the first one's limits)."""
    from solvers.lagrangian import Coupled, GlobalRow, ModelRow

    f0 = forms[0]

    def cat(arrays: list[FloatArray]) -> FloatArray:
        return np.concatenate(arrays)

    return Coupled(cat([f.value for f in forms]), np.concatenate([f.mask for f in forms]),
                   tuple(GlobalRow(r.name, cat([f.global_rows[i].coef for f in forms]), r.limit)
                         for i, r in enumerate(f0.global_rows)),
                   tuple(ModelRow(r.name, None if r.coef is None else
                                  cat([f.model_rows[i].coef for f in forms]), r.limit)  # type: ignore[misc]
                         for i, r in enumerate(f0.model_rows)))


# ---------------------------------------------------------------------- the overload
class Overload:
    """Relative overload of a plan's rows (totals g (G,) and m (R, K), held by reference),
    and its change under shifts and swaps of given tasks' rows."""

    def __init__(self, g: FloatArray, m: FloatArray, lim: RowLimits, scales: Scales):
        self.g, self.m, self.lim = g, m, lim
        self.gs, self.ms, self.value_scale = scales.gs, scales.ms, scales.value_scale

    # -- excess of row sums (same shapes in and out)
    def g_excess(self, g: int, x: FloatArray | float) -> FloatArray:
        lim = self.lim
        return np.maximum(np.asarray(x) - lim.glim[g] - lim.tg[g], 0.0) / self.gs[g]

    def m_excess(self, r: int, cols: IntArray | slice, x: FloatArray) -> FloatArray:
        lim = self.lim.mlim[r, cols] + self.lim.tm[r, cols]
        return np.where(np.isfinite(lim), np.maximum(x - lim, 0.0), 0.0) / self.ms[r, cols]

    def total(self) -> float:
        t = sum(float(self.g_excess(g, self.g[g])) for g in range(len(self.g)))
        t += sum(float(self.m_excess(r, slice(None), self.m[r]).sum()) for r in range(self.m.shape[0]))
        return t

    def overloaded_models(self) -> IntArray:
        over = np.zeros(self.m.shape[1], dtype=bool)
        for r in range(self.m.shape[0]):
            over |= self.m_excess(r, slice(None), self.m[r]) > 0
        return np.flatnonzero(over)

    def any_global_over(self) -> bool:
        return any(float(self.g_excess(g, self.g[g])) > 0 for g in range(len(self.g)))

    # -- moves
    def shift_delta(self, rows: Coupled, cur: IntArray) -> FloatArray:
        """Change of the total overload when task c (``rows``' row c, now on model cur[c])
        moves to model k: shape (c, K); +inf on infeasible pairs and on the task's own model."""
        loc = np.arange(cur.size)
        d = np.zeros(rows.value.shape)
        for g, row in enumerate(rows.global_rows):
            c = row.coef
            d += self.g_excess(g, self.g[g] + c - c[loc, cur][:, None]) - self.g_excess(g, self.g[g])
        for r, mrow in enumerate(rows.model_rows):
            load = np.ones(d.shape) if mrow.coef is None else mrow.coef
            d += self.m_excess(r, slice(None), self.m[r][None, :] + load) - self.m_excess(r, slice(None), self.m[r])[None, :]
            own = load[loc, cur]
            d += (self.m_excess(r, cur, self.m[r, cur] - own) - self.m_excess(r, cur, self.m[r, cur]))[:, None]
        d[~rows.mask] = np.inf
        d[loc, cur] = np.inf
        return d

    def swap_delta(self, left: Coupled, j1: IntArray, right: Coupled, j2: IntArray) -> FloatArray:
        """Change of the total overload when left task p (on model j1[p]) and right task q
        (on j2[q]) exchange models: (p, q); +inf where the exchange is infeasible or the
        models are the same."""
        p, q = np.arange(j1.size)[:, None], np.arange(j2.size)[None, :]
        m1, m2 = j1[:, None], j2[None, :]
        d = np.zeros((j1.size, j2.size))
        for g, (lr, rr) in enumerate(zip(left.global_rows, right.global_rows, strict=True)):
            cl, cr = lr.coef, rr.coef
            dd = cl[p, m2] - cl[p, m1] + cr[q, m1] - cr[q, m2]
            d += self.g_excess(g, self.g[g] + dd) - self.g_excess(g, self.g[g])
        for r, (lr_, rr_) in enumerate(zip(left.model_rows, right.model_rows, strict=True)):
            if lr_.coef is None or rr_.coef is None:
                continue  # a swap leaves every count unchanged
            cl, cr = lr_.coef, rr_.coef
            new1 = self.m[r][m1] - cl[p, m1] + cr[q, m1]
            new2 = self.m[r][m2] - cr[q, m2] + cl[p, m2]
            d += self.m_excess(r, m1, new1) - self.m_excess(r, m1, self.m[r][m1])
            d += self.m_excess(r, m2, new2) - self.m_excess(r, m2, self.m[r][m2])
        bad = (m1 == m2) | ~left.mask[p, m2] | ~right.mask[q, m1]
        d[bad] = np.inf
        return d

    def swap_loss(self, left: Coupled, j1: IntArray, right: Coupled, j2: IntArray) -> FloatArray:
        """Value lost by each exchange (p, q)."""
        p, q = np.arange(j1.size)[:, None], np.arange(j2.size)[None, :]
        m1, m2 = j1[:, None], j2[None, :]
        return (left.value[p, m1] + right.value[q, m2]) - (left.value[p, m2] + right.value[q, m1])


def _pick(relief: FloatArray, loss: FloatArray, value_scale: float) -> tuple[int, float, float]:
    """Flat index of the move with the most relief per unit of value lost, its relief and
    its score (the first such move in flat order; -1 when nothing is relieved).

    Moves that gain value rank by relief alone, ahead of every losing move.
    """
    ok = relief > 1e-12
    if not ok.any():
        return -1, 0.0, -np.inf
    eps = 1e-6 * value_scale
    with np.errstate(invalid="ignore"):  # inf / inf on excluded moves, masked out here
        score = np.where(ok, relief / (np.maximum(loss, 0.0) + eps), -np.inf)
    best = int(np.argmax(score))
    return best, float(relief.flat[best]), float(score.flat[best])


def _sample(size: int, m: int, rng: np.random.Generator) -> IntArray:
    """Positions of m of a pool's ``size`` members, as ``rng.choice(pool, m)`` draws them
    (every position, in order, when there are at most m)."""
    return np.arange(size) if size <= m else rng.choice(size, m, replace=False)


# ---------------------------------------------------------------------- what a part computes
def pool_of(a: IntArray, hot: IntArray | None) -> IntArray:
    """A part's pool in task order: every task (hot None), or those on the models ``hot``."""
    return np.arange(a.size) if hot is None else np.flatnonzero(np.isin(a, hot))


@dataclass
class ShiftPick:
    """A part's best shift among its sampled tasks: its score, the position (in the part's
    ranks) of its task, and the move with its row deltas (a one-candidate chunk)."""

    score: float
    c: int
    move: Chunk


def deltas(rows: Coupled, p: int, j: int, k: int, gi: int, relief: float = 0.0, key: float = 0.0) -> Chunk:
    """The move of row p of ``rows`` (task ``gi``) from model j to k, with its row deltas."""
    dg = np.array([[r.coef[p, k] - r.coef[p, j] for r in rows.global_rows]]).reshape(1, -1)
    lk = np.array([[1.0 if r.coef is None else r.coef[p, k] for r in rows.model_rows]]).reshape(1, -1)
    lj = np.array([[1.0 if r.coef is None else r.coef[p, j] for r in rows.model_rows]]).reshape(1, -1)
    one = np.array([0], np.int64)
    return Chunk(np.array([key]), one + gi, one + k, one + j, np.array([relief]), dg, lk, lj)


def part_shift(form: Coupled, a: IntArray, ranks: IntArray, hot: IntArray | None, ov: Overload,
               offset: int = 0) -> ShiftPick | None:
    """The part's best shift among its pool's members ``ranks`` (in the sample's order):
    the most overload relieved per unit of value lost, the first such in (rank's position,
    model) order; None when none relieves anything."""
    tasks = pool_of(a, hot)[ranks]
    rows = take(form, tasks)
    cur = a[tasks]
    d = ov.shift_delta(rows, cur)
    cur_v = rows.value[np.arange(cur.size), cur]
    loss = cur_v[:, None] - np.where(rows.mask, rows.value, -np.inf)
    flat, relief, score = _pick(-d, loss, ov.value_scale)
    if flat < 0:
        return None
    c, k = divmod(flat, form.shape[1])
    return ShiftPick(score, c, deltas(rows, c, int(cur[c]), k, int(tasks[c]) + offset, relief, score))


def part_rows(form: Coupled, a: IntArray, ranks: IntArray, hot: IntArray | None,
              offset: int = 0) -> tuple[Coupled, IntArray, IntArray]:
    """The rows of the part's pool's members ``ranks``: (their rows, their models, their
    task indices numbered from ``offset``)."""
    tasks = pool_of(a, hot)[ranks]
    return take(form, tasks), a[tasks], tasks + offset


# ---------------------------------------------------------------------- the descent
class _Pools:
    """Each part's count of work-plan tasks per model, kept move by move: the pool sizes
    that turn a sample's positions into (part, rank in the part's pool)."""

    def __init__(self, n: int, starts: IntArray, counts: IntArray):
        self.starts, self.counts = starts, counts
        self.sizes = np.diff(np.append(starts, n))

    def split(self, positions: IntArray, hot: IntArray | None) -> dict[int, tuple[IntArray, IntArray]]:
        """part -> (indices into ``positions`` of its members, in order; their ranks)."""
        sizes = self.sizes if hot is None else self.counts[:, hot].sum(axis=1)
        first = np.concatenate([[0], np.cumsum(sizes)])
        part = np.searchsorted(first, positions, side="right") - 1
        out = {}
        for p in np.unique(part):
            idx = np.flatnonzero(part == p)
            out[int(p)] = (idx, positions[idx] - first[p])
        return out

    def size(self, hot: IntArray | None) -> int:
        return int(self.sizes.sum() if hot is None else self.counts[:, hot].sum())

    def move(self, task: int, j: int, k: int) -> None:
        p = int(np.searchsorted(self.starts, task, side="right")) - 1
        self.counts[p, j] -= 1
        self.counts[p, k] += 1


def reduce_overload(parts: Parts, rng: np.random.Generator, deadline: float | None, max_steps: int = 5000) -> bool:
    """Move the parts' work plan, from the argmax of their last :meth:`~Parts.start`, towards
    zero overload; True when the row totals then show no overload (the caller checks the
    plan exactly).

    Stops at a local minimum (no shift or swap relieves anything), after ``max_steps``,
    or at ``deadline`` (time.perf_counter()).
    """
    starts, counts = parts.descent_begin()
    st = totals(parts)
    ov = Overload(st.g, st.m, st.lim, parts.overload_scales())
    pools = _Pools(parts.n, starts, counts)
    pending: list[tuple[int, int]] = []

    def move(c: Chunk) -> None:
        st.apply(c, 0)
        pools.move(int(c.gi[0]), int(c.j[0]), int(c.k[0]))
        pending.append((int(c.gi[0]), int(c.k[0])))

    try:
        for _ in range(max_steps):
            if ov.total() <= 0:
                return True
            if deadline is not None and time.perf_counter() > deadline:
                return False
            over = ov.overloaded_models()
            hot = None if ov.any_global_over() or over.size == 0 else over
            # shift: the parts' best moves, the first best in the sample's order
            positions = _sample(pools.size(hot), MAX_SHIFT_TASKS, rng)
            split = pools.split(positions, hot)
            picks = parts.descent_shift(pending, {p: r for p, (_, r) in split.items()}, hot, st.g, st.m)
            pending = []
            best = None
            for p, pick in picks:
                flat = int(split[p][0][pick.c]) * parts.k + int(pick.move.k[0])
                if best is None or pick.score > best[0] or (pick.score == best[0] and flat < best[1]):
                    best = (pick.score, flat, pick.move)
            if best is not None:
                move(best[2])
                continue
            if not len(st.lim.mlim):
                return False  # with global rows only, exchanging two tasks' model indices means nothing
            # swap: a task on an overloaded model (or any task) with any other task
            left_pos = _sample(pools.size(hot), MAX_SWAP_TASKS, rng)
            right_pos = _sample(parts.n, MAX_SWAP_TASKS, rng)
            sl, sr = pools.split(left_pos, hot), pools.split(right_pos, None)
            got = parts.descent_rows(pending, [({p: r for p, (_, r) in sl.items()}, hot),
                                               ({p: r for p, (_, r) in sr.items()}, None)])
            pending = []
            if not got[0] or not got[1]:
                return False  # an empty pool: nothing to exchange
            left, j1, g1 = _in_sample_order(got[0], sl)
            right, j2, g2 = _in_sample_order(got[1], sr)
            d = ov.swap_delta(left, j1, right, j2)
            loss = ov.swap_loss(left, j1, right, j2)
            flat, _, _ = _pick(-d, np.where(np.isfinite(d), loss, np.inf), ov.value_scale)
            if flat < 0:
                return False
            p, q = divmod(flat, j2.size)
            k1, k2 = int(j2[q]), int(j1[p])
            move(deltas(left, p, k2, k1, int(g1[p])))
            move(deltas(right, q, k1, k2, int(g2[q])))
        return ov.total() <= 0
    finally:
        parts.apply(pending)


def _in_sample_order(rows: dict[int, tuple[Coupled, IntArray, IntArray]],
                     split: dict[int, tuple[IntArray, IntArray]]) -> tuple[Coupled, IntArray, IntArray]:
    """The parts' rows of a sample, put back in the sample's order."""
    order = sorted(rows)
    where = np.concatenate([split[p][0] for p in order])
    back = np.argsort(where)
    form = take(stack([rows[p][0] for p in order]), back)
    return (form, np.concatenate([rows[p][1] for p in order])[back],
            np.concatenate([rows[p][2] for p in order])[back])


def improve_by_swaps(form: Coupled, st: RowUsage, rng: np.random.Generator, deadline: float | None,
                     max_steps: int = 2000) -> int:
    """Exchange the models of two tasks while that raises the value and keeps every limit.

    ``st`` must be feasible and stays so (a swap is taken only when it adds no overload).
    Returns the number of swaps made. Single-task moves cannot free one model's capacity
    for another task; swaps can, which is where most of a tight GAP's gap lies. (One
    process only: the polish of small problems.)
    """
    lim = RowLimits.of(form)
    weighted = tuple(r.coef is not None for r in form.model_rows)
    ov = Overload(st.g, st.m, lim, Scales.of(part_scale_sums(form), lim, weighted))
    if ov.total() > 0:
        return 0
    n = form.shape[0]
    made = 0
    for _ in range(max_steps):
        if deadline is not None and time.perf_counter() > deadline:
            break
        left_t = _sample(n, MAX_SWAP_TASKS, rng)
        right_t = _sample(n, MAX_SWAP_TASKS, rng)
        left, right = take(form, left_t), take(form, right_t)
        j1, j2 = st.a[left_t], st.a[right_t]
        d = ov.swap_delta(left, j1, right, j2)
        gain = -ov.swap_loss(left, j1, right, j2)
        gain = np.where(d <= 0, gain, -np.inf)
        flat = int(np.argmax(gain))
        if not gain.flat[flat] > 1e-12 * ov.value_scale:
            break
        p, q = divmod(flat, j2.size)
        i1, i2 = int(left_t[p]), int(right_t[q])
        k1, k2 = int(st.a[i2]), int(st.a[i1])
        st.apply(i1, k1)
        st.apply(i2, k2)
        made += 1
    return made

