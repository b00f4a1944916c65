"""routeplan's exceptions. Library code raises; only the CLI turns them into exit codes.

    RouteplanError              base
    +-- InputError              a user's file or option is wrong: one line, exit status 2
    |                           (file, record/field, what was expected)
    |   +-- StorageError        the output folder cannot be written, or a run's ledger was
    |                           deleted or replaced: the run stopped sending calls (exit 2)
    +-- InfeasibleError         the limits admit no plan; carries the diagnosis (exit 2)
"""

from __future__ import annotations


class RouteplanError(Exception):
    """Base of routeplan's errors."""


class InputError(RouteplanError, ValueError):
    """Bad input from the user. The message is one line: where, which field, what was expected."""

    def __init__(self, message: str, *, file: str | None = None) -> None:
        self.file = file
        super().__init__(f"{file}: {message}" if file else message)


class StorageError(InputError):
    """A run cannot record what it does (read-only folder, full disk, ledger deleted): it stops
    sending calls at once; what was recorded is kept for ``--resume``."""


class InfeasibleError(RouteplanError):
    """No plan satisfies the limits; ``diagnosis`` says why and what would fix it."""

    def __init__(self, message: str, diagnosis: object | None = None) -> None:
        self.diagnosis = diagnosis
        super().__init__(message)
