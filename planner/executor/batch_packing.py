"""Which batch job each request goes in, and in what order (issue 13: prefix groups in batches).

A provider that caches prompt prefixes inside a batch job does it as it works through the
request file: the first request of a prefix group writes the cache, the following ones read
it. So a job's lines follow the plan's send order with each group's requests contiguous, and
a group is not split over jobs unless it is larger than one job may be (each piece then
pays its own cache write). Jobs are filled first-fit, in plan order, by *units*: a group's
requests (the plan's ``send_order`` for that group and offering), or one ungrouped request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from planner.plan import Plan

T = TypeVar("T")


def send_positions(plan: Plan, model: str) -> dict[str, tuple[int, int]]:
    """task id -> (its group's index among the plan's groups, its place in the send order), for
    the cached prefix groups the plan put on ``model``."""
    out: dict[str, tuple[int, int]] = {}
    for g, entry in enumerate(plan.prefix_groups):
        if entry.cached and entry.model == model:
            for k, task_id in enumerate(entry.send_order):
                out[task_id] = (g, k)
    return out


def units_in_send_order(items: Sequence[T], task_id: Callable[[T], str],
                        positions: dict[str, tuple[int, int]]) -> list[list[T]]:
    """``items`` as units: each group's members together, in its send order, at the place of
    its first member; every other item a unit of its own, in place."""
    members: dict[int, list[tuple[int, T]]] = {}
    for item in items:
        where = positions.get(task_id(item))
        if where is not None:
            members.setdefault(where[0], []).append((where[1], item))
    units: list[list[T]] = []
    placed: set[int] = set()
    for item in items:
        where = positions.get(task_id(item))
        if where is None:
            units.append([item])
        elif where[0] not in placed:
            placed.add(where[0])
            units.append([x for _, x in sorted(members[where[0]], key=lambda kv: kv[0])])
    return units


def pack_units(units: Iterable[list[T]], weight: Callable[[T], int], max_items: int,
               max_weight: int) -> list[list[T]]:
    """Jobs of at most ``max_items`` items and ``max_weight`` total weight (bytes), each unit
    whole in one job when it fits in one: first fit, in order, so a job's items keep the order
    they came in. A unit too large for any job is cut into full jobs' worth, in order (the
    fewest pieces); an item heavier than ``max_weight`` alone gets a job of its own."""
    jobs: list[list[T]] = []
    sizes: list[int] = []
    for unit in units:
        for piece in _pieces(unit, weight, max_items, max_weight):
            w = sum(weight(x) for x in piece)
            home = next((k for k, job in enumerate(jobs)
                         if len(job) + len(piece) <= max_items and sizes[k] + w <= max_weight), None)
            if home is None:
                jobs.append([])
                sizes.append(0)
                home = len(jobs) - 1
            jobs[home].extend(piece)
            sizes[home] += w
    return jobs


def _pieces(unit: list[T], weight: Callable[[T], int], max_items: int, max_weight: int) -> list[list[T]]:
    pieces: list[list[T]] = [[]]
    size = 0
    for x in unit:
        w = weight(x)
        if pieces[-1] and (len(pieces[-1]) >= max_items or size + w > max_weight):
            pieces.append([])
            size = 0
        pieces[-1].append(x)
        size += w
    return pieces if pieces[0] else []
