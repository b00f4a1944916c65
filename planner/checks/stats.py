"""Measured quality with its uncertainty: a mean score and a 95 % interval.

Scores that are all 0 or 1 are pass/fail counts: the Wilson score interval (sound at small n
and near 0 or 1, where mean +- 1.96 SE leaves [0, 1]). Fractional scores (the share of asserts
passed, a judge's 7/10) get a Student t interval on the mean, clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float | None
    low: float | None
    high: float | None
    method: str  # "wilson", "t" or "" (no scores)
    std_error: float | None


def estimate(scores: Sequence[float]) -> Estimate:
    """Mean of ``scores`` (each in [0, 1]) with a 95 % interval."""
    values = [float(s) for s in scores if s is not None and not math.isnan(s)]
    n = len(values)
    if n == 0:
        return Estimate(0, None, None, None, "", None)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    se = math.sqrt(var / n) if n > 1 else None
    if all(v in (0.0, 1.0) for v in values):
        low, high = wilson(sum(values), n)
        return Estimate(n, mean, low, high, "wilson", math.sqrt(mean * (1 - mean) / n))
    if n == 1 or se is None:
        return Estimate(n, mean, 0.0, 1.0, "t", None)
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1)) * se
    return Estimate(n, mean, max(0.0, mean - half), min(1.0, mean + half), "t", se)


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n``."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
