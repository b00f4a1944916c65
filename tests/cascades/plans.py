"""Cascade plans built directly (no solver), for the executor's cascade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from planner.checks.schema import parse_check
from planner.plan import (
    Assignment,
    CascadeSpec,
    CascadeStage,
    Fallback,
    Limits,
    Plan,
    SolverInfo,
    Totals,
)
from tests.executor.plans import MODELS

CHEAP, WITNESS, STRONG = MODELS[2], MODELS[0], MODELS[1]  # llama-8b, gpt-4o-mini, claude-3-5-sonnet



def verifiers(witness: str = WITNESS.name) -> dict[str, dict[str, Any]]:
    """One verifier of each kind, witnesses and judge on ``witness``."""
    return {
        "agree": {"verifier": "agree", "witnesses": [witness], "extractor": "choice"},
        "self_consistency": {"verifier": "self_consistency", "samples": 3, "extractor": "number"},
        "json_schema": {"verifier": "json_schema"},
        "python_tests": {"verifier": "python_tests"},
        "judge": {"verifier": "judge", "judge": witness, "threshold": 0.7},
    }


VERIFIERS = verifiers()
CHECKS: dict[str, dict[str, Any] | None] = {
    "agree": {"kind": "choice", "answer": "B"},
    "self_consistency": {"kind": "number", "answer": 42},
    "json_schema": {"kind": "json_schema", "schema": {"type": "object", "required": ["name"]},
                    "example": {"name": "Ada"}},
    "python_tests": {"kind": "python_tests", "tests": ["assert add(2, 3) == 5"],
                     "solution": "def add(a, b):\n    return a + b"},
    "judge": None,
}
PROMPTS = {"agree": "Which letter?\nA) one\nB) two\nC) three\nD) four", "self_consistency": "6 * 7 = ?",
           "json_schema": "Return {\"name\": ...} for Ada.", "python_tests": "Write add(a, b).",
           "judge": "Summarise: the cat sat on the mat."}


def _stage(role: str, m: Any, in_tok: int, out_tok: int, max_tokens: int) -> CascadeStage:
    return CascadeStage(role=role, model=m.name, max_tokens=max_tokens, projected_input_tokens=in_tok,
                        projected_output_tokens=out_tok,
                        projected_cost_usd=in_tok * m.input_cost_per_token + out_tok * m.output_cost_per_token,
                        worst_case_cost_usd=in_tok * m.input_cost_per_token + max_tokens * m.output_cost_per_token)


def cascade_plan(n_tasks: int, kinds: tuple[str, ...] = tuple(VERIFIERS), *, p_accept: float = 0.7,
                 quality_accept: float = 0.95, quality_reject: float = 0.85, budget_usd: float | None = None,
                 max_tokens: int = 300, checks: bool = True, models: tuple[Any, Any, Any] = (CHEAP, WITNESS, STRONG),
                 prompts: dict[str, str] | None = None, fallbacks: tuple[Any, ...] = ()) -> Plan:
    """``n_tasks`` tasks, round-robin over the verifier ``kinds``, each a cascade cheap -> strong
    (``models``: cheap, witness/judge, strong); ``prompts`` replaces some kinds' prompt;
    ``fallbacks``: the plan's single-model fallbacks of every task, in order (models not among
    ``models`` join the plan's models)."""
    cheap, witness, strong = models
    vs = verifiers(witness.name)
    prompts = {**PROMPTS, **(prompts or {})}
    out = []
    for i in range(n_tasks):
        kind = kinds[i % len(kinds)]
        v = vs[kind]
        in_tok, out_tok = 60 + i % 7, 40
        verify = []
        if kind == "agree":
            verify = [_stage("verify", witness, in_tok, out_tok, max_tokens)]
        elif kind == "self_consistency":
            verify = [_stage("verify", cheap, in_tok, out_tok, max_tokens) for _ in range(v["samples"] - 1)]
        elif kind == "judge":
            verify = [_stage("verify", witness, in_tok + max_tokens + 120, 40, 300)]
        stages = [_stage("first", cheap, in_tok, out_tok, max_tokens), *verify,
                  _stage("second", strong, in_tok, out_tok, max_tokens)]
        p = p_accept
        exp = sum(s.projected_cost_usd for s in stages[:-1]) + (1 - p) * stages[-1].projected_cost_usd
        label = f"{cheap.name.split('/')[-1]} -> {strong.name.split('/')[-1]} ({kind})"
        spec = CascadeSpec(label=label, category="test",
                           verifier=v, p_accept=p, quality_accept=quality_accept, quality_reject=quality_reject,
                           basis="independence", worst_case_latency_s=10.0, stages=stages, quality_first=0.7)
        check = CHECKS[kind] if checks or kind in ("json_schema", "python_tests") else None
        out.append(Assignment(
            task_id=f"t{i:04d}", model=cheap.name, type="test",
            messages=[{"role": "user", "content": prompts[kind].replace("{i}", str(i))}],
            max_tokens=max_tokens, projected_input_tokens=in_tok, projected_output_tokens=out_tok,
            projected_cost_usd=exp, projected_latency_s=2.0,
            projected_quality=p * quality_accept + (1 - p) * quality_reject,
            worst_case_cost_usd=sum(s.worst_case_cost_usd for s in stages),
            check=parse_check(check) if check else None, cascade=spec,
            fallbacks=[Fallback(model=f.name, projected_cost_usd=in_tok * f.input_cost_per_token
                                + out_tok * f.output_cost_per_token, projected_latency_s=2.0, projected_quality=0.8)
                       for f in fallbacks]))
    extra = [f for f in fallbacks if f.name not in {m.name for m in models}]
    return Plan(catalog="test", goal="maximize_quality", limits=Limits(budget_usd=budget_usd),
                models=[*models, *extra], assignments=out,
                totals=Totals(n_tasks=n_tasks, n_assigned=n_tasks, n_queued=0,
                              projected_cost_usd=sum(a.projected_cost_usd for a in out),
                              projected_worst_case_cost_usd=sum(a.worst_case_cost_usd for a in out),
                              makespan_s=1.0, mean_latency_s=1.0, mean_quality=0.9),
                solver=SolverInfo(name="test", status="optimal", objective=None, bound=None, gap=None,
                                  wall_time_s=0.0))


def check_cascade_run(out: Path, budget_usd: float | None) -> dict[str, Any]:
    """The invariants of a finished run with cascade tasks: every task ended once, each stage
    was answered (paid for with success) at most once, and a fallback at most once (only after
    every stage failed), a task's cost is the sum of its calls,
    spend never above the budget, nothing left in flight."""
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        statuses = dict(conn.execute("SELECT task_id, status FROM tasks"))
        ok = conn.execute("SELECT task_id, purpose, COUNT(*) FROM attempts WHERE state='ok' "
                          "GROUP BY task_id, purpose").fetchall()
        stage_rows = dict(conn.execute("SELECT task_id, COUNT(*) FROM cascade_stages GROUP BY task_id"))
        ok_calls = dict(conn.execute("SELECT task_id, COUNT(*) FROM attempts WHERE state='ok' "
                                     "AND purpose NOT IN ('grade', 'fallback') "
                                     "AND task_id IN (SELECT task_id FROM tasks WHERE cascade IS NOT NULL) "
                                     "GROUP BY task_id"))
        task_cost = dict(conn.execute("SELECT task_id, cost_pusd FROM tasks"))
        call_cost = dict(conn.execute("SELECT task_id, SUM(cost_pusd) FROM attempts WHERE purpose<>'grade' "
                                      "GROUP BY task_id"))
        spent = conn.execute("SELECT COALESCE(SUM(CASE WHEN state='inflight' THEN reserved_pusd ELSE cost_pusd END),"
                             " 0) FROM attempts").fetchone()[0]
        states = dict(conn.execute("SELECT state, COUNT(*) FROM attempts GROUP BY state"))
        decided = dict(conn.execute("SELECT task_id, accepted FROM tasks"))
        fell_back = {t for (t,) in conn.execute("SELECT DISTINCT task_id FROM attempts WHERE purpose='fallback'")}
    finally:
        conn.close()
    assert set(statuses.values()) <= {"done", "failed", "queued"}, statuses
    for task_id, purpose, n in ok:
        if purpose in ("answer", "escalate", "fallback"):
            assert n == 1, (task_id, purpose, n)  # one stage one, one escalation, one fallback answer at most
    answered = {task_id for task_id, purpose, _ in ok if purpose in ("answer", "escalate")}
    assert not fell_back & answered, fell_back & answered  # fallbacks only once no stage answered
    for task_id, n in ok_calls.items():
        assert stage_rows.get(task_id, 0) == n, task_id  # every successful call's answer stored once
    for task_id in statuses:
        assert task_cost[task_id] == (call_cost.get(task_id) or 0), task_id
    if budget_usd is not None:
        assert spent <= int(budget_usd * 10**12)
    assert "inflight" not in states
    return {"statuses": statuses, "spent_pusd": spent, "states": states, "accepted": decided, "fell_back": fell_back}


# The random runs of the cascades' budget property test under faults in either stage, shared
# by the one-process test (tests/cascades/test_run_cascades.py) and the Ray one
# (tests/distributed/test_cascades_on_ray.py), so both explore the same space.
FAULT_CASES: dict[str, st.SearchStrategy[Any]] = dict(
    n_tasks=st.integers(1, 12),
    kinds=st.lists(st.sampled_from(["agree", "self_consistency", "judge", "json_schema"]), min_size=1,
                   max_size=4, unique=True),
    budget_usd=st.one_of(st.none(), st.floats(0.0, 0.05, allow_nan=False)),
    fail_rate=st.floats(0.0, 0.8),
    max_tokens=st.integers(1, 400),
    max_retries=st.integers(0, 2),
    p_accept=st.floats(0.0, 1.0),
    concurrency=st.integers(1, 6),
    with_fallbacks=st.booleans(),
    seed=st.integers(0, 2**16))
