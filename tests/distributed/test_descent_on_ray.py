"""The overload descent sharded on a local Ray: on a tight instance above the size that is
gathered on the driver, where the row-by-row repair fails at every multiplier and only the
descent finds a plan, the sharded planner gives the plan, status, bound and gap of one
process."""

from __future__ import annotations

import numpy as np
import pytest

import solvers
from solvers import Problem
from solvers.lagrangian import RESTART_MAX_PAIRS

from .compare import assert_same_answer
from .sources import TightSource

pytestmark = pytest.mark.xdist_group("ray")


def test_descent_gives_the_plan_of_one_process(local_ray, tmp_path):
    from planner.distributed.plan_driver import solve_sharded

    source = TightSource(lightest=1, slack=1.006)
    assert source.n_tasks * source.n_models > RESTART_MAX_PAIRS  # not gathered: the sharded descent runs
    ps = [source.load(i).problem for i in range(source.n_shards)]
    ref = solvers.solve(Problem(quality=np.concatenate([p.quality for p in ps]),
                                load=np.concatenate([p.load for p in ps]), capacity=ps[0].capacity,
                                goal=ps[0].goal), backend="fast", options=solvers.Options(rel_gap=1e-6))
    assert ref.stats["repaired_by"] == {"overload_descent": 1}, ref.stats  # the repair failed everywhere
    res, parts = solve_sharded(source, 2, tmp_path, keep_assignment=True, rel_gap=1e-6)
    assert "gathered" not in res.stats
    assert res.stats["repaired_by"] == ref.stats["repaired_by"]
    assert_same_answer(res, parts, ref)
