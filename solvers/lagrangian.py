"""Lagrangian relaxation with repair, for one-model-per-task problems with coupling rows.

    maximise sum v[i, j] x[i, j]
    s.t.     sum A_g[i, j] x[i, j] <= b_g           global rows g (budget, quality floor, ...)
             sum_i L_r[i, j] x[i, j] <= cap_r[j]     per-model rows r (capacities, share caps)
             one j per task, over the feasible pairs

Relaxing every coupling row with multipliers mu, lam >= 0 leaves one independent choice per
task, so for *any* mu, lam >= 0

    L(mu, lam) = mu.b + lam.cap + sum_i max_j (v - mu A - lam L)[i, j]  >=  the LP optimum

is a proven upper bound; its minimum equals the LP bound (the per-task problem has the
integrality property). L is piecewise linear, so it is minimised through its entropy
smoothing (log-sum-exp at temperature tau, which over-estimates L by at most
n tau log K) with L-BFGS-B, lowering tau in stages and keeping the best true L seen.

The plan comes from the per-task argmax at the best multipliers, repaired (moves off each
violated row at the least reduced-value loss per unit freed) and improved by single-task
moves that keep every row feasible. When that repair fails (tight GAP/MMKP instances), the
overload descent of :mod:`solvers.overload` (shifts and two-task swaps minimising the total
overload) takes over, and restarts from perturbed multipliers follow until a plan is found
or fast's own search limit passes. On small problems, swaps and a few restarts also
polish the plan within a time share of the dual stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: Rows per block in every vectorised pass (temporaries stay in cache).
BLOCK = 8192
#: Relative slack below a limit that the plan keeps (the Problem's check allows 1e-7).
ROW_TOL = 1e-9
#: Smoothing temperatures, relative to the typical spread of a task's values.
TAUS = (3e-2, 3e-3, 3e-4, 3e-5, 3e-6)


@dataclass(frozen=True)
class GlobalRow:
    """sum A[i, j] x[i, j] <= limit. coef: array of shape (n_tasks, n_models)."""

    name: str
    coef: FloatArray
    limit: float


@dataclass(frozen=True)
class ModelRow:
    """sum_i L[i, j] x[i, j] <= limit[j] for each model j; coef None counts tasks (L = 1).

    coef: array of shape (n_tasks, n_models) or None; limit: shape (n_models,), inf = none.
    """

    name: str
    coef: FloatArray | None
    limit: FloatArray


@dataclass(frozen=True)
class Coupled:
    """The problem in maximisation form; ``mask`` has at least one True per row."""

    value: FloatArray
    mask: BoolArray
    global_rows: tuple[GlobalRow, ...] = ()
    model_rows: tuple[ModelRow, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        n, k = self.value.shape
        return int(n), int(k)

    def coef_at(self, row: ModelRow, tasks: IntArray, models: IntArray) -> FloatArray:
        if row.coef is None:
            return np.ones(tasks.shape)
        return row.coef[tasks, models]

    def usage(self, a: IntArray) -> tuple[FloatArray, FloatArray]:
        """(global row sums (G,), per-model row sums (R, K)) of a full assignment."""
        n, k = self.shape
        rows = np.arange(n)
        g = np.array([float(r.coef[rows, a].sum()) for r in self.global_rows])
        m = np.array([np.bincount(a, weights=self.coef_at(r, rows, a), minlength=k) for r in self.model_rows])
        return g, m.reshape(len(self.model_rows), k)

    def value_of(self, a: IntArray) -> float:
        return float(self.value[np.arange(a.size), a].sum())

    def tolerances(self) -> tuple[FloatArray, FloatArray]:
        g = np.array([ROW_TOL * max(1.0, abs(r.limit)) for r in self.global_rows])
        m = np.array([ROW_TOL * np.maximum(1.0, np.where(np.isfinite(r.limit), r.limit, 1.0))
                      for r in self.model_rows]).reshape(len(self.model_rows), self.shape[1])
        return g, m

    def is_feasible(self, a: IntArray) -> bool:
        g, m = self.usage(a)
        tg, tm = self.tolerances()
        ok_g = all(g[i] <= r.limit + tg[i] for i, r in enumerate(self.global_rows))
        ok_m = all((m[i] <= r.limit + tm[i]).all() for i, r in enumerate(self.model_rows))
        return ok_g and ok_m

    def min_value(self) -> float:
        """The least value any plan can have: a floor below which the bound proves infeasibility."""
        return float(np.where(self.mask, self.value, np.inf).min(axis=1).sum())


@dataclass
class CoupledResult:
    """assignment: int array (n_tasks,) or None when no plan was found; value/bound in
    maximisation form; mu (G,) and lam (R, K) the multipliers of the best bound (original
    units: value per unit of the row); infeasible: proven by the bound."""

    assignment: IntArray | None
    value: float
    bound: float
    mu: FloatArray
    lam: FloatArray
    infeasible: bool
    stats: dict[str, Any] = field(default_factory=dict)


class _Dual:
    """The dual function in scaled variables (multipliers O(1) in per-task value units)."""

    def __init__(self, form: Coupled):
        self.form = form
        n, k = form.shape
        self.n, self.k = n, k
        v = np.where(form.mask, form.value, np.nan)
        spread = np.nanmax(v, axis=1) - np.nanmin(v, axis=1)
        self.typ = float(np.mean(spread)) if np.isfinite(spread).any() and np.mean(spread) > 0 else 1.0
        self.g_scale = np.array([_typical(r.coef, form.mask) for r in form.global_rows])
        self.fin = [np.flatnonzero(np.isfinite(r.limit)) for r in form.model_rows]
        self.m_scale = [
            (np.ones(len(f)) if r.coef is None else _typical_cols(r.coef, form.mask, f))
            for r, f in zip(form.model_rows, self.fin, strict=True)
        ]
        self.dim = len(form.global_rows) + sum(len(f) for f in self.fin)
        self.best_bound = np.inf
        self.best_x = np.zeros(self.dim)
        self.evaluations = 0

    def unpack(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Scaled x -> (mu (G,), lam (R, K)) in original units."""
        g = len(self.form.global_rows)
        mu = x[:g] * self.typ / self.g_scale if g else np.zeros(0)
        lam = np.zeros((len(self.form.model_rows), self.k))
        pos = g
        for r, (f, s) in enumerate(zip(self.fin, self.m_scale, strict=True)):
            lam[r, f] = x[pos : pos + len(f)] * self.typ / s
            pos += len(f)
        return mu, lam

    def pack(self, mu: FloatArray, lam: FloatArray) -> FloatArray:
        parts = [mu * self.g_scale / self.typ] if len(mu) else []
        for r, (f, s) in enumerate(zip(self.fin, self.m_scale, strict=True)):
            parts.append(lam[r, f] * s / self.typ)
        return np.concatenate(parts) if parts else np.zeros(0)

    def reduced(self, s: int, e: int, mu: FloatArray, lam: FloatArray) -> FloatArray:
        """v - mu A - lam L for rows s:e, -inf on infeasible pairs."""
        form = self.form
        r = np.where(form.mask[s:e], form.value[s:e], -np.inf)
        for g, row in enumerate(form.global_rows):
            if mu[g] != 0:
                r -= mu[g] * row.coef[s:e]
        for i, mrow in enumerate(form.model_rows):
            if lam[i].any():
                r -= lam[i] if mrow.coef is None else lam[i] * mrow.coef[s:e]
        return r

    def __call__(self, x: FloatArray, tau: float) -> tuple[float, FloatArray]:
        """Smoothed dual (scaled) and its gradient; records the true dual bound as well."""
        form = self.form
        mu, lam = self.unpack(x)
        t = tau * self.typ
        hard = smooth = 0.0
        g_sum = np.zeros(len(form.global_rows))
        m_sum = np.zeros((len(form.model_rows), self.k))
        for s in range(0, self.n, BLOCK):
            e = min(s + BLOCK, self.n)
            r = self.reduced(s, e, mu, lam)
            m = r.max(axis=1)
            hard += float(m.sum())
            r -= m[:, None]
            r /= t
            np.exp(r, out=r)
            z = r.sum(axis=1)
            smooth += float(m.sum() + t * np.log(z).sum())
            r /= z[:, None]  # r now holds the soft assignment p
            for g, row in enumerate(form.global_rows):
                g_sum[g] += float(np.einsum("ij,ij->", r, row.coef[s:e]))
            for i, mrow in enumerate(form.model_rows):
                m_sum[i] += r.sum(axis=0) if mrow.coef is None else np.einsum("ij,ij->j", r, mrow.coef[s:e])
        lin = sum(mu[g] * row.limit for g, row in enumerate(form.global_rows))
        lin += sum(float(lam[i, f] @ row.limit[f]) for i, (row, f) in enumerate(zip(form.model_rows, self.fin, strict=True)))
        self.evaluations += 1
        if hard + lin < self.best_bound:
            self.best_bound = hard + lin
            self.best_x = x.copy()
        # d/dmu_g = b_g - sum p A_g, in scaled units
        grads = [(np.array([row.limit for row in form.global_rows]) - g_sum) * self.typ / self.g_scale] if len(g_sum) else []
        for i, (mrow, f, sc) in enumerate(zip(form.model_rows, self.fin, self.m_scale, strict=True)):
            grads.append((mrow.limit[f] - m_sum[i, f]) * self.typ / sc)
        grad = np.concatenate(grads) if grads else np.zeros(0)
        scale = self.n * self.typ
        return (smooth + lin) / scale, grad / scale

    def assignment(self, mu: FloatArray, lam: FloatArray) -> IntArray:
        out = np.empty(self.n, dtype=np.int64)
        for s in range(0, self.n, BLOCK):
            e = min(s + BLOCK, self.n)
            out[s:e] = self.reduced(s, e, mu, lam).argmax(axis=1)
        return out


def _typical(coef: FloatArray, mask: BoolArray) -> float:
    vals = np.abs(coef[mask])
    m = float(vals.mean()) if vals.size else 0.0
    return m if m > 0 else 1.0


def _typical_cols(coef: FloatArray, mask: BoolArray, cols: IntArray) -> FloatArray:
    c = np.where(mask[:, cols], np.abs(coef[:, cols]), 0.0)
    cnt = np.maximum(mask[:, cols].sum(axis=0), 1)
    m = c.sum(axis=0) / cnt
    return np.where(m > 0, m, 1.0)


#: After the stages, on problems of at most RESTART_MAX_PAIRS pairs whose gap is above
#: rel_gap, the plan is polished (swaps) and up to IMPROVE_RESTARTS restarts from perturbed
#: multipliers are tried, for IMPROVE_EFFORT times the stages' own time (at least
#: MIN_IMPROVE_S, at most the time limit).
IMPROVE_RESTARTS = 12
RESTART_MAX_PAIRS = 200_000
IMPROVE_EFFORT = 1.0
MIN_IMPROVE_S = 0.2
#: When no plan was found, restarts go on for SEARCH_EFFORT times the stages' own time (at
#: least MIN_SEARCH_S, at most the time limit): fast then reports that it found no plan,
#: and ``auto`` still has time for an exact backend.
SEARCH_EFFORT = 4.0
MIN_SEARCH_S = 1.0


def solve_coupled(form: Coupled, rel_gap: float = 1e-6, time_limit_s: float | None = None,
                  mu0: FloatArray | None = None, seed: int = 0) -> CoupledResult:
    """Best plan and bound within ``rel_gap`` or the time limit (see the module docstring).

    ``stats["stopped"]`` says why the search ended without a plan: "time_limit" (the
    caller's) or "search_limit" (fast's own effort limit, see :data:`SEARCH_EFFORT`).
    """
    start = time.perf_counter()
    deadline = start + time_limit_s if time_limit_s else None
    rng = np.random.default_rng(seed)
    dual = _Dual(form)
    floor = form.min_value()
    x0 = np.zeros(dual.dim)
    if mu0 is not None and len(mu0):
        x0 = dual.pack(np.asarray(mu0, float), np.zeros((len(form.model_rows), dual.k)))
    best_a: IntArray | None = None
    best_val = -np.inf
    stages = 0
    infeasible = False
    stats: dict[str, Any] = {"repaired_by": {}}
    small = form.shape[0] * form.shape[1] <= RESTART_MAX_PAIRS

    swaps = small and bool(form.model_rows)  # swaps only mean something when models are shared rows

    def consider(mu_c: FloatArray, lam_c: FloatArray, stop: float | None, polished: bool) -> None:
        nonlocal best_a, best_val
        a, how = make_feasible(form, dual.assignment(mu_c, lam_c), mu_c, lam_c, rng, stop)
        if a is None:
            return
        stats["repaired_by"][how] = stats["repaired_by"].get(how, 0) + 1
        a = improve(form, a, mu_c, lam_c)
        if polished:
            a = polish(form, a, mu_c, lam_c, rng, stop)
        val = form.value_of(a)
        if val > best_val:
            best_a, best_val = a, val

    for tau in TAUS:
        stages += 1
        # the vectors are tiny: BLAS threads only add synchronisation (10x slower on 2 cores)
        # scipy loads lazily: only the capacity case needs it, and it costs ~0.5 s to import
        from scipy.optimize import minimize
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            res = minimize(dual, x0, args=(tau,), jac=True, method="L-BFGS-B",
                           bounds=[(0.0, None)] * dual.dim,
                           options={"maxiter": 300, "maxfun": 400, "ftol": 1e-15, "gtol": 1e-12})
        x0 = np.maximum(res.x, 0.0)
        if dual.best_bound < floor - 1e-9 * max(1.0, abs(floor)):
            infeasible = True
            break
        mu_c, lam_c = dual.unpack(dual.best_x)
        consider(mu_c, lam_c, deadline, polished=False)
        gap = _gap(best_val, dual.best_bound)
        if gap is not None and gap <= rel_gap:
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
    # restarts from perturbed multipliers: until a plan is found (within the search limit),
    # or, on a small problem, to improve the plan (within the improvement limit)
    stages_s = time.perf_counter() - start
    search_end = start + max(MIN_SEARCH_S, SEARCH_EFFORT * stages_s)
    improve_end = time.perf_counter() + max(MIN_IMPROVE_S, IMPROVE_EFFORT * stages_s)
    if deadline is not None:  # fast's own limits still apply: auto needs the rest for an exact run
        search_end = min(search_end, deadline)
        improve_end = min(improve_end, deadline)
    restarts = 0
    if best_a is not None and swaps and not _within(best_val, dual.best_bound, rel_gap):
        mu_c, lam_c = dual.unpack(dual.best_x)
        best_a = polish(form, best_a, mu_c, lam_c, rng, improve_end)
        best_val = form.value_of(best_a)
    while not infeasible:
        if best_a is None:
            if time.perf_counter() >= search_end:
                break
        elif (not small or restarts >= IMPROVE_RESTARTS or time.perf_counter() >= improve_end
              or _within(best_val, dual.best_bound, rel_gap)):
            break
        restarts += 1
        x = dual.best_x * np.exp(rng.normal(0.0, 0.3, dual.dim)) + rng.exponential(0.02, dual.dim) * (restarts % 2)
        mu_c, lam_c = dual.unpack(x)
        consider(mu_c, lam_c, search_end if best_a is None else improve_end, polished=swaps)
    stats["restarts"] = restarts
    if best_a is None and not infeasible:
        stats["stopped"] = "time_limit" if deadline is not None and search_end >= deadline else "search_limit"
        stats["search_s"] = time.perf_counter() - start
    mu, lam = dual.unpack(dual.best_x)
    stats.update(dual_evaluations=dual.evaluations, stages=stages, lagrangian_s=time.perf_counter() - start)
    return CoupledResult(
        assignment=None if infeasible else best_a,
        value=best_val,
        bound=dual.best_bound,
        mu=mu,
        lam=lam,
        infeasible=infeasible,
        stats=stats,
    )


def polish(form: Coupled, a: IntArray, mu: FloatArray, lam: FloatArray, rng: np.random.Generator,
           deadline: float | None, rounds: int = 5) -> IntArray:
    """Alternate swaps of two tasks and single-task moves until neither raises the value."""
    from solvers.overload import improve_by_swaps

    for _ in range(rounds):
        st = RowUsage(form, a)
        if improve_by_swaps(form, st, rng, deadline) == 0:
            break
        a = improve(form, st.a, mu, lam)
    return a


def make_feasible(form: Coupled, a: IntArray, mu: FloatArray, lam: FloatArray, rng: np.random.Generator,
                  deadline: float | None) -> tuple[IntArray | None, str]:
    """A feasible plan near ``a``: the row-by-row repair, else the overload descent.

    Returns (plan or None, which method made it).
    """
    from solvers.overload import reduce_overload

    fixed = repair(form, a, mu, lam)
    if fixed is not None:
        return fixed, "repair"
    st = RowUsage(form, a)
    if reduce_overload(form, st, rng, deadline) and form.is_feasible(st.a):
        return st.a, "overload_descent"
    return None, "none"


def _within(value: float, bound: float, rel_gap: float) -> bool:
    gap = _gap(value, bound)
    return gap is not None and gap <= rel_gap


def _gap(value: float, bound: float) -> float | None:
    if not (np.isfinite(value) and np.isfinite(bound)):
        return None
    return max(bound - value, 0.0) / max(abs(value), abs(bound), 1e-12)


# ---------------------------------------------------------------------- repair and improvement
class RowUsage:
    """An assignment with its row usages, updated move by move (shared by the repair and
    improvement moves here and in ``overload``)."""

    def __init__(self, form: Coupled, a: IntArray):
        self.form = form
        self.a = a.copy()
        self.g, self.m = form.usage(self.a)
        self.tg, self.tm = form.tolerances()
        self.glim = np.array([r.limit for r in form.global_rows])
        self.mlim = np.array([r.limit for r in form.model_rows]).reshape(len(form.model_rows), form.shape[1])

    def move_ok(self, i: int, k: int, relax: int | None = None) -> bool:
        """Whether moving task i to model k keeps every row within its limit.

        ``relax`` is the index of a violated global row that the move is fixing (it may
        stay violated). Rows already violated must not get worse.
        """
        form, j = self.form, int(self.a[i])
        for g, row in enumerate(form.global_rows):
            d = float(row.coef[i, k] - row.coef[i, j])
            if g == relax or d <= 0:
                continue
            if self.g[g] + d > self.glim[g] + self.tg[g]:
                return False
        if k != j:
            for r, mrow in enumerate(form.model_rows):
                load = 1.0 if mrow.coef is None else float(mrow.coef[i, k])
                if load > 0 and self.m[r, k] + load > self.mlim[r, k] + self.tm[r, k]:
                    return False
        return True

    def apply(self, i: int, k: int) -> None:
        form, j = self.form, int(self.a[i])
        for g, row in enumerate(form.global_rows):
            self.g[g] += float(row.coef[i, k] - row.coef[i, j])
        for r, mrow in enumerate(form.model_rows):
            self.m[r, j] -= 1.0 if mrow.coef is None else float(mrow.coef[i, j])
            self.m[r, k] += 1.0 if mrow.coef is None else float(mrow.coef[i, k])
        self.a[i] = k

    def worst_violation(self) -> tuple[str, int, int] | None:
        """('g', g, -1) or ('m', r, j) for the most violated row (relative), or None."""
        worst, which = 0.0, None
        for g in range(len(self.glim)):
            ex = (self.g[g] - self.glim[g] - self.tg[g]) / max(abs(self.glim[g]), 1e-12, abs(self.g[g]))
            if ex > worst:
                worst, which = ex, ("g", g, -1)
        if self.m.size:
            ex = (self.m - self.mlim - self.tm) / np.maximum(np.where(np.isfinite(self.mlim), self.mlim, 1.0), 1e-12)
            ex = np.where(np.isfinite(self.mlim), ex, -np.inf)
            r, j = np.unravel_index(int(np.argmax(ex)), ex.shape)
            if ex[r, j] > worst:
                which = ("m", int(r), int(j))
        return which


def repair(form: Coupled, a: IntArray, mu: FloatArray, lam: FloatArray, max_rounds: int = 200) -> IntArray | None:
    """Move tasks off violated rows, cheapest reduced-value loss per unit freed first.

    Returns a feasible assignment, or None when no single-task move can fix a row.
    """
    st = RowUsage(form, a)
    for _ in range(max_rounds):
        which = st.worst_violation()
        if which is None:
            return st.a
        kind, idx, j = which
        if kind == "g":
            row = form.global_rows[idx]
            cand = np.arange(form.shape[0])
            need = st.g[idx] - st.glim[idx]
        else:
            mrow = form.model_rows[idx]
            cand = np.flatnonzero(st.a == j)
            need = st.m[idx, j] - st.mlim[idx, j]
        if cand.size == 0:
            return None
        cur = st.a[cand].copy()
        # per candidate task: the best alternative model by loss per unit freed
        best_k = np.empty(cand.size, dtype=np.int64)
        best_ratio = np.full(cand.size, np.inf)
        freed = np.zeros(cand.size)
        for s in range(0, cand.size, BLOCK):
            c = cand[s : s + BLOCK]
            cj = st.a[c]
            rv = _reduced_rows(form, c, mu, lam)
            loss = rv[np.arange(c.size), cj][:, None] - rv
            if kind == "g":
                coef = row.coef[c]
                fr = coef[np.arange(c.size), cj][:, None] - coef
            else:
                own = np.ones(c.size) if mrow.coef is None else mrow.coef[c, j]
                fr = np.broadcast_to(own[:, None], rv.shape).copy()
                fr[:, j] = 0.0
            # quick capacity screen on the other per-model rows (exact check when applied)
            ok = form.mask[c] & (fr > 0)
            for r, mr in enumerate(form.model_rows):
                load = 1.0 if mr.coef is None else mr.coef[c]
                ok &= (st.m[r][None, :] + load <= st.mlim[r][None, :] + st.tm[r][None, :]) | (
                    np.arange(form.shape[1])[None, :] == cj[:, None])
            ratio = np.where(ok, loss / np.where(ok, fr, 1.0), np.inf)
            kk = ratio.argmin(axis=1)
            best_k[s : s + c.size] = kk
            best_ratio[s : s + c.size] = ratio[np.arange(c.size), kk]
            freed[s : s + c.size] = fr[np.arange(c.size), kk]
        order = np.argsort(best_ratio, kind="stable")
        fixed = 0.0
        progressed = False
        for o in order:
            if not np.isfinite(best_ratio[o]) or fixed >= need:
                break
            i, k = int(cand[o]), int(best_k[o])
            if st.a[i] != cur[o] or not st.move_ok(i, k, relax=idx if kind == "g" else None):
                continue
            st.apply(i, k)
            fixed += float(freed[o])
            progressed = True
        if not progressed:
            return None
    return st.a if st.worst_violation() is None else None


def improve(form: Coupled, a: IntArray, mu: FloatArray, lam: FloatArray, rounds: int = 3,
            max_moves: int = 50_000) -> IntArray:
    """Single-task moves that raise the value and keep every row feasible.

    Moves are ranked by reduced gain (value minus the priced use of the rows), so that
    a scarce row is not spent on a small gain; each is applied only after an exact check.
    """
    st = RowUsage(form, a)
    n, k = form.shape
    for _ in range(rounds):
        cand_i, cand_k, cand_score = [], [], []
        for s in range(0, n, BLOCK):
            e = min(s + BLOCK, n)
            c = np.arange(s, e)
            cj = st.a[s:e]
            v = np.where(form.mask[s:e], form.value[s:e], -np.inf)
            gain = v - v[np.arange(e - s), cj][:, None]
            ok = gain > 0
            if not ok.any():
                continue
            for g, row in enumerate(form.global_rows):
                d = row.coef[s:e] - row.coef[c, cj][:, None]
                ok &= st.g[g] + d <= st.glim[g] + st.tg[g]
            for r, mr in enumerate(form.model_rows):
                load = 1.0 if mr.coef is None else mr.coef[s:e]
                ok &= st.m[r][None, :] + load <= st.mlim[r][None, :] + st.tm[r][None, :]
            if not ok.any():
                continue
            rv = _reduced_rows(form, c, mu, lam)
            score = rv - rv[np.arange(e - s), cj][:, None]
            score = np.where(ok, score, -np.inf)
            kk = score.argmax(axis=1)
            sc = score[np.arange(e - s), kk]
            keep = np.isfinite(sc)
            cand_i.append(c[keep])
            cand_k.append(kk[keep])
            cand_score.append(sc[keep])
        if not cand_i:
            break
        ci = np.concatenate(cand_i)
        ck = np.concatenate(cand_k)
        order = np.argsort(-np.concatenate(cand_score), kind="stable")[:max_moves]
        moved = 0
        for o in order:
            i, kk = int(ci[o]), int(ck[o])
            if form.value[i, kk] <= form.value[i, st.a[i]] or not st.move_ok(i, kk):
                continue
            st.apply(i, kk)
            moved += 1
        if moved == 0:
            break
    return st.a


def _reduced_rows(form: Coupled, rows: IntArray, mu: FloatArray, lam: FloatArray) -> FloatArray:
    """v - mu A - lam L for the given tasks, -inf on infeasible pairs."""
    r = np.where(form.mask[rows], form.value[rows], -np.inf)
    for g, row in enumerate(form.global_rows):
        if mu[g] != 0:
            r -= mu[g] * row.coef[rows]
    for i, mrow in enumerate(form.model_rows):
        if lam[i].any():
            r -= lam[i] if mrow.coef is None else lam[i] * mrow.coef[rows]
    return r
