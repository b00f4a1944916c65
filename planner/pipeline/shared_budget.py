"""The one budget a whole pipeline shares: each step draws on what the earlier steps left.

Steps record what they projected and what they actually spent; the remaining budget is the
initial budget minus actual spend, and it is what the next step may plan and reserve
against. Queued work is counted per step so the report can say what the budget did not
cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.money import budget_pusd, to_pusd, to_usd


@dataclass
class StepSpend:
    """One step's draw on the pipeline budget (USD) and what became of its tasks."""

    step_id: str
    available_usd: float
    projected_usd: float = 0.0  # the step's plan, every task
    projected_done_usd: float = 0.0  # the plan's projection for the tasks that ran
    spent_usd: float = 0.0
    n_done: int = 0
    n_queued: int = 0
    n_failed: int = 0
    queued: list[tuple[str, str]] = field(default_factory=list)  # (task id, reason)


class PipelineBudget:
    def __init__(self, initial_usd: float) -> None:
        self.initial_usd = float(initial_usd)
        self.initial_pusd = budget_pusd(self.initial_usd) or 0  # rounded down, never up
        self.steps: list[StepSpend] = []

    @property
    def spent_pusd(self) -> int:
        return sum(to_pusd(s.spent_usd) for s in self.steps)

    @property
    def spent_usd(self) -> float:
        return to_usd(self.spent_pusd)

    @property
    def remaining_usd(self) -> float:
        # never negative: the executor's guard keeps spend within what it was given
        return to_usd(max(0, self.initial_pusd - self.spent_pusd))

    @property
    def n_queued(self) -> int:
        return sum(s.n_queued for s in self.steps)

    def record(self, spend: StepSpend) -> StepSpend:
        """Add a step's spend (kept even when it broke the budget, which then raises)."""
        self.steps.append(spend)
        if to_pusd(spend.spent_usd) > to_pusd(spend.available_usd):
            raise RuntimeError(f"step {spend.step_id} spent ${spend.spent_usd:.6f} of "
                               f"${spend.available_usd:.6f} available")
        return spend
