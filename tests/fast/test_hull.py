"""The vectorised hulls against a per-task reference, and the knapsack LP against HiGHS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from solvers.hull import upper_hulls
from solvers.mckp import Knapsack


def reference_frontier(w: np.ndarray, v: np.ndarray) -> list[tuple[float, float]]:
    """Per-task upper concave frontier by the textbook monotone chain (strict vertices only)."""
    pts = sorted(zip(w.tolist(), v.tolist(), strict=True), key=lambda p: (p[0], -p[1]))
    stair: list[tuple[float, float]] = []
    for p in pts:  # keep only points more valuable than every lighter one
        if not stair or p[1] > stair[-1][1]:
            if stair and p[0] == stair[-1][0]:
                continue
            stair.append(p)
    hull: list[tuple[float, float]] = []
    for p in stair:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (p[0] - x1) <= (p[1] - y1) * (x2 - x1):  # middle not strictly above
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def random_instance(rng: np.random.Generator, n: int, k: int, integer: bool):
    if integer:  # many ties and collinear points
        w = rng.integers(0, 6, (n, k)).astype(float)
        v = rng.integers(0, 6, (n, k)).astype(float)
    else:
        w = rng.random((n, k))
        v = rng.random((n, k)) - 0.3
    mask = rng.random((n, k)) < 0.8
    return w, v, mask


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_hull_matches_reference(seed: int, integer: bool) -> None:
    rng = np.random.default_rng(seed)
    w, v, mask = random_instance(rng, 300, 7, integer)
    h = upper_hulls(w, v, mask)
    for i in range(w.shape[0]):
        cols = np.flatnonzero(mask[i])
        got = [(w[i, j], v[i, j]) for j in h.vertices[i, : h.size[i]]]
        if cols.size == 0:
            assert h.size[i] == 0
            continue
        ref = reference_frontier(w[i, cols], v[i, cols])
        # every strict vertex is found; extra ones may only be collinear points on the frontier
        assert set(ref) <= set(got), (i, ref, got)
        for lam in (0.0, 0.1, 0.5, 1.0, 3.0, 1e3):
            best_all = max(v[i, cols] - lam * w[i, cols])
            best_hull = max(y - lam * x for x, y in got)
            assert best_hull == pytest.approx(best_all, abs=1e-12)
    # increments: positive steps, efficiencies non-increasing within each task
    assert (h.inc_dw > 0).all() and (h.inc_dv > 0).all()
    eff = h.efficiency
    for i in np.unique(h.inc_task):
        e = eff[h.inc_task == i]
        assert (np.diff(e) <= 1e-12).all()


def lp_reference(w, v, mask, capacity) -> float:
    """max v.x s.t. w.x <= capacity, sum_j x[i, j] = 1, 0 <= x <= mask (HiGHS LP)."""
    n, k = w.shape
    a_eq = np.kron(np.eye(n), np.ones((1, k)))
    res = linprog(-v.ravel(), A_ub=w.ravel()[None, :], b_ub=[capacity], A_eq=a_eq, b_eq=np.ones(n),
                  bounds=list(zip(np.zeros(n * k), mask.ravel().astype(float), strict=True)), method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("seed", range(8))
def test_knapsack_lp_equals_highs_lp(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, k = 40, 6
    w, v, mask = random_instance(rng, n, k, integer=seed % 2 == 1)
    mask[:, 0] = True
    ks = Knapsack(w, v, mask)
    lo, hi = ks.base_weight, ks.max_useful_capacity
    for frac in (0.0, 0.3, 0.77, 1.2):
        cap = lo + frac * (hi - lo)
        point = ks.solve(cap)
        ref = lp_reference(w, v, mask, cap)
        assert point.lp_bound == pytest.approx(ref, rel=1e-9, abs=1e-9)
        assert point.value <= point.lp_bound + 1e-9
        rows = np.arange(n)
        assert w[rows, point.assignment].sum() <= cap + 1e-9
        assert mask[rows, point.assignment].all()
    ks.sort()  # the fully sorted path gives the same cuts
    cap = lo + 0.5 * (hi - lo)
    assert ks.solve(cap).lp_bound == pytest.approx(lp_reference(w, v, mask, cap), rel=1e-9, abs=1e-9)


def test_selection_path_on_many_increments() -> None:
    """Above 50,000 increments the cut uses selection passes; it must equal the sorted cut."""
    rng = np.random.default_rng(7)
    w, v, mask = random_instance(rng, 60_000, 8, integer=False)
    mask[:, 0] = True
    ks = Knapsack(w, v, mask)
    assert ks.eff.size > 50_000
    cap = ks.base_weight + 0.4 * (ks.max_useful_capacity - ks.base_weight)
    a = ks.solve(cap)
    ks.sort()
    b = ks.solve(cap)
    assert a.lp_bound == pytest.approx(b.lp_bound, rel=1e-12)
    assert a.multiplier == b.multiplier
