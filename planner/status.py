"""A spinner with a line of progress on stderr while a slow step runs, on a terminal only.

Counting tokens cold, solving a large batch or writing a report can take seconds; a person at
a terminal should see that something is happening. Nothing is printed when stderr is not a
terminal, so pipes, logs, scripts and tests see exactly what they saw before. Steps nest:
an inner step changes the text of the spinner already shown and puts it back when it ends
(rich allows one live display at a time).

    with status("solving 10,000 tasks") as say:
        ...
        say("solving 10,000 tasks: 40 %")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_shown: list[Any] = []  # the rich Status on screen, if any


def _quiet(_: str) -> None:
    pass


def on_terminal() -> bool:
    """Is stderr a terminal a person watches (rich's test: isatty, FORCE_TERMINAL, TERM=dumb)?"""
    from rich.console import Console

    return Console(stderr=True).is_terminal


@contextmanager
def status(text: str) -> Iterator[Callable[[str], None]]:
    """Show ``text`` with a spinner on stderr while the block runs; yields a function that
    replaces the text (at most ten times a second). A no-op off a terminal."""
    if _shown:  # nested: reuse the spinner already on screen
        outer = _shown[-1]
        before = outer.status
        outer.update(text)
        try:
            yield _throttled(outer.update)
        finally:
            outer.update(before)
        return
    if not on_terminal():
        yield _quiet
        return
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    with console.status(text, spinner="dots") as shown:
        _shown.append(shown)
        try:
            yield _throttled(shown.update)
        finally:
            _shown.pop()


def shown_line() -> Callable[[str], None] | None:
    """Where a nested progress report goes when a spinner is already on screen (else None):
    a second live display would garble the terminal."""
    return _throttled(_shown[-1].update) if _shown else None


def _throttled(update: Callable[[str], None], every_s: float = 0.1) -> Callable[[str], None]:
    last = [0.0]

    def say(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            update(text)

    return say
