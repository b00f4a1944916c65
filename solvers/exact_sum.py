"""Exact sums of float arrays, so that a sum does not depend on how its terms are split.

A float sum depends on its order: the Lagrangian's dual summed over one process's blocks
and over the shards of Ray workers would differ in the last bits, and L-BFGS-B amplifies
that into another trajectory and, at ties, another plan. Every float64 is an integer
multiple of 2**-1074, so a sum is held exactly as a Python int in units of 2**-:data:`UNIT`
(a mantissa's lowest bit): per binary exponent, the mantissas are split into two 26-bit
halves whose bucket sums numpy's ``bincount`` holds exactly. Partial sums (of blocks, of
shards, of workers) add as ints; :func:`to_float` rounds the total once, correctly.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Sums are ints in units of 2**-UNIT (the lowest mantissa bit of the smallest exponent).
UNIT = 1074 + 53
_OFFSET = 1100  # frexp exponents lie in [-1073, 1024]
_BUCKETS = _OFFSET + 1030
_HALF = 26
#: Terms per call: every bucket's half-sums stay below 2**53 (exact in bincount's float64).
_MAX_TERMS = 1 << _HALF


def exact_sum(x: NDArray[Any]) -> int:
    """The exact sum of every element (finite floats), in units of 2**-UNIT."""
    x = np.asarray(x, np.float64).ravel()
    return group_sums(x, np.zeros(x.size, np.int64), 1)[0]


def exact_col_sums(x: NDArray[Any]) -> list[int]:
    """The exact sum of each column of a 2-d array (finite floats), in units of 2**-UNIT."""
    x = np.asarray(x, np.float64)
    n, k = x.shape
    return group_sums(x.ravel(), np.broadcast_to(np.arange(k), (n, k)).ravel(), k)


def group_sums(x: NDArray[np.float64], group: NDArray[np.int64], k: int) -> list[int]:
    """The exact sum of the elements of each group 0..k-1 (x and group: 1-d, same size)."""
    out = [0] * k
    for s in range(0, x.size, _MAX_TERMS):
        _add(x[s : s + _MAX_TERMS], group[s : s + _MAX_TERMS], k, out)
    return out


def _add(x: NDArray[np.float64], group: NDArray[np.int64], k: int, out: list[int]) -> None:
    if x.size == 0:
        return
    m, e = np.frexp(x)
    whole = (m * float(1 << 53)).astype(np.int64)  # exact: |m| in [0.5, 1) or 0
    hi = whole >> _HALF
    lo = whole - (hi << _HALF)
    idx = (e.astype(np.int64) + _OFFSET) * k + group
    size = _BUCKETS * k
    h = np.bincount(idx, weights=hi, minlength=size).reshape(_BUCKETS, k)
    lw = np.bincount(idx, weights=lo, minlength=size).reshape(_BUCKETS, k)
    for b, j in zip(*np.nonzero((h != 0) | (lw != 0)), strict=True):
        # the bucket's terms are (hi * 2**26 + lo) * 2**(exponent - 53)
        shift = int(b) - _OFFSET - 53 + UNIT
        out[j] += ((int(h[b, j]) << _HALF) + int(lw[b, j])) << shift


#: Rows per call of :func:`bounded_col_sums`: 2**_ROWS_LOG terms of a column sum exactly.
_ROWS_LOG = 14


def bounded_col_sums(x: NDArray[Any], exponent: NDArray[np.int64], scratch: bool = False) -> list[int]:
    """Column sums of a 2-d array whose column j is bounded by 2**exponent[j] in absolute
    value, each term first rounded to a multiple of 2**(exponent[j] - 77) (pre-rounding, as
    in reproducible BLAS): adding and subtracting 1.5 * 2**(e + 14) rounds a term to a
    grid on which up to 2**14 terms add exactly in any order; the remainder goes through a
    second, finer grid. Several times cheaper than :func:`exact_col_sums` on a matrix, and as
    independent of how the rows are split (the rounding is per term). ``scratch``: x (a
    float64 array) may be overwritten."""
    x = np.asarray(x, np.float64)
    n, k = x.shape
    out = [0] * k
    if n == 0:
        return out
    step = 1 << _ROWS_LOG
    m1 = np.ldexp(1.5, exponent + _ROWS_LOG)[None, :]
    m2 = np.ldexp(1.5, exponent - 25 + _ROWS_LOG)[None, :]
    for s in range(0, n, step):
        rest = x[s : s + step] if scratch else np.array(x[s : s + step])
        q = rest + m1
        q -= m1  # rest rounded to the coarse grid (exact: Sterbenz)
        rest -= q  # what the coarse grid left out (exact)
        coarse = q.sum(axis=0)  # exact: every partial sum lies on the grid, within 53 bits
        rest += m2
        rest -= m2
        fine = rest.sum(axis=0)
        for j in range(k):
            out[j] += _units(float(coarse[j])) + _units(float(fine[j]))
    return out


def _units(v: float) -> int:
    """A float as an int in units of 2**-UNIT (exact)."""
    num, den = v.as_integer_ratio()  # den is a power of two
    return num << (UNIT - den.bit_length() + 1)


def bound_exponent(bound: NDArray[Any]) -> NDArray[np.int64]:
    """The least e with 2**e >= bound (per element; between -900 and 1000)."""
    _, e = np.frexp(np.maximum(np.asarray(bound, np.float64), 1e-300))
    return np.clip(e.astype(np.int64), -900, 1000)


def to_float(total: int) -> float:
    """An exact sum rounded once to the nearest float."""
    return float(Fraction(total, 1 << UNIT))


def add(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]
