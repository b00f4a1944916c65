"""A plan for people (a rich table readable at a glance) and for programs (JSON, CSV, Parquet)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from planner.catalog import short_name
from planner.errors import InputError
from planner.money import usd
from planner.plan import Plan

MAX_TASK_ROWS = 25


def fit_name(name: str, width: int = 30) -> str:
    """A model name for a narrow column (``catalog.short_name``), cut to ``width`` with an ellipsis."""
    return cut(short_name(name), width)


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` with an ellipsis (a cascade's label is already in short names)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def plan_renderable(plan: Plan, max_rows: int = MAX_TASK_ROWS) -> Group:
    """Headline, per-model summary, per-task rows (first ``max_rows``), queued tasks, binding limits."""
    t, s = plan.totals, plan.solver
    gap = "n/a" if s.gap is None else ("0 (proven optimal)" if s.gap == 0 else f"{s.gap:.2g}")
    lim = plan.limits
    limits = [f"budget {usd(lim.budget_usd)}" if lim.budget_usd is not None else None,
              f"deadline {lim.deadline_s:g}s" if lim.deadline_s is not None else None,
              f"max latency {lim.max_latency_s:g}s" if lim.max_latency_s is not None else None,
              f"min quality {lim.min_quality:g}" if lim.min_quality is not None else None,
              f"avg quality {lim.avg_quality:g}" if lim.avg_quality is not None else None,
              "queue allowed" if lim.allow_queue else None]
    head = Text.assemble(
        ("Plan ", "bold"), (f"goal {plan.goal}", "bold cyan"),
        f"  ({', '.join(x for x in limits if x) or 'no limits'})\n",
        f"{t.n_assigned}/{t.n_tasks} tasks assigned, {t.n_queued} queued · cost {usd(t.projected_cost_usd)}"
        f" (worst case {usd(t.projected_worst_case_cost_usd)}) · makespan {t.makespan_s:.1f}s · "
        f"mean latency {t.mean_latency_s:.1f}s · mean quality {t.mean_quality:.3f}\n",
        (f"solver {s.name}: {s.status}, objective {s.objective if s.objective is None else f'{s.objective:.6g}'}"
         f", gap {gap}, {s.wall_time_s * 1000:.0f} ms", "dim"),
    )

    per: dict[str, list] = defaultdict(list)
    for a in plan.assignments:
        per[a.offering].append(a)  # a cascade is its own row: 'mixtral -> gpt-4 (agree: mixtral, yi-34b)'

    models = Table(title="By model", title_justify="left", show_edge=False)
    for col, just in (("model", "left"), ("mode", "left"), ("tasks", "right"), ("cost", "right"),
                      ("share", "right"), ("mean lat", "right"), ("mean qual", "right")):
        models.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    snaps = plan.model_by_name()
    total = t.projected_cost_usd or 1.0
    for name, rows in sorted(per.items(), key=lambda kv: -sum(a.projected_cost_usd for a in kv[1])):
        c = sum(a.projected_cost_usd for a in rows)
        models.add_row(Text(cut(name, 60) if rows[0].cascade is not None else fit_name(name)),
                       snaps[name].mode if name in snaps else "cascade", str(len(rows)), usd(c),
                       f"{c / total:.0%}", f"{sum(a.projected_latency_s for a in rows) / len(rows):.1f}s",
                       f"{sum(a.projected_quality for a in rows) / len(rows):.3f}")

    tasks = Table(title="By task", title_justify="left", show_edge=False)
    for col, just in (("task", "left"), ("model", "left"), ("cost", "right"),
                      ("latency", "right"), ("quality", "right"), ("fallback", "left")):
        tasks.add_column(col, justify=just, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         min_width=14 if col == "task" else None,
                         max_width=18 if col in ("task", "fallback") else None)
    for a in plan.assignments[:max_rows]:
        tasks.add_row(Text(a.task_id), Text(fit_name(a.model) if a.cascade is None else cut(a.cascade.label, 60)),
                      usd(a.projected_cost_usd),
                      f"{a.projected_latency_s:.1f}s", f"{a.projected_quality:.3f}",
                      Text(fit_name(a.fallbacks[0].model)) if a.fallbacks else "-")
    parts: list = [head, models, tasks]
    if len(plan.assignments) > max_rows:
        parts.append(Text(f"… {len(plan.assignments) - max_rows} more tasks (--format json or csv "
                          f"for all)", style="dim"))
    if plan.queued:
        q = Table(title=f"Queued ({len(plan.queued)})", title_justify="left", show_edge=False)
        q.add_column("task")
        q.add_column("reason", overflow="fold")
        for x in plan.queued[:max_rows]:
            q.add_row(Text(x.task_id), Text(x.reason))  # user text: no rich markup or emoji
        parts.append(q)
    if plan.prefix_groups:
        parts.append(prefix_group_table(plan, max_rows))
    shown = [b for b in plan.binding_limits if b.binding] or plan.binding_limits[:3]
    if shown:
        parts.append(Text("Limits: " + "; ".join(
            f"{b.name} {'BINDING' if b.binding else 'slack'} {b.slack:.6g} (used {b.used:.6g} of {b.limit:.6g})"
            for b in shown[:8]), style="yellow" if any(b.binding for b in shown) else "dim"))
    parts += [Text("Note: " + note, style="dim") for note in plan.notes]
    return Group(*parts)


def prefix_group_table(plan: Plan, max_rows: int = MAX_TASK_ROWS) -> Table:
    """Each prefix group's model, cached prefix, projected savings and send order (warm-up first)."""
    saved = sum(g.projected_savings_usd for g in plan.prefix_groups)
    table = Table(title=f"Prefix groups (cached prompt prefixes save {usd(saved)})", title_justify="left",
                  show_edge=False)
    for col, just in (("group", "left"), ("model", "left"), ("tasks", "right"), ("prefix tok", "right"),
                      ("cost", "right"), ("saved", "right"), ("send order", "left")):
        table.add_column(col, justify=just, no_wrap=col != "send order", overflow="ellipsis",  # type: ignore[arg-type]
                         max_width=30 if col == "send order" else None)
    for g in plan.prefix_groups[:max_rows]:
        order = g.send_order[0] + " (warms), then " + (
            f"{len(g.send_order) - 1} more" if len(g.send_order) > 1 else "none")
        table.add_row(Text(g.group), Text(fit_name(g.model)), str(g.n_tasks),
                      str(g.prefix_tokens) if g.cached else f"{g.prefix_tokens} (not cached)",
                      usd(g.projected_cost_usd), usd(g.projected_savings_usd),
                      Text(order if g.cached else "plan order"))
    return table


def print_plan(plan: Plan, console: Console | None = None, max_rows: int = MAX_TASK_ROWS) -> None:
    (console or Console()).print(plan_renderable(plan, max_rows))


def write_plan(plan: Plan, path: str | Path) -> Path:
    """Write by suffix: .json (the full plan), .csv or .parquet (one row per task)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv", ".parquet"):
        raise InputError(f"--out: expected a .json, .csv or .parquet file name, got {path.name!r}")
    if path.is_dir():
        raise InputError("--out: expected a file name, but it is a folder", file=str(path))
    try:
        if suffix == ".json":
            return plan.save(path)
        from planner.solve import plan_tasks_frame

        df = plan_tasks_frame(plan)
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            df.to_csv(path, index=False)
        else:
            df.to_parquet(path, index=False)
    except OSError as exc:
        raise InputError(f"--out: cannot write it: {exc.strerror or exc}", file=str(path)) from None
    return path


def plan_csv(plan: Plan) -> str:
    from planner.solve import plan_tasks_frame

    return str(plan_tasks_frame(plan).to_csv(index=False))
