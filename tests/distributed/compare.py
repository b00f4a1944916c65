"""The check both sharded-planner equality tests make: the same answer as one process."""

from __future__ import annotations

import numpy as np
import pytest


def assert_same_answer(res, parts: dict[int, np.ndarray], ref) -> np.ndarray:
    """``solve_sharded``'s result and plan parts against a one-process ``fast`` Solution:
    status, plan, objective, bound, gap, shadow price, queued tasks. Returns the plan."""
    plan = np.concatenate([parts[i] for i in sorted(parts)])
    assert res.status == ref.status.value, res.message
    assert np.array_equal(plan, ref.assignment)
    assert res.objective == pytest.approx(ref.objective, rel=1e-12)
    assert res.bound == pytest.approx(ref.bound, rel=1e-12)
    assert res.gap == pytest.approx(ref.gap, rel=1e-6, abs=1e-15)
    if ref.budget_shadow_price is None:
        assert res.budget_shadow_price is None
    else:
        assert res.budget_shadow_price == pytest.approx(ref.budget_shadow_price, rel=1e-12)
    assert res.n_queued == int((ref.assignment < 0).sum())
    return plan
