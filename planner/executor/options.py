"""Validated settings for one run (small value objects instead of loose keyword arguments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from planner.errors import InputError

Mode = Literal["auto", "simulate", "live"]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model on transient errors before moving down the fallback chain.

    Backoff is ``base_s * 2**k`` (k = retries so far) with +-25 % jitter, capped at
    ``max_backoff_s``, and never shorter than the provider's Retry-After.
    """

    max_retries: int = 3
    base_s: float = 0.5
    max_backoff_s: float = 30.0
    request_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_s < 0 or self.max_backoff_s < 0:
            raise InputError("retry policy: values must be >= 0")
        if self.request_timeout_s <= 0:
            raise InputError("retry policy: request_timeout_s must be > 0")


@dataclass(frozen=True)
class RunOptions:
    """How to run a plan.

    ``budget_usd``: None takes the plan's ``limits.budget_usd``; ``unlimited=True`` ignores
    both. ``concurrency``: calls in flight across all models (each model's own
    ``concurrency`` also applies). ``time_scale``: real seconds per simulated second
    (simulator only; 0 = never sleep). ``fail_rate``: probability that a simulated attempt
    hits an injected fault.
    """

    mode: Mode = "auto"
    budget_usd: float | None = None
    unlimited: bool = False
    resume: bool = False
    concurrency: int = 32
    seed: int = 0
    time_scale: float = 0.0
    fail_rate: float = 0.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "simulate", "live"):
            raise InputError(f"--mode: expected auto, simulate or live, got {self.mode!r}")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise InputError(f"--budget: expected a non-negative amount in USD, got {self.budget_usd}")
        if self.concurrency < 1:
            raise InputError(f"--concurrency: expected >= 1, got {self.concurrency}")
        if self.time_scale < 0:
            raise InputError(f"--time-scale: expected >= 0, got {self.time_scale}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise InputError(f"--fail-rate: expected a probability in [0, 1], got {self.fail_rate}")
