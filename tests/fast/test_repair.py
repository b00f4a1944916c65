"""Tight limits: the overload descent finds plans the row-by-row repair cannot, and when fast
finds none it says so (time_limit_no_plan, naming the exact backends) and auto falls back."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

import solvers
from solvers import Goal, Options, Problem, Status, lagrangian
from solvers.lagrangian import Coupled, GlobalRow, ModelRow, repair_plan
from solvers.lagrangian_parts import LocalParts
from solvers.orlib import read_gap
from solvers.overload import reduce_overload

DATA = Path(os.environ.get("ROUTEPLAN_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared/data"))


def planted(seed: int, n: int = 40, k: int = 5) -> Coupled:
    """A GAP whose capacities equal the loads of a random plan exactly (so it is feasible)."""
    rng = np.random.default_rng(seed)
    load = rng.integers(5, 25, (n, k)).astype(float)
    value = rng.integers(10, 50, (n, k)).astype(float)
    plan = rng.integers(0, k, n)
    cap = np.bincount(plan, weights=load[np.arange(n), plan], minlength=k)
    return Coupled(value, np.ones((n, k), bool), (), (ModelRow("capacity", load, cap),))


def descend(form: Coupled, start: np.ndarray, seed: int) -> tuple[bool, np.ndarray]:
    """The overload descent from ``start`` in one process: (success, the plan it reached)."""
    parts = LocalParts(form)
    parts.start_a = np.asarray(start, np.int64)
    return reduce_overload(parts, np.random.default_rng(seed), None), parts.work


def test_descent_fixes_what_repair_cannot() -> None:
    repaired = descended = 0
    for seed in range(40):
        form = planted(seed)
        start = form.value.argmax(axis=1)
        repaired += repair_plan(form, start, np.zeros(0), np.zeros((1, form.shape[1]))) is not None
        ok, plan = descend(form, start, 0)
        if ok:
            assert form.is_feasible(plan)
            descended += 1
    assert descended == 40
    assert repaired < 40  # the instances are tight enough to defeat the row-by-row repair


def test_descent_with_global_rows_stays_sound() -> None:
    """Several resource rows (MMKP-like): a reported success is always a feasible plan."""
    for seed in range(10):
        rng = np.random.default_rng(seed)
        n, k, m = 30, 6, 8
        value = rng.integers(1, 100, (n, k)).astype(float)
        weights = rng.integers(1, 50, (m, n, k)).astype(float)
        plan = rng.integers(0, k, n)
        limits = weights[:, np.arange(n), plan].sum(axis=1) * 1.02
        form = Coupled(value, np.ones((n, k), bool), tuple(GlobalRow(f"r{i}", weights[i], float(limits[i]))
                                                           for i in range(m)), ())
        ok, plan = descend(form, value.argmax(axis=1), seed)
        if ok:
            assert form.is_feasible(plan)


def _known(name: str) -> float:
    with open(DATA / "gap" / "known_optima.csv") as f:
        return next(float(r["max_best"]) for r in csv.DictReader(f) if r["instance"] == name)


@pytest.mark.skipif(not (DATA / "gap" / "gapb.txt").exists(), reason="OR-Library GAP data not present")
@pytest.mark.parametrize(("file", "name"), [("gapb", "b05100"), ("gapc", "c05100")])
def test_tight_gap_maximisation_gets_a_plan(file: str, name: str) -> None:
    p = read_gap(DATA / "gap" / f"{file}.txt")[0]
    assert p.cost is not None
    scale = float(p.cost.max())
    q = Problem(quality=p.cost / scale, load=p.load, capacity=p.capacity, goal=Goal.MAXIMIZE_QUALITY)
    sol = solvers.solve(q, backend="fast", options=Options(time_limit_s=5))
    best = _known(name) / scale
    assert sol.status.has_plan, sol.message
    assert not q.violations(sol.assignment)
    assert sol.objective <= best + 1e-9  # never beats the optimum ...
    assert sol.bound >= best - 1e-9  # ... and the bound never lies
    assert (best - sol.objective) / best < 0.05


def test_no_plan_is_reported_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """When every search fails: time_limit_no_plan with the bound, and auto goes exact."""
    monkeypatch.setattr(lagrangian, "make_feasible", lambda *a, **k: (None, "none"))
    monkeypatch.setattr(lagrangian, "MIN_SEARCH_S", 0.05)
    rng = np.random.default_rng(3)
    n, k = 12, 3
    load = rng.uniform(1, 3, (n, k))
    quality = rng.uniform(0.3, 0.6, (n, k))
    quality[:, 0] += 0.4  # every task prefers model 0, which holds only a third of them
    capacity = np.array([load[:, 0].sum() / 3, load.sum(), load.sum()])
    p = Problem(cost=rng.uniform(1, 2, (n, k)), quality=quality, load=load, capacity=capacity,
                goal=Goal.MAXIMIZE_QUALITY)
    sol = solvers.solve(p, backend="fast")
    assert sol.status is Status.TIME_LIMIT_NO_PLAN
    assert "highs" in sol.message and "search limit" in sol.message
    assert sol.bound is not None and np.isfinite(sol.bound)
    if "highs" in solvers.available(exact_only=True):
        auto = solvers.solve(p, backend="auto", options=Options(time_limit_s=20))
        assert auto.backend.startswith("auto->") and auto.backend != "auto->fast"
        assert "fast found no plan" in auto.stats["auto"]["reason"]
        if auto.status.has_plan:
            assert auto.objective <= sol.bound + 1e-9
