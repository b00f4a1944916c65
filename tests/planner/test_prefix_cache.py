"""Cached prompt prefixes in the formulation (DESIGN constraint 6, issue 13 item 4): prices
and their sources, the prefix found or given, the group charge in the plan's totals, every
backend on the same cached problem, and what the plan shows."""

from __future__ import annotations

import numpy as np
import pytest

import solvers
from planner.catalog import load_catalog
from planner.formulation import formulate
from planner.plan import Limits
from planner.render import prefix_group_table
from planner.solve import make_plan
from planner.tasks import tasks_from_records

POLICY = {"role": "system", "content": "You answer support tickets by the policy below. " + "Rule. " * 900}
MODELS = ["gpt-4.1-mini", "anthropic/claude-haiku-4-5", "gpt-4.1-nano"]


def batch(n_grouped: int = 12, n_free: int = 4, **extra):
    recs = [{"id": f"g{i}", "type": "qa", "expected_output_tokens": 40, "prefix_group": "support",
             "messages": [POLICY, {"role": "user", "content": f"Ticket {i}: where is my order?"}], **extra}
            for i in range(n_grouped)]
    recs += [{"id": f"f{i}", "type": "qa", "prompt": f"Question {i}", "expected_output_tokens": 40}
             for i in range(n_free)]
    return tasks_from_records(recs)


def test_prices_come_from_the_price_map_with_their_source():
    cat = load_catalog()
    mini = cat.get("gpt-4.1-mini")
    assert mini.cache_read_cost_per_token == pytest.approx(1e-7)
    assert mini.cache_write_cost_per_token is None  # OpenAI: the writing call bills as input
    assert "cache_read_input_token_cost" in mini.cache_price_source and "litellm" in mini.cache_price_source
    haiku = cat.get("anthropic/claude-haiku-4-5")
    assert haiku.cache_write_cost_per_token == pytest.approx(1.25e-6)
    hb = cat.get("anthropic/claude-haiku-4-5@batch")
    assert hb.cache_read_cost_per_token == pytest.approx(5e-8) and "_batches" in hb.cache_price_source
    ds = cat.get("deepseek/deepseek-chat")  # the map's write price 0.0 is no write charge, not a free write
    assert ds.cache_write_cost_per_token is None and "writes bill as input" in ds.cache_price_source


def test_catalog_cache_prices_override_with_their_source(tmp_path):
    path = tmp_path / "cat.yaml"
    path.write_text("extends: default\nmodels:\n  - id: gpt-4.1-nano\n    cache_read_input_token_cost: 1.0e-9\n"
                    "    cache_min_tokens: 10\n    cache_ttl_s: 3600\n"
                    "    sources: {cache_price: 'our contract, 2026'}\n")
    nano = load_catalog(path).get("gpt-4.1-nano")
    assert nano.cache_read_cost_per_token == 1e-9 and nano.cache_price_source == "our contract, 2026"
    assert nano.cache_min_tokens == 10 and nano.cache_ttl_s == 3600
    snap = nano.snapshot()
    assert snap.cache_read_cost_per_token == 1e-9 and snap.cache_ttl_s == 3600


def test_prefix_is_the_shared_leading_messages_counted_per_tokenizer():
    f = formulate(batch(), load_catalog(), models=MODELS)
    assert f.prefix is not None
    (group,) = f.prefix.groups
    assert group.name == "support" and group.messages == 1 and group.tasks.size == 12
    assert "shared leading message" in group.source
    # about 1,800 tokens of policy; never more than a member sends
    assert (group.tokens > 1500).all() and (group.tokens <= f.in_tok[group.tasks].min(axis=0)).all()
    j = [o.name for o in f.offerings].index("gpt-4.1-mini")
    saving = group.tokens[j] * (4e-7 - 1e-7)
    grouped = f.prefix.group >= 0
    assert np.allclose(f.prefix.saving_usd[grouped, j], saving)
    assert (f.prefix.saving_usd[~grouped] == 0).all()
    assert f.problem.has_group_charges


def test_given_prefix_tokens_win_and_short_prefixes_are_not_cached():
    f = formulate(batch(prefix_tokens=1500), load_catalog(), models=MODELS)
    assert f.prefix is not None and (f.prefix.groups[0].tokens == 1500).all()
    short = formulate(batch(prefix_tokens=100), load_catalog(), models=MODELS)
    assert short.prefix is None and not short.problem.has_group_charges
    assert any("minimum cacheable length" in n for n in short.notes)


def test_the_plan_prices_one_write_then_reads_and_shows_the_group():
    plan = make_plan(batch(), load_catalog(), goal="minimize_cost", solver="highs", models=MODELS)
    (g,) = [x for x in plan.prefix_groups if x.group == "support"]
    assert g.cached and g.n_tasks == 12 and g.projected_savings_usd > 0
    assert g.projected_cost_without_cache_usd - g.projected_cost_usd == pytest.approx(g.projected_savings_usd)
    by_id = {a.task_id: a for a in plan.assignments}
    first, rest = by_id[g.send_order[0]], [by_id[t] for t in g.send_order[1:]]
    assert first.projected_cache_write_tokens == g.prefix_tokens and first.projected_cached_tokens == 0
    assert all(a.projected_cached_tokens == g.prefix_tokens and a.model == g.model for a in rest)
    assert all(a.prefix_messages == 1 for a in rest)
    assert first.projected_cost_usd > rest[0].projected_cost_usd
    # totals are the tasks' costs, which include the group's charge once
    assert plan.totals.projected_cost_usd == pytest.approx(sum(a.projected_cost_usd for a in plan.assignments))
    assert plan.solver.objective == pytest.approx(plan.totals.projected_cost_usd)
    text = str(prefix_group_table(plan).title)
    assert "Prefix groups" in text


def test_caching_lowers_the_cost_against_the_same_batch_without_groups():
    tasks = batch()
    plain = tasks_from_records([{**t.model_dump(exclude_none=True), "prefix_group": None} for t in tasks])
    cached = make_plan(tasks, load_catalog(), solver="highs", models=MODELS)
    uncached = make_plan(plain, load_catalog(), solver="highs", models=MODELS)
    assert cached.totals.projected_cost_usd < 0.6 * uncached.totals.projected_cost_usd


@pytest.mark.parametrize("goal", ["minimize_cost", "balanced", "maximize_quality"])
def test_every_backend_on_the_cached_problem(goal):
    f = formulate(batch(), load_catalog(), goal=goal, limits=Limits(budget_usd=0.05), models=MODELS)
    sols = {b: solvers.solve(f.problem, backend=b, time_limit_s=60) for b in ("highs", "cpsat", "cbc", "fast")}
    exact = [s.objective for b, s in sols.items() if b != "fast"]
    assert max(exact) - min(exact) <= 1e-5 * max(1.0, abs(exact[0])), sols
    fast = sols["fast"]
    assert f.problem.is_feasible(fast.assignment)
    assert fast.gap is not None
    opt = exact[0]
    assert abs(fast.objective - opt) <= fast.gap * max(abs(fast.objective), abs(fast.bound)) + 1e-9


def test_the_budget_counts_the_cache_write():
    f = formulate(batch(), load_catalog(), models=MODELS)
    sol = solvers.solve(f.problem, backend="highs")
    pairs = float(f.cost_usd[np.arange(len(f.tasks)), sol.assignment].sum())
    total = f.problem.total_cost(sol.assignment)
    assert total > pairs  # the cache write is paid on top of the reads
    tight = formulate(batch(), load_catalog(), limits=Limits(budget_usd=(pairs + total) / 2), models=MODELS)
    sol2 = solvers.solve(tight.problem, backend="highs")
    assert not sol2.status.has_plan or tight.problem.total_cost(sol2.assignment) <= (pairs + total) / 2 + 1e-12


def test_solve_prints_the_groups_and_writes_them_in_plan_json(run_cli, tmp_path):
    import json

    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([t.model_dump(exclude_none=True) for t in batch()]))
    out = tmp_path / "plan.json"
    code, stdout, err = run_cli("solve", path, "--solver", "highs", "--models", ",".join(MODELS), "-o", out)
    assert code == 0, err
    assert "Prefix groups" in stdout and "support" in stdout and "(warms)" in stdout
    data = json.loads(out.read_text())
    (g,) = data["prefix_groups"]
    assert g["group"] == "support" and g["cached"] and g["projected_savings_usd"] > 0
    assert g["cache_price_source"]
