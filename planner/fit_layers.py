"""What a calibrated number was fitted from, so that recalibrating counts each run once.

``routeplan calibrate`` shrinks what it reads toward the base catalog's entry. When that entry
was itself fitted from a run folder being read again (``calibrate RUN --catalog cal.yaml``
where ``cal.yaml`` came from ``RUN``), the run's observations would count twice: once in the
prior, once as data. So every calibrated rate records how it was fitted (``calibration`` in a
profile, per category; in a cascade entry): the prior the first calibration started from, and
for each calibration on top of it (oldest first) its prior strength and the counts it added,
per run (the ledger's ``run_id``) and for observations without one (outcome files)::

    calibration:
      prior: 0.7                 # a cascade: [p_accept, quality_accept, quality_reject]
      prior_from: catalog default
      fits:
        - strength: 10
          runs: {RUN_ID: [200, 143.0]}   # per rate: n, score sum (a cascade: decided,
          other: [0, 0]                  # accepted, graded accepted, their scores,
                                         # graded escalated, their scores)

Folding the fits over the prior gives the entry's value: each fit is
``(sum + strength x value so far) / (n + strength)``, which is how ``calibrate`` computes it.
Taking a run out of every fit and folding again gives the entry as if that run had never been
read: that is the prior a recalibration reading the run again shrinks toward, so the run counts
once, and recalibrating from the same runs gives the same numbers again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: a value written rounded to 4 places still matches its fold within this
MATCH = 6e-4


@dataclass(frozen=True)
class Fit:
    """One calibration on top of the prior: its strength and what it counted, per rate."""

    strength: float
    runs: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)  # run id -> (n, sum) per rate
    other: tuple[tuple[float, float], ...] = ()  # observations without a run id

    def totals(self, rates: int, drop: frozenset[str] = frozenset()) -> list[tuple[float, float]]:
        out = [list(self.other[r]) if self.other else [0.0, 0.0] for r in range(rates)]
        for run, counts in self.runs.items():
            if run not in drop:
                for r, (n, s) in enumerate(counts):
                    out[r][0] += n
                    out[r][1] += s
        return [(n, s) for n, s in out]

    def record(self) -> dict[str, Any]:
        return {"strength": _num(self.strength),
                "runs": {run: [_num(x) for pair in counts for x in pair] for run, counts in sorted(self.runs.items())},
                "other": [_num(x) for pair in self.other for x in pair]}


@dataclass(frozen=True)
class Fitted:
    """How a calibrated rate (or a cascade's three) was fitted: prior, then the fits on top."""

    prior: tuple[float, ...]
    prior_from: str
    fits: tuple[Fit, ...] = ()

    @property
    def rates(self) -> int:
        return len(self.prior)

    @property
    def runs(self) -> frozenset[str]:
        """Every run whose observations the value holds."""
        return frozenset(run for f in self.fits for run in f.runs)

    def value(self, drop: frozenset[str] = frozenset()) -> tuple[float, ...]:
        """The fold of the fits over the prior, leaving out the runs in ``drop``."""
        q = list(self.prior)
        for f in self.fits:
            for r, (n, s) in enumerate(f.totals(self.rates, drop)):
                if n + f.strength > 0:
                    q[r] = (s + f.strength * q[r]) / (n + f.strength)
        return tuple(q)

    def without(self, drop: frozenset[str]) -> Fitted:
        """As if the runs in ``drop`` had never been read (fits left with nothing are dropped)."""
        fits = []
        for f in self.fits:
            runs = {k: v for k, v in f.runs.items() if k not in drop}
            if runs or any(n for n, _ in f.other):
                fits.append(Fit(f.strength, runs, f.other))
        return Fitted(self.prior, self.prior_from, tuple(fits))

    def then(self, fit: Fit) -> Fitted:
        return Fitted(self.prior, self.prior_from, (*self.fits, fit))

    def matches(self, values: Sequence[float]) -> bool:
        """Whether the fold gives ``values`` (the entry was not edited by hand since)."""
        return all(abs(a - float(b)) <= MATCH for a, b in zip(self.value(), values, strict=True))

    def record(self) -> dict[str, Any]:
        prior: Any = _num(self.prior[0]) if self.rates == 1 else [_num(x) for x in self.prior]
        return {"prior": prior, "prior_from": self.prior_from, "fits": [f.record() for f in self.fits]}


def parse(data: Any, rates: int) -> Fitted:
    """A ``calibration`` mapping read back; ValueError (the field and what was expected) when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("calibration: expected a mapping with prior, prior_from and fits")
    prior = data.get("prior")
    values = [prior] if rates == 1 and not isinstance(prior, list) else prior
    if not isinstance(values, list) or len(values) != rates or not all(_is_rate(x) for x in values):
        want = "a number in [0, 1]" if rates == 1 else f"a list of {rates} numbers in [0, 1]"
        raise ValueError(f"calibration.prior: expected {want}, got {prior!r}")
    fits = data.get("fits") or []
    if not isinstance(fits, list):
        raise ValueError("calibration.fits: expected a list")
    out = []
    for i, f in enumerate(fits):
        where = f"calibration.fits[{i}]"
        if not isinstance(f, Mapping):
            raise ValueError(f"{where}: expected a mapping with strength, runs and other")
        strength: Any = f.get("strength")
        if not _is_count(strength):
            raise ValueError(f"{where}.strength: expected a number >= 0, got {strength!r}")
        runs = f.get("runs") or {}
        if not isinstance(runs, Mapping):
            raise ValueError(f"{where}.runs: expected run id -> counts")
        parsed = {str(k): _pairs(v, rates, f"{where}.runs.{k}") for k, v in runs.items()}
        other = _pairs(f.get("other") or [0] * 2 * rates, rates, f"{where}.other")
        out.append(Fit(float(strength), parsed, other))
    return Fitted(tuple(float(x) for x in values), str(data.get("prior_from") or "unknown"), tuple(out))


def base_fit(recorded: Fitted | None, value: Sequence[float], reading: frozenset[str]) -> tuple[Fitted | None, frozenset[str]]:
    """(what a new fit goes on top of, the base's runs being read again) for a base entry of
    value ``value`` with ``recorded`` calibration, when this calibration reads the runs in
    ``reading``. None when the base has no usable record (hand-written, or edited since): the
    new fit then starts from its value, as a prior of its own."""
    if recorded is None or not recorded.matches(value):
        return None, frozenset()
    again = recorded.runs & reading
    return (recorded.without(again) if again else recorded), again


def _pairs(v: Any, rates: int, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(v, list) or len(v) != 2 * rates or not all(_is_count(x) for x in v):
        raise ValueError(f"{where}: expected {2 * rates} counts >= 0 (n and score sum per rate), got {v!r}")
    return tuple((float(v[2 * r]), float(v[2 * r + 1])) for r in range(rates))


def _is_count(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


def _is_rate(x: Any) -> bool:
    return _is_count(x) and x <= 1


def _num(x: float) -> float | int:
    """A count as an int when whole, else rounded (YAML stays readable)."""
    x = float(x)
    return int(x) if x.is_integer() else round(x, 6)
