"""The executor: runs a plan through litellm (or the built-in simulator) under a budget guard,
records every attempt in a SQLite ledger and reports projected against actual.

    from planner.executor import run_plan, RunOptions
    result = run_plan("plan.json", "runs/1", RunOptions(budget_usd=5), simulate=True)

Importing this package is cheap; litellm loads when a run starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.executor.options import RetryPolicy, RunOptions
    from planner.executor.run import RunResult, arun_plan, run_plan
    from planner.executor.run_report import write_run_report

__all__ = ["RetryPolicy", "RunOptions", "RunResult", "arun_plan", "run_plan", "write_run_report"]

_WHERE = {"RetryPolicy": "options", "RunOptions": "options", "RunResult": "run", "arun_plan": "run",
          "run_plan": "run", "write_run_report": "run_report"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"planner.executor.{_WHERE[name]}"), name)
    raise AttributeError(name)
