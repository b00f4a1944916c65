"""Read OR-Library generalised assignment (GAP) files as :class:`Problem` instances.

Format (J.E. Beasley's gapinfo): the number of instances P, then per instance the number of
agents m and jobs n, an m x n cost matrix, an m x n resource matrix and m capacities, all
whitespace-separated. Jobs become tasks and agents become models, so every instance is
``Problem(cost=C.T, load=R.T, capacity=b)`` with the default goal ``minimize_cost``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solvers.errors import ProblemError
from solvers.problem import Problem


def read_gap(path: str | Path) -> list[Problem]:
    """Every instance in one OR-Library GAP file, in file order."""
    path = Path(path)
    try:
        numbers = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError as exc:
        raise ProblemError(f"{path}: expected whitespace-separated numbers, {exc}") from None
    problems = []
    pos = 1
    count = int(numbers[0]) if numbers.size else 0
    for index in range(count):
        if pos + 2 > numbers.size:
            raise ProblemError(f"{path}: instance {index + 1}: file ends before its size")
        m, n = int(numbers[pos]), int(numbers[pos + 1])
        pos += 2
        need = 2 * m * n + m
        if pos + need > numbers.size:
            raise ProblemError(f"{path}: instance {index + 1}: expected {need} numbers for {m} agents x {n} jobs")
        cost = numbers[pos : pos + m * n].reshape(m, n)
        load = numbers[pos + m * n : pos + 2 * m * n].reshape(m, n)
        capacity = numbers[pos + 2 * m * n : pos + need]
        pos += need
        problems.append(Problem(cost=cost.T, load=load.T, capacity=capacity))
    return problems
