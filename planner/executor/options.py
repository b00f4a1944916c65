"""Validated settings for one run (small value objects instead of loose keyword arguments)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from planner.errors import InputError
from planner.plan import check_budget

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

    ``mode``: ``live`` calls the providers; ``simulate`` and ``auto`` (the default) use the
    simulator (``auto`` says why, and resumes a run the way it ran: a live run must be resumed
    with ``live``). Nothing calls a provider unless ``mode="live"``.
    ``budget_usd``: None takes the plan's ``limits.budget_usd``; ``unlimited=True`` ignores
    both. ``concurrency``: calls in flight across all models (each model's own
    ``concurrency`` also applies). ``time_scale``: real seconds per simulated second
    (simulator only; 0 = never sleep). ``fail_rate``: probability that a simulated attempt
    hits an injected fault. ``seed``, ``time_scale`` and ``fail_rate`` left at None take the
    resumed run's settings, or 0 for a new run. ``grace_s``: on the first Ctrl-C, how long to
    wait for calls in flight to answer (their real cost is recorded) before writing them off.
    ``workers``: run on that many Ray actors fed by one coordinator (``routeplan[ray]``;
    0 = in this process); ``ray_address``: an existing Ray cluster instead of a local Ray.
    ``batch_poll_s``: the first wait between polls of a batch job, doubled after each poll
    up to ``batch_poll_max_s`` (clock seconds: the simulator's time scale applies).
    ``batch_max_requests``: requests per batch job (OpenAI takes at most 50,000).
    """

    mode: Mode = "auto"
    budget_usd: float | None = None
    unlimited: bool = False
    resume: bool = False
    concurrency: int = 32
    seed: int | None = None
    time_scale: float | None = None
    fail_rate: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: bool = True
    grace_s: float = 10.0
    workers: int = 0  # > 0: run on that many Ray actors (planner.distributed; the ray extra)
    ray_address: str | None = None  # an existing Ray cluster; None = a local Ray
    batch_poll_s: float = 30.0
    batch_poll_max_s: float = 600.0
    batch_max_requests: int = 50_000

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "simulate", "live"):
            raise InputError(f"--mode: expected auto, simulate or live, got {self.mode!r}")
        if self.budget_usd is not None:
            check_budget(self.budget_usd)
        if self.concurrency < 1:
            raise InputError(f"--concurrency: expected >= 1, got {self.concurrency}")
        if self.time_scale is not None and not (0 <= self.time_scale < math.inf):
            raise InputError(f"--time-scale: expected a number >= 0, got {self.time_scale}")
        if self.fail_rate is not None and not 0.0 <= self.fail_rate <= 1.0:
            raise InputError(f"--fail-rate: expected a probability in [0, 1], got {self.fail_rate}")
        if self.workers < 0:
            raise InputError(f"--workers: expected >= 1, got {self.workers}")
        if not 0 <= self.grace_s < math.inf:
            raise InputError(f"--grace: expected seconds >= 0, got {self.grace_s}")
        if not (0 < self.batch_poll_s <= self.batch_poll_max_s < math.inf):
            raise InputError(f"--batch-poll: expected seconds > 0 (and at most {self.batch_poll_max_s:g}), "
                             f"got {self.batch_poll_s:g}")
        if self.batch_max_requests < 1:
            raise InputError(f"batch_max_requests: expected >= 1, got {self.batch_max_requests}")

    def settled(self, previous: dict[str, str]) -> RunOptions:
        """Seed, time scale and fail rate made concrete: as given, else the resumed run's
        (``previous`` is its ledger meta), else 0."""
        import dataclasses

        def pick(given: float | None, key: str, kind: type) -> float:
            if given is not None:
                return given
            try:
                return kind(float(previous[key])) if previous.get(key) else kind(0)
            except ValueError:
                return kind(0)

        return dataclasses.replace(self, seed=int(pick(self.seed, "seed", int)),
                                   time_scale=pick(self.time_scale, "time_scale", float),
                                   fail_rate=pick(self.fail_rate, "fail_rate", float))
