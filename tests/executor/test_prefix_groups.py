"""The executor honours prefix groups (issue 13 item 5): one warm-up call, then the rest of the
group; cached tokens from the usage in the ledger, priced at the cache price; the report sets
projected against actual cache savings. Live through litellm's real client (loopback server),
and simulated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from planner.catalog import load_catalog
from planner.executor import RetryPolicy, RunOptions, run_plan
from planner.executor.clock import Clock
from planner.executor.engine import build_chain
from planner.executor.prefix import CacheWarmer, group_order, with_breakpoint
from planner.money import cached_call_cost_pusd, call_cost_pusd, price_pusd
from planner.solve import make_plan
from planner.tasks import tasks_from_records

from .loopback import LoopbackServer

POLICY = {"role": "system", "content": "Answer by the policy below. " + "Rule. " * 900}


def grouped_tasks(n_grouped: int = 6, n_free: int = 2):
    recs = [{"id": f"g{i}", "type": "qa", "expected_output_tokens": 30, "prefix_group": "policy",
             "messages": [POLICY, {"role": "user", "content": f"Ticket {i}"}]} for i in range(n_grouped)]
    recs += [{"id": f"f{i}", "type": "qa", "prompt": f"Question {i}", "expected_output_tokens": 30}
             for i in range(n_free)]
    return tasks_from_records(recs)


def local_catalog(tmp_path: Path, api_base: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(f"""models:
  - id: openai/primary
    api_base: {api_base}
    input_cost_per_token: 1.0e-6
    output_cost_per_token: 2.0e-6
    cache_read_input_token_cost: 1.0e-7
    sources: {{cache_price: "loopback test prices"}}
    ttft_s: 0.2
    output_tokens_per_s: 100
    batch: false
    quality: {{default: 0.8}}
""")
    return path


@pytest.fixture
def server():
    s = LoopbackServer(prompt_tokens=1850, completion_tokens=30, cache_prefix_tokens={"primary": 1800}).start()
    yield s
    s.stop()


def test_live_group_warms_once_then_reads_through_litellms_client(server, tmp_path):
    plan = make_plan(grouped_tasks(), local_catalog(tmp_path, server.api_base), solver="highs")
    (entry,) = plan.prefix_groups
    assert entry.cached and entry.n_tasks == 6 and entry.projected_savings_usd > 0
    server.delay_s["primary"] = 0.3  # the warm-up takes a while: nobody of the group may overtake it
    out = tmp_path / "run"
    result = run_plan(plan, out, RunOptions(mode="live", concurrency=8, progress=False,
                                            retry=RetryPolicy(max_retries=0)))
    assert not result.simulated and result.counts == {"done": 8}
    group_reqs = [r for r in server.requests if r["body"]["messages"][0]["role"] == "system"]
    assert len(group_reqs) == 6
    first, rest = group_reqs[0], group_reqs[1:]
    assert first["body"]["messages"][1]["content"] == "Ticket " + entry.send_order[0][1:]
    assert all(r["t"] >= first["t"] + 0.29 for r in rest)  # sent after the warm-up answered
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        rows = dict(conn.execute("SELECT task_id, cached_tokens FROM tasks WHERE prefix_group='policy'"))
        costs = dict(conn.execute("SELECT task_id, cost_pusd FROM tasks"))
    assert rows[entry.send_order[0]] == 0 and all(rows[t] == 1800 for t in entry.send_order[1:])
    # a read is billed at the cache price: 50 plain + 1800 cached prompt tokens + 30 output
    expected = cached_call_cost_pusd(1850, 1800, 0, 30, price_pusd(1e-6), price_pusd(1e-7), None, price_pusd(2e-6))
    assert costs[entry.send_order[1]] == expected
    assert costs[entry.send_order[0]] == call_cost_pusd(1850, 30, price_pusd(1e-6), price_pusd(2e-6))
    report = json.loads((out / "report.json").read_text())
    pc = report["prompt_cache"]
    assert pc["simulated"] is False
    assert pc["actual_cached_tokens"] == 5 * 1800
    assert pc["actual_savings_usd"] == pytest.approx(5 * 1800 * (1e-6 - 1e-7))
    assert pc["projected_savings_usd"] == pytest.approx(entry.projected_savings_usd)
    assert "Prompt cache: projected vs actual" in (out / "report.md").read_text()


def test_simulated_run_writes_once_reads_after_and_says_simulated(tmp_path):
    plan = make_plan(grouped_tasks(12, 2), load_catalog(), solver="highs", models=["anthropic/claude-sonnet-4-5"])
    (entry,) = plan.prefix_groups
    out = tmp_path / "sim"
    run_plan(plan, out, RunOptions(mode="simulate", concurrency=16, progress=False))
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        tasks = {t: (r, w) for t, r, w in conn.execute(
            "SELECT task_id, cached_tokens, cache_write_tokens FROM tasks WHERE prefix_group='policy'")}
        first_end = conn.execute("SELECT ended_at FROM attempts WHERE task_id=?", (entry.send_order[0],)).fetchone()[0]
        rest_start = conn.execute("SELECT MIN(started_at) FROM attempts WHERE task_id != ? AND task_id LIKE 'g%'",
                                  (entry.send_order[0],)).fetchone()[0]
    assert tasks[entry.send_order[0]] == (0, entry.prefix_tokens)  # the warm-up writes (Anthropic bills it)
    reads = [tasks[t][0] for t in entry.send_order[1:]]
    assert sum(r == entry.prefix_tokens for r in reads) >= len(reads) - 3  # a seeded miss now and then
    assert rest_start >= first_end
    report = json.loads((out / "report.json").read_text())
    pc = report["prompt_cache"]
    assert pc["simulated"] is True and pc["actual_cache_write_tokens"] >= entry.prefix_tokens
    assert pc["actual_savings_usd"] == pytest.approx(pc["projected_savings_usd"], rel=0.3)
    assert "Prompt cache: projected vs actual (simulated)" in (out / "report.md").read_text()


def test_the_worst_case_covers_a_cache_write():
    plan = make_plan(grouped_tasks(), load_catalog(), solver="highs", models=["anthropic/claude-sonnet-4-5"])
    a = next(x for x in plan.assignments if x.prefix_group)
    link = build_chain(a, plan.model_by_name())[0]
    assert link.write_price_pusd is not None and link.write_price_pusd > link.in_price_pusd
    assert link.worst_input_price_pusd(True) == link.write_price_pusd
    assert link.worst_input_price_pusd(False) == link.in_price_pusd
    # spend never above the reservation: a full write costs at most the write-price worst case
    worst = call_cost_pusd(1000, 10, link.worst_input_price_pusd(True), link.out_price_pusd)
    assert cached_call_cost_pusd(1000, 0, 1000, 10, link.in_price_pusd, link.read_price_pusd,
                                 link.write_price_pusd, link.out_price_pusd) <= worst


def test_cached_cost_bills_unknown_cache_prices_as_input():
    assert cached_call_cost_pusd(100, 60, 0, 5, 10, None, None, 20) == 100 * 10 + 5 * 20
    assert cached_call_cost_pusd(100, 60, 30, 5, 10, 1, 15, 20) == 10 * 10 + 60 * 1 + 30 * 15 + 5 * 20
    assert cached_call_cost_pusd(100, 500, 0, 0, 10, 1, None, 0) == 100 * 1  # never more cached than sent


def test_breakpoint_only_for_providers_that_bill_writes():
    cat = load_catalog()
    sonnet, mini = (cat.get(n).snapshot() for n in ("anthropic/claude-sonnet-4-5", "gpt-4.1-mini"))
    msgs = [{"role": "system", "content": "policy"}, {"role": "user", "content": "q"}]
    marked = with_breakpoint(sonnet, msgs, 1)
    assert marked[0]["content"] == [{"type": "text", "text": "policy", "cache_control": {"type": "ephemeral"}}]
    assert marked[1] == msgs[1] and msgs[0]["content"] == "policy"  # the plan's messages untouched
    assert with_breakpoint(mini, msgs, 1) is msgs


def test_group_order_sends_a_group_together_in_plan_order(tmp_path):
    plan = make_plan(grouped_tasks(4, 3), load_catalog(), solver="highs", models=["gpt-4.1-mini"])
    (entry,) = plan.prefix_groups
    ids = [a.task_id for a in plan.assignments]
    # pending rows interleaved: free, grouped, free, grouped ...
    order = ["f0", entry.send_order[2], "f1", entry.send_order[0], "f2", entry.send_order[3], entry.send_order[1]]
    rows = [(ids.index(t), t, 0, 0) for t in order]
    got = [r[1] for r in group_order(plan, lambda: iter(rows))]
    assert got == ["f0", *entry.send_order, "f1", "f2"]


def test_warmer_lets_one_call_warm_and_the_rest_wait():
    import asyncio

    asyncio.run(_warmer_scenario())


async def _warmer_scenario() -> None:
    import asyncio

    warmer = CacheWarmer(Clock(1.0), {"m": 300.0})
    log: list[str] = []

    async def call(name: str, fail: bool = False) -> None:
        async with warmer.turn("g", "m") as turn:
            log.append(f"start {name} warms={turn.warms}")
            await asyncio.sleep(0.02)
            if not fail:
                turn.ok()
            log.append(f"end {name}")

    await asyncio.gather(call("a", fail=True), call("b"), call("c"))
    # a warms and fails; then b warms; c reads after b answered
    assert log[:2] == ["start a warms=True", "end a"]
    assert log[2] == "start b warms=True" and log[3] == "end b"
    assert log[4] == "start c warms=False"
    assert warmer.warmups == 2
