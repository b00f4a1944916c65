"""The solvers package's exceptions.

    SolverError                 base: catch this to catch everything raised here
    +-- ProblemError            the Problem's data is malformed (names the field and the task)
    +-- UnsupportedError        the backend cannot express a constraint (names one that can)
    +-- BackendUnavailable      the backend's library is not installed
    +-- UnknownBackend          no backend of that name

Infeasibility is not an exception: it is a Solution status with a diagnosis.
"""

from __future__ import annotations


class SolverError(Exception):
    """Base of every error raised by the solvers package."""


class ProblemError(SolverError, ValueError):
    """The problem's data is malformed; the message names the field (and task/model)."""


class UnsupportedError(SolverError):
    """The chosen backend cannot express a constraint family or option of the problem."""


class BackendUnavailable(SolverError):
    """The backend's native library is not installed."""


class UnknownBackend(SolverError, KeyError):
    """No backend is registered under that name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""
