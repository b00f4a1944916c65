"""Time for the executor: real, scaled (the simulator at ``--time-scale X``) or virtual.

Rate limits, backoff and simulated latency all wait through one ``Clock`` so that a
simulated run at time-scale 0.01 behaves like the real one a hundred times faster, and at
time-scale 0 no wait sleeps at all (virtual time jumps forward instead).
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """``now()`` in (simulated) seconds; ``sleep(s)`` waits ``s`` simulated seconds.

    ``scale`` is real seconds per simulated second: 1 for live runs, 0 for no sleeping.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if scale < 0:
            raise ValueError("time scale must be >= 0")
        self.scale = scale
        self._virtual_s = 0.0
        self._t0 = time.monotonic()

    def now(self) -> float:
        if self.scale == 0:
            return self._virtual_s
        return (time.monotonic() - self._t0) / self.scale

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.scale == 0:
            # virtual time: every waiter sees time jump; nobody blocks
            self._virtual_s += seconds
            await asyncio.sleep(0)
            return
        await asyncio.sleep(seconds * self.scale)

    async def sleep_or_stop(self, seconds: float, stop: asyncio.Event | None) -> None:
        """``sleep(seconds)``, ended early when ``stop`` is set (a Ctrl-C must not wait out a backoff)."""
        if stop is None:
            await self.sleep(seconds)
            return
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((sleeper, stopper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
