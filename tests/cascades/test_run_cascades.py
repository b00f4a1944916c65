"""The executor runs cascades: stages, the verifier's calls, the decision, the escalation."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.checks.graders import grade
from planner.executor import RetryPolicy, RunOptions, run_plan
from tests.cascades.plans import FAULT_CASES, VERIFIERS, cascade_plan, check_cascade_run


def _run(plan, out: Path, **kw):
    return run_plan(plan, out, RunOptions(mode="simulate", progress=False, **kw))


def _rows(out: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_each_verifier_runs_its_calls_and_decides(tmp_path):
    plan = cascade_plan(10)  # two tasks of each verifier
    _run(plan, tmp_path, seed=4)
    facts = check_cascade_run(tmp_path, None)
    assert set(facts["statuses"].values()) == {"done"}
    calls = {}
    for task_id, purpose, n in _rows(tmp_path, "SELECT task_id, purpose, COUNT(*) FROM attempts GROUP BY 1, 2"):
        calls.setdefault(task_id, {})[purpose] = n
    by_task = {a.task_id: a for a in plan.assignments}
    for task_id, accepted, model in _rows(tmp_path, "SELECT task_id, accepted, model FROM tasks"):
        a = by_task[task_id]
        kind = a.cascade.verifier["verifier"]
        assert accepted in (0, 1)
        want_verify = {"agree": 1, "self_consistency": 2, "judge": 1}.get(kind, 0)
        assert calls[task_id].get("verify", 0) == want_verify, (task_id, kind, calls[task_id])
        assert calls[task_id].get("escalate", 0) == (0 if accepted else 1)
        assert model == (a.cascade.first if accepted else a.cascade.second)
        if kind in ("json_schema", "python_tests"):  # the verifier is the task's own check
            first = _rows(tmp_path, f"SELECT output FROM cascade_stages WHERE task_id='{task_id}' AND idx=0")[0][0]
            assert bool(accepted) == (grade(a.check, first).score >= 1.0)


def test_acceptance_and_quality_match_the_projection(tmp_path):
    plan = cascade_plan(400, ("agree",), p_accept=0.7, quality_accept=0.95, quality_reject=0.8)
    _run(plan, tmp_path, seed=11, concurrency=32)
    report = json.loads((tmp_path / "report.json").read_text())
    (c,) = report["cascades"]
    assert c["tasks"] == c["decided"] == 400
    assert c["projected_accept_rate"] == pytest.approx(0.7)
    assert c["actual_accept_rate"] == pytest.approx(0.7, abs=0.07)
    assert c["projected_quality"] == pytest.approx(0.7 * 0.95 + 0.3 * 0.8)
    assert c["measured_quality"] == pytest.approx(c["projected_quality"], abs=0.06)
    assert c["escalation_cost_usd"] > 0 and c["verifier_cost_usd"] > 0
    assert c["cost_usd"] == pytest.approx(c["answer_cost_usd"] + c["verifier_cost_usd"] + c["escalation_cost_usd"])
    md = (tmp_path / "report.md").read_text()
    assert "## Cascades" in md and "llama-3.1-8b-instant -> claude-3-5-sonnet (agree)" in md
    assert report["totals"]["fallbacks_used"] == 0  # escalating is the plan, not a fallback


def test_budget_too_small_for_the_worst_case_queues_before_stage_one(tmp_path):
    plan = cascade_plan(3, ("agree",))
    worst = plan.assignments[0].worst_case_cost_usd
    _run(plan, tmp_path, budget_usd=worst * 0.999)
    facts = check_cascade_run(tmp_path, worst * 0.999)
    assert set(facts["statuses"].values()) == {"queued"} and facts["spent_pusd"] == 0
    (reason,) = _rows(tmp_path, "SELECT DISTINCT reason FROM tasks")[0]
    assert "cascade's worst case" in reason


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FAULT_CASES, judged=st.booleans())
def test_spend_within_budget_whatever_fails_in_either_stage(n_tasks, kinds, budget_usd, fail_rate, max_tokens,
                                                           max_retries, p_accept, concurrency, judged,
                                                           with_fallbacks, seed):
    from tests.cascades.plans import STRONG, WITNESS

    # fallbacks: the cascade's own second model (skipped: it was just tried) and the witness model,
    # which a cascade whose stages all failed goes on to
    plan = cascade_plan(n_tasks, tuple(kinds), p_accept=p_accept, budget_usd=budget_usd, max_tokens=max_tokens,
                        fallbacks=(STRONG, WITNESS) if with_fallbacks else ())
    if judged:  # a judge grades every kept answer: grading calls compete for the same budget
        from planner.checks.schema import parse_check

        judge = parse_check({"kind": "judge", "model": WITNESS.name, "rubric": "Right?", "max_tokens": 200})
        own = ("json_schema", "python_tests")  # these verifiers read the task's own check: kept
        plan = plan.model_copy(update={"assignments": [
            a if a.cascade is not None and a.cascade.verifier["verifier"] in own else a.model_copy(update={"check": judge})
            for a in plan.assignments]})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        result = run_plan(plan, out, RunOptions(mode="simulate", progress=False, fail_rate=fail_rate, seed=seed,
                                                concurrency=concurrency, retry=RetryPolicy(max_retries=max_retries)))
        facts = check_cascade_run(out, budget_usd)
        assert sum(result.counts.values()) == n_tasks
        assert with_fallbacks or not facts["fell_back"]
        for task_id, model in _rows(out, "SELECT task_id, model FROM tasks WHERE status='done'"):
            assert (model == WITNESS.name) == (task_id in facts["fell_back"])  # only a fallback answers on it
        report = json.loads((out / "report.json").read_text())
        assert report["totals"]["actual_cost_pusd"] == facts["spent_pusd"]


def test_verifiers_declared_in_the_plan_helper_cover_every_kind():
    from planner.verifiers import KINDS

    assert set(VERIFIERS) == set(KINDS)


def test_outcome_history_leaves_cascade_tasks_out(tmp_path):
    from planner.checks.outcomes import run_outcomes

    plan = cascade_plan(4, ("agree",))
    single = plan.assignments[0].model_copy(update={"cascade": None})  # the same task on the cheap model alone
    plan = plan.model_copy(update={"assignments": [single, *plan.assignments[1:]]})
    _run(plan, tmp_path, seed=2)
    rows = run_outcomes(tmp_path)
    # the verifier chose the cascades' kept answers: their scores would bias the models' quality
    assert list(rows["task_id"]) == [single.task_id]
    assert rows["cost_usd"].iloc[0] > 0


def test_a_judge_grading_the_kept_answer_does_not_wait_on_the_cascades_own_hold(tmp_path):
    """Budget = the cascade's worst case: once accepted, the escalation's share is released
    before the judge that grades the answer reserves its call (else it would wait forever on
    money only this task holds)."""
    import asyncio

    from planner.checks.schema import parse_check
    from planner.executor import arun_plan
    from tests.cascades.plans import WITNESS

    plan = cascade_plan(1, ("agree",), p_accept=1.0)
    judge = parse_check({"kind": "judge", "model": WITNESS.name, "rubric": "Is the letter right?", "max_tokens": 300})
    a = plan.assignments[0].model_copy(update={"check": judge})
    budget = a.worst_case_cost_usd * 1.0001
    # the judge's worst case does not fit beside the unused escalation share, only without it
    assert a.cascade is not None
    assert 300 * WITNESS.output_cost_per_token > budget - a.worst_case_cost_usd + a.cascade.stages[0].worst_case_cost_usd
    plan = plan.model_copy(update={"assignments": [a]})

    async def run() -> None:
        await asyncio.wait_for(arun_plan(plan, tmp_path, RunOptions(mode="simulate", progress=False,
                                                                    budget_usd=budget)), 60)

    asyncio.run(run())
    facts = check_cascade_run(tmp_path, budget)
    assert facts["statuses"] == {a.task_id: "done"}
    (score, grader) = _rows(tmp_path, "SELECT score, grader FROM tasks")[0]
    assert grader == "judge" and score is not None


def test_a_verifier_that_cannot_decide_escalates(tmp_path):
    """A json_schema verifier without a schema on a task whose check is not a schema (an edited
    plan) must not grade against that check's reference answer: the cascade escalates with the
    reason; the run goes on."""
    plan = cascade_plan(2, ("json_schema",))
    from planner.checks.schema import parse_check

    a = plan.assignments[0].model_copy(update={"check": parse_check({"kind": "exact", "answer": "x"})})
    plan = plan.model_copy(update={"assignments": [a, plan.assignments[1]]})
    _run(plan, tmp_path, seed=1)
    facts = check_cascade_run(tmp_path, None)
    assert set(facts["statuses"].values()) == {"done"}
    accepted, decision, model = _rows(tmp_path, f"SELECT accepted, decision, model FROM tasks "
                                                f"WHERE task_id='{a.task_id}'")[0]
    assert accepted == 0 and "no schema" in decision and model == a.cascade.second


def test_retries_under_a_budget_held_by_other_cascades_never_wait_forever(tmp_path):
    """Two cascades whose holds take the whole budget, with stage calls failing (timeouts are
    billed at the worst case): a retry needs money beyond its stage's share, which only the
    other cascade may hold. It takes what fits now or gives up that stage (the cascade
    escalates on its own share); the run ends, within the budget."""
    import asyncio

    from planner.executor import arun_plan

    plan = cascade_plan(2, ("agree",), p_accept=1.0)
    budget = sum(a.worst_case_cost_usd for a in plan.assignments) * 1.0001
    retried = 0
    for seed in range(4):
        out = tmp_path / f"s{seed}"

        async def run(out=out, seed=seed) -> None:
            await asyncio.wait_for(arun_plan(plan, out, RunOptions(
                mode="simulate", progress=False, budget_usd=budget, concurrency=2, fail_rate=0.6, seed=seed,
                retry=RetryPolicy(max_retries=2, base_s=0.01, max_backoff_s=0.02))), 60)

        asyncio.run(run())
        facts = check_cascade_run(out, budget)
        assert set(facts["statuses"].values()) <= {"done", "failed"}
        retried += len(_rows(out, "SELECT 1 FROM tasks WHERE decision LIKE '%budget%' OR reason LIKE '%budget%'"))
    assert retried  # some retry found no money beyond its share, and the run went on
