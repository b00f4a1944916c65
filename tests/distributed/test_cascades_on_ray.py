"""Cascade tasks on ``routeplan run --workers 2`` (a small local Ray): the same ledger as one
process, acceptance and quality as projected, the budget under faults in either stage, a
worker killed mid-run, and the whole run killed mid-cascade then resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from planner.executor import RetryPolicy, RunOptions, run_plan
from tests.cascades.plans import (
    FAULT_CASES,
    STRONG,
    VERIFIERS,
    WITNESS,
    cascade_plan,
    check_cascade_run,
)
from tests.executor.helpers import cli_command, live_count, rerun_cli, start_cli

pytestmark = pytest.mark.xdist_group("ray")


def _rows(out: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        return conn.execute(sql).fetchall()


def _ledger(out: Path) -> tuple:
    """What a run's ledger holds per task, per call and per stage (ids and clocks aside)."""
    tasks = _rows(out, "SELECT task_id, status, model, attempts, input_tokens, output_tokens, cost_pusd, output, "
                       "accepted, decision, score, grader, grade_cost_pusd FROM tasks ORDER BY task_id")
    calls = _rows(out, "SELECT task_id, n, model, purpose, state, reserved_pusd, cost_pusd, input_tokens, "
                       "output_tokens, error FROM attempts WHERE purpose <> 'grant' ORDER BY task_id, n, purpose")
    stages = _rows(out, "SELECT * FROM cascade_stages ORDER BY task_id, idx")
    return tasks, calls, stages


def _grants(out: Path) -> list[tuple]:
    return _rows(out, "SELECT task_id, reserved_pusd FROM attempts WHERE purpose='grant' AND state='inflight'")


def test_the_same_ledger_as_one_process(local_ray, tmp_path):
    """Every verifier, single-model tasks among them, calls failing often enough that some
    cascades lose every stage and go on to the plan's fallbacks: unlimited, the simulator's
    draws depend on (seed, task, stage, attempt) only, so two workers must write what one
    process writes, call by call and stage by stage, with the same report section per cascade."""
    plan = cascade_plan(24, tuple(VERIFIERS), p_accept=0.6, fallbacks=(STRONG, WITNESS))
    plan = plan.model_copy(update={"assignments": [  # every fourth task on the cheap model alone
        a.model_copy(update={"cascade": None}) if i % 4 == 3 and a.check is not None else a
        for i, a in enumerate(plan.assignments)]})
    assert sum(a.cascade is None for a in plan.assignments) >= 4
    opts = dict(mode="simulate", progress=False, fail_rate=0.5, seed=5, time_scale=0.0, concurrency=8,
                retry=RetryPolicy(max_retries=0))
    run_plan(plan, tmp_path / "one", RunOptions(**opts))
    run_plan(plan, tmp_path / "ray", RunOptions(**opts, workers=2))
    one, ray = _ledger(tmp_path / "one"), _ledger(tmp_path / "ray")
    assert one == ray
    assert {c[3] for c in ray[1]} == {"answer", "verify", "escalate", "fallback"}
    assert check_cascade_run(tmp_path / "ray", None)["fell_back"]
    assert _grants(tmp_path / "ray") == []
    cascades = [json.loads((tmp_path / d / "report.json").read_text())["cascades"] for d in ("one", "ray")]
    assert len(cascades[1]) == len(VERIFIERS) and cascades[0] == cascades[1]
    assert "## Cascades" in (tmp_path / "ray" / "report.md").read_text()


def test_acceptance_and_quality_as_projected_within_the_budget(local_ray, tmp_path):
    plan = cascade_plan(400, ("agree",), p_accept=0.7, quality_accept=0.95, quality_reject=0.8)
    # 1.25 x the projected cost: the holds of 32 cascades in flight (every stage's worst case)
    # do not all fit once most of it is spent, so workers wait on grants and give money back
    budget = plan.totals.projected_cost_usd * 1.25
    run_plan(plan, tmp_path, RunOptions(mode="simulate", progress=False, seed=11, time_scale=0.0, concurrency=32,
                                        workers=2, budget_usd=budget))
    facts = check_cascade_run(tmp_path, budget)
    assert set(facts["statuses"].values()) == {"done"}
    (c,) = json.loads((tmp_path / "report.json").read_text())["cascades"]
    assert c["tasks"] == c["decided"] == 400
    assert c["actual_accept_rate"] == pytest.approx(0.7, abs=0.07)
    assert c["measured_quality"] == pytest.approx(0.7 * 0.95 + 0.3 * 0.8, abs=0.06)
    assert c["escalation_cost_usd"] > 0 and c["verifier_cost_usd"] > 0
    assert _grants(tmp_path) == []


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(**FAULT_CASES)
def test_spend_within_budget_whatever_fails_in_either_stage(local_ray, n_tasks, kinds, budget_usd, fail_rate,
                                                           max_tokens, max_retries, p_accept, concurrency,
                                                           with_fallbacks, seed):
    """The cascades' property test (tests/cascades/test_run_cascades.py), on 2 Ray workers."""
    plan = cascade_plan(n_tasks, tuple(kinds), p_accept=p_accept, budget_usd=budget_usd, max_tokens=max_tokens,
                        fallbacks=(STRONG, WITNESS) if with_fallbacks else ())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        result = run_plan(plan, out, RunOptions(mode="simulate", progress=False, fail_rate=fail_rate, seed=seed,
                                                concurrency=concurrency, workers=2, time_scale=0.0,
                                                retry=RetryPolicy(max_retries=max_retries)))
        facts = check_cascade_run(out, budget_usd)
        assert sum(result.counts.values()) == n_tasks
        report = json.loads((out / "report.json").read_text())
        assert report["totals"]["actual_cost_pusd"] == facts["spent_pusd"]
        assert _grants(out) == []


def test_a_worker_killed_mid_cascade(local_ray, tmp_path):
    """kill -9 of one worker with cascades between their stages: its calls in flight and what
    it held count as spent, its tasks go back to pending and finish on the other worker from
    the stages the ledger holds (none asked again), spend within the budget."""
    from planner.distributed import run_coordinator

    plan = cascade_plan(160, ("agree", "self_consistency", "judge"), p_accept=0.5)
    budget = plan.totals.projected_worst_case_cost_usd * 0.9
    out = tmp_path / "run"
    killed: list[int] = []
    stored: dict[tuple[str, int], str] = {}

    def kill_once(view: run_coordinator.RunView) -> None:
        if not killed and view.finished >= 30 and 0 in view.pids:
            killed.append(view.pids[0])
            stored.update(_stages(out))
            os.kill(view.pids[0], signal.SIGKILL)

    run_coordinator.observers.append(kill_once)
    try:
        result = run_plan(plan, out, RunOptions(mode="simulate", progress=False, fail_rate=0.1, seed=3,
                                                time_scale=0.002, concurrency=8, workers=2, budget_usd=budget))
    finally:
        run_coordinator.observers.remove(kill_once)
    assert killed
    facts = check_cascade_run(out, budget)  # every stage answered once, every task ended once
    assert sum(result.counts.values()) == 160 and set(facts["statuses"].values()) <= {"done", "queued"}
    after = _stages(out)
    assert stored and all(after[k] == v for k, v in stored.items())
    (lost,) = _rows(out, "SELECT COUNT(*), COALESCE(SUM(cost_pusd), 0) FROM attempts WHERE state='lost'")
    assert lost[0] >= 1 and lost[1] > 0  # the dead worker's grant and calls in flight, counted as spent
    assert _grants(out) == []


def _stages(out: Path) -> dict[tuple[str, int], str]:
    ledger = out / "ledger.sqlite"
    if not ledger.exists():
        return {}
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5) as conn:
        return {(t, i): o for t, i, o in conn.execute("SELECT task_id, idx, output FROM cascade_stages")}


def test_the_whole_run_killed_mid_cascade_then_resumed(tmp_path, no_ray_left_behind):
    """kill -9 of ``routeplan run --workers 2`` with cascades between their stages and their
    calls recorded in flight; --resume on 2 workers: every task ends once, no answered stage
    is asked again, each call in flight and each grant counts as spent, within the budget."""
    budget = 0.5
    plan_path = cascade_plan(60, ("agree", "self_consistency", "judge"), p_accept=0.5,
                             budget_usd=budget).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    cmd = cli_command("run", plan_path, "--out", out, "--simulate", "--time-scale", "0.01", "--concurrency", "6",
                      "--fail-rate", "0.2", "--seed", "3", "--workers", "2")
    mid = ("SELECT COUNT(*) FROM tasks t WHERE t.status <> 'done' AND EXISTS "
           "(SELECT 1 FROM cascade_stages s WHERE s.task_id = t.task_id)")
    calls_inflight = "SELECT COUNT(*) FROM attempts WHERE state='inflight' AND purpose <> 'grant'"
    proc = start_cli(cmd, until=lambda: live_count(ledger, "SELECT COUNT(*) FROM tasks WHERE status='done'") >= 8
                     and live_count(ledger, mid) >= 1 and live_count(ledger, calls_inflight) >= 1,
                     timeout_s=240, what="the run never got mid-cascade")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stored = _stages(out)
    assert stored and live_count(ledger, mid) >= 1
    inflight = live_count(ledger, "SELECT COUNT(*) FROM attempts WHERE state='inflight'")
    assert inflight >= 1

    rerun = rerun_cli([*cmd, "--resume"], timeout_s=240)
    assert rerun.returncode == 0, rerun.stderr
    facts = check_cascade_run(out, budget)  # ended once; each stage answered once; cost = its calls
    assert len(facts["statuses"]) == 60 and set(facts["statuses"].values()) <= {"done", "queued"}
    after = _stages(out)
    assert all(after[k] == v for k, v in stored.items())  # never asked again
    assert facts["states"].get("lost", 0) == inflight  # calls in flight and grants, counted at their reservation
    assert "resumed" in rerun.stdout
