"""Conformance cases: tiny problems with their optimum worked out by hand beside the data.

Each case states the optimum (and where it is unique, the plan) so a backend that returns
a different number is wrong, not merely different. Infeasible cases carry the diagnosis
figures they must produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

A = np.array


@dataclass(frozen=True)
class Case:
    name: str
    data: dict[str, Any]
    optimum: float | None  # None: infeasible
    assignment: tuple[int, ...] | None = None  # the unique optimal plan, where it is unique
    served_weight: float | None = None
    diagnosis: dict[str, Any] = field(default_factory=dict)  # expected Diagnosis fields
    note_words: tuple[str, ...] = ()  # words the diagnosis notes must contain


CASES: list[Case] = [
    # --- minimize_cost -----------------------------------------------------------------
    # each task takes its cheaper model: 1 + 1 + 1
    Case("cost_plain", {"cost": A([[1.0, 2.0], [2.0, 1.0], [3.0, 1.0]])}, 3.0, (0, 1, 1)),
    # model 0 holds two unit loads: two tasks at 1, the third pays 3
    Case("cost_capacity", {"cost": A([[1.0, 3.0]] * 3), "load": np.ones((3, 2)), "capacity": A([2.0, 5.0])}, 5.0),
    # model 0 may take floor(0.5 * 4) = 2 of the 4 tasks; the other two pay 2 each
    Case("cost_share_cap", {"cost": A([[1.0, 2.0]] * 4), "share_cap": A([0.5, 1.0])}, 6.0),
    # mean quality >= 0.65 needs one of the two tasks on the 0.9 model: 1 + 4
    Case("cost_quality_floor", {"cost": A([[1.0, 4.0]] * 2), "quality": A([[0.5, 0.9]] * 2),
                                "min_avg_quality": 0.65}, 5.0),
    # a second capacity family (requests): model 0 takes one request, so 1 + 2
    Case("cost_extra_capacity", {"cost": A([[1.0, 2.0]] * 2),
                                 "extra_capacities": (("requests", np.ones((2, 2)), A([1.0, np.inf])),)},
         3.0),
    # excluded pairs are never used: task 0 must take model 1
    Case("cost_feasible_mask", {"cost": A([[1.0, 5.0], [1.0, 5.0]]), "feasible": A([[False, True], [True, True]])},
         6.0, (1, 0)),
    # --- maximize_quality --------------------------------------------------------------
    # budget 5 buys one 3-dollar model: 0.9 + 0.6 beats 0.5 + 0.8
    Case("quality_budget", {"cost": A([[3.0, 1.0], [3.0, 1.0]]), "quality": A([[0.9, 0.5], [0.8, 0.6]]),
                            "budget": 5.0, "goal": "maximize_quality"}, 1.5, (0, 1)),
    # priority 3 on task 1 turns it round: 0.5 * 1 + 0.8 * 3
    Case("quality_priority", {"cost": A([[3.0, 1.0], [3.0, 1.0]]), "quality": A([[0.9, 0.5], [0.8, 0.6]]),
                              "budget": 5.0, "priority": A([1.0, 3.0]), "goal": "maximize_quality"}, 2.9, (1, 0)),
    # model 0 (0.9) holds two of three tasks: 0.9 + 0.9 + 0.5
    Case("quality_capacity", {"quality": A([[0.9, 0.5]] * 3), "load": np.ones((3, 2)), "capacity": A([2.0, 3.0]),
                              "goal": "maximize_quality"}, 2.3),
    # share cap floor(0.34 * 3) = 1 on model 0: 0.9 + 0.5 + 0.5
    Case("quality_share_cap", {"quality": A([[0.9, 0.5]] * 3), "share_cap": A([0.34, 1.0]),
                               "goal": "maximize_quality"}, 1.9),
    # --- minimize_latency (makespan) ---------------------------------------------------
    # no concurrency limit: the makespan is the slowest task, all on model 1
    Case("latency_plain", {"latency": A([[4.0, 2.0]] * 3), "goal": "minimize_latency"}, 2.0, (1, 1, 1)),
    # one request at a time per model: two on model 1 (4 s), one on model 0 (4 s)
    Case("latency_concurrency", {"latency": A([[4.0, 2.0]] * 3), "concurrency": A([1.0, 1.0]),
                                 "goal": "minimize_latency"}, 4.0),
    # model 1 runs two at once: all three there take 6 / 2 = 3 s
    Case("latency_concurrency2", {"latency": A([[4.0, 2.0]] * 3), "concurrency": A([1.0, 2.0]),
                                  "goal": "minimize_latency"}, 3.0, (1, 1, 1)),
    # the makespan ties (5 s) for task 1 on either model; the tie-break picks the faster one
    Case("latency_tiebreak", {"latency": A([[5.0, 9.0], [3.0, 1.0]]), "goal": "minimize_latency"}, 5.0, (0, 1)),
    # budget 4 forbids two fast 3-dollar models: 2 + 6 on one side, makespan 6
    Case("latency_budget", {"latency": A([[2.0, 6.0]] * 2), "cost": A([[3.0, 1.0]] * 2), "budget": 4.0,
                            "goal": "minimize_latency"}, 6.0),
    # --- balanced ----------------------------------------------------------------------
    # task 0: model 0 scores 0.4 (worse quality), model 1 scores 0.6; task 1: model 1 scores 0
    Case("balanced_plain", {"cost": A([[1.0, 3.0], [2.0, 1.0]]), "quality": A([[0.5, 0.9], [0.7, 0.7]]),
                            "latency": A([[1.0, 2.0], [1.0, 1.0]]), "goal": "balanced"}, 0.4, (0, 1)),
    # a 0.75 mean needs task 0 on model 1 (score 0.6)
    Case("balanced_quality_floor", {"cost": A([[1.0, 3.0], [2.0, 1.0]]), "quality": A([[0.5, 0.9], [0.7, 0.7]]),
                                    "latency": A([[1.0, 2.0], [1.0, 1.0]]), "min_avg_quality": 0.75,
                                    "goal": "balanced"}, 0.6, (1, 1)),
    # --- queuing (lexicographic) -------------------------------------------------------
    # budget 4.5 serves two of three 2-dollar tasks: the two heaviest (3 + 2), cost 4
    Case("queue_budget", {"cost": A([[2.0]] * 3), "budget": 4.5, "priority": A([1.0, 3.0, 2.0]),
                          "allow_queue": True}, 4.0, (-1, 0, 0), served_weight=5.0),
    # queuing would be cheaper, but serving both comes first: 1 + 3
    Case("queue_lexicographic", {"cost": A([[1.0, 3.0]] * 2), "load": np.ones((2, 2)), "capacity": A([1.0, 5.0]),
                                 "budget": 10.0, "allow_queue": True}, 4.0, served_weight=2.0),
    # no limit can force a queue: every task with a model is served, the modelless one queued
    Case("queue_no_limits", {"cost": A([[1.0], [2.0], [3.0]]), "feasible": A([[True], [False], [True]]),
                             "allow_queue": True}, 4.0, (0, -1, 0), served_weight=2.0),
    # the task of quality 0.2 would drag the mean below 0.7: it is queued
    Case("queue_quality_floor", {"quality": A([[0.9], [0.8], [0.2]]), "min_avg_quality": 0.7,
                                 "allow_queue": True, "goal": "maximize_quality"}, 1.7, (0, 0, -1),
         served_weight=2.0),
    # makespan with queuing: capacity 6 on the single model serves two of three 3-second tasks
    Case("queue_latency", {"latency": A([[3.0]] * 3), "load": A([[3.0]] * 3), "capacity": A([6.0]),
                           "concurrency": A([1.0]), "allow_queue": True, "goal": "minimize_latency"}, 6.0,
         served_weight=2.0),
    # no pair is feasible at all: every task is queued, whatever the limits (an empty model)
    Case("queue_nothing_feasible", {"cost": A([[1.0, 2.0]] * 2), "quality": A([[0.5, 0.6]] * 2),
                                    "feasible": np.zeros((2, 2), dtype=bool), "budget": 1.0,
                                    "allow_queue": True, "goal": "maximize_quality"}, 0.0, (-1, -1),
         served_weight=0.0),
    # --- group fixed charges (setup once per (group, model) used) ---------------------
    # model 1 is cheaper per task (3 x 0.5) but its 2.0 charge makes model 0 (3 x 1) the best
    Case("cost_group_charge", {"cost": A([[1.0, 0.5]] * 3), "group_charges": ((0, 0, 0), A([[0.0, 2.0]]))},
         3.0, (0, 0, 0)),
    # two groups: group 0 (three tasks) pays model 1's 1.0 charge once and saves 3 x 0.6;
    # group 1's lone task would save 0.6 for the same charge, so it stays on model 0:
    # 3 x 0.4 + 1.0 + 1.0 = 3.2
    Case("cost_group_two", {"cost": A([[1.0, 0.4]] * 4), "group_charges": ((0, 0, 0, 1), A([[0.0, 1.0]] * 2))},
         3.2, (1, 1, 1, 0)),
    # the charge counts in the budget: quality 0.9 on model 1 costs 1 + 1 (charge) per group
    # member; budget 3.5 buys it for one group of two (1 + 1 + 1 = 3), not for both singles
    Case("quality_group_budget", {"cost": A([[0.5, 1.0]] * 3), "quality": A([[0.5, 0.9]] * 3),
                                  "group_charges": ((0, 0, 1), A([[0.0, 1.0]] * 2)), "budget": 3.5,
                                  "goal": "maximize_quality"}, 2.3, (1, 1, 0)),
    # --- infeasible, with the diagnosis figures ---------------------------------------
    # cheapest plan costs 2 + 2 = 4 > 3
    Case("infeasible_budget", {"cost": A([[2.0, 3.0]] * 2), "budget": 3.0}, None,
         diagnosis={"min_budget": 4.0}, note_words=("budget", "4")),
    # 3 x 2 units on a 4-unit model: capacity x 1.5
    Case("infeasible_capacity", {"cost": A([[1.0]] * 3), "load": A([[2.0]] * 3), "capacity": A([4.0])}, None,
         diagnosis={"min_capacity_scale": 1.5}, note_words=("capacit", "1.5")),
    # 4 tasks, one each allowed on 2 models: the caps must double
    Case("infeasible_share", {"cost": A([[1.0, 1.0]] * 4), "share_cap": A([0.25, 0.25])}, None,
         diagnosis={"min_share_scale": 2.0}, note_words=("share", "2")),
    # task 0 costs more than the whole budget on every model; the least budget is 5 + 1
    Case("infeasible_blocked_task", {"cost": A([[5.0, 6.0], [1.0, 1.0]]), "budget": 4.0}, None,
         diagnosis={"tasks_without_model": (0,), "min_budget": 6.0}, note_words=("task 0", "budget")),
    # the best mean quality is 0.5
    Case("infeasible_quality", {"quality": A([[0.5, 0.4]]), "min_avg_quality": 0.8, "goal": "maximize_quality"},
         None, diagnosis={}, note_words=("quality", "0.5")),
    # the charge makes the cheapest plan 2 x 0.5 + 1.5 = 2.5 (model 0: 2 x 1.5 = 3) > budget 2
    Case("infeasible_group_budget", {"cost": A([[1.5, 0.5]] * 2), "group_charges": ((0, 0), A([[0.0, 1.5]])),
                                     "budget": 2.0}, None, diagnosis={"min_budget": 2.5},
         note_words=("budget", "2.5")),
    # budget and capacity both bind: 2 tasks of load 2 on a 3-unit model (x 4/3), cost 2 each vs budget 3
    Case("infeasible_two_limits", {"cost": A([[2.0]] * 2), "budget": 3.0, "load": A([[2.0]] * 2),
                                   "capacity": A([3.0])}, None,
         diagnosis={"min_budget": None, "min_capacity_scale": None}, note_words=("without the budget",)),
]


def problem_kwargs(case: Case) -> dict[str, Any]:
    """The case's data as Problem keyword arguments (capacity rows turned into CapacityRow)."""
    from solvers import CapacityRow, GroupCharges

    data = dict(case.data)
    if "group_charges" in data:
        group, setup = data["group_charges"]
        data["group_charges"] = GroupCharges(np.array(group), setup)
    if "extra_capacities" in data:
        data["extra_capacities"] = tuple(CapacityRow(n, load, lim) for n, load, lim in data["extra_capacities"])
    return data
