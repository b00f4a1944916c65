"""Per-task upper convex hulls of (weight, value) points, vectorised over tasks.

For a multiple-choice knapsack (pick one model per task, maximise value under one
weight limit) only the points on each task's *upper concave frontier* matter to the LP
relaxation: start at the lightest point (ties: the most valuable), then move to points
that are heavier *and* more valuable along slopes that strictly decrease. Every other
point is LP-dominated (Sinha & Zoltners 1979).

The frontier is found by gift wrapping run for a block of tasks at once: from each task's
current vertex, the next vertex is the point of steepest positive slope among the heavier
ones. Each step is one vectorised pass over the block's tasks still growing, so the Python
loop runs (longest hull) times per block of a few thousand tasks, never once per task.
A block is held transposed, models x tasks, so that every reduction over a task's models
runs along the long contiguous axis (numpy's reductions over a short last axis are ~20x
slower). Collinear points may or may not become vertices; either way the LP is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Hulls:
    """The frontier of every task.

    vertices : int array of shape (n_tasks, max_size); model index of the s-th vertex of
        task i, -1 past the end. Column 0 is the lightest point; -1 for a task with no
        feasible model.
    size : int array of shape (n_tasks,); number of vertices per task (0 when none).
    inc_task, inc_step : int arrays of shape (n_increments,); the increment from vertex
        ``inc_step - 1`` to vertex ``inc_step`` of task ``inc_task``; a task's increments
        appear in step order.
    inc_dw, inc_dv : float arrays of shape (n_increments,); weight and value added (> 0).
    inc_key : float array of shape (n_increments,); the efficiency dv/dw made non-increasing
        along each task's steps (a running minimum). It equals dv/dw up to rounding, and it
        keeps the increments a greedy takes a prefix of each task's steps.
    """

    vertices: NDArray[np.int32]
    size: IntArray
    inc_task: IntArray
    inc_step: IntArray
    inc_dw: FloatArray
    inc_dv: FloatArray
    inc_key: FloatArray

    @property
    def base(self) -> IntArray:
        """The lightest (first) vertex of each task, -1 where there is none."""
        return self.vertices[:, 0].astype(np.int64)

    @property
    def efficiency(self) -> FloatArray:
        """Value per unit weight of every increment (the LP multiplier at which it enters)."""
        return self.inc_dv / self.inc_dw

    def vertex_after(self, steps_taken: IntArray) -> IntArray:
        """Model of each task after taking its first ``steps_taken[i]`` increments."""
        return self.vertices[np.arange(self.vertices.shape[0]), steps_taken].astype(np.int64)


#: Tasks per vectorised block: small enough that the temporaries stay in cache.
CHUNK_TASKS = 4096
#: Stand-in value of an infeasible pair: far below any real value, yet finite (no inf - inf).
_FAR = 1e300


def upper_hulls(weight: FloatArray, value: FloatArray, mask: NDArray[np.bool_]) -> Hulls:
    """Frontier of each row of (weight, value) over the pairs where ``mask`` is True.

    weight, value : arrays of shape (n_tasks, n_models); any sign, finite where ``mask``.
    mask : bool array of shape (n_tasks, n_models).
    """
    n, k = weight.shape
    starts = range(0, n, CHUNK_TASKS)
    ws = _Workspace(k, min(n, CHUNK_TASKS))
    blocks = [
        _block(weight[s : s + CHUNK_TASKS], value[s : s + CHUNK_TASKS], mask[s : s + CHUNK_TASKS], s, ws)
        for s in starts
    ]
    width = max(b[0].shape[1] for b in blocks) + 1  # +1: a padding column of -1
    vertices = np.full((n, width), -1, dtype=np.int32)
    for s, b in zip(starts, blocks, strict=True):
        vertices[s : s + b[0].shape[0], : b[0].shape[1]] = b[0]
    inc_task = np.concatenate([b[1] for b in blocks])
    size = np.bincount(inc_task, minlength=n) + (vertices[:, 0] >= 0)
    # block-major, then step-major: a task's increments stay in step order
    return Hulls(
        vertices=vertices,
        size=size,
        inc_task=inc_task,
        inc_step=np.concatenate([b[2] for b in blocks]),
        inc_dw=np.concatenate([b[3] for b in blocks]),
        inc_dv=np.concatenate([b[4] for b in blocks]),
        inc_key=np.concatenate([b[5] for b in blocks]),
    )


class _Workspace:
    """Buffers reused by every block (fresh large arrays cost page faults on first touch).

    Each is flat, and :meth:`view` shapes its head as a contiguous (models, m) array:
    w, v (two pairs, for compacting the working set back and forth), dw, sl (float);
    eq, idx for the argmax.
    """

    def __init__(self, k: int, rows_n: int):
        self.k = k
        size = k * rows_n
        self.wv = [(np.empty(size), np.empty(size)), (np.empty(size), np.empty(size))]
        self.dw, self.sl = np.empty(size), np.empty(size)
        it = np.uint8 if k <= 255 else np.uint16 if k <= 65535 else np.uint32
        self.ids = np.arange(k, dtype=it)[:, None]
        self.eq = np.empty(size, dtype=bool)
        self.idx = np.empty(size, dtype=it)
        self.vertices = np.empty((rows_n, k + 1), dtype=np.int32)

    def view(self, buf: NDArray[Any], m: int) -> NDArray[Any]:
        return buf[: self.k * m].reshape(self.k, m)

    def load(self, weight: FloatArray, value: FloatArray, mask: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
        """w, v of a block, transposed; infeasible pairs at (+inf, -_FAR)."""
        rows_n = weight.shape[0]
        w, v = self.view(self.wv[0][0], rows_n), self.view(self.wv[0][1], rows_n)
        w[...] = weight.T
        v[...] = value.T
        if not mask.all():
            bad = self.view(self.eq, rows_n)
            np.logical_not(mask.T, out=bad)
            np.putmask(w, bad, np.inf)
            np.putmask(v, bad, -_FAR)
        return w, v

    def compact(self, w: FloatArray, v: FloatArray, keep: IntArray, into: int) -> tuple[FloatArray, FloatArray]:
        """Columns ``keep`` of (w, v), written into buffer pair ``into``."""
        bw, bv = self.wv[into]
        out_w, out_v = self.view(bw, keep.size), self.view(bv, keep.size)
        np.take(w, keep, axis=1, out=out_w, mode="clip")
        np.take(v, keep, axis=1, out=out_v, mode="clip")
        return out_w, out_v

    def argmax(self, a: NDArray[Any], top: NDArray[Any]) -> IntArray:
        """The last index of the maximum along axis 0 of a (models, rows) array.

        numpy's argmax over the short axis is ~10x slower than this compare, multiply (in
        the narrowest integer type that holds a model index) and max-reduce.
        """
        n = a.shape[1]
        eq, idx = self.view(self.eq, n), self.view(self.idx, n)
        np.equal(a, top, out=eq)
        np.multiply(eq, self.ids, out=idx)
        return idx.max(axis=0).astype(np.int64)


def _block(
    weight: FloatArray, value: FloatArray, mask: NDArray[np.bool_], offset: int, ws: _Workspace
) -> tuple[NDArray[np.int32], IntArray, IntArray, FloatArray, FloatArray, FloatArray]:
    """Gift wrapping over one block of tasks.

    Returns the vertices of shape (rows, longest hull) and the block's increments (task
    index offset by ``offset``, step, dw, dv, key), in step-major order.
    """
    rows_n, k = weight.shape
    w, v = ws.load(weight, value, mask)
    argmax = ws.argmax
    # start: the lightest point, the most valuable among equally light ones
    wmin = w.min(axis=0)
    has_any = wmin < np.inf
    start = argmax(w, wmin)
    ties = np.flatnonzero(ws.view(ws.eq, rows_n).view(np.uint8).sum(axis=0, dtype=np.uint32) > 1)
    if ties.size:
        vt = np.where(w[:, ties] == wmin[ties], v[:, ties], -np.inf)
        start[ties] = argmax(vt, vt.max(axis=0))
    vertices = ws.vertices[:rows_n]
    vertices.fill(-1)
    vertices[:, 0] = np.where(has_any, start, -1)
    rows = np.flatnonzero(has_any)  # block rows in the working set
    pair = 0  # the buffer pair holding the working set
    wr, vr = (w, v) if rows.size == rows_n else ws.compact(w, v, rows, pair := 1)
    ca = start[rows]
    last_key = np.full(rows_n, np.inf)
    inc: list[tuple[IntArray, IntArray, FloatArray, FloatArray, FloatArray]] = []
    step = 0
    while rows.size and step < k:
        na = rows.size
        loc = np.arange(na)
        wa = wr[ca, loc]
        va = vr[ca, loc]
        dw, sl = ws.view(ws.dw, na), ws.view(ws.sl, na)
        np.subtract(wr, wa, out=dw)
        np.maximum(dw, 0.0, out=dw)  # lighter points: slope -inf (or nan), never chosen
        np.subtract(vr, va, out=sl)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(sl, dw, out=sl)
        top = np.fmax.reduce(sl, axis=0)
        g = np.flatnonzero(top > 0)
        if g.size == 0:
            break
        best = argmax(sl, top)
        act, nxt = rows[g], best[g]
        # chosen points are feasible, so the working copies hold their exact data
        dw64 = wr[nxt, g] - wa[g]
        dv64 = vr[nxt, g] - va[g]
        # the next vertex must be strictly heavier and more valuable (rounding can only
        # fake this through a +inf slope of an equally light point: that task stops)
        ok = (dw64 > 0) & (dv64 > 0)
        if not ok.all():
            g, act, nxt, dw64, dv64 = g[ok], act[ok], nxt[ok], dw64[ok], dv64[ok]
            if g.size == 0:
                break
        step += 1
        vertices[act, step] = nxt
        key = np.minimum(dv64 / dw64, last_key[act])
        last_key[act] = key
        inc.append((act, np.full(act.size, step, dtype=np.int64), dw64, dv64, key))
        if g.size < 0.75 * na:  # compact the working set once enough tasks have finished
            rows, ca = act, nxt
            pair = 1 - pair
            wr, vr = ws.compact(wr, vr, g, pair)
        else:  # finished tasks stay; from the same vertex they find the same (no) step
            ca = ca.copy()
            ca[g] = nxt
    vertices = vertices[:, : step + 1].copy()
    if not inc:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return vertices, empty_i, empty_i, empty_f, empty_f, empty_f
    return (
        vertices,
        np.concatenate([t[0] for t in inc]) + offset,
        np.concatenate([t[1] for t in inc]),
        np.concatenate([t[2] for t in inc]),
        np.concatenate([t[3] for t in inc]),
        np.concatenate([t[4] for t in inc]),
    )
