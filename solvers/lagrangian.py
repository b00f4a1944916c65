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

The per-task work goes through *parts* of the tasks (:mod:`solvers.lagrangian_parts`,
:mod:`solvers.lagrangian_moves`): one part in one process, a part per shard on Ray workers
(``planner.distributed``), the overload descent included. Every sum is exact, so the plan,
bound and gap do not depend on the split. The swaps that polish a small problem's plan need
random access to every task: they run only where one part holds the whole problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers.exact_sum import bound_exponent, exact_sum, to_float
from solvers.lagrangian_moves import RowLimits, improve, repair, worst_violation
from solvers.lagrangian_parts import LocalParts, Parts, floats

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
        """(global row sums (G,), per-model row sums (R, K)) of a full assignment, exact."""
        from solvers.lagrangian_parts import floats, part_usage

        u = part_usage(self, a).values
        return floats(u["g"]).reshape(len(self.global_rows)), floats(u["m"]).reshape(len(self.model_rows), self.shape[1])

    def value_of(self, a: IntArray) -> float:
        return to_float(exact_sum(self.value[np.arange(a.size), a]))

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
        return to_float(exact_sum(np.where(self.mask, self.value, np.inf).min(axis=1)))


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
    """The dual function in scaled variables (multipliers O(1) in per-task value units),
    summed over the parts."""

    def __init__(self, parts: Parts):
        self.parts = parts
        self.n, self.k = parts.n, parts.k
        lim = parts.limits
        self.glim, self.mlim = lim.glim, lim.mlim
        n_g = len(lim.glim)
        self.exps = bound_exponent(parts.bounds())
        sc = parts.scales(self.exps).values
        mean = to_float(sc["spread"]) / self.n if self.n else 0.0
        self.typ = mean if mean > 0 else 1.0
        counts = np.asarray(sc["count"], np.float64)

        def typical(sums: list[int], cols: IntArray) -> FloatArray:
            m = np.array([to_float(sums[c]) for c in cols]) / np.maximum(counts[cols], 1.0)
            return np.where(m > 0, m, 1.0)

        g_mean = [to_float(sum(sc["abs"][g])) / counts.sum() if counts.sum() else 0.0 for g in range(n_g)]
        self.g_scale = np.array([m if m > 0 else 1.0 for m in g_mean])
        self.fin = [np.flatnonzero(np.isfinite(row)) for row in self.mlim]
        self.m_scale = [np.ones(len(f)) if not parts.weighted[r] else typical(sc["abs"][n_g + r], f)
                        for r, f in enumerate(self.fin)]
        self.dim = n_g + sum(len(f) for f in self.fin)
        self.best_bound = np.inf
        self.best_x = np.zeros(self.dim)
        self.evaluations = 0

    def unpack(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Scaled x -> (mu (G,), lam (R, K)) in original units."""
        g = len(self.glim)
        mu = x[:g] * self.typ / self.g_scale if g else np.zeros(0)
        lam = np.zeros((len(self.mlim), self.k))
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

    def __call__(self, x: FloatArray, tau: float) -> tuple[float, FloatArray]:
        """Smoothed dual (scaled) and its gradient; records the true dual bound as well."""
        mu, lam = self.unpack(x)
        t = tau * self.typ
        terms = self.parts.dual(mu, lam, t, self.exps).values
        hard = to_float(terms["hard"])
        smooth = hard + t * to_float(terms["logz"])
        g_sum = floats(terms["g"]).reshape(len(self.glim))
        m_sum = floats(terms["m"]).reshape(len(self.mlim), self.k)
        lin = float(mu @ self.glim) if len(mu) else 0.0
        lin += sum(float(lam[i, f] @ self.mlim[i, f]) for i, f in enumerate(self.fin))
        self.evaluations += 1
        if hard + lin < self.best_bound:
            self.best_bound = hard + lin
            self.best_x = x.copy()
        # d/dmu_g = b_g - sum p A_g, in scaled units
        grads = [(self.glim - g_sum) * self.typ / self.g_scale] if len(g_sum) else []
        for i, (f, sc) in enumerate(zip(self.fin, self.m_scale, strict=True)):
            grads.append((self.mlim[i, f] - m_sum[i, f]) * self.typ / sc)
        grad = np.concatenate(grads) if grads else np.zeros(0)
        scale = self.n * self.typ
        return (smooth + lin) / scale, grad / scale


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
    return solve_parts(LocalParts(form), rel_gap, time_limit_s, mu0, seed)


def solve_parts(parts: Parts, rel_gap: float = 1e-6, time_limit_s: float | None = None,
                mu0: FloatArray | None = None, seed: int = 0) -> CoupledResult:
    """:func:`solve_coupled` over any parts of the tasks; the plan is ``parts.plan()`` (on
    Ray workers it stays there: the result's assignment is then empty)."""
    start = time.perf_counter()
    deadline = start + time_limit_s if time_limit_s else None
    rng = np.random.default_rng(seed)
    dual = _Dual(parts)
    floor = parts.min_value()
    x0 = np.zeros(dual.dim)
    if mu0 is not None and len(mu0):
        x0 = dual.pack(np.asarray(mu0, float), np.zeros((len(dual.mlim), dual.k)))
    found = False
    best_val = -np.inf
    stages = 0
    infeasible = False
    stats: dict[str, Any] = {"repaired_by": {}}
    whole = parts.whole()  # swaps and restarts need every task at hand
    small = whole is not None and parts.n * parts.k <= RESTART_MAX_PAIRS

    swaps = small and bool(len(dual.mlim))  # swaps only mean something when models are shared rows

    def consider(mu_c: FloatArray, lam_c: FloatArray, stop: float | None, polished: bool) -> None:
        nonlocal found, best_val
        parts.start(mu_c, lam_c)
        ok, how = make_feasible(parts, mu_c, lam_c, rng, stop)
        if not ok:
            return
        stats["repaired_by"][how] = stats["repaired_by"].get(how, 0) + 1
        improve(parts, mu_c, lam_c)
        if polished:
            polish(parts, mu_c, lam_c, rng, stop)
        val = parts.value()
        if val > best_val:
            parts.keep()
            found, best_val = True, val

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
    if found and swaps and isinstance(parts, LocalParts) and not _within(best_val, dual.best_bound, rel_gap):
        mu_c, lam_c = dual.unpack(dual.best_x)
        parts.work = parts.best.copy()
        polish(parts, mu_c, lam_c, rng, improve_end)
        parts.keep()
        best_val = parts.value()
    while not infeasible:
        if not found:
            if time.perf_counter() >= search_end:
                break
        elif (not small or restarts >= IMPROVE_RESTARTS or time.perf_counter() >= improve_end
              or _within(best_val, dual.best_bound, rel_gap)):
            break
        restarts += 1
        x = dual.best_x * np.exp(rng.normal(0.0, 0.3, dual.dim)) + rng.exponential(0.02, dual.dim) * (restarts % 2)
        mu_c, lam_c = dual.unpack(x)
        consider(mu_c, lam_c, search_end if not found else improve_end, polished=swaps)
    stats["restarts"] = restarts
    if not found and not infeasible:
        stats["stopped"] = "time_limit" if deadline is not None and search_end >= deadline else "search_limit"
        stats["search_s"] = time.perf_counter() - start
    mu, lam = dual.unpack(dual.best_x)
    stats.update(dual_evaluations=dual.evaluations, stages=stages, lagrangian_s=time.perf_counter() - start)
    return CoupledResult(
        assignment=parts.plan() if found and not infeasible else None,
        value=best_val,
        bound=dual.best_bound,
        mu=mu,
        lam=lam,
        infeasible=infeasible,
        stats=stats,
    )


def polish(parts: Parts, mu: FloatArray, lam: FloatArray, rng: np.random.Generator,
           deadline: float | None, rounds: int = 5) -> None:
    """Alternate swaps of two tasks and single-task moves until neither raises the value
    (on the work plan of parts that hold the whole problem; others are left as they are)."""
    from solvers.overload import improve_by_swaps

    form = parts.whole()
    if form is None or not isinstance(parts, LocalParts):
        return
    for _ in range(rounds):
        st = RowUsage(form, parts.work)
        if improve_by_swaps(form, st, rng, deadline) == 0:
            break
        parts.work = st.a
        improve(parts, mu, lam)


def make_feasible(parts: Parts, mu: FloatArray, lam: FloatArray, rng: np.random.Generator,
                  deadline: float | None) -> tuple[bool, str]:
    """Make the parts' work plan (the argmax of :meth:`Parts.start`) feasible: the row-by-row
    repair, else the overload descent from the argmax (:mod:`solvers.overload`).

    Returns (whether the work plan is now feasible, which method made it).
    """
    from solvers.overload import reduce_overload

    if repair(parts, mu, lam):
        return True, "repair"
    if reduce_overload(parts, rng, deadline) and _feasible(parts):
        return True, "overload_descent"
    return False, "none"


def _feasible(parts: Parts) -> bool:
    """Whether the parts' work plan keeps every row within its limit (exact sums)."""
    lim = parts.limits
    u = parts.usage().values
    g = floats(u["g"]).reshape(len(lim.glim))
    m = floats(u["m"]).reshape(len(lim.mlim), parts.k)
    return bool((g <= lim.glim + lim.tg).all() and (m <= lim.mlim + lim.tm).all())


def _within(value: float, bound: float, rel_gap: float) -> bool:
    gap = _gap(value, bound)
    return gap is not None and gap <= rel_gap


def _gap(value: float, bound: float) -> float | None:
    if not (np.isfinite(value) and np.isfinite(bound)):
        return None
    return max(bound - value, 0.0) / max(abs(value), abs(bound), 1e-12)


# ---------------------------------------------------------------------- moves of one task
class RowUsage:
    """An assignment with its row usages, updated move by move (the overload descent's and
    the swaps' state, :mod:`solvers.overload`)."""

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
        return worst_violation(self.g, self.m, RowLimits(self.glim, self.mlim, self.tg, self.tm))


def repair_plan(form: Coupled, a: IntArray, mu: FloatArray, lam: FloatArray) -> IntArray | None:
    """The row-by-row repair of plan ``a`` alone: a feasible plan, or None when no
    single-task move can fix a row."""
    parts = LocalParts(form)
    parts.work = np.array(a, dtype=np.int64)
    return parts.work if repair(parts, mu, lam) else None
