"""Frontier properties of planner.sweep: monotone, within budget, parametric agrees with exact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planner
import solvers
from planner.errors import InputError
from planner.formulation import formulate, problem_at_deadline
from planner.plan import Limits
from planner.sweeps import _carry_forward, _Point, model_mix

REL = 1e-9  # float tolerance on sums of a few hundred costs


def planned(df):
    return df[df["served_tasks"] > 0]


def min_budget(tasks, catalog) -> float:
    f = formulate(tasks, catalog, goal="maximize_quality")
    return float(np.where(f.feasible, f.cost_usd, np.inf).min(axis=1).sum())


def test_budget_frontier_on_the_demo_batch(demo_tasks, catalog):
    budgets = np.linspace(0.0005, 0.05, 30)
    df = planner.sweep(demo_tasks, catalog, budget=budgets)
    assert df.attrs["method"] == "parametric" and df.attrs["axis"] == "budget"
    assert df["budget_usd"].tolist() == sorted(budgets.tolist())
    ok = planned(df)
    assert len(ok) >= 25  # only budgets below the cheapest plan are infeasible
    assert (ok["projected_cost_usd"] <= ok["budget_usd"] * (1 + REL)).all()
    assert (np.diff(ok["objective"]) >= -1e-12).all()
    assert (np.diff(ok["mean_quality"]) >= -1e-12).all()  # equal priorities: objective = 7 x mean
    assert (ok["gap"] >= 0).all() and (ok["bound"] >= ok["objective"] - 1e-12).all()
    bad = df[df["served_tasks"] == 0]
    assert (bad["status"] == "infeasible").all()
    assert bad["message"].str.contains("least feasible budget").all()
    assert (bad["budget_usd"] < min_budget(demo_tasks, catalog)).all()


def test_parametric_and_exact_agree_within_the_stated_gap(mixed_tasks, catalog):
    lo = min_budget(mixed_tasks, catalog)
    budgets = np.linspace(lo * 1.01, lo * 12, 6)
    par = planner.sweep(mixed_tasks, catalog, budget=budgets)
    # the reference is solved to (near) optimality: HiGHS's default 1e-4 would not do here
    exact = planner.sweep(mixed_tasks, catalog, budget=budgets, solver="highs", parametric=False,
                          rel_gap=1e-9)
    assert par.attrs["method"] == "parametric" and exact.attrs["method"] == "solve"
    assert (exact["status"] == "optimal").all()
    for p, e in zip(par.itertuples(), exact.itertuples(), strict=True):
        scale = max(abs(p.objective), abs(p.bound))
        assert p.objective <= e.objective + 1e-7 * scale  # a heuristic never beats the optimum
        assert p.bound >= e.objective - 1e-7 * scale  # and its bound never lies
        assert e.objective - p.objective <= p.gap * scale + 1e-7 * scale
        assert p.projected_cost_usd <= p.budget_usd * (1 + REL)
        assert e.projected_cost_usd <= e.budget_usd * (1 + REL)
        # both price the budget from an LP relaxation of the same problem
        assert p.budget_shadow_price == pytest.approx(e.budget_shadow_price, rel=1e-6)
    assert (par["gap"] < 1e-2).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0.0, 2.0), min_size=1, max_size=12),
       st.sampled_from(["maximize_quality", "balanced", "minimize_cost"]))
def test_any_budgets_give_a_monotone_frontier_within_budget(mixed_tasks, catalog, factors, goal):
    lo = min_budget(mixed_tasks, catalog)
    budgets = [lo * (0.9 + 4 * x) for x in factors]
    df = planner.sweep(mixed_tasks, catalog, goal=goal, budget=budgets)
    ok = planned(df)
    assert (ok["projected_cost_usd"] <= ok["budget_usd"] * (1 + REL)).all()
    step = np.diff(ok["objective"].to_numpy())
    assert (step >= -1e-9).all() if goal == "maximize_quality" else (step <= 1e-9).all()
    assert (df.loc[df["budget_usd"] < lo * (1 - 1e-9), "status"] == "infeasible").all()
    assert (ok["budget_usd"] >= lo * (1 - 1e-9)).all()


def test_deadline_points_equal_a_fresh_formulation(demo_tasks, catalog):
    """The deadline axis re-derives only the mask and capacities; it must match formulate at T."""
    limits = Limits(allow_queue=True, avg_quality=0.5)
    f = formulate(demo_tasks, catalog, goal="minimize_cost", limits=limits.model_copy(update={"deadline_s": 86400}))
    for t in (3.0, 30.0, 600.0, 7200.0, 86400.0):
        p, _ = problem_at_deadline(f, t)
        ref = formulate(demo_tasks, catalog, goal="minimize_cost",
                        limits=limits.model_copy(update={"deadline_s": t})).problem
        assert p is not None
        np.testing.assert_array_equal(p.feasible_mask, ref.feasible_mask)
        rows, ref_rows = p.capacity_rows(), ref.capacity_rows()
        assert [r.name for r in rows] == [r.name for r in ref_rows]
        for r, q in zip(rows, ref_rows, strict=True):
            np.testing.assert_allclose(r.limit, q.limit, rtol=1e-12)
            np.testing.assert_array_equal(r.load, q.load)
        np.testing.assert_array_equal(p.objective_matrix, ref.objective_matrix)


def test_deadline_sweep_gets_cheaper_as_the_deadline_grows(demo_tasks, catalog):
    df = planner.sweep(demo_tasks, catalog, deadline=np.geomspace(2, 86400, 9), solver="highs")
    assert df.attrs["goal"] == "minimize_cost" and df.attrs["method"] == "solve"
    ok = planned(df)
    assert len(ok) >= 6
    assert (np.diff(ok["projected_cost_usd"]) <= 1e-12).all()
    assert (ok["makespan_s"] <= ok["deadline_s"] * (1 + 1e-9)).all()
    short = df[df["served_tasks"] == 0]
    assert short["message"].str.contains("has no model within").all()
    # batch APIs (24 h windows) only appear once the deadline allows them
    batch_cols = [c for c in df.columns if c.startswith("n_") and c.endswith("@batch")]
    assert df.loc[df["deadline_s"] < 86400, batch_cols].to_numpy().sum() == 0
    assert df.loc[df["deadline_s"] == 86400, batch_cols].to_numpy().sum() > 0


def test_deadline_sweep_with_queue_serves_more_as_time_grows(demo_tasks, catalog):
    df = planner.sweep(demo_tasks, catalog, deadline=[3, 20, 60, 600], limits=Limits(allow_queue=True))
    assert df["queued_tasks"].iloc[0] > 0
    assert (np.diff(df["served_tasks"]) >= 0).all()
    assert df["served_tasks"].iloc[-1] == len(demo_tasks)


def test_quality_weight_sweep(demo_tasks, catalog):
    df = planner.sweep(demo_tasks, catalog, weights=np.linspace(0, 1, 6))
    assert df.attrs["goal"] == "balanced" and df.attrs["axis"] == "weights"
    w = df[["weight_cost", "weight_quality", "weight_speed"]].to_numpy()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_allclose(df["weight_cost"] / np.maximum(df["weight_speed"], 1e-300),
                               np.where(df["weight_speed"] > 0, 2.0, 0.0), atol=1e-12)
    assert (df["status"] == "optimal").all()
    f = formulate(demo_tasks, catalog, goal="maximize_quality")
    best = np.where(f.feasible, f.quality, -np.inf).max(axis=1).mean()
    assert df["mean_quality"].iloc[-1] == pytest.approx(best)  # all quality: the best model per task
    assert df["mean_quality"].iloc[-1] > df["mean_quality"].iloc[0]
    assert df["projected_cost_usd"].iloc[-1] > df["projected_cost_usd"].iloc[0]


def test_weights_as_dicts(demo_tasks, catalog):
    df = planner.sweep(demo_tasks, catalog, weights=[{"cost": 1.0}, {"quality": 3, "speed": 1}])
    assert df["quality_weight"].tolist() == [0.0, 0.75]


def test_model_mix_counts_and_shares(demo_tasks, catalog):
    df = planner.sweep(demo_tasks, catalog, budget=[0.001, 0.01, 0.4])
    counts = model_mix(df)
    assert counts.index.name == "budget_usd"
    assert counts.sum(axis=1).tolist() == df["served_tasks"].tolist()
    shares = model_mix(df, share=True, min_share=0.2)
    np.testing.assert_allclose(shares.sum(axis=1).to_numpy(), [0.0, 1.0, 1.0])
    assert "other" in shares.columns
    tidy = model_mix(df, tidy=True)
    assert set(tidy.columns) == {"budget_usd", "model", "tasks"}
    assert tidy["tasks"].sum() == df["served_tasks"].sum()
    names = set(df.attrs["models"])
    assert set(counts.columns) <= names


def test_carry_forward_keeps_the_better_earlier_plan():
    p = solvers.Problem(quality=np.array([[0.2, 0.9], [0.3, 0.8]]), cost=np.array([[1.0, 2.0], [1.0, 2.0]]),
                        goal="maximize_quality")

    def sol(a, bound):
        a = np.asarray(a)
        return solvers.Solution(a, solvers.Status.FEASIBLE, solvers.Goal.MAXIMIZE_QUALITY, "x",
                                objective=p.objective_value(a), bound=bound)

    pts = [_Point(3.0, dataclasses.replace(p, budget=3.0)), _Point(3.5, dataclasses.replace(p, budget=3.5))]
    out = _carry_forward([(pts[0], sol([1, 0], 1.5)), (pts[1], sol([0, 0], 1.6))])
    kept = out[1][1]
    assert kept.assignment.tolist() == [1, 0] and kept.stats["carried_from"] == 3.0
    assert kept.bound == 1.6 and kept.objective == pytest.approx(1.2)
    same = _carry_forward([(pts[0], sol([0, 0], 1.5)), (pts[1], sol([1, 0], 1.6))])
    assert "carried_from" not in same[1][1].stats


def test_carry_forward_is_lexicographic_in_served_priority():
    p = solvers.Problem(cost=np.array([[1.0, 2.0], [1.0, 2.0]]), goal="minimize_cost", allow_queue=True)
    a_queued = solvers.Solution(np.array([0, -1]), solvers.Status.OPTIMAL, solvers.Goal.MINIMIZE_COST, "x",
                                objective=1.0, bound=1.0)
    a_full = solvers.Solution(np.array([0, 0]), solvers.Status.OPTIMAL, solvers.Goal.MINIMIZE_COST, "x",
                              objective=2.0, bound=2.0)
    out = _carry_forward([(_Point(1, p), a_queued), (_Point(2, p), a_full)])
    assert out[1][1].assignment.tolist() == [0, 0]  # cheaper, but serves less: not kept


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one axis"),
    ({"budget": [1.0], "deadline": [10.0]}, "exactly one axis"),
    ({"budget": []}, "at least one value"),
    ({"budget": 5.0}, "list of values"),
    ({"budget": [-1.0]}, "USD >= 0"),
    ({"budget": [float("nan")]}, "USD >= 0"),
    ({"deadline": [0.0]}, "seconds > 0"),
    ({"weights": [1.5]}, r"in \[0, 1\]"),
    ({"weights": [0.5], "goal": "minimize_cost"}, "goal balanced"),
    ({"weights": [{"cost": -1}]}, "weights"),
    ({"budget": [1.0], "limits": Limits(budget_usd=3)}, "swept axis"),
    ({"deadline": [10.0], "limits": Limits(deadline_s=3)}, "swept axis"),
    ({"deadline": [10.0], "parametric": True}, "parametric sweep: not possible"),
    ({"budget": [1.0], "parametric": True, "solver": "highs"}, "parametric sweep: not possible"),
    ({"budget": [1.0], "parametric": True, "limits": Limits(avg_quality=0.5)}, "parametric sweep: not possible"),
    ({"budget": [1.0], "solver": "nope"}, "--solver"),
    ({"budget": [1.0], "goal": "cheapest"}, "--goal"),
])
def test_bad_sweeps_are_one_line_input_errors(demo_tasks, catalog, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        planner.sweep(demo_tasks, catalog, **kwargs)
    assert "\n" not in str(info.value)


def test_the_function_stays_reachable_after_importing_its_module():
    import planner.sweeps  # noqa: F401

    assert callable(planner.sweep) and planner.sweep is planner.sweeps.sweep
