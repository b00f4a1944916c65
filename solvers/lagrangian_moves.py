"""The Lagrangian's repair and improvement passes, split into per-part candidates and one
sequential greedy over row totals.

Both passes rank single-task moves (repair: least reduced-value loss per unit freed of the
worst violated row; improvement: most reduced gain) and apply them in that order while an
exact check on the rows' totals allows. The ranking is per task, so each part of the tasks
ranks its own (:func:`repair_candidates`, :func:`improve_candidates`); the greedy
(:func:`repair`, :func:`improve`) merges the parts' ranked streams by (key, task index) —
one process's stable order — and needs of each move only its row deltas
(:class:`Chunk`), never the coefficient arrays. The same code serves one process (one
part) and Ray workers (a part per shard): the plan is the same.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from solvers.lagrangian import Coupled
    from solvers.lagrangian_parts import ChunkStream, Parts

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Rows per block in every vectorised pass (temporaries stay in cache).
BLOCK = 8192


@dataclass(frozen=True)
class RowLimits:
    """Every row's limit and tolerance (no coefficients): what the greedy checks against."""

    glim: FloatArray  # (G,)
    mlim: FloatArray  # (R, K), inf = none
    tg: FloatArray
    tm: FloatArray

    @classmethod
    def of(cls, form: Coupled) -> RowLimits:
        tg, tm = form.tolerances()
        glim = np.array([r.limit for r in form.global_rows], dtype=np.float64)
        mlim = np.array([r.limit for r in form.model_rows], dtype=np.float64).reshape(len(form.model_rows),
                                                                                     form.shape[1])
        return cls(glim, mlim, tg, tm)


def reduced(form: Coupled, rows: slice | IntArray, mu: FloatArray, lam: FloatArray) -> FloatArray:
    """v - mu A - lam L for the given rows, -inf on infeasible pairs."""
    r = np.where(form.mask[rows], form.value[rows], -np.inf)
    for g, row in enumerate(form.global_rows):
        if mu[g] != 0:
            r -= mu[g] * row.coef[rows]
    for i, mrow in enumerate(form.model_rows):
        if lam[i].any():
            r -= lam[i] if mrow.coef is None else lam[i] * mrow.coef[rows]
    return r


def worst_violation(g: FloatArray, m: FloatArray, lim: RowLimits) -> tuple[str, int, int] | None:
    """('g', g, -1) or ('m', r, j) for the most violated row (relative), or None."""
    worst, which = 0.0, None
    for i in range(len(lim.glim)):
        ex = (g[i] - lim.glim[i] - lim.tg[i]) / max(abs(lim.glim[i]), 1e-12, abs(g[i]))
        if ex > worst:
            worst, which = ex, ("g", i, -1)
    if m.size:
        ex = (m - lim.mlim - lim.tm) / np.maximum(np.where(np.isfinite(lim.mlim), lim.mlim, 1.0), 1e-12)
        ex = np.where(np.isfinite(lim.mlim), ex, -np.inf)
        r, j = np.unravel_index(int(np.argmax(ex)), ex.shape)
        if ex[r, j] > worst:
            which = ("m", int(r), int(j))
    return which


class Totals:
    """Row totals of a plan, updated move by move from each move's row deltas."""

    def __init__(self, g: FloatArray, m: FloatArray, lim: RowLimits):
        self.g, self.m, self.lim = np.array(g, np.float64), np.array(m, np.float64), lim

    def move_ok(self, c: Chunk, p: int, relax: int | None = None) -> bool:
        """Whether candidate p of chunk c keeps every row within its limit (``relax``: the
        violated global row being fixed; rows already violated must not get worse)."""
        lim, k = self.lim, int(c.k[p])
        for g in range(len(self.g)):
            d = float(c.dg[p, g])
            if g == relax or d <= 0:
                continue
            if self.g[g] + d > lim.glim[g] + lim.tg[g]:
                return False
        if k != int(c.j[p]):
            for r in range(self.m.shape[0]):
                load = float(c.lk[p, r])
                if load > 0 and self.m[r, k] + load > lim.mlim[r, k] + lim.tm[r, k]:
                    return False
        return True

    def apply(self, c: Chunk, p: int) -> None:
        k, j = int(c.k[p]), int(c.j[p])
        for g in range(len(self.g)):
            self.g[g] += float(c.dg[p, g])
        for r in range(self.m.shape[0]):
            self.m[r, j] -= float(c.lj[p, r])
            self.m[r, k] += float(c.lk[p, r])


# ---------------------------------------------------------------------- a part's candidates
@dataclass
class Chunk:
    """Ranked candidate moves (task ``gi`` to model ``k`` from ``j``) with their row deltas:
    dg (c, G) the change of each global row, lk / lj (c, R) the loads at k and at j."""

    key: FloatArray
    gi: IntArray
    k: IntArray
    j: IntArray
    freed: FloatArray
    dg: FloatArray
    lk: FloatArray
    lj: FloatArray

    @property
    def size(self) -> int:
        return int(self.key.size)


@dataclass
class Candidates:
    """One part's candidates of a round, sorted by (key, row); deltas made per chunk."""

    key: FloatArray
    i: IntArray
    k: IntArray
    j: IntArray
    freed: FloatArray

    def chunk(self, form: Coupled, start: int, size: int, offset: int = 0) -> Chunk | None:
        """Candidates start..start+size with their deltas; rows numbered from ``offset``."""
        if start >= self.key.size:
            return None
        s = slice(start, start + size)
        i, k, j = self.i[s], self.k[s], self.j[s]
        dg = np.array([r.coef[i, k] - r.coef[i, j] for r in form.global_rows]).reshape(-1, i.size).T
        lk = np.array([np.ones(i.size) if r.coef is None else r.coef[i, k] for r in form.model_rows])
        lj = np.array([np.ones(i.size) if r.coef is None else r.coef[i, j] for r in form.model_rows])
        return Chunk(self.key[s], i + offset, k, j, self.freed[s], dg, lk.reshape(-1, i.size).T,
                     lj.reshape(-1, i.size).T)


def _sorted(key: FloatArray, i: IntArray, k: IntArray, a: IntArray, freed: FloatArray,
            limit: int | None = None) -> Candidates:
    order = np.argsort(key, kind="stable")[:limit]  # rows ascend: ties stay in row order
    rows = i[order]
    return Candidates(key[order], rows, k[order], a[rows], freed[order])


def repair_candidates(form: Coupled, a: IntArray, kind: str, idx: int, j: int, m_use: FloatArray,
                      mlim: FloatArray, tm: FloatArray, mu: FloatArray, lam: FloatArray) -> Candidates:
    """Per task (every task for a global row, those on model j for row (idx, j)): the move
    freeing the row at the least reduced-value loss per unit, ranked; moves that cannot
    free anything are left out."""
    n, k = form.shape
    cand = np.arange(n) if kind == "g" else np.flatnonzero(a == j)
    best_k = np.empty(cand.size, dtype=np.int64)
    best_ratio = np.full(cand.size, np.inf)
    freed = np.zeros(cand.size)
    for s in range(0, cand.size, BLOCK):
        c = cand[s : s + BLOCK]
        cj = a[c]
        rv = reduced(form, c, mu, lam)
        loss = rv[np.arange(c.size), cj][:, None] - rv
        if kind == "g":
            coef = form.global_rows[idx].coef[c]
            fr = coef[np.arange(c.size), cj][:, None] - coef
        else:
            mrow = form.model_rows[idx]
            own = np.ones(c.size) if mrow.coef is None else mrow.coef[c, j]
            fr = np.broadcast_to(own[:, None], rv.shape).copy()
            fr[:, j] = 0.0
        # quick capacity screen on the other per-model rows (exact check when applied)
        ok = form.mask[c] & (fr > 0)
        for r, mr in enumerate(form.model_rows):
            load = 1.0 if mr.coef is None else mr.coef[c]
            ok &= (m_use[r][None, :] + load <= mlim[r][None, :] + tm[r][None, :]) | (
                np.arange(k)[None, :] == cj[:, None])
        ratio = np.where(ok, loss / np.where(ok, fr, 1.0), np.inf)
        kk = ratio.argmin(axis=1)
        best_k[s : s + c.size] = kk
        best_ratio[s : s + c.size] = ratio[np.arange(c.size), kk]
        freed[s : s + c.size] = fr[np.arange(c.size), kk]
    keep = np.isfinite(best_ratio)
    return _sorted(best_ratio[keep], cand[keep], best_k[keep], a, freed[keep])


def improve_candidates(form: Coupled, a: IntArray, g_use: FloatArray, m_use: FloatArray, lim: RowLimits,
                       mu: FloatArray, lam: FloatArray, max_moves: int) -> Candidates:
    """Per task: the value-raising move that fits every row's total, ranked by reduced gain
    (value minus the priced use of the rows, so that a scarce row is not spent on a small
    gain); the first ``max_moves``."""
    n, _ = form.shape
    cand_i, cand_k, cand_score = [], [], []
    for s in range(0, n, BLOCK):
        e = min(s + BLOCK, n)
        c = np.arange(s, e)
        cj = a[s:e]
        v = np.where(form.mask[s:e], form.value[s:e], -np.inf)
        gain = v - v[np.arange(e - s), cj][:, None]
        ok = gain > 0
        if not ok.any():
            continue
        for g, row in enumerate(form.global_rows):
            d = row.coef[s:e] - row.coef[c, cj][:, None]
            ok &= g_use[g] + d <= lim.glim[g] + lim.tg[g]
        for r, mr in enumerate(form.model_rows):
            load = 1.0 if mr.coef is None else mr.coef[s:e]
            ok &= m_use[r][None, :] + load <= lim.mlim[r][None, :] + lim.tm[r][None, :]
        if not ok.any():
            continue
        rv = reduced(form, c, mu, lam)
        score = rv - rv[np.arange(e - s), cj][:, None]
        score = np.where(ok, score, -np.inf)
        kk = score.argmax(axis=1)
        sc = score[np.arange(e - s), kk]
        keep = np.isfinite(sc)
        cand_i.append(c[keep])
        cand_k.append(kk[keep])
        cand_score.append(sc[keep])
    if not cand_i:
        empty = np.zeros(0, np.int64)
        return Candidates(np.zeros(0), empty, empty, empty, np.zeros(0))
    score = np.concatenate(cand_score)
    return _sorted(-score, np.concatenate(cand_i), np.concatenate(cand_k), a, np.zeros(score.size), max_moves)


# ---------------------------------------------------------------------- the greedy
def merged(streams: list[ChunkStream]) -> Iterator[tuple[Chunk, int]]:
    """Every stream's candidates in (key, task index) order: (chunk, position) pairs."""
    chunks: list[Chunk | None] = [s.next() for s in streams]
    heap: list[tuple[float, int, int, int]] = []
    for si, c in enumerate(chunks):
        if c is not None and c.size:
            heap.append((float(c.key[0]), int(c.gi[0]), si, 0))
    heapq.heapify(heap)
    while heap:
        _, _, si, p = heapq.heappop(heap)
        c = chunks[si]
        assert c is not None
        yield c, p
        p += 1
        if p == c.size:
            c = chunks[si] = streams[si].next()
            p = 0
        if c is not None and p < c.size:
            heapq.heappush(heap, (float(c.key[p]), int(c.gi[p]), si, p))


def totals(parts: Parts) -> Totals:
    """The exact row totals of the parts' work plan."""
    from solvers.lagrangian_parts import floats

    u = parts.usage().values
    return Totals(floats(u["g"]), floats(u["m"]).reshape(len(parts.limits.mlim), parts.k), parts.limits)


def repair(parts: Parts, mu: FloatArray, lam: FloatArray, max_rounds: int = 200) -> bool:
    """Move tasks of the parts' work plan off violated rows, worst row first, cheapest
    reduced-value loss per unit freed first; True when the plan is then feasible."""
    st = totals(parts)
    for _ in range(max_rounds):
        which = worst_violation(st.g, st.m, st.lim)
        if which is None:
            return True
        kind, idx, j = which
        need = st.g[idx] - st.lim.glim[idx] if kind == "g" else st.m[idx, j] - st.lim.mlim[idx, j]
        fixed = 0.0
        moves: list[tuple[int, int]] = []
        for c, p in merged(parts.repair_round(kind, idx, j, st.m.copy(), mu, lam)):
            if fixed >= need:
                break
            if not st.move_ok(c, p, relax=idx if kind == "g" else None):
                continue
            st.apply(c, p)
            fixed += float(c.freed[p])
            moves.append((int(c.gi[p]), int(c.k[p])))
        parts.apply(moves)
        if not moves:
            return False
    return worst_violation(st.g, st.m, st.lim) is None


def improve(parts: Parts, mu: FloatArray, lam: FloatArray, rounds: int = 3, max_moves: int = 50_000) -> None:
    """Single-task moves of the parts' work plan that raise the value and keep every row
    feasible, the best ``max_moves`` ranked per round, each applied after an exact check."""
    st = totals(parts)
    for _ in range(rounds):
        moves: list[tuple[int, int]] = []
        for n, (c, p) in enumerate(merged(parts.improve_round(st.g.copy(), st.m.copy(), mu, lam, max_moves))):
            if n >= max_moves:
                break
            if not st.move_ok(c, p):
                continue
            st.apply(c, p)
            moves.append((int(c.gi[p]), int(c.k[p])))
        parts.apply(moves)
        if not moves:
            break

