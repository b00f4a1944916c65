"""The run report, rebuilt from the ledger alone (so ``routeplan report DIR`` can re-render it
after a crash or a resume): report.json, tasks.csv, outputs.jsonl, report.md and
cost_by_model.png in the run's folder.

Projected figures are the plan's; actual ones are what the ledger recorded. Spend is every
attempt's cost, failed and interrupted attempts included, so ``totals.actual_cost_usd`` is
exactly the ledger's spend (a judge's calls too: ``totals.grading_cost_usd`` is their part).

Quality: the plan's projected quality of the model that served each task against the score
its check gave (``quality``: per model and per task type, with 95 % intervals; the tasks
that failed their check and why; cost per quality point from measured scores).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.executor.ledger import LEDGER_NAME, done_outputs, read_batch_jobs, read_run
from planner.money import PUSD_PER_USD, usd

REPORT_SCHEMA = "routeplan.run-report/1"
TASK_FIELDS = ["task_id", "status", "model", "model_short", "planned_model", "planned_model_short", "attempts", "projected_input_tokens",
               "projected_output_tokens", "projected_cost_usd", "projected_latency_s", "actual_input_tokens",
               "actual_output_tokens", "actual_cost_usd", "actual_latency_s", "reason", "type",
               "projected_quality", "score", "passed", "grader", "grade_reason", "grade_cost_usd"]
def load_run(out_dir: Path) -> tuple[dict[str, str], Any, Any]:
    """(meta, tasks DataFrame, attempts DataFrame) from the ledger in ``out_dir``."""
    import pandas as pd

    path = Path(out_dir) / LEDGER_NAME
    if not path.exists():
        raise InputError(f"{out_dir}: no run ledger ({LEDGER_NAME}) here")
    try:
        meta, tasks, attempts = read_run(path)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:  # not a ledger, or another program's database
        raise InputError(f"{path}: not a routeplan run ledger ({exc.__cause__ or exc})") from None
    if not meta:
        raise InputError(f"{out_dir}: the ledger was never fully set up (no run metadata)")
    return meta, tasks, attempts


def build_report(out_dir: Path) -> dict[str, Any]:
    """The report as plain data (what report.json holds)."""
    import numpy as np

    meta, tasks, attempts = load_run(out_dir)
    # an attempt still 'inflight' (a run killed, not yet resumed) may have been billed
    spent = np.where(attempts["state"] == "inflight", attempts["reserved_pusd"],
                     attempts["cost_pusd"].fillna(0)).astype("int64")
    attempts = attempts.assign(spent_pusd=spent)
    spent_pusd = int(spent.sum())
    budget_usd = float(meta["budget_usd"]) if meta.get("budget_usd") else None

    from planner.executor.cache_report import cache_section

    prompt_cache = cache_section(meta, tasks, attempts)
    t = tasks.rename(columns={"input_tokens": "actual_input_tokens", "output_tokens": "actual_output_tokens",
                              "latency_s": "actual_latency_s"})
    t["projected_cost_usd"] = t["projected_cost_pusd"] / PUSD_PER_USD
    t["actual_cost_usd"] = t["cost_pusd"] / PUSD_PER_USD
    t["grade_cost_usd"] = t["grade_cost_pusd"].fillna(0) / PUSD_PER_USD
    t["projected_quality"] = [_served_quality(cq, m if m is not None else pm)
                              for cq, m, pm in zip(t["chain_quality"], t["model"], t["planned_model"], strict=True)]
    pass_at = [_pass_score(c) for c in t["check_json"]]
    t["passed"] = [None if sc is None or sc != sc or ps is None else bool(sc >= ps)
                   for sc, ps in zip(t["score"], pass_at, strict=True)]
    checked = t["check_json"].notna()
    # a cascade's escalation is its plan, not a fallback; its projections are expectations over the decision
    single = t["cascade"].isna()
    # the litellm id for programs, the short name tables print beside it (catalog.short_name)
    t["model_short"] = _shorts(t["model"])
    t["planned_model_short"] = _shorts(t["planned_model"])
    t = t[TASK_FIELDS].copy()
    for col in ("attempts", "projected_input_tokens", "projected_output_tokens", "actual_input_tokens",
                "actual_output_tokens"):
        t[col] = t[col].astype("Int64")
    done = t[t["status"] == "done"]
    done_single = done[single[done.index]]
    counts = {s: int((t["status"] == s).sum()) for s in ("done", "failed", "queued", "pending", "running")}

    grading = attempts[attempts["purpose"] == "grade"]
    answers = attempts[attempts["purpose"] != "grade"]
    by_model = _by_model(t, answers)
    # a cascade task whose stages all failed and that one of the plan's fallbacks answered
    fell_back = set(answers.loc[(answers["purpose"] == "fallback") & (answers["state"] == "ok"), "task_id"])
    cascade_fallbacks = int(done["task_id"].isin(fell_back).sum())
    misses = done.assign(miss_usd=done["actual_cost_usd"] - done["projected_cost_usd"])
    misses = misses.reindex(misses["miss_usd"].abs().sort_values(ascending=False).index).head(5)
    same_model = done_single[done_single["model"] == done_single["planned_model"]]
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "simulated": meta.get("simulated") == "1",
        "mode": meta.get("mode_reason", ""),
        "plan_file": meta.get("plan_file") or None,
        "goal": meta.get("goal"),
        "budget_usd": budget_usd,
        "spent_usd": spent_pusd / PUSD_PER_USD,
        "budget_used_fraction": (spent_pusd / PUSD_PER_USD / budget_usd) if budget_usd else None,
        "totals": {
            "n_tasks": len(t), **{f"n_{k}": v for k, v in counts.items()},
            "projected_cost_usd": float(t["projected_cost_usd"].fillna(0).sum()),
            "actual_cost_usd": spent_pusd / PUSD_PER_USD,
            "actual_cost_pusd": spent_pusd,
            "projected_cost_done_usd": float(done["projected_cost_usd"].sum()),
            "actual_cost_done_usd": float(done["actual_cost_usd"].sum()),
            "wasted_cost_usd": float(answers.loc[answers["state"] != "ok", "spent_pusd"].sum()) / PUSD_PER_USD,
            "grading_cost_usd": float(grading["spent_pusd"].sum()) / PUSD_PER_USD,
            "grading_calls": len(grading),
            "projected_output_tokens": int(t["projected_output_tokens"].fillna(0).sum()),
            "actual_output_tokens": int(t["actual_output_tokens"].fillna(0).sum()),
            "attempts": len(attempts),
            "lost_attempts": int((attempts["state"] == "lost").sum()),
            "fallbacks_used": int((done_single["model"] != done_single["planned_model"]).sum()) + cascade_fallbacks,
        },
        "projection_error": {
            "tasks_on_planned_model": len(same_model),
            "cost_mape": _mape(same_model["actual_cost_usd"], same_model["projected_cost_usd"]),
            "output_tokens_mape": _mape(same_model["actual_output_tokens"], same_model["projected_output_tokens"]),
            "latency_mape": _mape(same_model["actual_latency_s"], same_model["projected_latency_s"]),
        },
        "latency_s": {"actual": _percentiles(done["actual_latency_s"]),
                      "projected": _percentiles(done["projected_latency_s"])},
        "by_model": by_model,
        "quality": _quality(t, checked),
        "prompt_cache": prompt_cache,
        "cascades": _cascades(out_dir),
        "largest_misses": _records(misses[["task_id", "model", "model_short", "planned_model",
                                           "planned_model_short", "projected_cost_usd",
                                           "actual_cost_usd", "miss_usd", "projected_output_tokens",
                                           "actual_output_tokens"]]),
        "batch_jobs": _batch_jobs(read_batch_jobs(Path(out_dir) / LEDGER_NAME)),
        "failed": _records(t.loc[t["status"] == "failed",
                                 ["task_id", "model", "model_short", "attempts", "reason"]]),
        "queued": _records(t.loc[t["status"] == "queued",
                                 ["task_id", "planned_model", "planned_model_short", "reason"]]),
        "tasks": _records(t),
    }
    return report


def write_run_report(out_dir: str | Path) -> list[Path]:
    """Write every report file into ``out_dir``; returns their paths."""
    return write_run_report_data(out_dir)[1]


def write_run_report_data(out_dir: str | Path) -> tuple[dict[str, Any], list[Path]]:
    """Write every report file into ``out_dir``; returns the report's data and the files."""
    out = Path(out_dir)
    report = build_report(out)
    files = [_write_json(out / "report.json", report), _write_csv(out / "tasks.csv", report),
             _write_outputs(out / "outputs.jsonl"), _write_chart(out / "cost_by_model.png", report)]
    files.append(_write_markdown(out / "report.md", report))
    return report, files


# -- pieces -------------------------------------------------------------------------------------
def _cascades(out_dir: Path) -> list[dict[str, Any]]:
    """Per cascade: projected against actual acceptance, spend by stage, cost and quality."""
    from planner.executor.ledger import read_cascades

    out = []
    for r in read_cascades(Path(out_dir) / LEDGER_NAME):
        usd = {k.removesuffix("_pusd") + "_usd": v / PUSD_PER_USD for k, v in r.items() if k.endswith("_pusd")}
        out.append({"cascade": r["cascade"], "tasks": r["tasks"], "done": r["done"], "decided": r["decided"],
                    "accepted": r["accepted"], "projected_accept_rate": r["projected_accept_rate"],
                    "actual_accept_rate": r["accepted"] / r["decided"] if r["decided"] else None,
                    "projected_quality": r["projected_quality"], "graded": r["graded"],
                    "measured_quality": r["measured_quality"], **usd,
                    "escalation_cost_usd": usd["escalate_cost_usd"], "verifier_cost_usd": usd["verify_cost_usd"],
                    "fell_back": int(r["fell_back"] or 0), "fallback_done": int(r["fallback_done"] or 0)})
    return out


def _by_model(t: Any, attempts: Any) -> list[dict[str, Any]]:
    import pandas as pd

    planned = t[t["planned_model"].notna()].groupby("planned_model").agg(
        planned_tasks=("task_id", "size"), projected_cost_usd=("projected_cost_usd", "sum"),
        projected_output_tokens=("projected_output_tokens", "sum"))
    served = t[t["status"] == "done"].groupby("model").agg(
        done_tasks=("task_id", "size"), actual_output_tokens=("actual_output_tokens", "sum"),
        actual_latency_p50_s=("actual_latency_s", "median"))
    spent = attempts.groupby("model").agg(attempts=("task_id", "size"), spent_pusd=("spent_pusd", "sum"))
    spent["actual_cost_usd"] = spent.pop("spent_pusd") / PUSD_PER_USD
    table = pd.concat([planned, served, spent], axis=1).fillna(0).sort_index()
    table["cost_error_fraction"] = [
        (a - p) / p if p else None for a, p in zip(table["actual_cost_usd"], table["projected_cost_usd"], strict=True)]
    table.index.name = "model"
    table = table.reset_index()
    table.insert(1, "model_short", _shorts(table["model"]))
    return _records(table)


def _batch_jobs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each batch job: ids, state, requests done/failed, timings, projected against actual."""
    from planner.catalog import short_name
    from planner.executor.batch_jobs import job_rows_for_report

    return [{**j, "model_short": short_name(j["model"])} for j in job_rows_for_report(rows)]


def _shorts(ids: Any) -> Any:
    """The short name of each litellm id in a column (None stays None)."""
    from planner.catalog import short_name

    return ids.map(lambda m: short_name(m) if isinstance(m, str) else None)


def _served_quality(chain_json: Any, model: Any) -> float | None:
    if not isinstance(chain_json, str) or model is None:
        return None
    return json.loads(chain_json).get(model)


def _pass_score(check_json: Any) -> float | None:
    if not isinstance(check_json, str):
        return None
    return float(json.loads(check_json).get("pass_score", 1.0))


def _quality(t: Any, checked: Any) -> dict[str, Any]:
    """Projected against measured quality of the graded tasks, overall, per model and per type."""
    from planner.catalog import short_name
    from planner.checks.stats import estimate

    done = t[t["status"] == "done"]
    graded = done[done["score"].notna()]
    ungraded = done[checked[done.index] & done["score"].isna()]

    def row(group: Any) -> dict[str, Any]:
        est = estimate(group["score"].tolist())
        projected = group["projected_quality"].dropna()
        points = float(group["score"].sum())
        projected_points = float(projected.sum())
        cost = float(group["actual_cost_usd"].sum())
        return {"n_graded": est.n, "n_passed": int(group["passed"].fillna(False).astype(bool).sum()),
                "projected_quality": float(projected.mean()) if len(projected) else None,
                "measured_quality": est.mean, "ci95_low": est.low, "ci95_high": est.high,
                "interval": est.method, "std_error": est.std_error,
                "difference": (est.mean - float(projected.mean())) if len(projected) and est.mean is not None else None,
                "actual_cost_usd": cost,
                "cost_per_quality_point_usd": cost / points if points > 0 else None,
                "projected_cost_per_quality_point_usd": (float(group["projected_cost_usd"].sum()) / projected_points
                                                         if projected_points > 0 else None),
                "grading_cost_usd": float(group["grade_cost_usd"].sum())}

    failed = graded[~graded["passed"].fillna(False).astype(bool)].sort_values("score", kind="stable")
    return {
        "n_checked": int(checked.sum()),
        "n_graded": len(graded),
        "n_ungraded": len(ungraded),
        "overall": row(graded) if len(graded) else None,
        "by_model": [{"model": m, "model_short": short_name(m), **row(g)}
                     for m, g in graded.groupby("model", sort=True)],
        "by_type": [{"type": k, **row(g)} for k, g in graded.groupby("type", sort=True)],
        "failed_checks": _records(failed[["task_id", "model", "model_short", "type", "score", "grader",
                                          "grade_reason"]]),
        "ungraded": _records(ungraded[["task_id", "model", "model_short", "grader", "grade_reason"]]),
    }


def _percentiles(values: Any) -> dict[str, float | None]:
    import numpy as np

    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(v.max()), "mean": float(v.mean())}


def _mape(actual: Any, projected: Any) -> float | None:
    mask = projected.notna() & actual.notna() & (projected != 0)
    if not mask.any():
        return None
    return float(((actual[mask] - projected[mask]).abs() / projected[mask]).mean())


def _records(df: Any) -> list[dict[str, Any]]:
    """JSON-ready rows: numpy scalars to Python, NaN to None."""
    return json.loads(df.to_json(orient="records"))


def _write_json(path: Path, report: dict[str, Any]) -> Path:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    return path


def _write_csv(path: Path, report: dict[str, Any]) -> Path:
    import csv

    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TASK_FIELDS)
        writer.writeheader()
        writer.writerows(report["tasks"])
    tmp.replace(path)
    return path


def _write_outputs(path: Path) -> Path:
    """Each done task's answer, one JSON object a line (read straight from the ledger)."""
    from planner.catalog import short_name

    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as f:
        for task_id, model, output in done_outputs(path.parent / LEDGER_NAME):
            f.write(json.dumps({"task_id": task_id, "model": model, "model_short": short_name(model),
                                "output": output}) + "\n")
    tmp.replace(path)
    return path


def _write_chart(path: Path, report: dict[str, Any]) -> Path:
    cost_chart(report).savefig(path, dpi=110)
    return path


def cost_chart(report: dict[str, Any]) -> Any:  # -> matplotlib.figure.Figure
    """Projected vs actual cost by model: one pair of horizontal bars per model, labelled with
    its short name, so the figure grows in height with the models and stays readable
    (8 in wide; 2.6 in plus 0.42 in per model high, at most 12 in)."""
    # Figure, not pyplot: switching pyplot's backend would break a notebook's inline plots
    import numpy as np
    from matplotlib.figure import Figure

    rows = report["by_model"][::-1]  # the first model on top
    names = [r["model_short"] for r in rows]
    y = np.arange(len(names))
    fig = Figure(figsize=(8.0, min(12.0, 2.6 + 0.42 * len(names))), layout="constrained")
    ax = fig.subplots()
    ax.barh(y + 0.2, [r["projected_cost_usd"] for r in rows], 0.4, label="projected")
    ax.barh(y - 0.2, [r["actual_cost_usd"] for r in rows], 0.4, label="actual (all attempts)")
    ax.set_yticks(y, names)
    ax.set_xlabel("cost (USD)")
    ax.grid(axis="x", alpha=0.3)
    kind = "simulated run" if report["simulated"] else "live run"
    ax.set_title(f"Projected vs actual cost by model ({kind})")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _write_markdown(path: Path, report: dict[str, Any]) -> Path:
    import jinja2

    source = (Path(__file__).parent.parent / "templates" / "run_report.md.j2").read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             autoescape=False)
    env.filters["usd"] = usd
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:+.1f} %"
    env.filters["share"] = lambda v: "-" if v is None else f"{100 * v:.1f} %"
    env.filters["sec"] = lambda v: "-" if v is None else f"{v:.2f} s"
    env.filters["utc"] = lambda v: "-" if v is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v))
    env.filters["qual"] = lambda v: "-" if v is None else f"{v:.3f}"
    env.filters["interval"] = lambda row: ("-" if row.get("ci95_low") is None else
                                           f"{row['ci95_low']:.3f} - {row['ci95_high']:.3f} ({row['interval']})")
    env.filters["cell"] = lambda v: "-" if v in (None, "") else str(v).replace("|", "\\|").replace("\n", " ")
    text = env.from_string(source).render(r=report, max_rows=20)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
