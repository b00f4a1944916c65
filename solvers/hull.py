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
Collinear points may or may not become vertices; either way the LP is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    vertices: NDArray[np.int32]
    size: IntArray
    inc_task: IntArray
    inc_step: IntArray
    inc_dw: FloatArray
    inc_dv: FloatArray

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


def upper_hulls(weight: FloatArray, value: FloatArray, mask: NDArray[np.bool_]) -> Hulls:
    """Frontier of each row of (weight, value) over the pairs where ``mask`` is True.

    weight, value : arrays of shape (n_tasks, n_models); any sign, finite where ``mask``.
    mask : bool array of shape (n_tasks, n_models).
    """
    n = weight.shape[0]
    starts = range(0, n, CHUNK_TASKS)
    blocks = [
        _block(weight[s : s + CHUNK_TASKS], value[s : s + CHUNK_TASKS], mask[s : s + CHUNK_TASKS], s)
        for s in starts
    ]
    width = max(b[0].shape[1] for b in blocks) + 1  # +1: a padding column of -1
    vertices = np.full((n, width), -1, dtype=np.int32)
    for s, b in zip(starts, blocks, strict=True):
        vertices[s : s + b[0].shape[0], : b[0].shape[1]] = b[0]
    size = (vertices >= 0).sum(axis=1).astype(np.int64)
    # block-major, then step-major: a task's increments stay in step order
    return Hulls(
        vertices=vertices,
        size=size,
        inc_task=np.concatenate([b[1] for b in blocks]),
        inc_step=np.concatenate([b[2] for b in blocks]),
        inc_dw=np.concatenate([b[3] for b in blocks]),
        inc_dv=np.concatenate([b[4] for b in blocks]),
    )


def _block(
    weight: FloatArray, value: FloatArray, mask: NDArray[np.bool_], offset: int
) -> tuple[NDArray[np.int32], IntArray, IntArray, FloatArray, FloatArray]:
    """Gift wrapping over one block of tasks.

    Returns the vertices of shape (rows, longest hull) and the block's increments (task
    index offset by ``offset``, step, dw, dv), in step-major order.
    """
    rows_n, k = weight.shape
    w = np.where(mask, weight, np.inf)
    # a huge finite value (not -inf) keeps (v - va) / inf at -0 instead of nan
    v = np.where(mask, value, -1e300)
    wmin = w.min(axis=1)
    start = np.argmax(np.where(w == wmin[:, None], v, -np.inf), axis=1)
    has_any = mask.any(axis=1)
    cols = [np.where(has_any, start, -1)]
    cur = start
    active = np.flatnonzero(has_any)
    inc: list[tuple[IntArray, IntArray, FloatArray, FloatArray]] = []
    wflat, vflat = weight.ravel(), value.ravel()
    while active.size:
        if active.size == rows_n:
            wr, vr = w, v
        else:
            wr, vr = w[active], v[active]
        local = np.arange(active.size)
        ca = cur[active]
        wa = wr[local, ca]
        va = vr[local, ca]
        dw = wr - wa[:, None]
        np.putmask(dw, dw <= 0, np.inf)  # only heavier points can come next
        slope = vr - va[:, None]
        np.divide(slope, dw, out=slope)
        best = slope.argmax(axis=1)
        grows = slope[local, best] > 0  # ... and only more valuable ones
        if not grows.any():
            break
        active = active[grows]
        prev = ca[grows]
        nxt = best[grows]
        cur[active] = nxt
        col = np.full(rows_n, -1, dtype=np.int64)
        col[active] = nxt
        cols.append(col)
        to_flat = active * k + nxt
        fr_flat = active * k + prev
        inc.append((active, np.full(active.size, len(cols) - 1, dtype=np.int64),
                    wflat[to_flat] - wflat[fr_flat], vflat[to_flat] - vflat[fr_flat]))
    vertices = np.stack(cols, axis=1).astype(np.int32)
    if not inc:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return vertices, empty_i, empty_i, empty_f, empty_f
    return (
        vertices,
        np.concatenate([t[0] for t in inc]).astype(np.int64) + offset,
        np.concatenate([t[1] for t in inc]),
        np.concatenate([t[2] for t in inc]),
        np.concatenate([t[3] for t in inc]),
    )
