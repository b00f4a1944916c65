"""Plans built directly (no solver needed) for the executor's tests and benchmark."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from planner.checks.schema import parse_check
from planner.plan import (
    Assignment,
    Fallback,
    Limits,
    ModelSnapshot,
    Plan,
    QueuedTask,
    SolverInfo,
    Totals,
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODELS = [
    ModelSnapshot(name="openai/gpt-4o-mini", litellm_model="openai/gpt-4o-mini", provider="openai",
                  input_cost_per_token=1.5e-7, output_cost_per_token=6e-7, price_source="test",
                  ttft_s=0.4, output_tokens_per_s=80, verbosity=1.0, concurrency=8, rpm=600, tpm=400_000),
    ModelSnapshot(name="anthropic/claude-3-5-sonnet", litellm_model="anthropic/claude-3-5-sonnet-20240620",
                  provider="anthropic", input_cost_per_token=3e-6, output_cost_per_token=1.5e-5,
                  price_source="test", ttft_s=0.8, output_tokens_per_s=50, verbosity=1.2, concurrency=4),
    ModelSnapshot(name="groq/llama-3.1-8b-instant", litellm_model="groq/llama-3.1-8b-instant", provider="groq",
                  input_cost_per_token=5e-8, output_cost_per_token=8e-8, price_source="test",
                  ttft_s=0.2, output_tokens_per_s=500, verbosity=0.9),
]


def _projection(m: ModelSnapshot, in_tok: int, out_tok: int, max_tokens: int) -> dict[str, float]:
    return {"cost": in_tok * m.input_cost_per_token + out_tok * m.output_cost_per_token,
            "worst": in_tok * m.input_cost_per_token + max_tokens * m.output_cost_per_token,
            "latency": m.ttft_s + out_tok / m.output_tokens_per_s}


def make_plan(n_tasks: int = 20, *, budget_usd: float | None = None, models: list[ModelSnapshot] | None = None,
              max_tokens: int = 400, expected_tokens: int = 150, max_latency_s: float | None = None,
              n_queued: int = 0, fallbacks: bool = True, check: Any = None,
              quality: Callable[[int, ModelSnapshot], float] | None = None) -> Plan:
    """A plan of ``n_tasks`` tasks assigned round-robin over ``models``, each with the other
    models as fallbacks (ranked by projected cost). ``check(i)`` gives task i its check (a
    mapping or None); ``quality(i, model)`` the projected quality (default 0.8)."""
    models = models or MODELS
    assignments = []
    for i in range(n_tasks):
        m = models[i % len(models)]
        in_tok = 40 + (i * 7) % 60
        out_tok = round(expected_tokens * m.verbosity)
        p = _projection(m, in_tok, out_tok, max_tokens)
        fbs = []
        if fallbacks:
            for f in models:
                if f.name != m.name:
                    q = _projection(f, in_tok, round(expected_tokens * f.verbosity), max_tokens)
                    fbs.append(Fallback(model=f.name, projected_cost_usd=q["cost"],
                                        projected_latency_s=q["latency"],
                                        projected_quality=quality(i, f) if quality else 0.8))
            fbs.sort(key=lambda f: f.projected_cost_usd)
        assignments.append(Assignment(
            task_id=f"t{i:05d}", model=m.name, type="summarize",
            messages=[{"role": "user", "content": f"Summarise document {i} in three sentences."}],
            max_tokens=max_tokens, priority=1.0 + (i % 3), max_latency_s=max_latency_s,
            projected_input_tokens=in_tok, projected_output_tokens=out_tok,
            projected_cost_usd=p["cost"], projected_latency_s=p["latency"],
            projected_quality=quality(i, m) if quality else 0.8,
            worst_case_cost_usd=p["worst"], fallbacks=fbs,
            check=parse_check(check(i)) if check and check(i) is not None else None))
    queued = [QueuedTask(task_id=f"q{i:03d}", type="summarize", messages=[{"role": "user", "content": "x"}],
                         max_tokens=100, reason="budget") for i in range(n_queued)]
    total = sum(a.projected_cost_usd for a in assignments)
    return Plan(catalog="test", goal="minimize_cost", limits=Limits(budget_usd=budget_usd),
                models=models, assignments=assignments, queued=queued,
                totals=Totals(n_tasks=n_tasks + n_queued, n_assigned=n_tasks, n_queued=n_queued,
                              projected_cost_usd=total,
                              projected_worst_case_cost_usd=sum(a.worst_case_cost_usd for a in assignments),
                              makespan_s=max((a.projected_latency_s for a in assignments), default=0.0),
                              mean_latency_s=0.0, mean_quality=0.8),
                solver=SolverInfo(name="test", status="optimal", objective=total, bound=total, gap=0.0,
                                  wall_time_s=0.0))


def batch_models(api_base: str | None = None, api_key_env: str | None = None,
                 window_s: float = 86400.0) -> list[ModelSnapshot]:
    """A realtime model and its ``@batch`` offering at half its prices (optionally on a server
    at ``api_base``, as the loopback tests want)."""
    common: dict[str, Any] = dict(provider="openai", price_source="test", ttft_s=0.4, output_tokens_per_s=80)
    if api_base is not None:
        common.update(api_base=api_base, api_key_env=api_key_env)
    realtime = ModelSnapshot(name="openai/gpt-4o-mini", litellm_model="openai/gpt-4o-mini",
                             input_cost_per_token=1.5e-7, output_cost_per_token=6e-7, **common)
    batch = ModelSnapshot(name="openai/gpt-4o-mini@batch", litellm_model="openai/gpt-4o-mini", mode="batch",
                          input_cost_per_token=7.5e-8, output_cost_per_token=3e-7, batch_window_s=window_s,
                          **common)
    return [batch, realtime]


def make_batch_plan(n_tasks: int = 20, *, budget_usd: float | None = None, deadline_s: float | None = None,
                    api_base: str | None = None, api_key_env: str | None = None, max_tokens: int = 100,
                    expected_tokens: int = 30, check: Any = None, window_s: float = 86400.0) -> Plan:
    """Every task on the ``@batch`` offering, its realtime twin as the fallback."""
    plan = make_plan(n_tasks, budget_usd=budget_usd, models=batch_models(api_base, api_key_env, window_s),
                     max_tokens=max_tokens, expected_tokens=expected_tokens, check=check)
    batch, realtime = plan.models
    assignments = []
    for a in plan.assignments:
        if a.model == realtime.name:  # round-robin put half on the realtime model: move them to batch
            cost = (a.projected_input_tokens * batch.input_cost_per_token
                    + a.projected_output_tokens * batch.output_cost_per_token)
            fallback = Fallback(model=realtime.name, projected_cost_usd=a.projected_cost_usd,
                                projected_latency_s=a.projected_latency_s, projected_quality=a.projected_quality)
            a = a.model_copy(update={"model": batch.name, "projected_cost_usd": cost,
                                     "projected_latency_s": batch.batch_window_s, "fallbacks": [fallback]})
        assignments.append(a)
    limits = plan.limits.model_copy(update={"deadline_s": deadline_s})
    return plan.model_copy(update={"assignments": assignments, "limits": limits})
