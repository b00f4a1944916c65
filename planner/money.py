"""Money: integer picodollars for sums, one formatter for display.

Budgets must be provable (``spent <= budget`` after thousands of additions), so every sum of
money works in integer picodollars (1 pUSD = 1e-12 USD): per-token prices become integers
(rounded to the nearest pUSD, an error below 1e-12 USD per token) and sums never drift the
way float sums do. USD floats exist only at the edges (plans, reports) and ``usd`` is the one
way they are shown.
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


def to_pusd(usd: float) -> int:
    """An amount in USD (a spend, a projection) in the nearest whole picodollar."""
    return round(usd * PUSD_PER_USD)


def to_usd(pusd: int) -> float:
    return pusd / PUSD_PER_USD


def call_cost_pusd(input_tokens: int, output_tokens: int, in_price_pusd: int, out_price_pusd: int) -> int:
    """What a call costs at per-token prices: exact, and monotone in both token counts."""
    return input_tokens * in_price_pusd + output_tokens * out_price_pusd


def usd(value: float | None) -> str:
    """An amount of USD for people: every table, report and message uses this one rule.

    - below $1 in size: six decimals, so per-task costs keep their digits (``$0.000450``);
    - $1 and above: four decimals with thousands separators (``$1,234.5000``);
    - a negative amount puts its sign before the dollar sign (``-$0.000748``);
    - no amount (None or NaN) is ``-``.
    """
    if value is None or value != value:
        return "-"
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}${value:,.6f}" if value < 1 else f"{sign}${value:,.4f}"


def cache_price_pusd(price_usd_per_token: float | None) -> int | None:
    """A prompt-cache price in whole picodollars; None (the plan knows none) stays None."""
    return None if price_usd_per_token is None else price_pusd(price_usd_per_token)


def cached_call_cost_pusd(input_tokens: int, cached_tokens: int, written_tokens: int, output_tokens: int,
                          in_price_pusd: int, read_price_pusd: int | None, write_price_pusd: int | None,
                          out_price_pusd: int) -> int:
    """What a call costs when part of its prompt was read from, or written to, the provider's
    cache (both counted inside ``input_tokens``). A price the plan does not know bills those
    tokens as ordinary input, and a write never bills below input, so spend is never
    under-counted."""
    read = min(max(cached_tokens, 0), input_tokens)
    written = min(max(written_tokens, 0), input_tokens - read)
    plain = input_tokens - read - written
    read_p = in_price_pusd if read_price_pusd is None else read_price_pusd
    write_p = in_price_pusd if write_price_pusd is None else max(write_price_pusd, in_price_pusd)
    return plain * in_price_pusd + read * read_p + written * write_p + output_tokens * out_price_pusd
