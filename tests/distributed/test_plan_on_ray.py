"""The sharded ``fast`` planner on a local Ray gives the plan, bound and gap of one process."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import solvers
from planner.distributed.shards import SyntheticSource, TaskFileSource
from planner.errors import InputError
from solvers import Problem

from .compare import assert_same_answer
from .sources import TiesSource

pytestmark = pytest.mark.xdist_group("ray")


def _one_process(source, limit, **extra) -> solvers.Solution:
    """The same instance in one process: the shards' problems stacked, the driver's limit."""
    ps = [source.load(i).problem for i in range(source.n_shards)]
    p0 = ps[0]
    stack = {k: np.concatenate([getattr(p, k) for p in ps]) for k in ("cost", "quality", "feasible", "priority")}
    if p0.latency is not None:
        stack["latency"] = np.concatenate([p.latency for p in ps])
    limits = ({"budget": limit} if p0.budget is not None else
              {"min_avg_quality": limit} if p0.min_avg_quality is not None else {})
    return solvers.solve(Problem(**stack, **limits, allow_queue=p0.allow_queue, goal=p0.goal, **extra),
                         backend="fast")


@pytest.mark.parametrize("source", [
    SyntheticSource(20_000, 12, shard_tasks=4_500, seed=5, case="budget"),
    SyntheticSource(12_000, 9, shard_tasks=5_000, seed=2, case="avg-quality"),
    TiesSource(),
    dataclasses.replace(TiesSource(), budget=1e9),  # the budget does not bind
], ids=["budget", "avg-quality", "ties-and-queue", "slack"])
def test_same_plan_bound_and_gap_as_one_process(local_ray, source, tmp_path):
    from planner.distributed.plan_driver import solve_sharded

    res, parts = solve_sharded(source, 2, tmp_path, keep_assignment=True)
    ref = _one_process(source, res.limit)
    plan = assert_same_answer(res, parts, ref)
    # the plan on disk, shard by shard
    written = pd.concat([pd.read_parquet(tmp_path / f"part-{i:05d}.parquet") for i in range(source.n_shards)])
    assert len(written) == plan.size
    assert written["model"].isna().sum() == res.n_queued
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == res.status and summary["bound"] == res.bound


@pytest.mark.parametrize("deadline_s", [None, 600.0], ids=["budget", "budget-deadline"])
def test_a_parquet_task_file_is_read_and_formulated_on_the_workers(local_ray, tmp_path, deadline_s):
    """Row groups of a task file, formulated per shard, against `routeplan solve --solver fast`
    (a deadline caps each model's capacity: fast's Lagrangian path)."""
    from planner.catalog import load_catalog
    from planner.distributed.plan_driver import solve_sharded
    from planner.plan import Limits
    from planner.solve import make_plan
    from tests.conftest import ROOT

    tasks = pd.read_json(ROOT / "examples" / "tasks" / "batch_10k.jsonl", lines=True).head(3000)
    path = tmp_path / "tasks.parquet"
    tasks.to_parquet(path, row_group_size=400)
    limits = Limits(budget_usd=4.0, deadline_s=deadline_s)
    source = TaskFileSource(str(path), load_catalog(None), "maximize_quality", limits, rows_per_shard=800)
    assert source.n_shards == 4
    res, _ = solve_sharded(source, 2, tmp_path / "plan", rel_gap=1e-4)  # as routeplan solve
    plan = make_plan(path, None, goal="maximize_quality", limits=limits, solver="fast", rel_gap=1e-4)
    written = pd.concat([pd.read_parquet(tmp_path / "plan" / f"part-{i:05d}.parquet") for i in range(4)])
    chosen = dict(zip(written["task_id"], written["model"], strict=True))
    assert chosen == {a.task_id: a.model for a in plan.assignments} | {q.task_id: None for q in plan.queued}
    assert res.objective == pytest.approx(plan.solver.objective, rel=1e-12)
    assert res.bound == pytest.approx(plan.solver.bound, rel=1e-12)
    assert ("lagrangian" in res.stats["method"]) == (deadline_s is not None)


def test_limits_it_does_not_decompose_are_refused(local_ray, tmp_path):
    from planner.distributed.plan_driver import solve_sharded

    with pytest.raises(InputError, match="does not handle group charges"):
        solve_sharded(_GroupedSource(), 2)


@dataclasses.dataclass(frozen=True)
class _GroupedSource(TiesSource):
    n_tasks: int = 200

    def load(self, i):  # a group's fixed charge couples its tasks: not per task
        from solvers.groups import GroupCharges

        shard = super().load(i)
        n = shard.problem.n_tasks
        charges = GroupCharges(np.arange(n) % 3, np.full((3, 5), 0.5))
        shard.problem = dataclasses.replace(shard.problem, group_charges=charges)
        return shard


def test_solve_workers_cli(local_ray, tmp_path, run_cli):
    from tests.conftest import ROOT

    tasks = pd.read_json(ROOT / "examples" / "tasks" / "batch_10k.jsonl", lines=True).head(600)
    path = tmp_path / "tasks.parquet"
    tasks.to_parquet(path, row_group_size=200)
    code, out, err = run_cli("solve", path, "--workers", 2, "--budget", 1, "--goal", "maximize_quality",
                             "-o", tmp_path / "plan")
    assert code == 0, err
    assert "optimal" in out or "feasible" in out
    # three row groups of 200 make one shard (up to 200,000 rows each): one worker plans nothing
    assert [p.name for p in (tmp_path / "plan").glob("part-*.parquet")] == ["part-00000.parquet"]
    assert len(pd.read_parquet(tmp_path / "plan" / "part-00000.parquet")) == 600
    summary = json.loads((tmp_path / "plan" / "summary.json").read_text())
    assert summary["source"]["tasks_file"]["path"] == str(path.resolve())  # what `run` rebuilds the tasks from
    assert summary["parts"] == [{"shard": 0, "file": "part-00000.parquet", "rows": 600, "row_groups": [0, 1, 2]}]
    # `routeplan run` takes the folder (tests/distributed/test_run_sharded_plan.py), not one part
    code, out, err = run_cli("run", tmp_path / "plan" / "part-00000.parquet", "-o", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "one part of a sharded plan" in err and not (tmp_path / "run").exists()
    # bad input: one line, exit 2, nothing planned
    tasks.head(5).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    code, out, err = run_cli("solve", tmp_path / "t.jsonl", "--workers", 2, "-o", tmp_path / "p2")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Parquet" in err
    bad = tasks.head(50).assign(expected_output_tokens=-1)
    bad.to_parquet(tmp_path / "bad.parquet", row_group_size=25)
    code, out, err = run_cli("solve", tmp_path / "bad.parquet", "--workers", 2, "-o", tmp_path / "p3")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "expected_output_tokens" in err, err
