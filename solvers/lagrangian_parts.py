"""The Lagrangian's per-task work on a part of the tasks, and the one-process set of parts.

:func:`solvers.lagrangian.solve_parts` never touches a task's coefficients itself: it asks
its *parts* (a :class:`Parts`) for sums over their tasks — the dual's value and gradient at
given multipliers, a plan's row usage and value — and for the candidate moves of the repair
and improvement passes (:mod:`solvers.lagrangian_moves`), and tells them which moves to
make. :class:`LocalParts` is one part holding the whole problem (``fast`` in one process);
``planner.distributed`` holds one part per shard on Ray workers. Every sum is exact
(:mod:`solvers.exact_sum`), so the answer does not depend on how the tasks are split.

The functions ``part_*`` are what a part computes on its own rows (``form``: the part's
rows of the problem, the limits global).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from solvers.exact_sum import bounded_col_sums, exact_sum, group_sums, to_float
from solvers.lagrangian_moves import (
    Chunk,
    RowLimits,
    improve_candidates,
    reduced,
    repair_candidates,
)

if TYPE_CHECKING:
    from solvers.lagrangian import Coupled
    from solvers.overload import Scales, ShiftPick

#: A part's rows of a sample of tasks: (their rows, their models, their task indices).
Rows = tuple["Coupled", NDArray[np.int64], NDArray[np.int64]]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Rows per block in every vectorised pass (temporaries stay in cache).
BLOCK = 8192


@dataclass
class Sums:
    """Exact sums (ints, see :mod:`solvers.exact_sum`) that add over parts."""

    values: dict[str, Any]

    def __add__(self, other: Sums) -> Sums:
        return Sums({k: _add(v, other.values[k]) for k, v in self.values.items()})


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, list):
        return [_add(x, y) for x, y in zip(a, b, strict=True)]
    return a + b


def total(parts: list[Sums]) -> Sums:
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def floats(x: Any) -> Any:
    """Exact sums (nested lists of ints) rounded once to floats, as arrays."""
    if isinstance(x, list):
        return np.array([floats(v) for v in x], dtype=np.float64)
    return to_float(x)


# ---------------------------------------------------------------------- what a part computes
def part_bounds(form: Coupled) -> FloatArray:
    """Per row (global rows, then per-model rows) and model: the largest |coefficient| on
    a feasible pair, shape (G + R, K); the global maxima fix the exact sums' scales."""
    n, k = form.shape
    out = np.zeros((len(form.global_rows) + len(form.model_rows), k))
    coefs = [r.coef for r in form.global_rows] + [r.coef for r in form.model_rows]
    for i, coef in enumerate(coefs):
        if coef is None:
            out[i] = 1.0
        elif n:
            out[i] = np.where(form.mask, np.abs(coef), 0.0).max(axis=0)
    return out


def part_scales(form: Coupled, exps: IntArray) -> Sums:
    """Sums behind the dual's scales: each task's value spread, and per row and model the
    |coefficient| over the feasible pairs with their counts."""
    v = np.where(form.mask, form.value, np.nan)
    spread = np.nanmax(v, axis=1) - np.nanmin(v, axis=1) if form.shape[0] else np.zeros(0)
    counts = form.mask.sum(axis=0).astype(np.int64).tolist()
    coefs = [r.coef for r in form.global_rows] + [r.coef for r in form.model_rows]
    absum = [bounded_col_sums(np.where(form.mask, np.abs(c), 0.0), exps[i]) if c is not None
             else [int(x) for x in counts]  # count rows: the scale is 1 per task (unused)
             for i, c in enumerate(coefs)]
    return Sums({"n": form.shape[0], "spread": exact_sum(spread), "abs": absum, "count": counts})


def part_dual(form: Coupled, mu: FloatArray, lam: FloatArray, t: float, exps: IntArray) -> Sums:
    """The part's terms of the dual at (mu, lam) and temperature t: sum of each task's best
    reduced value (``hard``), of log sum exp((r - max) / t) (``logz``), and the row sums
    of the soft assignment p: per global row (``g``), per model row and model (``m``)."""
    n, k = form.shape
    n_g = len(form.global_rows)
    hard = logz = 0
    g_sum = [0] * n_g
    m_sum = [[0] * k for _ in form.model_rows]
    for s in range(0, n, BLOCK):
        e = min(s + BLOCK, n)
        r = reduced(form, slice(s, e), mu, lam)
        m = r.max(axis=1)
        hard += exact_sum(m)
        r -= m[:, None]
        r /= t
        np.exp(r, out=r)
        z = r.sum(axis=1)
        logz += exact_sum(np.log(z))
        r /= z[:, None]  # r now holds the soft assignment p
        for g, row in enumerate(form.global_rows):
            # a task's own sum is the same wherever its row lies; the sum over tasks is exact
            g_sum[g] += exact_sum(np.einsum("ij,ij->i", r, row.coef[s:e]))
        for i, mrow in enumerate(form.model_rows):
            cols = (bounded_col_sums(r, exps[n_g + i]) if mrow.coef is None
                    else bounded_col_sums(r * mrow.coef[s:e], exps[n_g + i], scratch=True))
            m_sum[i] = [a + b for a, b in zip(m_sum[i], cols, strict=True)]
    return Sums({"hard": hard, "logz": logz, "g": g_sum, "m": m_sum})


def part_argmax(form: Coupled, mu: FloatArray, lam: FloatArray) -> IntArray:
    """Each task's best model at (mu, lam)."""
    n = form.shape[0]
    out = np.empty(n, dtype=np.int64)
    for s in range(0, n, BLOCK):
        e = min(s + BLOCK, n)
        out[s:e] = reduced(form, slice(s, e), mu, lam).argmax(axis=1)
    return out


def part_usage(form: Coupled, a: IntArray) -> Sums:
    """A plan's row usage (per global row; per model row and model) and value, exactly."""
    n, k = form.shape
    rows = np.arange(n)
    g = [exact_sum(r.coef[rows, a]) for r in form.global_rows]
    m = [group_sums(np.ones(n) if r.coef is None else r.coef[rows, a], a, k) for r in form.model_rows]
    return Sums({"g": g, "m": m, "value": exact_sum(form.value[rows, a])})


def part_min_value(form: Coupled) -> Sums:
    return Sums({"min": exact_sum(np.where(form.mask, form.value, np.inf).min(axis=1))})


# ---------------------------------------------------------------------- the parts of a problem
class Parts(Protocol):
    """What :func:`solvers.lagrangian.solve_parts` asks of the tasks (see the module docstring).

    A part keeps three plans: ``start`` (the argmax at the multipliers of the last
    :meth:`start`), ``work`` (being repaired and improved) and ``best`` (the best kept)."""

    n: int
    k: int
    limits: RowLimits
    weighted: tuple[bool, ...]  # per model row: has coefficients (else it counts tasks)

    def bounds(self) -> FloatArray: ...
    def scales(self, exps: IntArray) -> Sums: ...
    def min_value(self) -> float: ...
    def dual(self, mu: FloatArray, lam: FloatArray, t: float, exps: IntArray) -> Sums: ...
    def start(self, mu: FloatArray, lam: FloatArray) -> None: ...
    def usage(self) -> Sums: ...
    def value(self) -> float: ...
    def repair_round(self, kind: str, idx: int, j: int, m_use: FloatArray, mu: FloatArray,
                     lam: FloatArray) -> list[ChunkStream]: ...
    def improve_round(self, g_use: FloatArray, m_use: FloatArray, mu: FloatArray, lam: FloatArray,
                      max_moves: int) -> list[ChunkStream]: ...
    def apply(self, moves: list[tuple[int, int]]) -> None: ...
    def keep(self) -> None: ...
    def plan(self) -> IntArray: ...
    def whole(self) -> Coupled | None: ...
    # the overload descent (solvers.overload): parts are numbered 0.. in task order; a
    # sample's tasks are ranks in a part's pool (every task, or those on the models ``hot``)
    def overload_scales(self) -> Scales: ...
    def descent_begin(self) -> tuple[IntArray, IntArray]:
        """work := start; each part's first task (P,) and its tasks per model (P, K)."""
        ...
    def descent_shift(self, moves: list[tuple[int, int]], ranks: dict[int, IntArray], hot: IntArray | None,
                      g: FloatArray, m: FloatArray) -> list[tuple[int, ShiftPick]]:
        """After ``moves``: each part's best shift among its sampled tasks (row totals g, m)."""
        ...
    def descent_rows(self, moves: list[tuple[int, int]],
                     samples: list[tuple[dict[int, IntArray], IntArray | None]]) -> list[dict[int, Rows]]:
        """After ``moves``: per sample (ranks per part, hot), each part's rows of its tasks."""
        ...


class ChunkStream(Protocol):
    """One part's candidates of a round, in its order, a chunk at a time (None: no more)."""

    def next(self) -> Chunk | None: ...


class LocalStream:
    def __init__(self, cands: Any, form: Coupled, offset: int = 0, size: int = 4096):
        self.cands, self.form, self.offset, self.size, self.pos = cands, form, offset, size, 0

    def next(self) -> Chunk | None:
        c = self.cands.chunk(self.form, self.pos, self.size, self.offset)
        self.pos += self.size
        return c


class LocalParts:
    """The whole problem as one part, in this process (``fast`` without workers)."""

    def __init__(self, form: Coupled):
        self.form = form
        self.n, self.k = form.shape
        self.limits = RowLimits.of(form)
        self.weighted = tuple(r.coef is not None for r in form.model_rows)
        self.start_a = self.work = self.best = np.zeros(0, np.int64)
        self._scales: Scales | None = None

    def bounds(self) -> FloatArray:
        return part_bounds(self.form)

    def scales(self, exps: IntArray) -> Sums:
        return part_scales(self.form, exps)

    def min_value(self) -> float:
        return to_float(part_min_value(self.form).values["min"])

    def dual(self, mu: FloatArray, lam: FloatArray, t: float, exps: IntArray) -> Sums:
        return part_dual(self.form, mu, lam, t, exps)

    def start(self, mu: FloatArray, lam: FloatArray) -> None:
        self.start_a = part_argmax(self.form, mu, lam)
        self.work = self.start_a.copy()

    def usage(self) -> Sums:
        return part_usage(self.form, self.work)

    def value(self) -> float:
        return to_float(exact_sum(self.form.value[np.arange(self.n), self.work]))

    def repair_round(self, kind: str, idx: int, j: int, m_use: FloatArray, mu: FloatArray,
                     lam: FloatArray) -> list[ChunkStream]:
        lim = self.limits
        c = repair_candidates(self.form, self.work, kind, idx, j, m_use, lim.mlim, lim.tm, mu, lam)
        return [LocalStream(c, self.form)]

    def improve_round(self, g_use: FloatArray, m_use: FloatArray, mu: FloatArray, lam: FloatArray,
                      max_moves: int) -> list[ChunkStream]:
        c = improve_candidates(self.form, self.work, g_use, m_use, self.limits, mu, lam, max_moves)
        return [LocalStream(c, self.form)]

    def apply(self, moves: list[tuple[int, int]]) -> None:
        if moves:
            i, k = np.array(moves, dtype=np.int64).T
            self.work[i] = k

    def keep(self) -> None:
        self.best = self.work.copy()

    def plan(self) -> IntArray:
        return self.best

    def whole(self) -> Coupled | None:
        return self.form

    def overload_scales(self) -> Scales:
        from solvers.overload import Scales, part_scale_sums

        if self._scales is None:
            self._scales = Scales.of(part_scale_sums(self.form), self.limits, self.weighted)
        return self._scales

    def descent_begin(self) -> tuple[IntArray, IntArray]:
        self.work = self.start_a.copy()
        return np.zeros(1, np.int64), np.bincount(self.work, minlength=self.k)[None, :].astype(np.int64)

    def descent_shift(self, moves: list[tuple[int, int]], ranks: dict[int, IntArray], hot: IntArray | None,
                      g: FloatArray, m: FloatArray) -> list[tuple[int, ShiftPick]]:
        from solvers.overload import Overload, part_shift

        self.apply(moves)
        ov = Overload(g, m, self.limits, self.overload_scales())
        picks = [(p, part_shift(self.form, self.work, r, hot, ov)) for p, r in ranks.items()]
        return [(p, pick) for p, pick in picks if pick is not None]

    def descent_rows(self, moves: list[tuple[int, int]],
                     samples: list[tuple[dict[int, IntArray], IntArray | None]]) -> list[dict[int, Rows]]:
        from solvers.overload import part_rows

        self.apply(moves)
        return [{p: part_rows(self.form, self.work, r, hot) for p, r in ranks.items()} for ranks, hot in samples]

