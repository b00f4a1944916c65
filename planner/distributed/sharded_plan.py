"""A sharded plan (``routeplan solve TASKS --workers N -o DIR``) as the :class:`Plan` that
``routeplan run`` executes.

The parts hold each task's model (null: queued), cost and quality; ``summary.json`` holds the
planner's figures and what the plan was made from (``source``: the task file with its size,
mtime and SHA-256, the catalog file and the snapshot of every offering it priced, the goal,
the limits, the models). A task's prompt, ``max_tokens``, check, projections and fallbacks
come from the task file, which is read a chunk of rows at a time and formulated exactly as
the planner's workers formulated it. Every row of a part must match it (task id, a model
that can serve the task, cost and quality as planned), so a changed task file or catalog is
refused in one line, never run against a plan of other content.

Memory: the executor holds the whole plan (every task's messages, as it does a plan.json);
on top of it, one chunk's formulation (at most ``CHUNK_ROWS`` tasks) at a time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from planner.errors import InputError
from planner.plan import (
    Assignment,
    BindingLimit,
    Limits,
    ModelSnapshot,
    Plan,
    QueuedTask,
    SolverInfo,
    Totals,
)

#: Tasks formulated at a time while a plan is rebuilt (its arrays are the transient memory).
CHUNK_ROWS = 50_000
#: A part's cost or quality against the one recomputed now: the same code on the same input
#: gives the same float; this only allows for a last-bit difference.
_REL_TOL = 1e-9
_COLUMNS = ("task_id", "model", "cost_usd", "quality")
_RERUN = "plan it again (`routeplan solve TASKS --workers N -o DIR`)"


def is_part(path: Path) -> bool:
    return path.name.startswith("part-") and path.suffix.lower() == ".parquet"


def load_sharded_plan(path: str | Path) -> Plan:
    """The plan in ``path`` (the folder of a sharded plan or its summary.json), rebuilt from
    its parts and the task file it was made from. InputError (one line, naming the file and
    the field) for a missing or mismatched part, a missing or changed task file or catalog."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if is_part(path):
        raise InputError(f"one part of a sharded plan: run the whole plan, its folder (`routeplan run {folder}`)",
                         file=str(path))
    summary_file = folder / "summary.json"
    summary = _summary(summary_file)
    source = _source(summary, summary_file)
    tasks_file = _tasks_file(source, summary_file)
    catalog, models = _catalog(source, summary_file)
    limits = _limits(source, summary_file)
    builder = _Builder(catalog=catalog, models=models, goal=str(source["goal"]), limits=limits,
                       model_names=source.get("models"), tasks_file=tasks_file)
    parts = _parts(summary, summary_file)
    for part in parts:
        builder.add_part(folder / part["file"], part["rows"], part["row_groups"], summary_file)
    if builder.n_tasks != summary.get("n_tasks", builder.n_tasks):
        raise InputError(f"n_tasks: {summary['n_tasks']}, but its parts hold {builder.n_tasks} task(s)",
                         file=str(summary_file))
    return builder.plan(summary, source, folder)


# ---------------------------------------------------------------------- summary.json
def _summary(summary_file: Path) -> dict[str, Any]:
    try:
        data = json.loads(summary_file.read_text())
    except FileNotFoundError:
        raise InputError("no such file: a sharded plan's folder holds summary.json and its parts",
                         file=str(summary_file)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a sharded plan's summary (unreadable JSON: {str(exc).splitlines()[0]})",
                         file=str(summary_file)) from None
    if not isinstance(data, dict):
        raise InputError("not a sharded plan's summary: expected a JSON object", file=str(summary_file))
    if data.get("objective") is None:
        raise InputError(f"status: {data.get('status')!r}: the planner found no plan to run"
                         + (f" ({data['message']})" if data.get("message") else ""), file=str(summary_file))
    return data


def _source(summary: dict[str, Any], summary_file: Path) -> dict[str, Any]:
    source = summary.get("source")
    if not isinstance(source, dict):
        raise InputError(f"source: missing: this plan does not say which task file it was made from (written "
                         f"by an older routeplan); {_RERUN}", file=str(summary_file))
    if source.get("kind") != "task_file":
        raise InputError(f"source.kind: {source.get('kind')!r}: only a plan of a task file can run (its "
                         f"prompts are in the task file)", file=str(summary_file))
    for key in ("tasks_file", "goal", "limits", "offerings"):
        if key not in source:
            raise InputError(f"source.{key}: missing; {_RERUN}", file=str(summary_file))
    return source


def _tasks_file(source: dict[str, Any], summary_file: Path) -> Path:
    """The task file, refused when it is missing or differs from the one planned (size, SHA-256)."""
    from planner.distributed.shards import file_identity

    ident = source["tasks_file"]
    if not isinstance(ident, dict) or not all(k in ident for k in ("path", "size", "sha256")):
        raise InputError(f"source.tasks_file: expected its path, size and sha256; {_RERUN}", file=str(summary_file))
    path = Path(ident["path"])
    if not path.is_file():
        raise InputError(f"no such file: the task file this plan was made from ({summary_file}: "
                         f"source.tasks_file.path)", file=str(path))
    if path.stat().st_size != ident["size"]:
        raise InputError(f"changed since it was planned: {path.stat().st_size} bytes, {ident['size']} when "
                         f"planned ({summary_file}: source.tasks_file.size); {_RERUN}", file=str(path))
    now = file_identity(path)
    if now["sha256"] != ident["sha256"]:
        raise InputError(f"changed since it was planned: its SHA-256 differs from {summary_file}'s "
                         f"source.tasks_file.sha256; {_RERUN}", file=str(path))
    return path


def _catalog(source: dict[str, Any], summary_file: Path) -> tuple[Any, list[ModelSnapshot]]:
    """The catalog (its offerings as they were priced when planned: a changed one is refused)
    and the planned snapshots of its offerings."""
    from planner.catalog import load_catalog

    catalog = load_catalog(source.get("catalog_file"))
    models = source.get("models")
    priced = catalog.select(models) if models else catalog
    try:
        planned = [ModelSnapshot.model_validate(o) for o in source["offerings"]]
    except (ValidationError, TypeError) as exc:
        raise InputError(f"source.offerings: not model snapshots ({str(exc).splitlines()[0]})",
                         file=str(summary_file)) from None
    now = [o.snapshot() for o in priced.offerings]
    where = source.get("catalog_file") or "the default catalog"
    if [m.name for m in now] != [m.name for m in planned]:
        raise InputError(f"source.offerings: planned on {', '.join(m.name for m in planned)}; {where} now has "
                         f"{', '.join(m.name for m in now)}; {_RERUN}", file=str(summary_file))
    for old, new in zip(planned, now, strict=True):
        if old != new:
            fields = [k for k in ModelSnapshot.model_fields if getattr(old, k) != getattr(new, k)]
            raise InputError(f"source.offerings: {old.name}: {fields[0]} was {getattr(old, fields[0])!r} when "
                             f"planned, {getattr(new, fields[0])!r} in {where} now; {_RERUN}",
                             file=str(summary_file))
    return catalog, planned


def _limits(source: dict[str, Any], summary_file: Path) -> Limits:
    try:
        return Limits.model_validate(source["limits"])
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(f"source.limits.{loc}: {err['msg']}", file=str(summary_file)) from None


def _parts(summary: dict[str, Any], summary_file: Path) -> list[dict[str, Any]]:
    parts = summary.get("parts")
    if not isinstance(parts, list) or not parts:
        raise InputError(f"parts: missing; {_RERUN}", file=str(summary_file))
    for k, part in enumerate(parts):
        if not (isinstance(part, dict) and isinstance(part.get("file"), str) and isinstance(part.get("rows"), int)
                and isinstance(part.get("row_groups"), list) and part["row_groups"]
                and Path(part["file"]).name == part["file"]):
            raise InputError(f"parts[{k}]: expected file, rows and row_groups", file=str(summary_file))
    return sorted(parts, key=lambda p: p.get("shard", 0))


# ---------------------------------------------------------------------- the plan, chunk by chunk
@dataclass
class _Builder:
    """Accumulates the entries and the totals of the plan, one chunk of tasks at a time."""

    catalog: Any
    models: list[ModelSnapshot]
    goal: str
    limits: Limits
    model_names: list[str] | None
    tasks_file: Path
    assignments: list[Assignment] = field(default_factory=list)
    queued: list[QueuedTask] = field(default_factory=list)
    used: set[int] = field(default_factory=set)
    judges: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    n_tasks: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("cost", "worst", "latency", "quality", "budget_used", "max_latency"), 0.0))
    model_latency: Any = None  # per offering: latency summed over its tasks (the makespan)
    concurrency: Any = None
    capacity: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # row -> (limit, used per offering)
    counts: Any = None
    share_cap: Any = None

    def add_part(self, part_file: Path, rows: int, row_groups: list[int], summary_file: Path) -> None:
        import pyarrow.parquet as pq

        if not part_file.is_file():
            raise InputError(f"missing part: {summary_file.name} lists it (parts[].file)", file=str(part_file))
        try:
            table = pq.read_table(part_file)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
            raise InputError(f"malformed Parquet: {str(exc).splitlines()[0]}", file=str(part_file)) from None
        missing = [c for c in _COLUMNS if c not in table.column_names]
        if missing:
            raise InputError(f"column {missing[0]}: missing; a part has {', '.join(_COLUMNS)}", file=str(part_file))
        if table.num_rows != rows:
            raise InputError(f"{table.num_rows} row(s), {summary_file.name} says {rows} (parts[].rows)",
                             file=str(part_file))
        cols = {c: table.column(c).to_pylist() for c in _COLUMNS}
        del table
        try:
            tf = pq.ParquetFile(self.tasks_file)
            first_row = sum(tf.metadata.row_group(g).num_rows for g in range(row_groups[0]))
            batches = tf.iter_batches(batch_size=CHUNK_ROWS, row_groups=row_groups)
        except Exception as exc:  # noqa: BLE001 - a row group the file does not have, a bad file
            raise InputError(f"row groups {row_groups[0]}-{row_groups[-1]} ({part_file.name}): cannot read "
                             f"them ({str(exc).splitlines()[0]})", file=str(self.tasks_file)) from None
        done = 0
        for batch in batches:
            n = batch.num_rows
            if done + n > rows:
                raise InputError(f"row {rows}: the part ends, but row groups {row_groups[0]}-{row_groups[-1]} of "
                                 f"{self.tasks_file} have more tasks: the part does not match the task file",
                                 file=str(part_file))
            chunk = {c: v[done:done + n] for c, v in cols.items()}
            self._add_chunk(batch.to_pandas(), chunk, done, first_row + done, part_file, row_groups)
            done += n
        if done != rows:
            raise InputError(f"row {done}: the task file's row groups {row_groups[0]}-{row_groups[-1]} end here, "
                             f"the part has {rows} rows: the part does not match the task file", file=str(part_file))

    def _add_chunk(self, df: Any, part: dict[str, list[Any]], row0: int, file_row0: int, part_file: Path,
                   row_groups: list[int]) -> None:
        from planner.formulation import formulate
        from planner.solve import judge_offerings, plan_entries
        from planner.tasks import frame_records, tasks_from_records

        tasks = tasks_from_records(frame_records(df), source=f"{self.tasks_file} (row groups "
                                   f"{row_groups[0]}-{row_groups[-1]})")
        del df
        for r, (t, got) in enumerate(zip(tasks, part["task_id"], strict=True)):
            if got != t.id:
                raise InputError(f"row {row0 + r}: task_id {got!r}, the task file's row {file_row0 + r} is "
                                 f"{t.id!r}: the part does not match the task file", file=str(part_file))
            if t.id in self.seen:
                raise InputError(f"row {file_row0 + r}: duplicate task id {t.id!r}; expected each task once",
                                 file=str(self.tasks_file))
            self.seen.add(t.id)
        f = formulate(tasks, self.catalog, goal=self.goal, limits=self.limits, models=self.model_names,
                      cascades=False)
        if f.problem.has_group_charges:
            raise InputError("prompt-prefix groups are priced together: not a plan the sharded planner makes; "
                             + _RERUN, file=str(self.tasks_file))
        a = self._columns(f, part, row0, part_file)
        self.judges |= judge_offerings(tasks, self.catalog)
        entries = plan_entries(f, a)
        self.assignments += entries.assignments
        self.queued += entries.queued
        self.used |= entries.used
        self.notes += [n for n in f.notes if n not in self.notes]
        self._totals(f, a)
        self.n_tasks += len(tasks)

    def _columns(self, f: Any, part: dict[str, list[Any]], row0: int, part_file: Path) -> Any:
        """Each task's offering column from the part's model, checked against the task file:
        a model that serves it, the cost and quality as planned."""
        index = {o.name: j for j, o in enumerate(f.offerings)}
        a = np.full(len(f.tasks), -1, np.int64)
        for i, (model, cost, quality) in enumerate(zip(part["model"], part["cost_usd"], part["quality"],
                                                       strict=True)):
            if model is None:
                continue
            where = f"row {row0 + i} ({f.tasks[i].id})"
            j = index.get(model)
            if j is None:
                raise InputError(f"{where}: model {model!r} is not among the offerings it was planned on "
                                 f"({', '.join(index)})", file=str(part_file))
            if not f.feasible[i, j]:
                raise InputError(f"{where}: model {model!r} cannot serve the task in the task file: the part does "
                                 f"not match the task file; {_RERUN}", file=str(part_file))
            for name, got, now in (("cost_usd", cost, f.cost_usd[i, j]), ("quality", quality, f.quality[i, j])):
                if got is None or not math.isclose(float(got), float(now), rel_tol=_REL_TOL, abs_tol=1e-15):
                    raise InputError(f"{where}: {name} {got!r} as planned, {float(now):.10g} from the task file "
                                     f"and catalog now: the part does not match them; {_RERUN}", file=str(part_file))
            a[i] = j
        return a

    def _totals(self, f: Any, a: Any) -> None:
        """The plan's totals and its global rows' use, summed chunk by chunk."""
        p, k = f.problem, len(f.offerings)
        served = np.flatnonzero(a >= 0)
        aj = a[served]
        lat = f.latency_s[served, aj]
        s = self.sums
        s["cost"] += float(f.cost_usd[served, aj].sum())
        s["worst"] += float(f.worst_cost_usd[served, aj].sum())
        s["latency"] += float(lat.sum())
        s["quality"] += float(f.quality[served, aj].sum())
        s["max_latency"] = max(s["max_latency"], float(lat.max()) if lat.size else 0.0)
        if self.model_latency is None:
            self.model_latency, self.counts = np.zeros(k), np.zeros(k, np.int64)
            self.concurrency, self.share_cap = p.makespan_concurrency, p.share_cap
        self.model_latency += np.bincount(aj, weights=lat, minlength=k)[:k]
        self.counts += np.bincount(aj, minlength=k)[:k]
        for row in p.capacity_rows():
            limit, used = self.capacity.setdefault(row.name, (row.limit, np.zeros(k)))
            used += np.bincount(aj, weights=row.load[served, aj], minlength=k)[:k]

    def plan(self, summary: dict[str, Any], source: dict[str, Any], folder: Path) -> Plan:
        from planner.solve import attach_judges, binding_limit

        n_assigned = len(self.assignments)
        s, lim = self.sums, self.limits
        makespan = 0.0
        if n_assigned:
            with np.errstate(divide="ignore", invalid="ignore"):
                per_model = np.where(np.isfinite(self.concurrency), self.model_latency / self.concurrency, 0.0)
            makespan = float(max(s["max_latency"], per_model.max()))
        totals = Totals(n_tasks=self.n_tasks, n_assigned=n_assigned, n_queued=len(self.queued),
                        projected_cost_usd=s["cost"], projected_worst_case_cost_usd=s["worst"], makespan_s=makespan,
                        mean_latency_s=s["latency"] / n_assigned if n_assigned else 0.0,
                        mean_quality=s["quality"] / n_assigned if n_assigned else 0.0)
        binding: list[BindingLimit] = []
        if lim.budget_usd is not None:
            binding.append(binding_limit("budget_usd", lim.budget_usd, s["cost"]))
        if lim.avg_quality is not None and n_assigned:
            binding.append(binding_limit("avg_quality", lim.avg_quality, totals.mean_quality, at_least=True))
        if lim.deadline_s is not None:
            binding.append(binding_limit("deadline_s (makespan)", lim.deadline_s, makespan))
        for name, (limit, used) in self.capacity.items():
            for j in np.flatnonzero(np.isfinite(limit) & (used >= 0.9 * limit) & (used > 0)):
                label = {"capacity": "model-seconds"}.get(name, name)
                binding.append(binding_limit(f"{self.models[j].name} {label}", limit[j], used[j]))
        if self.share_cap is not None:
            caps = np.floor(self.share_cap * self.n_tasks + 1e-9).astype(np.int64)
            for j in np.flatnonzero((caps < self.n_tasks) & (self.counts >= caps)):
                binding.append(binding_limit(f"{self.models[j].name} share (tasks)", caps[j], self.counts[j]))
        stats = summary.get("stats")
        info = SolverInfo(name="fast (sharded)", status=str(summary.get("status")),
                          objective=_finite(summary.get("objective")), bound=_finite(summary.get("bound")),
                          gap=_finite(summary.get("gap")), wall_time_s=float(summary.get("wall_s") or 0.0),
                          budget_shadow_price=_finite(summary.get("budget_shadow_price")),
                          stats=stats if isinstance(stats, dict) else {})
        notes = [*self.notes, f"rebuilt from the sharded plan in {folder} ({len(summary['parts'])} part(s)) and "
                 f"the task file it was made from"]
        plan = Plan(tasks_file=str(self.tasks_file), catalog=str(source.get("catalog") or "default"), goal=self.goal,
                    limits=self.limits, models=[self.models[j] for j in sorted(self.used)],
                    assignments=self.assignments, queued=self.queued, totals=totals, solver=info,
                    binding_limits=binding, notes=notes)
        return attach_judges(plan, self.judges)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None
