"""Checks on answers: the ``check`` schema (``schema``), graders (``graders``), the sandbox
for ``python_tests`` (``sandbox``), answers in a check's form for the simulator
(``simulate``), statistics of measured quality (``stats``) and a graded run read back as
outcome history (``outcomes.run_outcomes``).

    from planner.checks import parse_check, grade
    grade(parse_check({"kind": "choice", "answer": "B"}), "I pick (B).").score  # 1.0

Importing this package is cheap: the sandbox and jsonschema load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.checks.graders import Grade, grade
    from planner.checks.outcomes import OUTCOME_COLUMNS, run_outcomes
    from planner.checks.schema import Check, check_to_json, parse_check

__all__ = ["OUTCOME_COLUMNS", "Check", "Grade", "check_to_json", "grade", "parse_check", "run_outcomes"]

_WHERE = {"Grade": "graders", "grade": "graders", "OUTCOME_COLUMNS": "outcomes", "run_outcomes": "outcomes",
          "Check": "schema", "check_to_json": "schema", "parse_check": "schema"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"planner.checks.{_WHERE[name]}"), name)
    raise AttributeError(name)
