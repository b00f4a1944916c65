"""planner: the LLM domain of routeplan (tasks, catalogs, formulation, plans, executor).

Importing it must stay cheap: litellm, the solvers' native libraries and pandas load only
when a function that needs them runs. The public names below load on first use.

    >>> import planner
    >>> plan = planner.make_plan("examples/tasks/demo_batch.yaml", goal="minimize_cost",
    ...                          limits=planner.Limits(budget_usd=10))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "Task": "planner.tasks",
    "load_tasks": "planner.tasks",
    "Catalog": "planner.catalog",
    "Offering": "planner.catalog",
    "load_catalog": "planner.catalog",
    "formulate": "planner.formulation",
    "Formulation": "planner.formulation",
    "make_plan": "planner.solve",
    "Plan": "planner.plan",
    "Limits": "planner.plan",
    "sweep": "planner.sweeps",
    "model_mix": "planner.sweeps",
    "read_history": "planner.history",
    "calibrate": "planner.calibrate",
    "evaluate": "planner.evaluate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'planner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = sorted(_LAZY)
