"""Money reads as a person writes it (one rule for every table and report)."""

from __future__ import annotations

from planner.money import usd


def test_usd_puts_the_sign_before_the_dollar() -> None:
    assert usd(-0.000748) == "-$0.000748"
    assert usd(0.00045) == "$0.000450"
    assert usd(12.34) == "$12.3400"
    assert usd(-1234.5) == "-$1,234.5000"
    assert usd(None) == "-"
