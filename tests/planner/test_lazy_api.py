"""The public names of ``planner`` stay the functions, whatever submodules are imported."""

from __future__ import annotations

import importlib

import planner


def test_public_functions_are_not_shadowed_by_submodules() -> None:
    for module in ("planner.formulation", "planner.sweeps", "planner.solve", "planner.tasks"):
        importlib.import_module(module)
    for name in ("formulate", "sweep", "make_plan", "load_tasks", "load_catalog", "model_mix"):
        assert callable(getattr(planner, name)), name
        assert not isinstance(getattr(planner, name), type(planner)), f"planner.{name} is a module"
