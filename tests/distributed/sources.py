"""Shard sources for the tests (importable by the Ray workers: they run from the repo root)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.distributed.shards import Shard
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
