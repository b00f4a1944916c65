"""Ctrl-C during a run: the first stops sending and waits a bounded time for the calls in
flight, so their real cost is recorded; the second (or the end of the wait) cancels them,
and ``--resume`` then counts each at its reserved worst case, as after ``kill -9``.

    first SIGINT   stop sending (no new attempt starts; backoff waits end), print
                   "waiting up to G s for N call(s) in flight; Ctrl-C again to stop now"
    calls answer   recorded as usual; the workers return; the run raises KeyboardInterrupt
    second SIGINT  cancel what is left now (or after ``grace_s``)
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class _Notes(Protocol):
    def note(self, text: str) -> None: ...


class Interrupt:
    """Handles SIGINT on the running loop while ``catching`` is active (main thread only)."""

    def __init__(self, workers: asyncio.Future[Any], stop: asyncio.Event, inflight: Callable[[], int],
                 grace_s: float, notes: _Notes) -> None:
        self.workers = workers
        self.stop = stop
        self.inflight = inflight  # calls committed and not yet answered (tasks' and judges')
        self.grace_s = grace_s
        self.notes = notes
        self.count = 0
        self.cancelled = False
        self._timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def catching(self, enabled: bool) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed = False
        if enabled:
            try:
                loop.add_signal_handler(signal.SIGINT, self.on_sigint)
                installed = True
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals
                installed = False
        try:
            yield
        finally:
            if self._timer is not None:
                self._timer.cancel()
            if installed:
                loop.remove_signal_handler(signal.SIGINT)

    def on_sigint(self) -> None:
        self.count += 1
        if self.count == 1:
            self.stop.set()
            n = self.inflight()
            if n:
                self.notes.note(f"interrupted: no new calls; waiting up to {self.grace_s:g} s for {n} "
                                f"call(s) in flight to answer (their cost is recorded); Ctrl-C again to "
                                f"stop now")
                self._timer = asyncio.get_running_loop().call_later(self.grace_s, self._cancel,
                                                                   "the wait ended")
            else:
                self.notes.note("interrupted: no call in flight; stopping")
            return
        self._cancel("Ctrl-C again")

    def _cancel(self, why: str) -> None:
        if self.workers.done():
            return
        n = self.inflight()
        if n:
            self.notes.note(f"{why}: {n} call(s) still in flight are written off at their reserved "
                            f"worst case")
        self.cancelled = True
        self.workers.cancel()
