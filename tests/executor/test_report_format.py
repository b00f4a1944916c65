"""Money in the run report reads as a person writes it."""

from __future__ import annotations

from planner.executor.report import _usd


def test_usd_puts_the_sign_before_the_dollar() -> None:
    assert _usd(-0.000748) == "-$0.000748"
    assert _usd(0.00045) == "$0.000450"
    assert _usd(12.34) == "$12.3400"
    assert _usd(-1234.5) == "-$1,234.5000"
    assert _usd(None) == "-"
