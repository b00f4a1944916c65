"""Prefix groups in batch jobs (issue 13): a job's request lines follow the plan's send order
with each group contiguous, a group is not split over jobs when it fits in one, and the
simulated batch API caches within a job, so a simulated run's report sets projected against
actual cache savings for a batch + cache plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.catalog import load_catalog
from planner.executor import RunOptions, run_plan
from planner.executor.batch_packing import pack_units, units_in_send_order
from planner.plan import Limits, Plan
from planner.solve import make_plan
from planner.tasks import tasks_from_records

POLICY = "Answer by the policy below. " + "Rule. " * 900
GUIDE = "Translate by the style guide below. " + "Style. " * 900
BATCH = "gpt-5-nano@batch"


def grouped_tasks(n: int = 15):
    """Two prefix groups and free tasks, interleaved (so plan order is not group order)."""
    recs = []
    for i in range(n):
        kind = i % 3
        if kind == 2:
            recs.append({"id": f"f{i:02d}", "type": "qa", "prompt": f"Question {i}", "expected_output_tokens": 20})
            continue
        prefix, group = (POLICY, "policy") if kind == 0 else (GUIDE, "guide")
        recs.append({"id": f"{group[0]}{i:02d}", "type": "qa", "expected_output_tokens": 20, "prefix_group": group,
                     "priority": 1 + (i * 7) % 4,
                     "messages": [{"role": "system", "content": prefix}, {"role": "user", "content": f"Item {i}"}]})
    return tasks_from_records(recs)


def batch_cache_plan(n: int = 15) -> Plan:
    """Planned on gpt-5-nano alone with a deadline that admits its batch offering, which has
    batch cache prices in litellm's price map (a cached read at 5 % of the realtime input)."""
    plan = make_plan(grouped_tasks(n), load_catalog(), solver="highs", models=["gpt-5-nano"],
                     limits=Limits(deadline_s=2 * 86400.0))
    assert {a.model for a in plan.assignments} == {BATCH}, "the deadline admits batch: every task on it"
    assert {(g.group, g.model, g.cached) for g in plan.prefix_groups} == {("policy", BATCH, True),
                                                                          ("guide", BATCH, True)}
    return plan


def request_files(out: Path) -> list[list[str]]:
    """The custom ids of each simulated job's request file, in file order, in job order."""
    state = json.loads((out / "sim-batches" / "state.json").read_text())
    jobs = sorted(state["batches"].values(), key=lambda b: b["id"])
    return [[json.loads(line)["custom_id"] for line in
             (out / "sim-batches" / "files" / b["input_file_id"]).read_text().splitlines() if line] for b in jobs]


def test_a_job_sends_each_group_together_in_the_plan_s_send_order(tmp_path):
    plan = batch_cache_plan()
    order = {g.group: g.send_order for g in plan.prefix_groups}
    out = tmp_path / "one"
    run_plan(plan, out, RunOptions(mode="simulate", progress=False))
    (ids,) = request_files(out)
    assert sorted(ids) == sorted(a.task_id for a in plan.assignments)
    for group, send in order.items():
        at = [k for k, t in enumerate(ids) if t in send]
        assert at == list(range(at[0], at[0] + len(send))), f"{group} is not contiguous: {ids}"
        assert [ids[k] for k in at] == send, f"{group} is not in its send order"
    assert order["policy"] != sorted(order["policy"])  # the send order differs from plan order here


def test_a_group_is_not_split_over_jobs_when_it_fits_in_one(tmp_path):
    plan = batch_cache_plan()  # 5 'policy', 5 'guide', 5 free tasks
    out = tmp_path / "split"
    run_plan(plan, out, RunOptions(mode="simulate", progress=False, batch_max_requests=7))
    jobs = request_files(out)
    # 15 requests, 7 a job, groups whole: a group each in the first two, free tasks fill them up
    assert [len(j) for j in jobs] == [7, 7, 1]
    for g in plan.prefix_groups:
        holding = [k for k, j in enumerate(jobs) if set(g.send_order) & set(j)]
        assert len(holding) == 1, f"{g.group} split over jobs {holding}"
        job = jobs[holding[0]]
        assert [t for t in job if t in g.send_order] == g.send_order


def test_simulated_batch_jobs_read_the_cache_and_the_report_shows_the_savings(tmp_path):
    plan = batch_cache_plan(30)
    out = tmp_path / "cache"
    run_plan(plan, out, RunOptions(mode="simulate", progress=False))
    report = json.loads((out / "report.json").read_text())
    pc = report["prompt_cache"]
    assert pc["simulated"] is True
    projected = sum(g.projected_savings_usd for g in plan.prefix_groups)
    assert projected > 0 and pc["projected_savings_usd"] == pytest.approx(projected)
    assert pc["actual_savings_usd"] == pytest.approx(projected, rel=0.15)  # a seeded 3 % miss now and then
    rows = {r["group"]: r for r in pc["by_group"]}
    for g in plan.prefix_groups:
        row = rows[g.group]
        assert row["model"] == BATCH and row["calls"] == g.n_tasks
        # the first of the group in the job writes, the rest read (bar a seeded miss)
        assert row["actual_cached_tokens"] >= (g.n_tasks - 1 - 2) * g.prefix_tokens
        assert row["actual_cached_tokens"] <= (g.n_tasks - 1) * g.prefix_tokens
    # the job's actual cost is at the batch cache prices: below what the prompts cost uncached
    (job,) = report["batch_jobs"]
    assert job["actual_cost_usd"] == pytest.approx(report["spent_usd"])
    assert job["actual_cost_usd"] < sum(g.projected_cost_without_cache_usd for g in plan.prefix_groups) + sum(
        a.projected_cost_usd for a in plan.assignments if a.prefix_group is None)
    assert "Prompt cache: projected vs actual (simulated)" in (out / "report.md").read_text()


def test_units_keep_a_group_together_in_its_send_order_at_its_first_member():
    items = ["a1", "x", "b1", "a2", "y", "b2", "a3"]
    positions = {"a3": (0, 0), "a1": (0, 1), "a2": (0, 2), "b2": (1, 0), "b1": (1, 1)}
    units = units_in_send_order(items, lambda t: t, positions)
    assert units == [["a3", "a1", "a2"], ["x"], ["b2", "b1"], ["y"]]


def test_packing_fills_first_fit_and_cuts_only_a_unit_larger_than_a_job():
    units = [["a"] * 4, ["x"], ["b"] * 3, ["y"], ["c"] * 9, ["z"]]
    jobs = pack_units(units, lambda _: 1, max_items=5, max_weight=10**9)
    assert all(len(j) <= 5 for j in jobs)
    # a (4) + x; b (3) + y + z; c cut in 5 + 4
    assert jobs == [["a"] * 4 + ["x"], ["b"] * 3 + ["y", "z"], ["c"] * 5, ["c"] * 4]
    by_bytes = pack_units([["a", "a"], ["b"]], lambda _: 60, max_items=100, max_weight=100)
    assert by_bytes == [["a"], ["a"], ["b"]]  # two lines of 60 bytes cannot share a 100-byte job
    assert pack_units([], lambda _: 1, 5, 10) == []
