"""The budget guard: reserve a call's worst case before it is sent, settle it afterwards.

Invariant: ``spent + reserved <= budget`` at every moment (when every actual cost is at most
its reservation, which holds whenever the provider bills no more input tokens than were
reserved). A call that cannot be covered waits while other reservations are outstanding
(they may be released or settle below their worst case); once nothing is outstanding and it
still does not fit, the task is queued and never sent.
"""

from __future__ import annotations

import asyncio


class BudgetGuard:
    """Amounts are integer picodollars (see ``money``); ``budget_pusd=None`` is unlimited."""

    def __init__(self, budget_pusd: int | None, spent_pusd: int = 0) -> None:
        self.budget_pusd = budget_pusd
        self.spent_pusd = spent_pusd
        self.reserved_pusd = 0
        self._changed = asyncio.Event()

    def remaining_pusd(self) -> int | None:
        if self.budget_pusd is None:
            return None
        return self.budget_pusd - self.spent_pusd - self.reserved_pusd

    def fits(self, amount_pusd: int) -> bool:
        remaining = self.remaining_pusd()
        return remaining is None or amount_pusd <= remaining

    async def reserve(self, amount_pusd: int) -> bool:
        """Reserve ``amount_pusd``; False when it can never fit (nothing left to wait for)."""
        while not self.fits(amount_pusd):
            if self.reserved_pusd == 0:
                return False
            event = self._changed
            await event.wait()
        self.reserved_pusd += amount_pusd
        return True

    def reserve_now(self, amount_pusd: int) -> bool:
        """Reserve ``amount_pusd`` if it fits now, without waiting (a batch job's requests,
        reserved one by one before the job is uploaded)."""
        if not self.fits(amount_pusd):
            return False
        self.reserved_pusd += amount_pusd
        return True

    def adopt(self, amount_pusd: int) -> None:
        """Hold again a reservation an earlier process recorded (an open batch job's): the
        ledger counted it as spent; it becomes a reservation to settle."""
        self.spent_pusd -= amount_pusd
        self.reserved_pusd += amount_pusd

    def settle(self, reserved_pusd: int, actual_pusd: int) -> None:
        """Turn a reservation into actual spend (0 = released: the provider did not bill)."""
        self.reserved_pusd -= reserved_pusd
        self.spent_pusd += actual_pusd
        event, self._changed = self._changed, asyncio.Event()
        event.set()
