"""Property tests: whatever the faults, output lengths and limits, spend never exceeds the
budget and every task ends done, failed or queued, exactly once."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.executor import RetryPolicy, RunOptions, run_plan

from .helpers import check_run
from .plans import make_plan


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_tasks=st.integers(1, 25),
       budget_usd=st.one_of(st.none(), st.floats(0.0, 0.05, allow_nan=False)),
       fail_rate=st.floats(0.0, 0.8),
       max_tokens=st.integers(1, 600),
       expected_fraction=st.floats(0.05, 2.0),
       max_retries=st.integers(0, 3),
       max_latency_s=st.one_of(st.none(), st.floats(0.5, 10.0)),
       concurrency=st.integers(1, 8),
       seed=st.integers(0, 2**16))
def test_spend_within_budget_and_every_task_ends(n_tasks, budget_usd, fail_rate, max_tokens,
                                                 expected_fraction, max_retries, max_latency_s,
                                                 concurrency, seed):
    # expected output up to twice max_tokens: the simulator must cap at max_tokens
    plan = make_plan(n_tasks, budget_usd=budget_usd, max_tokens=max_tokens,
                     expected_tokens=max(1, round(max_tokens * expected_fraction)), max_latency_s=max_latency_s)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        result = run_plan(plan, out, RunOptions(mode="simulate", progress=False, fail_rate=fail_rate, seed=seed,
                                                concurrency=concurrency,
                                                retry=RetryPolicy(max_retries=max_retries)))
        report = check_run(out, budget_usd)
        assert sum(result.counts.values()) == n_tasks
        for t in report["tasks"]:
            if t["status"] == "done":
                assert 1 <= t["actual_output_tokens"] <= max_tokens
