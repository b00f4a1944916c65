"""Exact money for the budget guard.

The guard must prove ``spent <= budget`` after thousands of additions, so it works in
integer picodollars (1 pUSD = 1e-12 USD): prices per token become integers (rounded to the
nearest pUSD, an error below 1e-12 USD per token), and sums never drift the way float sums
do. Reports convert back to USD only for display.
"""

from __future__ import annotations

import math

PUSD_PER_USD = 10**12


def price_pusd(price_usd_per_token: float) -> int:
    """A per-token price in whole picodollars."""
    return round(price_usd_per_token * PUSD_PER_USD)


def budget_pusd(budget_usd: float | None) -> int | None:
    """A budget in picodollars, rounded down so it never grows."""
    if budget_usd is None:
        return None
    return math.floor(budget_usd * PUSD_PER_USD)


def to_usd(pusd: int) -> float:
    return pusd / PUSD_PER_USD


def call_cost_pusd(input_tokens: int, output_tokens: int, in_price_pusd: int, out_price_pusd: int) -> int:
    """What a call costs at per-token prices: exact, and monotone in both token counts."""
    return input_tokens * in_price_pusd + output_tokens * out_price_pusd
