"""``routeplan run --workers N`` on a local Ray: today's guarantees, a worker killed mid-run,
and the same outcome per task as one process."""

from __future__ import annotations

import os
import signal
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.executor import RetryPolicy, RunOptions, run_plan
from tests.executor.helpers import check_run
from tests.executor.plans import make_plan

pytestmark = pytest.mark.xdist_group("ray")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(n_tasks=st.integers(1, 40),
       budget_usd=st.one_of(st.none(), st.floats(0.0, 0.02, allow_nan=False)),
       fail_rate=st.floats(0.0, 0.8),
       max_tokens=st.integers(1, 600),
       expected_fraction=st.floats(0.05, 2.0),
       max_retries=st.integers(0, 3),
       concurrency=st.integers(1, 8),
       seed=st.integers(0, 2**16))
def test_spend_within_budget_and_every_task_ends(local_ray, n_tasks, budget_usd, fail_rate, max_tokens,
                                                 expected_fraction, max_retries, concurrency, seed):
    """The executor's property test (tests/executor/test_properties.py), on 2 Ray workers."""
    plan = make_plan(n_tasks, budget_usd=budget_usd, max_tokens=max_tokens,
                     expected_tokens=max(1, round(max_tokens * expected_fraction)))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        result = run_plan(plan, out, RunOptions(mode="simulate", progress=False, fail_rate=fail_rate, seed=seed,
                                                concurrency=concurrency, workers=2,
                                                retry=RetryPolicy(max_retries=max_retries)))
        report = check_run(out, budget_usd)
        assert sum(result.counts.values()) == n_tasks
        assert _grants(out) == {}  # every grant was settled or given back
        for t in report["tasks"]:
            if t["status"] == "done":
                assert 1 <= t["actual_output_tokens"] <= max_tokens


def test_same_outcome_per_task_as_one_process(local_ray, tmp_path):
    """Unlimited budget: the simulator's draws depend on (seed, task, attempt, model) only, so two
    workers must give every task the same status, model, attempts, tokens and cost."""
    plan = make_plan(120)
    opts = dict(mode="simulate", progress=False, fail_rate=0.3, seed=7)
    run_plan(plan, tmp_path / "one", RunOptions(**opts))
    run_plan(plan, tmp_path / "ray", RunOptions(**opts, workers=2))
    assert _outcomes(tmp_path / "one") == _outcomes(tmp_path / "ray")


def test_worker_killed_mid_run(local_ray, tmp_path):
    """kill -9 of one worker: what it held counts as spent, its tasks go back to pending and
    are run by the other, every task ends once, spend never above the budget."""
    from planner.distributed import run_coordinator

    plan = make_plan(400, budget_usd=0.25)
    killed: list[int] = []

    def kill_once(view: run_coordinator.RunView) -> None:
        if not killed and view.finished >= 60 and 0 in view.pids:
            killed.append(view.pids[0])
            os.kill(view.pids[0], signal.SIGKILL)

    run_coordinator.observers.append(kill_once)
    try:
        result = run_plan(plan, tmp_path, RunOptions(mode="simulate", progress=False, fail_rate=0.1, seed=3,
                                                     time_scale=0.002, concurrency=8, workers=2))
    finally:
        run_coordinator.observers.remove(kill_once)
    assert killed
    check_run(tmp_path, 0.25)
    assert sum(result.counts.values()) == 400
    assert result.counts.get("pending", 0) == 0 and result.counts.get("running", 0) == 0
    with sqlite3.connect(tmp_path / "ledger.sqlite") as conn:
        lost = conn.execute("SELECT COUNT(*), COALESCE(SUM(cost_pusd), 0) FROM attempts "
                            "WHERE purpose='grant' AND state='lost'").fetchone()
    assert lost[0] == 1 and lost[1] > 0  # the dead worker's money, counted as spent
    assert _grants(tmp_path) == {}


def _grants(out: Path) -> dict[str, int]:
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        return dict(conn.execute("SELECT task_id, reserved_pusd FROM attempts "
                                 "WHERE purpose='grant' AND state='inflight'"))


def _outcomes(out: Path) -> dict[str, tuple]:
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT task_id, status, model, attempts, input_tokens, output_tokens, cost_pusd FROM tasks")}


def test_a_plan_with_batch_offerings_is_refused_before_anything_runs(tmp_path):
    """The workers do not drive batch jobs: such a plan is one clear line, not tasks run
    realtime at realtime prices (or failed) behind the user's back."""
    pytest.importorskip("ray")
    from planner.errors import InputError
    from tests.executor.plans import make_batch_plan

    out = tmp_path / "out"
    with pytest.raises(InputError, match="--workers does not run batch jobs.*gpt-4o-mini@batch"):
        run_plan(make_batch_plan(5, deadline_s=86400.0), out, RunOptions(mode="simulate", workers=2, progress=False))
    assert not (out / "ledger.sqlite").exists()
