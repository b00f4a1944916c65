"""Shard sources for the tests (importable by the Ray workers: they run from the repo root)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.distributed.shards import Shard, SyntheticSource
from solvers import Goal, Problem


@dataclass(frozen=True)
class TiesSource:
    """Few distinct tasks repeated (many increments of equal efficiency at the cut), some
    tasks with no feasible model, queuing allowed, integer objective: the corner cases of
    the cut's order and of the queue."""

    n_tasks: int = 9_000
    shard_tasks: int = 2_500
    budget: float = 900.0

    @property
    def n_shards(self) -> int:
        return -(-self.n_tasks // self.shard_tasks)

    def load(self, i: int) -> Shard:
        start = i * self.shard_tasks
        n = min(self.shard_tasks, self.n_tasks - start)
        g = np.arange(start, start + n)
        kind = g % 7
        cost = np.array([[0.01, 0.05, 0.2, 0.3, 0.6]])[0][None, :] * (1 + kind[:, None] % 3)
        quality = np.clip(0.5 + 0.1 * np.arange(5)[None, :] - 0.05 * (kind[:, None] % 2), 0, 1)
        feasible = np.ones((n, 5), bool)
        feasible[g % 97 == 5] = False  # no model at all: queued
        feasible[g % 11 == 3, 4] = False
        p = Problem(cost=cost, quality=np.round(quality * 10) / 10, feasible=feasible,
                    priority=np.ones(n) * 10, budget=self.budget, allow_queue=True, goal=Goal.MAXIMIZE_QUALITY)
        return Shard(p, [f"m{j}" for j in range(5)], [f"task-{x}" for x in g])


@dataclass(frozen=True)
class CoupledSource:
    """Realistic batches (:class:`SyntheticSource`'s) with the limits that couple the tasks
    beyond one knapsack: per-model capacities, share caps, a budget and an average-quality
    floor, in any combination (fast's Lagrangian path). Limits are fixed from shard 0's
    numbers, so every shard states the same batch-wide limits."""

    n_tasks: int = 24_000
    shard_tasks: int = 7_000
    n_models: int = 10
    seed: int = 3
    budget: float | None = 1 / 3  # of the way from the cheapest plan's cost to the best plan's
    floor: float | None = None  # of the way from the cheapest plan's mean quality to the best's
    capacity: float | None = 1.6  # each model's capacity: this x its fair share of the load
    share_cap: float | None = None
    allow_queue: bool = False

    @property
    def n_shards(self) -> int:
        return -(-self.n_tasks // self.shard_tasks)

    def _synthetic(self) -> SyntheticSource:
        return SyntheticSource(self.n_tasks, self.n_models, self.shard_tasks, self.seed)

    def _limits(self) -> dict[str, float]:
        p = self._synthetic().load(0).problem
        assert p.cost is not None and p.quality is not None
        rows = np.arange(p.n_tasks)
        cheap = np.argmin(np.where(p.feasible_mask, p.cost, np.inf), axis=1)
        best = np.argmax(np.where(p.feasible_mask, p.quality, -np.inf), axis=1)
        out = {}
        if self.budget is not None:
            lo, hi = p.cost[rows, cheap].mean(), p.cost[rows, best].mean()
            out["budget"] = float(self.n_tasks * (lo + self.budget * (hi - lo)))
        if self.floor is not None:
            lo, hi = p.quality[rows, cheap].mean(), p.quality[rows, best].mean()
            out["min_avg_quality"] = float(lo + self.floor * (hi - lo))
        return out

    def load(self, i: int) -> Shard:
        p = self._synthetic().load(i).problem
        rng = np.random.default_rng([self.seed, 77, i])
        n, k = p.n_tasks, self.n_models
        extra: dict = {}
        if self.capacity is not None:
            extra["load"] = rng.uniform(0.5, 1.5, (n, k))
            extra["capacity"] = np.full(k, self.capacity * self.n_tasks / k)
        if self.share_cap is not None:
            extra["share_cap"] = np.full(k, self.share_cap)
        q = Problem(cost=p.cost, quality=p.quality, latency=p.latency, feasible=p.feasible, priority=p.priority,
                    goal=Goal.MAXIMIZE_QUALITY if self.floor is None else Goal.MINIMIZE_COST,
                    allow_queue=self.allow_queue, **self._limits(), **extra)
        return Shard(q, [f"model-{j:02d}" for j in range(k)])


@dataclass(frozen=True)
class CappedTiesSource(TiesSource):
    """:class:`TiesSource` (ties, tasks without a model, queuing) with share caps."""

    n_tasks: int = 2_000
    shard_tasks: int = 600
    budget: float = 150.0

    def load(self, i: int) -> Shard:
        import dataclasses

        shard = super().load(i)
        shard.problem = dataclasses.replace(shard.problem, share_cap=np.array([0.5, 0.5, 0.3, 0.3, 0.2]))
        return shard


@dataclass(frozen=True)
class TightSource:
    """A generalised assignment problem at scale (integer values and loads) whose
    capacities are the loads of a planted random plan times ``slack``: tight enough that the
    row-by-row repair fails at every multiplier and only the overload descent finds a plan."""

    n_tasks: int = 21_000
    shard_tasks: int = 6_000
    n_models: int = 10
    seed: int = 5
    slack: float = 1.0
    lightest: int = 2

    @property
    def n_shards(self) -> int:
        return -(-self.n_tasks // self.shard_tasks)

    def _shard(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = min(self.shard_tasks, self.n_tasks - i * self.shard_tasks)
        rng = np.random.default_rng([self.seed, i])
        load = rng.integers(5, 25, (n, self.n_models)).astype(float)
        value = rng.integers(10, 50, (n, self.n_models)).astype(float)
        # the planted plan: one of each task's two lightest models
        light = np.argsort(load, axis=1, kind="stable")[:, :self.lightest]
        return load, value, light[np.arange(n), rng.integers(0, self.lightest, n)]

    def capacity(self) -> np.ndarray:
        cap = np.zeros(self.n_models)
        for i in range(self.n_shards):
            load, _, plan = self._shard(i)
            cap += np.bincount(plan, weights=load[np.arange(plan.size), plan], minlength=self.n_models)
        return cap * self.slack

    def load(self, i: int) -> Shard:
        load, value, _ = self._shard(i)
        p = Problem(quality=value / 50, load=load, capacity=self.capacity(), goal=Goal.MAXIMIZE_QUALITY)
        return Shard(p, [f"model-{j:02d}" for j in range(self.n_models)])
