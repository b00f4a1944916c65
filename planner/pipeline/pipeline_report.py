"""The pipeline's markdown report, in the demo's shape: Configuration, Task Routing, Batch
Optimization, Budget Tracking, ROI, and whether the run was live or simulated.

Built from the run's state (results and the shared budget), not from a template in the
pipeline file, so that a run stopped by a failing step still reports everything it spent.
"""

from __future__ import annotations

import statistics
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from planner.catalog import short_name
from planner.errors import InputError
from planner.money import usd

if TYPE_CHECKING:
    from planner.pipeline.runner import PipelineRun, StepContext
    from planner.pipeline.tools import ReportParams

EXCERPT_CHARS = 400


def write_pipeline_report(params: ReportParams, ctx: StepContext) -> dict[str, Any]:
    """Render the report, write it under the run's output folder, keep it on the run."""
    rel = PurePosixPath(params.path)
    if rel.is_absolute() or ".." in rel.parts:
        raise InputError(f"step {ctx.step_id}: parameters.path: expected a path inside the "
                         f"output folder, got {params.path!r}")
    markdown = render_pipeline_report(ctx.run, params.title)
    path = ctx.run.options.out_dir / Path(*rel.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(markdown)
    tmp.replace(path)
    ctx.run.report_path = path
    ctx.run.report_markdown = markdown
    return {"path": str(path), "markdown": markdown}


def render_pipeline_report(run: PipelineRun, title: str) -> str:
    """The report as markdown (one string)."""
    steps = _steps_by_action(run)
    parts = [f"# {title}", "", _mode_line(run), ""]
    failed = run.failed
    if failed is not None:
        parts += [f"> **Stopped:** {failed.error}. Everything done before it is reported "
                  "below; nothing spent is left out.", ""]
    parts += _configuration(run, steps)
    parts += _task_routing(run, steps)
    for step_id in steps["optimize_batch"]:
        parts += _batch(step_id, run.results[step_id])
    parts += _budget(run)
    parts += _roi(run, steps)
    parts += ["---", "", _mode_line(run), ""]
    return "\n".join(parts)


def _steps_by_action(run: PipelineRun) -> dict[str, list[str]]:
    """Step ids that finished, by action name, in run order."""
    out: dict[str, list[str]] = {"route": [], "generate_text": [], "optimize_batch": []}
    for record in run.records:
        if record.status == "done" and record.action in out:
            out[record.action].append(record.step_id)
    return out


def _mode_line(run: PipelineRun) -> str:
    if run.simulated:
        return ("*Simulated run: no provider was called. Outputs, tokens and latencies come from "
                "routeplan's simulator; costs are those tokens at each model's real prices.*")
    return "*Live run: every call went to a real provider; costs are the providers' charges.*"


def _configuration(run: PipelineRun, steps: dict[str, list[str]]) -> list[str]:
    from planner.goals import PRIORITY_GOALS

    lines = ["## Configuration", "", f"- Budget: ${run.budget.initial_usd:,.2f} "
             "(shared by every step)"]
    for name, value in run.inputs.items():
        if name == "priority" and value in PRIORITY_GOALS:
            lines.append(f"- Priority: {value} (goal `{PRIORITY_GOALS[value]}`)")
        elif not (isinstance(value, float) and value == run.budget.initial_usd):
            lines.append(f"- {name.replace('_', ' ').capitalize()}: {value}")
    for step_id in steps["route"]:
        solver = run.results[step_id].get("solver") or {}
        lines.append(f"- Routing solver ({step_id}): {solver.get('name', '?')}, "
                     f"status {solver.get('status', '?')}, {solver.get('wall_time_s', 0):.3f} s")
    lines.append(f"- Execution: {'live providers' if run.options.live else 'simulator'}, "
                 f"seed {run.options.seed}")
    return [*lines, ""]


def _name(model: str | None) -> str | None:
    """A model as tables print it (catalog.short_name); results.json keeps the litellm id."""
    return short_name(model) if model else None


def _task_routing(run: PipelineRun, steps: dict[str, list[str]]) -> list[str]:
    lines = ["## Task Routing", ""]
    for step_id in steps["route"]:
        r = run.results[step_id]
        queued = f", {r['n_queued']} queued" if r["n_queued"] else ""
        lines += [f"Routing plan `{step_id}`: goal `{r['goal']}`, projected "
                  f"{usd(r['projected_cost_usd'])} for {r['n_tasks']} tasks{queued}.", "",
                  "| # | Task | Recommended model | Est. cost | Latency | Quality | Next best | Reason |",
                  "|---|------|-------------------|-----------|---------|---------|-----------|--------|"]
        for i, rec in enumerate(r["recommendations"]):
            nxt = ", ".join(short_name(alt["model"]) for alt in rec["ranked"][1:3]) or "-"
            lat = f"{rec['latency_s']:.1f} s" if rec["latency_s"] is not None else "-"
            q = f"{rec['quality']:.2f}" if rec["quality"] is not None else "-"
            lines.append(f"| {i} | {rec['task']} | {_name(rec['model']) or 'queued'} | "
                         f"{usd(rec['estimated_cost_usd'])} | {lat} | {q} | {nxt} | "
                         f"{rec['reason']} |")
        lines.append("")
    for step_id in steps["generate_text"]:
        g = run.results[step_id]
        lines += [f"### {step_id}", "",
                  f"- Assigned model: {_name(g['model']) or '(none: queued by routing)'}",
                  f"- Status: {g['status']}" + (f" ({g['reason']})" if g.get("reason") else ""),
                  f"- Estimated cost: {usd(g['estimated_cost_usd'])}",
                  f"- Actual cost: {usd(g['actual_cost_usd'])}"]
        if g["status"] == "done":
            lines.append(f"- Tokens in/out: {g['input_tokens']}/{g['output_tokens']}; "
                         f"latency {g['latency_s']:.2f} s; quality {g['quality']:.2f} (projected)")
            if g.get("grader"):
                lines.append(f"- Check ({g['grader']}): {_score(g.get('score'))}; {g.get('grade_reason') or ''}")
            lines += ["", *_result_block(g)]
        lines.append("")
    if not steps["route"] and not steps["generate_text"]:
        lines += ["No routing step finished.", ""]
    return lines


def _result_block(g: dict[str, Any]) -> list[str]:
    text = (g.get("result") or "").strip()
    if g.get("task_type") == "code":
        if "```" in text:  # keep the model's own fenced block
            start = text.index("```")
            end = text.find("```", start + 3)
            return [text[start:end + 3] if end != -1 else text[start:] + "\n```"]
        return ["```python", text, "```"]
    excerpt = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " ..."
    return ["> " + line if line else ">" for line in excerpt.splitlines()] or ["> (empty)"]


def _batch(step_id: str, b: dict[str, Any]) -> list[str]:
    kind = {"translate": "Translation"}.get(b.get("task_type") or "", "")
    lines = [f"## Batch {kind + ' ' if kind else ''}Optimization", "",
             f"- Step: `{step_id}`",
             f"- Optimization goal: `{b['goal']}`",
             f"- Total tasks: {b['total_tasks']} ({b['n_done']} done, {b['n_queued']} queued, "
             f"{b['n_failed']} failed)",
             f"- Models used: {', '.join(short_name(m) for m in b['models_used']) or 'none'}",
             f"- Total cost: {usd(b['total_cost_usd'])} (projected {usd(b['projected_cost_usd'])})",
             f"- Average per task: {usd(b['average_cost_per_task_usd'])}", "",
             "| Task | Model | Cost | Check | Result |", "|------|-------|------|-------|--------|"]
    for t in b["results"]:
        out = (t.get("result") or t.get("reason") or "").strip().replace("\n", " ").replace("|", "\\|")
        out = out if len(out) <= 120 else out[:117] + "..."
        check = "-" if not t.get("grader") else f"{t['grader']} {_score(t.get('score'))}"
        lines.append(f"| {t['prompt']} | {_name(t['model']) or t['status']} | "
                     f"{usd(t['actual_cost_usd'])} | {check} | {out} |")
    return [*lines, ""]


def _budget(run: PipelineRun) -> list[str]:
    b = run.budget
    lines = ["## Budget Tracking", "", f"- Initial budget: ${b.initial_usd:,.2f}", "",
             "| Step | Available | Projected | Spent | Done | Queued | Failed |",
             "|------|-----------|-----------|-------|------|--------|--------|"]
    for s in b.steps:
        lines.append(f"| {s.step_id} | {usd(s.available_usd)} | {usd(s.projected_usd)} | "
                     f"{usd(s.spent_usd)} | {s.n_done} | {s.n_queued} | {s.n_failed} |")
    projected = sum(s.projected_done_usd for s in b.steps)
    lines += ["", f"- Spent: {usd(b.spent_usd)} "
              f"({100 * b.spent_usd / b.initial_usd:.2f}% of the budget)",
              f"- Remaining budget: {usd(b.remaining_usd)}"]
    if projected > 0:
        lines.append(f"- Projection error (tasks that ran): actual {usd(b.spent_usd)} vs "
                     f"projected {usd(projected)} ({100 * (b.spent_usd - projected) / projected:+.1f}%)")
    queued = [(s.step_id, task, why) for s in b.steps for task, why in s.queued]
    if queued:
        lines += ["", f"**{len(queued)} task(s) queued: the budget left could not cover them "
                  "(nothing was sent for them):**", ""]
        lines += [f"- {step}{'' if task == step else f' / {task}'}: {why}"
                  for step, task, why in queued]
    else:
        lines.append("- Queued: none; the budget covered every task")
    return [*lines, ""]


def _roi(run: PipelineRun, steps: dict[str, list[str]]) -> list[str]:
    done = _done_tasks(run, steps)
    total = sum(s.n_done + s.n_queued + s.n_failed for s in run.budget.steps)
    spent = run.budget.spent_usd
    lines = ["## ROI", ""]
    if not done:
        return [*lines, f"- No task finished ({total} planned); nothing to rate.", ""]
    # measured by its check where a task has one (and it was graded), else the projection
    quality = [score if score is not None else projected for projected, score, _ in done]
    latency = [lat for _, _, lat in done]
    points = sum(quality)
    n_measured = sum(score is not None for _, score, _ in done)
    if n_measured == len(done):
        basis = f"measured by each task's check, {len(done)} tasks"
    elif n_measured:
        projected = statistics.fmean(p for p, score, _ in done if score is not None)
        basis = (f"measured by their checks for {n_measured} of {len(done)} tasks (projected "
                 f"{projected:.3f} for those), the catalog's projection for the "
                 f"{len(done) - n_measured} without a check")
    else:
        basis = f"catalog quality of the model that ran each task, {len(done)} tasks; no task has a check"
    lines += [f"- Mean quality score: {statistics.fmean(quality):.3f} ({basis})",
              f"- Completion time: {run.elapsed_s:.2f} s wall for the pipeline; model latency "
              f"{sum(latency):.2f} s summed, {max(latency):.2f} s longest",
              f"- Cost per quality point: {usd(spent / points)} (spend / sum of quality "
              "scores; a task at quality 1.0 is one point)",
              f"- Efficiency rating: {_rating(len(done), total, spent, run.budget.initial_usd)}"]
    return [*lines, ""]


def _done_tasks(run: PipelineRun, steps: dict[str, list[str]]) -> list[tuple[float, float | None, float]]:
    """(projected quality, measured score or None, latency_s) of every task that finished,
    across LLM and batch steps."""
    out = [(g["quality"], g.get("score"), g["latency_s"])
           for g in (run.results[s] for s in steps["generate_text"]) if g["status"] == "done"]
    for s in steps["optimize_batch"]:
        out += [(t["quality"], t.get("score"), t["latency_s"]) for t in run.results[s]["results"]
                if t["status"] == "done"]
    return out


def _score(score: float | None) -> str:
    return "not graded" if score is None else f"score {score:.2f}"


def _rating(n_done: int, n_total: int, spent_usd: float, budget_usd: float) -> str:
    """A label for what share of the work was done and what share of the budget it took."""
    share_done = n_done / n_total if n_total else 0.0
    share_spent = spent_usd / budget_usd if budget_usd else 0.0
    if share_done == 1.0:
        label = "Excellent" if share_spent <= 0.5 else "Good"
    elif share_done >= 0.5:
        label = "Fair"
    else:
        label = "Poor"
    return (f"{label} ({n_done} of {n_total} tasks done using {100 * share_spent:.2f}% of the "
            "budget; Excellent = all done within half the budget, Good = all done, "
            "Fair = at least half done)")
