"""A rich progress bar on a terminal; nothing at all otherwise (logs and pipes stay clean).
Inside a step that already shows a spinner (``planner.status``, e.g. a pipeline step), the
progress is written on that spinner's line instead."""

from __future__ import annotations

from typing import Any


class Progress:
    def __init__(self, total: int, enabled: bool, label: str) -> None:
        self._bar: Any = None
        self._line: Any = None
        if not enabled:
            return
        from planner.status import shown_line

        self._line, self._label, self._total, self._done = shown_line(), label, total, 0
        if self._line is not None:
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
        if self._line is not None:
            self._done += 1
            self._line(f"{self._label}: {self._done}/{self._total} tasks, {spend} spent")
        elif self._bar is not None:
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
