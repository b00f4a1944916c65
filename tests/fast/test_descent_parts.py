"""The overload descent over several parts of the tasks takes the steps it takes over one:
the driver's samples, the parts' best shifts merged in the sample's order (ties included:
integer values and loads), the swaps' rows put back in order. Ray's parts are the same
functions on workers (tests/distributed/test_descent_on_ray.py)."""

from __future__ import annotations

import numpy as np
import pytest

from solvers.lagrangian import Coupled, GlobalRow, ModelRow
from solvers.lagrangian_moves import RowLimits
from solvers.lagrangian_parts import LocalParts, Sums, part_usage, total
from solvers.overload import (
    Overload,
    Scales,
    part_rows,
    part_scale_sums,
    part_shift,
    reduce_overload,
    take,
)


class SplitParts:
    """The descent's side of :class:`solvers.lagrangian_parts.Parts` over consecutive pieces
    of one problem, each computing on its own rows only (as a Ray worker's shard does)."""

    def __init__(self, form: Coupled, cuts: list[int], start: np.ndarray):
        n, self.k = form.shape
        self.n = n
        self.first = np.array([0, *cuts], np.int64)
        ends = [*cuts, n]
        self.forms = [take(form, np.arange(s, e)) for s, e in zip(self.first, ends, strict=True)]
        self.start = [np.asarray(start[s:e], np.int64) for s, e in zip(self.first, ends, strict=True)]
        self.work = [a.copy() for a in self.start]
        self.limits = RowLimits.of(form)
        self.weighted = tuple(r.coef is not None for r in form.model_rows)
        self.scales = Scales.of(total([part_scale_sums(f) for f in self.forms]), self.limits, self.weighted)

    def plan(self) -> np.ndarray:
        return np.concatenate(self.work)

    def usage(self) -> Sums:
        return total([part_usage(f, a) for f, a in zip(self.forms, self.work, strict=True)])

    def apply(self, moves: list[tuple[int, int]]) -> None:
        for i, k in moves:
            p = int(np.searchsorted(self.first, i, side="right")) - 1
            self.work[p][i - self.first[p]] = k

    def overload_scales(self) -> Scales:
        return self.scales

    def descent_begin(self) -> tuple[np.ndarray, np.ndarray]:
        self.work = [a.copy() for a in self.start]
        return self.first.copy(), np.array([np.bincount(a, minlength=self.k) for a in self.work], np.int64)

    def descent_shift(self, moves, ranks, hot, g, m):
        self.apply(moves)
        out = []
        for p, r in ranks.items():
            ov = Overload(g.copy(), m.copy(), self.limits, self.overload_scales())
            pick = part_shift(self.forms[p], self.work[p], r, hot, ov, int(self.first[p]))
            if pick is not None:
                out.append((p, pick))
        return out[::-1]  # the parts answer in any order

    def descent_rows(self, moves, samples):
        self.apply(moves)
        return [{p: part_rows(self.forms[p], self.work[p], r, hot, int(self.first[p])) for p, r in ranks.items()}
                for ranks, hot in samples]


def planted(seed: int, n: int, k: int, global_rows: int = 0, levels: int = 20) -> Coupled:
    """A GAP (and MMKP rows) whose limits are a random plan's loads: tight, integer; with
    few ``levels`` of loads and values, many moves tie."""
    rng = np.random.default_rng(seed)
    load = rng.integers(5, 5 + levels, (n, k)).astype(float)
    value = rng.integers(10, 10 + levels, (n, k)).astype(float)
    plan = rng.integers(0, k, n)
    rows = np.arange(n)
    cap = np.bincount(plan, weights=load[rows, plan], minlength=k)
    g = tuple(GlobalRow(f"r{i}", w, float(w[rows, plan].sum() * 1.01))
              for i, w in enumerate(rng.integers(1, 50, (global_rows, n, k)).astype(float)))
    return Coupled(value, np.ones((n, k), bool), g, (ModelRow("capacity", load, cap),))


@pytest.mark.parametrize(("n", "k", "global_rows", "levels", "steps"), [
    (40, 5, 0, 20, 5000), (300, 6, 0, 20, 5000), (200, 5, 3, 20, 5000),
    (300, 4, 0, 2, 100),  # ties everywhere: the first best in the sample's order wins
    (9000, 2, 0, 20, 30),  # more tasks on an overloaded model than a step samples (4,096): drawn
])
def test_split_parts_take_the_steps_of_one(n: int, k: int, global_rows: int, levels: int, steps: int) -> None:
    moved = 0
    for seed in range(6 if n < 1000 else 1):
        form = planted(seed, n, k, global_rows, levels)
        start = form.value.argmax(axis=1)
        one = LocalParts(form)
        one.start_a = start.copy()
        ok = reduce_overload(one, np.random.default_rng(seed), None, max_steps=steps)
        cuts = sorted(np.random.default_rng(seed + 100).choice(np.arange(1, n), 5, replace=False).tolist())
        split = SplitParts(form, cuts, start)
        assert reduce_overload(split, np.random.default_rng(seed), None, max_steps=steps) == ok
        assert np.array_equal(split.plan(), one.work)
        if ok:
            assert form.is_feasible(one.work)
        moved += int((one.work != start).sum())
    assert moved > 0
