"""Seeded, realistic routing batches as :class:`solvers.Problem` (N tasks x K models).

The shape follows real catalogs: prices spanning about 100x (log-uniform), output prices
3-5x input prices, quality that rises with price but depends on the task type (each type
has its own model affinities) and on the task's difficulty, per-task token counts from
log-normal distributions, latency = time to first token + output tokens / throughput,
a few context-window exclusions, priorities 1-3.

Cases (what binds):

- ``budget``: maximise priority-weighted quality under a budget set a third of the way
  from the cheapest plan's cost to the best-quality plan's cost.
- ``avg-quality``: minimise cost under an average-quality floor half way from the
  cheapest plan's mean quality to the best reachable mean.
- ``capacity``: maximise quality under per-model capacities (model-seconds within a
  deadline) that bind on the popular models, plus the budget of ``budget``.

    python benchmarks/generate.py --n 1000 --k 20 --case budget   # prints a summary
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from solvers import Goal, Problem

CASES = ("budget", "avg-quality", "capacity")
N_TASK_TYPES = 8


@dataclass(frozen=True)
class Batch:
    """The raw arrays of a generated batch, all shape (n, k) unless stated."""

    cost_usd: np.ndarray
    quality: np.ndarray
    latency_s: np.ndarray
    feasible: np.ndarray
    priority: np.ndarray  # (n,)


def make_batch(n: int, k: int, seed: int = 0) -> Batch:
    """Generate the coefficient arrays of an n x k routing batch."""
    rng = np.random.default_rng(seed)
    # models: input price per 1M tokens log-uniform over 100x; better models cost more
    price_in = np.exp(rng.uniform(np.log(0.1), np.log(10.0), k))
    price_out = price_in * rng.uniform(3.0, 5.0, k)
    rank = np.argsort(np.argsort(price_in)) / max(k - 1, 1)
    ability = np.clip(0.55 + 0.33 * rank + rng.normal(0, 0.05, k), 0.3, 0.97)
    verbosity = rng.uniform(0.8, 1.3, k)
    tokens_per_s = rng.uniform(30, 200, k)
    ttft_s = rng.uniform(0.2, 1.5, k)
    context = np.where(rng.random(k) < 0.25, 16_000, 128_000)
    context[np.argmax(ability)] = 200_000

    # tasks: type, difficulty, tokens
    task_type = rng.integers(0, N_TASK_TYPES, n)
    affinity = rng.normal(0, 0.07, (N_TASK_TYPES, k))
    difficulty = rng.beta(2, 3, n)
    in_tok = np.minimum(rng.lognormal(np.log(800), 1.0, n), 150_000)
    out_tok = rng.lognormal(np.log(300), 0.6, n)

    out_jk = out_tok[:, None] * verbosity[None, :]
    cost = (in_tok[:, None] * price_in[None, :] + out_jk * price_out[None, :]) / 1e6
    quality = ability[None, :] + affinity[task_type] - 0.35 * difficulty[:, None] * (1 - ability[None, :])
    quality = np.clip(quality + rng.normal(0, 0.03, (n, k)), 0.0, 1.0)
    latency = ttft_s[None, :] + out_jk / tokens_per_s[None, :]
    feasible = in_tok[:, None] + out_jk <= context[None, :]
    priority = rng.integers(1, 4, n).astype(float)
    return Batch(cost, quality, latency, feasible, priority)


def make_problem(n: int, k: int, case: str = "budget", seed: int = 0) -> Problem:
    """The ``case`` problem (see the module docstring) over a generated batch."""
    if case not in CASES:
        raise ValueError(f"case: expected one of {CASES}, got {case!r}")
    b = make_batch(n, k, seed)
    mask = b.feasible
    rows = np.arange(n)
    cheapest = np.argmin(np.where(mask, b.cost_usd, np.inf), axis=1)
    best = np.argmax(np.where(mask, b.quality, -np.inf), axis=1)
    cost_lo = float(b.cost_usd[rows, cheapest].sum())
    cost_hi = float(b.cost_usd[rows, best].sum())
    budget = cost_lo + (cost_hi - cost_lo) / 3
    common = dict(cost=b.cost_usd, quality=b.quality, latency=b.latency_s, feasible=mask,
                  priority=b.priority)
    if case == "budget":
        return Problem(**common, budget=budget, goal=Goal.MAXIMIZE_QUALITY)
    if case == "avg-quality":
        q_lo = float(b.quality[rows, cheapest].mean())
        q_hi = float(b.quality[rows, best].mean())
        return Problem(**common, min_avg_quality=q_lo + (q_hi - q_lo) / 2, goal=Goal.MINIMIZE_COST)
    # capacity: model-seconds; an even spread of the load fits with 30% to spare, the
    # quality-greedy plan does not
    load = b.latency_s
    even = np.where(mask, load, 0).sum(axis=0) / np.maximum(mask.sum(axis=1), 1).mean()
    capacity = 1.3 * even
    return Problem(**common, load=load, capacity=capacity, budget=budget,
                   goal=Goal.MAXIMIZE_QUALITY)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--case", choices=CASES, default="budget")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    p = make_problem(a.n, a.k, a.case, a.seed)
    print(f"{a.n} x {a.k} {a.case}: goal={p.goal.value} budget={p.budget} "
          f"min_avg_quality={p.min_avg_quality} capacity={p.capacity}")
    print(f"cost range {p.cost.min():.2e}..{p.cost.max():.2e} USD, "
          f"quality {p.quality.mean():.3f} mean, feasible {p.feasible_mask.mean():.1%}")


if __name__ == "__main__":
    main()
