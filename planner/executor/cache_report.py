"""The run report's prompt-cache section: projected against actual cache savings.

Projected: the plan's ``prefix_groups`` (kept in the ledger's meta): per (group, model) the
savings of reading the shared prefix from the cache instead of sending it, net of the one
write. Actual: every answered attempt's cached tokens (``cached_tokens``: read,
``cache_write_tokens``: written, as the provider's usage reported them) priced with the
model's prices from the plan's snapshot: a read saves ``input - read`` per token, a write
costs ``write - input`` more (nothing more where writes bill as input).
"""

from __future__ import annotations

import json
from typing import Any


def _saving_usd(model: dict[str, Any] | None, read: float, written: float) -> float:
    if not model:
        return 0.0
    pin = float(model.get("input_cost_per_token") or 0.0)
    rd = model.get("cache_read_cost_per_token")
    wr = model.get("cache_write_cost_per_token")
    rd = pin if rd is None else float(rd)
    wr = pin if wr is None else max(float(wr), pin)
    return read * (pin - rd) - written * (wr - pin)


def cache_section(meta: dict[str, str], tasks: Any, attempts: Any) -> dict[str, Any] | None:
    """The section as plain data, or None when the plan had no prefix group and no call read a cache."""
    groups = json.loads(meta.get("prefix_groups") or "[]")
    models = json.loads(meta.get("models") or "{}")
    ok = attempts[(attempts["state"] == "ok") & (attempts["purpose"] != "grade")]
    read = ok["cached_tokens"].fillna(0)
    written = ok["cache_write_tokens"].fillna(0)
    if not groups and not (read > 0).any() and not (written > 0).any():
        return None
    ok = ok.assign(read=read, written=written,
                   saving=[_saving_usd(models.get(m), r, w) for m, r, w in zip(ok["model"], read, written, strict=True)])
    ok = ok.merge(tasks[["task_id", "prefix_group"]], on="task_id", how="left")
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    projected_tok = tasks.groupby(["prefix_group", "planned_model"])["projected_cached_tokens"].sum() \
        if "projected_cached_tokens" in tasks and tasks["prefix_group"].notna().any() else None
    for g in groups:
        key = (g["group"], g["model"])
        seen.add(key)
        mine = ok[(ok["prefix_group"] == g["group"]) & (ok["model"] == g["model"])]
        rows.append(_row(g["group"], g["model"], g["n_tasks"], bool(g["cached"]), float(g["projected_savings_usd"]),
                         int(projected_tok.get(key, 0)) if projected_tok is not None else 0, mine))
    # cached tokens the plan did not project (a fallback model, a provider's own cache)
    rest = ok[[(pg, m) not in seen for pg, m in zip(ok["prefix_group"], ok["model"], strict=True)]]
    rest = rest[(rest["read"] > 0) | (rest["written"] > 0)]
    for (pg, m), part in rest.groupby([rest["prefix_group"].fillna("(no group)"), "model"]):
        rows.append(_row(str(pg), str(m), 0, False, 0.0, 0, part))
    total = {k: sum(r[k] for r in rows) for k in ("projected_savings_usd", "actual_savings_usd",
                                                     "projected_cached_tokens", "actual_cached_tokens",
                                                     "actual_cache_write_tokens", "calls")}
    return {"simulated": meta.get("simulated") == "1", **total, "by_group": rows}


def _row(group: str, model: str, n_tasks: int, cached: bool, projected_usd: float, projected_tok: int,
         mine: Any) -> dict[str, Any]:
    from planner.catalog import short_name

    calls = len(mine)
    hits = int((mine["read"] > 0).sum())
    return {"group": group, "model": model, "model_short": short_name(model), "n_tasks": n_tasks,
            "cached_in_plan": cached, "projected_savings_usd": projected_usd,
            "actual_savings_usd": float(mine["saving"].sum()), "projected_cached_tokens": projected_tok,
            "actual_cached_tokens": int(mine["read"].sum()), "actual_cache_write_tokens": int(mine["written"].sum()),
            "calls": calls, "hit_rate": hits / calls if calls else None}

