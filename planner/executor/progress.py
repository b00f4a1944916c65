"""A rich progress bar on a terminal; nothing at all otherwise (logs and pipes stay clean)."""

from __future__ import annotations

from typing import Any


class Progress:
    def __init__(self, total: int, enabled: bool, label: str) -> None:
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console

        console = Console()
        if not console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[spend]}"), TimeRemainingColumn(),
                                 console=console, transient=False)
        self._task = self._bar.add_task(label, total=total, spend="")
        self._bar.start()

    def advance(self, spend: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, spend=spend)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def note(self, text: str) -> None:
        """A line for the user (stderr), above the bar when there is one."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            import sys

            sys.stderr.write(text + "\n")
            sys.stderr.flush()
