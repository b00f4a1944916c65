"""solvers: assign N tasks to K models as an integer program, behind one contract.

    >>> import numpy as np, solvers
    >>> p = solvers.Problem(cost=np.array([[1.0, 2.0], [2.0, 1.0]]))
    >>> solvers.solve(p, backend="highs").assignment.tolist()
    [0, 1]

Knows nothing of LLMs. Importing it loads numpy only; each backend's native library is
imported the first time that backend solves.
"""

from solvers.errors import (
    BackendUnavailable,
    ProblemError,
    SolverError,
    UnknownBackend,
    UnsupportedError,
)
from solvers.groups import GroupCharges
from solvers.options import Options
from solvers.problem import CapacityRow, Feature, Goal, Problem, Weights
from solvers.registry import BACKENDS, Backend, available, get, solve
from solvers.solution import Diagnosis, Solution, Status, relative_gap

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "CapacityRow",
    "Diagnosis",
    "Feature",
    "Goal",
    "GroupCharges",
    "Options",
    "Problem",
    "ProblemError",
    "Solution",
    "SolverError",
    "Status",
    "UnknownBackend",
    "UnsupportedError",
    "Weights",
    "available",
    "get",
    "relative_gap",
    "solve",
]
