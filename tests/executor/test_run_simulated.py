"""Simulated runs end to end: statuses, budget, report files, reproducibility, resume rules."""

from __future__ import annotations

import asyncio
import csv
import json

import pytest

from planner.errors import InputError
from planner.executor import RetryPolicy, RunOptions, run_plan
from planner.executor.budget_guard import BudgetGuard
from planner.executor.redact import MASK, Redactor
from planner.plan import ModelSnapshot

from .helpers import check_run, ledger_facts
from .plans import MODELS, make_plan

SIM = RunOptions(mode="simulate", progress=False)


def test_simulated_run_writes_every_report_file(tmp_path):
    plan = make_plan(30, budget_usd=1.0, n_queued=3)
    result = run_plan(plan, tmp_path, SIM)
    report = check_run(tmp_path, 1.0)
    assert result.simulated and report["simulated"] is True
    assert report["budget_usd"] == 1.0
    assert report["totals"]["n_done"] == 30 and report["totals"]["n_queued"] == 3
    assert report["totals"]["projected_cost_usd"] == pytest.approx(plan.totals.projected_cost_usd, rel=1e-9)
    assert 0 < report["totals"]["actual_cost_usd"] <= 1.0
    task = next(t for t in report["tasks"] if t["status"] == "done")
    for key in ("task_id", "model", "attempts", "projected_input_tokens", "projected_output_tokens",
                "projected_cost_usd", "projected_latency_s", "actual_input_tokens", "actual_output_tokens",
                "actual_cost_usd", "actual_latency_s"):
        assert task[key] is not None, key
    assert all(t["reason"].startswith("plan:") for t in report["tasks"] if t["status"] == "queued")
    rows = list(csv.DictReader((tmp_path / "tasks.csv").open()))
    assert len(rows) == 33
    assert (tmp_path / "cost_by_model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report.md").read_text()
    assert "SIMULATED" in md and "Simulated run" in md
    outputs = [json.loads(line) for line in (tmp_path / "outputs.jsonl").open()]
    assert len(outputs) == 30 and outputs[0]["output"].startswith("[simulated answer")


def test_same_seed_same_run_other_seed_differs(tmp_path):
    plan = make_plan(25, budget_usd=1.0)
    spends = []
    for i, seed in enumerate((7, 7, 8)):
        run_plan(plan, tmp_path / str(i), RunOptions(mode="simulate", progress=False, seed=seed,
                                                     fail_rate=0.3, concurrency=5))
        spends.append(ledger_facts(tmp_path / str(i))["spent_pusd"])
    assert spends[0] == spends[1] != spends[2]


def test_tight_budget_queues_and_is_never_exceeded(tmp_path):
    plan = make_plan(60, budget_usd=0.01)
    run_plan(plan, tmp_path, SIM)
    report = check_run(tmp_path, 0.01)
    queued = [t for t in report["tasks"] if t["status"] == "queued"]
    assert queued and all(t["reason"].startswith("budget:") for t in queued)
    assert all(t["attempts"] == 0 for t in queued)  # queued tasks were never sent


def test_zero_budget_sends_nothing(tmp_path):
    run_plan(make_plan(5, budget_usd=0.0), tmp_path, SIM)
    facts = ledger_facts(tmp_path)
    assert facts["attempt_states"] == {} and set(facts["statuses"].values()) == {"queued"}


def test_budget_option_overrides_plan_and_resume_spends_the_rest(tmp_path):
    plan = make_plan(40, budget_usd=100.0)
    run_plan(plan, tmp_path, RunOptions(mode="simulate", progress=False, budget_usd=0.005))
    first = check_run(tmp_path, 0.005)
    assert first["budget_usd"] == 0.005 and first["totals"]["n_queued"] > 0
    done_before = {t["task_id"] for t in first["tasks"] if t["status"] == "done"}
    run_plan(plan, tmp_path, RunOptions(mode="simulate", progress=False, budget_usd=1.0, resume=True))
    second = check_run(tmp_path, 1.0)
    assert second["totals"]["n_done"] == 40
    assert second["totals"]["actual_cost_usd"] >= first["totals"]["actual_cost_usd"]
    assert done_before <= {t["task_id"] for t in second["tasks"] if t["status"] == "done"}


def test_existing_ledger_needs_resume_and_the_same_plan(tmp_path):
    run_plan(make_plan(3), tmp_path, SIM)
    with pytest.raises(InputError, match="--resume"):
        run_plan(make_plan(3), tmp_path, SIM)
    with pytest.raises(InputError, match="another plan"):
        run_plan(make_plan(4), tmp_path, RunOptions(mode="simulate", progress=False, resume=True))
    # resuming a finished run is a no-op: nothing is run or paid twice
    before = ledger_facts(tmp_path)
    result = run_plan(make_plan(3), tmp_path, RunOptions(mode="simulate", progress=False, resume=True))
    assert result.ran_tasks == 0 and ledger_facts(tmp_path)["spent_pusd"] == before["spent_pusd"]


def test_latency_limit_moves_to_a_faster_model(tmp_path):
    slow = MODELS[1].model_copy(update={"ttft_s": 30.0})  # always beyond the 5 s limit
    fast = MODELS[2]
    plan = make_plan(6, models=[slow, fast], max_latency_s=5.0, budget_usd=1.0)
    run_plan(plan, tmp_path, SIM)
    report = check_run(tmp_path, 1.0)
    moved = [t for t in report["tasks"] if t["planned_model"] == slow.name]
    assert moved and all(t["status"] == "done" and t["model"] == fast.name for t in moved)
    # the timed-out attempt may have been billed: its reservation counts as spent
    assert report["totals"]["wasted_cost_usd"] > 0


def test_latency_limit_without_faster_fallback_fails(tmp_path):
    slow = MODELS[1].model_copy(update={"ttft_s": 30.0})
    plan = make_plan(2, models=[slow], max_latency_s=5.0)
    run_plan(plan, tmp_path, SIM)
    report = check_run(tmp_path, None)
    assert all(t["status"] == "failed" and "latency limit" in t["reason"] for t in report["tasks"])


def test_faults_are_retried_and_every_task_ends(tmp_path):
    plan = make_plan(40, budget_usd=1.0)
    run_plan(plan, tmp_path, RunOptions(mode="simulate", progress=False, fail_rate=0.5,
                                        retry=RetryPolicy(max_retries=1)))
    report = check_run(tmp_path, 1.0)
    assert report["totals"]["attempts"] > 40
    assert report["totals"]["n_done"] + report["totals"]["n_failed"] == 40


def test_rate_limits_pace_calls_in_simulated_time(tmp_path):
    paced = MODELS[2].model_copy(update={"rpm": 60, "concurrency": 2})
    plan = make_plan(10, models=[paced])
    result = run_plan(plan, tmp_path, RunOptions(mode="simulate", progress=False, time_scale=0.01))
    # 60 rpm with a full bucket of 60: no wait for 10 calls; concurrency 2 bounds the rest
    assert result.counts == {"done": 10}
    tight = paced.model_copy(update={"rpm": 2})
    result = run_plan(make_plan(4, models=[tight]), tmp_path / "b",
                      RunOptions(mode="simulate", progress=False, time_scale=0.01))
    # 2 rpm: the 3rd and 4th calls wait ~30 s and ~60 s of simulated time (0.3 s, 0.6 s real)
    assert result.wall_s >= 0.5


def test_budget_guard_waits_for_outstanding_reservations():
    async def scenario() -> list[str]:
        guard = BudgetGuard(100)
        events: list[str] = []
        assert await guard.reserve(80)

        async def second() -> None:
            ok = await guard.reserve(50)
            events.append(f"second:{ok}")

        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        events.append("settle")
        guard.settle(80, 30)  # 70 left: the waiting 50 now fits
        await task
        assert guard.spent_pusd == 30 and guard.reserved_pusd == 50
        third = asyncio.create_task(guard.reserve(21))  # 20 left, but 50 may come back: waits
        await asyncio.sleep(0)
        assert not third.done()
        guard.settle(50, 0)  # released unbilled
        assert await third and guard.remaining_pusd() == 49
        fourth = asyncio.create_task(guard.reserve(80))
        await asyncio.sleep(0)
        guard.settle(21, 21)  # nothing outstanding now and 49 < 80: queued, never sent
        assert await fourth is False
        assert guard.spent_pusd == 51 and guard.reserved_pusd == 0
        assert not await BudgetGuard(0).reserve(1)
        return events

    assert asyncio.run(scenario()) == ["settle", "second:True"]


def test_redactor_masks_env_keys_shapes_and_extras():
    r = Redactor(["literal-secret-1"], env={"MY_API_KEY": "abcdef123456", "HOME": "/root"})
    text = r.clean("key abcdef123456 Bearer tok_abcdefghijk ?api_key=zzz sk-abcdefghijkl literal-secret-1 /root")
    assert "abcdef123456" not in text and "tok_abcdefghijk" not in text and "zzz" not in text
    assert "sk-abcdefghijkl" not in text and "literal-secret-1" not in text and "/root" in text
    assert text.count(MASK) == 5


def test_snapshot_prices_are_used_for_cost(tmp_path):
    m = ModelSnapshot(name="x/priced", litellm_model="x/priced", provider="x", input_cost_per_token=1e-6,
                      output_cost_per_token=1e-5, price_source="test", ttft_s=0.1, output_tokens_per_s=100)
    run_plan(make_plan(3, models=[m]), tmp_path, SIM)
    report = check_run(tmp_path, None)
    for t in report["tasks"]:
        expected = t["actual_input_tokens"] * 1e-6 + t["actual_output_tokens"] * 1e-5
        assert t["actual_cost_usd"] == pytest.approx(expected, rel=1e-9)
