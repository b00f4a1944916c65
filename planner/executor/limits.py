"""Per-model capacity: concurrent calls, requests per minute and tokens per minute.

A semaphore caps calls in flight; two token buckets (refilled continuously on the run's
``Clock``) pace requests and tokens. Tokens are taken at their worst case before the call
and the unused part is given back afterwards, so the bucket never lets a burst exceed tpm.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from planner.executor.clock import Clock


class TokenBucket:
    """``capacity`` units, refilled at ``capacity / 60`` units per (clock) second."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.capacity = float(per_minute)
        self.rate_per_s = per_minute / 60.0
        self.level = self.capacity
        self.clock = clock
        self._t = clock.now()

    def _refill(self) -> None:
        now = self.clock.now()
        self.level = min(self.capacity, self.level + (now - self._t) * self.rate_per_s)
        self._t = now

    async def take(self, units: float) -> None:
        units = min(units, self.capacity)  # a single huge call may still pass, alone
        while True:
            self._refill()
            if self.level >= units:
                self.level -= units
                return
            await self.clock.sleep((units - self.level) / self.rate_per_s)

    def give_back(self, units: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + units)


class ModelLimiter:
    """All limits of one model; ``None`` limits are not enforced."""

    def __init__(self, clock: Clock, concurrency: int | None, rpm: int | None,
                 tpm: int | None) -> None:
        self._sem = asyncio.Semaphore(concurrency) if concurrency else None
        self._rpm = TokenBucket(rpm, clock) if rpm else None
        self._tpm = TokenBucket(tpm, clock) if tpm else None

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[TokenLease]:
        """Hold a call slot; ``lease.used(n)`` returns the unused tokens to the tpm bucket."""
        if self._sem is not None:
            await self._sem.acquire()
        try:
            if self._rpm is not None:
                await self._rpm.take(1)
            if self._tpm is not None:
                await self._tpm.take(tokens)
            yield TokenLease(self._tpm, tokens)
        finally:
            if self._sem is not None:
                self._sem.release()


class TokenLease:
    def __init__(self, bucket: TokenBucket | None, taken: int) -> None:
        self._bucket = bucket
        self._taken = taken

    def used(self, tokens: int) -> None:
        if self._bucket is not None and tokens < self._taken:
            self._bucket.give_back(self._taken - tokens)
            self._taken = tokens
