"""Where the sharded planner's tasks come from: one shard of tasks at a time, on a worker.

A source is a small picklable object: ``n_shards``, ``load(i) -> Shard`` (the shard's
:class:`solvers.Problem`, its task ids and the model names) and, optionally,
``summary(shard)`` / ``limit(summaries)`` when the global limit depends on every shard
(the synthetic source's budget). The full coefficient arrays never exist in one process:
each worker loads its shards and keeps only them.

- :class:`TaskFileSource`: a Parquet task file, one shard per run of consecutive row groups,
  validated and formulated on the worker exactly as ``routeplan solve`` does;
- :class:`SyntheticSource`: seeded realistic batches generated shard by shard (prices over
  100x, type-dependent quality, log-normal tokens, context exclusions, priorities 1-3), for
  dry runs and benchmarks at sizes no file holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solvers import Goal, Problem


@dataclass
class Shard:
    """One shard's problem (its rows of the global one, the global limit as given)."""

    problem: Problem
    model_names: list[str]
    task_ids: Sequence[str] | None = None  # None: "t<global index>"


# ---------------------------------------------------------------------- a Parquet task file
@dataclass(frozen=True)
class TaskFileSource:
    """Shards of a Parquet task file: consecutive row groups up to ``rows_per_shard`` rows
    (write the file with row groups, e.g. ``row_group_size=100_000``; one row group is one
    shard at least)."""

    path: str
    catalog: Any  # a planner.catalog.Catalog (picklable)
    goal: str
    limits: Any  # planner.plan.Limits
    models: tuple[str, ...] | None = None
    rows_per_shard: int = 200_000
    #: the catalog file ``catalog`` was loaded from (None: the shipped default), recorded in the
    #: plan's summary.json so ``routeplan run`` can rebuild the tasks' entries
    catalog_file: str | None = None

    def groups(self) -> list[list[int]]:
        import pyarrow.parquet as pq

        from planner.errors import InputError

        if Path(self.path).suffix.lower() != ".parquet":
            raise InputError("--workers: the task file must be Parquet (its row groups are read "
                             "shard by shard on the workers)", file=self.path)
        try:
            meta = pq.ParquetFile(self.path).metadata
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise InputError(f"malformed Parquet: {str(exc).splitlines()[0]}", file=self.path) from None
        out: list[list[int]] = []
        rows = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if not out or rows + n > self.rows_per_shard:
                out.append([])
                rows = 0
            out[-1].append(g)
            rows += n
        return out

    @property
    def n_shards(self) -> int:
        return len(self.groups())

    def load(self, i: int) -> Shard:
        import pyarrow.parquet as pq

        from planner.formulation import formulate
        from planner.tasks import frame_records, tasks_from_records

        groups = self.groups()[i]
        df = pq.ParquetFile(self.path).read_row_groups(groups).to_pandas()
        tasks = tasks_from_records(frame_records(df), source=f"{self.path} (row groups {groups[0]}-{groups[-1]})")
        f = formulate(tasks, self.catalog, goal=self.goal, limits=self.limits, models=self.models)
        return Shard(f.problem, [o.name for o in f.offerings], [t.id for t in tasks])

    def describe(self) -> dict[str, Any]:
        """What ``routeplan run`` needs to rebuild the plan's tasks from this file (recorded in
        summary.json as ``source``): the task file with its size, mtime and SHA-256 (a changed
        file is refused), the catalog file and the snapshot of every offering it priced, the
        goal, the limits and the model selection, the rows per shard."""
        catalog = self.catalog.select(self.models) if self.models else self.catalog
        return {"kind": "task_file", "tasks_file": file_identity(self.path),
                "catalog_file": None if self.catalog_file is None else str(Path(self.catalog_file).resolve()),
                "catalog": self.catalog.name, "goal": self.goal,
                "limits": self.limits.model_dump(mode="json"),
                "models": None if not self.models else list(self.models), "rows_per_shard": self.rows_per_shard,
                "offerings": [o.snapshot().model_dump(mode="json") for o in catalog.offerings]}


def file_identity(path: str | Path) -> dict[str, Any]:
    """A file's absolute path, size, mtime (ns) and SHA-256: what ties a plan to its task file."""
    import hashlib

    p = Path(path).resolve()
    st = p.stat()
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()}


# ---------------------------------------------------------------------- synthetic batches
N_TASK_TYPES = 8
CASES = ("budget", "avg-quality", "budget-capacity")
#: The budget-capacity case's capacity: this x a model's fair share of the batch's expected seconds.
CAPACITY_SHARE = 1.5


@dataclass(frozen=True)
class SyntheticSource:
    """``n_tasks`` x ``n_models`` generated ``shard_tasks`` at a time; the models are drawn
    from ``seed`` alone, each shard's tasks from (seed, shard).

    ``budget``: maximise priority-weighted quality under a budget a third of the way from
    the cheapest plan's cost to the best-quality plan's cost; ``avg-quality``: minimise cost
    under a mean-quality floor half way from the cheapest plan's to the best reachable;
    ``budget-capacity``: the budget case, each model also limited to
    :data:`CAPACITY_SHARE` x its fair share (1 / n_models) of the batch's expected seconds
    of that model's time (the load: each task's latency), fast's Lagrangian path.
    The budget and the floor need every shard (:meth:`summary`, :meth:`limit`).
    """

    n_tasks: int
    n_models: int = 20
    shard_tasks: int = 250_000
    seed: int = 0
    case: str = "budget"

    def __post_init__(self) -> None:
        if self.case not in CASES:
            raise ValueError(f"case: expected one of {CASES}, got {self.case!r}")

    @property
    def n_shards(self) -> int:
        return -(-self.n_tasks // self.shard_tasks)

    def _models(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        k = self.n_models
        price_in = np.exp(rng.uniform(np.log(0.1), np.log(10.0), k))
        rank = np.argsort(np.argsort(price_in)) / max(k - 1, 1)
        ability = np.clip(0.55 + 0.33 * rank + rng.normal(0, 0.05, k), 0.3, 0.97)
        context = np.where(rng.random(k) < 0.25, 16_000, 128_000)
        context[np.argmax(ability)] = 200_000
        return {"price_in": price_in, "price_out": price_in * rng.uniform(3.0, 5.0, k), "ability": ability,
                "verbosity": rng.uniform(0.8, 1.3, k), "tokens_per_s": rng.uniform(30, 200, k),
                "ttft_s": rng.uniform(0.2, 1.5, k), "context": context,
                "affinity": rng.normal(0, 0.07, (N_TASK_TYPES, k))}

    def load(self, i: int) -> Shard:
        m = self._models()
        start = i * self.shard_tasks
        n = min(self.shard_tasks, self.n_tasks - start)
        rng = np.random.default_rng([self.seed, i + 1])
        task_type = rng.integers(0, N_TASK_TYPES, n)
        difficulty = rng.beta(2, 3, n)
        in_tok = np.minimum(rng.lognormal(np.log(800), 1.0, n), 150_000)
        out_jk = rng.lognormal(np.log(300), 0.6, n)[:, None] * m["verbosity"][None, :]
        cost = (in_tok[:, None] * m["price_in"][None, :] + out_jk * m["price_out"][None, :]) / 1e6
        ability = m["ability"][None, :]
        quality = ability + m["affinity"][task_type] - 0.35 * difficulty[:, None] * (1 - ability)
        quality = np.clip(quality + rng.normal(0, 0.03, quality.shape), 0.0, 1.0)
        latency = m["ttft_s"][None, :] + out_jk / m["tokens_per_s"][None, :]
        feasible = in_tok[:, None] + out_jk <= m["context"][None, :]
        priority = rng.integers(1, 4, n).astype(float)
        common = dict(cost=cost, quality=quality, latency=latency, feasible=feasible, priority=priority)
        if self.case == "budget-capacity":  # expected seconds per task: E[lognormal] = e^(mu + s^2 / 2)
            seconds = m["ttft_s"] + 300 * np.exp(0.6**2 / 2) * m["verbosity"] / m["tokens_per_s"]
            capacity = CAPACITY_SHARE * self.n_tasks / self.n_models * seconds
            p = Problem(**common, load=latency, capacity=capacity, budget=1.0,  # type: ignore[arg-type]
                        goal=Goal.MAXIMIZE_QUALITY)
        elif self.case == "budget":  # the limit is set by limit(); 1.0 stands in until then
            p = Problem(**common, budget=1.0, goal=Goal.MAXIMIZE_QUALITY)  # type: ignore[arg-type]
        else:
            p = Problem(**common, min_avg_quality=0.5, goal=Goal.MINIMIZE_COST)  # type: ignore[arg-type]
        return Shard(p, [f"model-{j:02d}" for j in range(self.n_models)])

    def summary(self, shard: Shard) -> dict[str, float]:
        """Sums over the shard of the cheapest and the best-quality plans (for :meth:`limit`)."""
        p = shard.problem
        assert p.cost is not None and p.quality is not None
        mask, rows = p.feasible_mask, np.arange(p.n_tasks)
        cheapest = np.argmin(np.where(mask, p.cost, np.inf), axis=1)
        best = np.argmax(np.where(mask, p.quality, -np.inf), axis=1)
        return {"n": float(p.n_tasks), "cost_lo": float(p.cost[rows, cheapest].sum()),
                "cost_hi": float(p.cost[rows, best].sum()), "q_lo": float(p.quality[rows, cheapest].sum()),
                "q_hi": float(p.quality[rows, best].sum())}

    def limit(self, summaries: list[dict[str, float]]) -> float:
        tot = {k: sum(s[k] for s in summaries) for k in summaries[0]}
        if self.case != "avg-quality":
            return tot["cost_lo"] + (tot["cost_hi"] - tot["cost_lo"]) / 3
        return (tot["q_lo"] + (tot["q_hi"] - tot["q_lo"]) / 2) / tot["n"]
