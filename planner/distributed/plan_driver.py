"""The sharded ``fast`` planner's driver: the cut and the multiplier, nothing per task.

``fast``'s single-limit path (one budget, or one average-quality floor, no capacities or
share caps; see :mod:`solvers.backends.fast`) is a multiple-choice knapsack whose LP is cut
at one efficiency threshold. The workers (:class:`~planner.distributed.plan_worker.ShardPlanner`)
load, formulate and hull their shards; the driver

1. sums the workers' base weights and finds the critical efficiency t* (the LP multiplier)
   by bisection on its float bits, each step one question to every worker (the weight of the
   increments at or above a threshold) — about 60 small round trips;
2. orders the increments exactly at t* as one process orders them (hull block, step, row)
   and cuts there: the LP bound and the multiplier;
3. runs the two fill passes on the candidates the workers send (few: only upgrades that fit
   the left-over room) with the same greedy as one process, and sends the moves back;
4. has every worker write its shards of the plan (Parquet) and writes ``summary.json``.

The same instance gives the same plan, bound and gap as single-process ``fast`` (up to the
order of floating-point sums). Without a limit the plan is every task's best model.
"""

from __future__ import annotations

import json
import resource
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner.distributed.cluster import IDLE_POOLS, connected, free_idle
from planner.distributed.plan_worker import ShardPlanner
from planner.errors import InputError
from solvers.options import Options
from solvers.problem import Goal
from solvers.solution import Status, relative_gap


@dataclass
class ShardedPlan:
    """What the sharded planner found (the plan itself is in ``out_dir``'s Parquet parts)."""

    status: str
    goal: str
    row: str | None
    limit: float | None
    objective: float | None
    bound: float | None
    gap: float | None
    budget_shadow_price: float | None
    n_tasks: int
    n_queued: int
    served_weight: float
    wall_s: float
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    out_dir: str | None = None
    #: where the tasks came from (``source.describe()``: the task file and its identity, the
    #: catalog, goal, limits and models), so ``routeplan run`` can rebuild the plan's entries
    source: dict[str, Any] | None = None
    #: each shard's part: shard, file, rows, the task file's row groups it covers
    parts: list[dict[str, Any]] = field(default_factory=list)


def _get(ray: Any, refs: Any) -> Any:
    """``ray.get``, with a worker's own error (bad input in a shard) raised as itself, not as
    Ray's wrapper with the worker's traceback."""
    from ray.exceptions import RayTaskError

    from planner.errors import RouteplanError

    try:
        return ray.get(refs)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, RouteplanError):
            raise cause from None
        raise


def _bits(x: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", x))[0])


def _float(u: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", u))[0])


def solve_sharded(source: Any, workers: int, out_dir: str | Path | None = None, *,
                  rel_gap: float | None = None, ray_address: str | None = None,
                  keep_assignment: bool = False) -> tuple[ShardedPlan, dict[int, np.ndarray] | None]:
    """Plan ``source`` (see :mod:`planner.distributed.shards`) on ``workers`` Ray actors.

    Returns the result and, with ``keep_assignment``, each shard's model index per task
    (for checks on small instances: it gathers the whole plan in this process).
    """
    rel_gap = Options().rel_gap if rel_gap is None else rel_gap
    t_start = time.perf_counter()
    stats: dict[str, Any] = {}
    n_shards = source.n_shards
    if n_shards < 1:
        raise InputError("no tasks: the source has no shard")
    # what the plan is made from, taken before the shards are read (a file changed meanwhile is
    # then refused by `routeplan run`, never run against a plan of its former content)
    origin = ((source.describe() if hasattr(source, "describe") else None,
               source.groups() if hasattr(source, "groups") else None) if out_dir is not None else (None, None))
    with connected(ray_address, workers) as ray:
        handles = _planners(ray, workers)
        clean = False
        try:
            owned = [list(range(w * n_shards // workers, (w + 1) * n_shards // workers)) for w in range(workers)]
            t = time.perf_counter()
            loaded = [x for part in _get(ray, [h.load.remote(source, ids) for h, ids in zip(handles, owned, strict=True)])
                      for x in part]
            loaded.sort(key=lambda x: x["shard"])
            stats["load_s"] = time.perf_counter() - t
            goal = _check(loaded)
            if any(x["coupled"] for x in loaded) or (loaded[0]["budget"] is not None
                                                     and loaded[0]["min_avg_quality"] is not None):
                done = _coupled(ray, handles, loaded, source, rel_gap, stats, out_dir, keep_assignment, t_start,
                                origin)
                if done is not None:
                    clean = True
                    return done
            goal, row, limit, allow_queue = _structure(loaded, source)
            sign = 1.0 if Goal(goal).maximize else -1.0
            t = time.perf_counter()
            prepared = [x for part in ray.get([h.prepare.remote(row or "budget", limit or 0.0, sign)
                                               for h in handles]) for x in part]
            prepared.sort(key=lambda x: x["shard"])
            stats["hulls_s"] = time.perf_counter() - t
            n = sum(x["n"] for x in prepared)
            n_sub = sum(x["n_sub"] for x in prepared)
            stats.update(increments=sum(x["increments"] for x in prepared),
                         hull_vertices_mean=sum(x["hull_vertices"] for x in prepared) / max(n_sub, 1))
            base = {"n": n, "goal": goal, "row": row, "limit": limit, "stats": stats}
            if n_sub < n and not allow_queue:
                return _done(base, Status.INFEASIBLE, t_start, ray, handles, message=(
                    f"{n - n_sub} task(s) have no feasible model (allow queuing to leave them out)")), None
            t = time.perf_counter()
            point = _cut(ray, handles, prepared, row, limit, rel_gap, sign)
            stats["cut_s"] = time.perf_counter() - t
            if point is None:
                base_w = sum(x["base_weight"] for x in prepared)
                if allow_queue:
                    raise InputError("the sharded planner cannot serve every task within the limit and "
                                     "does not prove which to queue; plan in one process with an exact backend")
                what = (f"the cheapest plan costs {base_w:.6g} > budget {limit:.6g}" if row == "budget"
                        else "no plan reaches the average-quality floor")
                return _done(base, Status.INFEASIBLE, t_start, ray, handles, message=what), None
            totals = [ray.get(h.totals.remote(sign)) for h in handles]
            objective = sum(x["objective"] for x in totals)
            bound, gap, status = finish_status(objective, None if point["lp_bound"] is None else sign * point["lp_bound"],
                                               goal, rel_gap, all(x["integral"] for x in prepared))
            stats.update(point["stats"])
            done = _written(ray, handles, base, status, t_start, out_dir, keep_assignment, origin, objective=objective,
                            bound=bound, gap=gap, price=sign * point["multiplier"] if row == "budget" else None,
                            n_queued=n - n_sub, served=sum(x["served_weight"] for x in totals))
            clean = True
            return done
        finally:
            _release(ray, handles, clean)


def _coupled(ray: Any, handles: list[Any], loaded: list[dict[str, Any]], source: Any, rel_gap: float,
             stats: dict[str, Any], out_dir: str | Path | None, keep_assignment: bool,
             t_start: float, origin: tuple[Any, Any]) -> tuple[ShardedPlan, dict[int, np.ndarray] | None] | None:
    """fast's Lagrangian path (:mod:`planner.distributed.coupled_driver`), finished as the
    knapsack path is: totals, status, the plan's parts and summary. None: no per-model row
    binds after all (the knapsack path applies)."""
    from planner.distributed.coupled_driver import solve_coupled_sharded

    first = loaded[0]
    sign = 1.0 if Goal(first["goal"]).maximize else -1.0
    got = solve_coupled_sharded(ray, handles, loaded, source, rel_gap, stats)
    if got is None:
        return None
    limit = first["budget"] if first["budget"] is not None else first["min_avg_quality"]
    base = {"n": got["n"], "goal": first["goal"], "row": "coupled", "limit": limit, "stats": stats}
    if got["status"] is not None and not got["status"].has_plan:
        result = _done(base, got["status"], t_start, ray, handles, bound=got["bound"], message=got["message"])
        return result, None
    totals = ray.get([h.totals.remote(sign) for h in handles])
    objective = sum(x["objective"] for x in totals)
    served = sum(x["served_weight"] for x in totals)
    bound, gap, status = finish_status(objective, got["bound"], first["goal"], rel_gap, got.get("integral", False))
    if got["status"] is not None:  # nothing could be served: every task queued, optimal
        status = got["status"]
    return _written(ray, handles, base, status, t_start, out_dir, keep_assignment, origin, objective=objective,
                    bound=bound, gap=gap, price=got["price"], n_queued=got["n"] - got["n_sub"], served=served,
                    message=got["message"])


def finish_status(objective: float, bound: float | None, goal: str, rel_gap: float,
                  integral: bool) -> tuple[float, float | None, Status]:
    """fast's ending: the bound (None: the objective's), the gap, the inward rounding of an
    integral objective's bound, the status."""
    if bound is None:
        bound = objective
    gap = relative_gap(objective, bound, goal)
    if gap is not None and gap > rel_gap and integral:
        slack = 1e-9 * max(1.0, abs(bound))
        bound = float(np.floor(bound + slack)) if Goal(goal).maximize else float(np.ceil(bound - slack))
        gap = relative_gap(objective, bound, goal)
    status = Status.OPTIMAL if gap is not None and gap <= rel_gap else Status.FEASIBLE
    return bound, gap, status


def _written(ray: Any, handles: list[Any], base: dict[str, Any], status: Status, t_start: float,
             out_dir: str | Path | None, keep_assignment: bool, origin: tuple[Any, Any],
             **result: Any) -> tuple[ShardedPlan, dict[int, np.ndarray] | None]:
    """Every worker writes its shards of the plan; the summary (with what the plan was made
    from and its parts) and, on request, the plan."""
    stats = base["stats"]
    starts: dict[int, int] = {}
    sizes: list[tuple[int, int]] = []
    if out_dir is not None:
        t = time.perf_counter()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        sizes = sorted((s, n) for part in ray.get([h.shard_sizes.remote() for h in handles]) for s, n in part)
        starts = dict(zip([s for s, _ in sizes], np.concatenate([[0], np.cumsum([n for _, n in sizes])[:-1]]).tolist(),
                          strict=True))
        ray.get([h.write.remote(str(out), starts) for h in handles])
        stats["write_s"] = time.perf_counter() - t
    assignment = None
    if keep_assignment:
        assignment = {k: v for part in ray.get([h.assignments.remote() for h in handles]) for k, v in part.items()}
    res = _done(base, status, t_start, ray, handles, **result)
    if out_dir is not None:
        res.out_dir = str(out_dir)
        res.source, groups = origin
        res.parts = [{"shard": s, "file": f"part-{s:05d}.parquet", "rows": n,
                      **({} if groups is None else {"row_groups": groups[s]})} for s, n in sizes]
        (Path(out_dir) / "summary.json").write_text(json.dumps(asdict(res), indent=1))
    return res, assignment


#: Idle planner actors of this process's Ray session, reused by the next plan (start-up costs
#: seconds; tests and notebooks plan many times). A failed plan's actors are killed.
_idle: dict[str, list[Any]] = IDLE_POOLS.setdefault("planner", {})


def _planners(ray: Any, n: int) -> list[Any]:
    free_idle(ray, but="planner")
    idle = _idle.setdefault(ray.get_runtime_context().get_job_id(), [])
    handles = [idle.pop() for _ in range(min(n, len(idle)))]
    actor = ray.remote(num_cpus=1, max_restarts=0)(ShardPlanner)
    return handles + [actor.remote() for _ in range(n - len(handles))]


def _release(ray: Any, handles: list[Any], clean: bool) -> None:
    if clean:
        try:
            ray.get([h.reset.remote() for h in handles])
            _idle.setdefault(ray.get_runtime_context().get_job_id(), []).extend(handles)
            return
        except Exception:  # noqa: BLE001 - actors that cannot reset are not reused
            pass
    for h in handles:
        ray.kill(h, no_restart=True)


def _check(loaded: list[dict[str, Any]]) -> str:
    """The goal, or InputError when the shards do not describe one problem the sharded
    planner handles."""
    first = loaded[0]
    for x in loaded:
        for key in ("goal", "budget", "min_avg_quality", "allow_queue", "k"):
            if x[key] != first[key]:
                raise InputError(f"shard {x['shard']}: {key} {x[key]!r} differs from shard 0's {first[key]!r}")
        if x["group_charges"]:
            raise InputError("the sharded planner does not handle group charges (they couple the tasks of a "
                             "group): plan in one process (routeplan solve without --workers)")
    goal = first["goal"]
    if Goal(goal) is Goal.MINIMIZE_LATENCY:
        raise InputError("the sharded planner does not handle the makespan goal (minimize_latency)")
    return str(goal)


def _structure(loaded: list[dict[str, Any]], source: Any) -> tuple[str, str | None, float | None, bool]:
    """(goal, the one limit row or None, its limit, allow_queue) of the knapsack path."""
    first = loaded[0]
    goal = first["goal"]
    row = "budget" if first["budget"] is not None else ("min_avg_quality" if first["min_avg_quality"] is not None
                                                        else None)
    limit = first["budget"] if row == "budget" else first["min_avg_quality"]
    if row is not None and hasattr(source, "limit") and first["summary"] is not None:
        limit = float(source.limit([x["summary"] for x in loaded]))
    if row == "min_avg_quality" and first["allow_queue"]:
        raise InputError("the sharded planner needs every task served under an average-quality floor "
                         "(no queuing)")
    return goal, row, limit, bool(first["allow_queue"])


def _cut(ray: Any, handles: list[Any], prepared: list[dict[str, Any]], row: str | None, limit: float | None,
         rel_gap: float, sign: float) -> dict[str, Any] | None:
    """The knapsack LP cut and the two fill passes (solvers.mckp.Knapsack.solve, sharded);
    None when even the lightest plan breaks the limit."""
    st: dict[str, Any] = {}
    base_w = sum(x["base_weight"] for x in prepared)
    base_v = sum(x["base_value"] for x in prepared)
    total_dw = sum(x["total_dw"] for x in prepared)
    if row is None:  # no limit: every task's best model (fast's argmax)
        ray.get([h.best.remote() for h in handles])
        st["method"] = "argmax"
        return {"lp_bound": None, "multiplier": 0.0, "stats": st}
    assert limit is not None
    capacity = 0.0 if row == "min_avg_quality" else limit
    if base_w > capacity:
        return None
    room = capacity - base_w
    st["method"] = "hull-greedy (sharded)"
    if room >= total_dw:  # the limit does not bind: every increment is taken
        _, value = _sum(ray.get([h.cut.remote(None, {}) for h in handles]))
        total_dv = sum(x["total_dv"] for x in prepared)
        return {"lp_bound": max(base_v + total_dv, value), "multiplier": 0.0, "stats": st}
    # 1. the critical efficiency: the largest t whose increments at or above it weigh more than room
    t_star, st["bisection_rounds"] = critical_efficiency(ray, handles, room)
    above = ray.get([h.above.remote(t_star) for h in handles])
    used = sum(a[0] for a in above)
    bound = base_v + sum(a[1] for a in above)
    # 2. the increments at t*, in one process's order; the first that does not fit is cut
    offsets = dict(zip([x["shard"] for x in prepared],
                       np.concatenate([[0], np.cumsum([x["n_sub"] for x in prepared])[:-1]]).tolist(), strict=True))
    ties = sorted((t for part in ray.get([h.ties.remote(t_star, offsets) for h in handles]) for t in part),
                  key=lambda t: (t[0], t[1], t[2]))
    taken: dict[int, list[int]] = {}
    crit = None
    for tie in ties:
        if used + tie[3] <= room:
            used += tie[3]
            bound += tie[4]
            taken.setdefault(tie[5], []).append(tie[6])
        else:
            crit = tie
            break
    assert crit is not None, "the bisection guarantees an increment past the room at t*"
    frac = min(max((room - used) / crit[3], 0.0), 1.0)
    bound += frac * crit[4]
    st.update(ties_at_cut=len(ties), lp_multiplier=t_star)
    # 3. the plan after the cut, then the two fill passes
    used, value = _sum(ray.get([h.cut.remote(t_star, taken) for h in handles]))
    value, used, moves = _fill_hull(ray, handles, capacity, used, value)
    if bound - value > rel_gap * max(abs(bound), abs(value), 1e-12):
        value, used, more = _fill_pairs(ray, handles, capacity, used, value)
        moves += more
    st["fill_moves"] = moves
    return {"lp_bound": max(bound, value), "multiplier": t_star, "stats": st}


def critical_efficiency(ray: Any, handles: list[Any], room: float) -> tuple[float, int]:
    """The largest efficiency whose increments at or above it weigh more than ``room`` (the
    knapsack LP's multiplier), by bisection on its float bits: (t*, rounds)."""
    ranges = ray.get([h.key_range.remote() for h in handles])
    lo = _bits(min(r[0] for r in ranges))
    hi = _bits(max(r[1] for r in ranges))
    rounds = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        rounds += 1
        if sum(ray.get([h.weight_at_least.remote(_float(mid)) for h in handles])) > room:
            lo = mid
        else:
            hi = mid - 1
    return _float(lo), rounds


def _sum(parts: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _gather(ray: Any, refs: list[Any]) -> tuple[np.ndarray, ...] | None:
    """The workers' per-shard candidate arrays, in shard order (one process's row order), as
    (shard, *columns) arrays; None when there is none."""
    cands = sorted((c for part in ray.get(refs) for c in part), key=lambda c: c[0])
    if not cands:
        return None
    shard = np.concatenate([np.full(c[1].size, c[0]) for c in cands])
    return (shard, *(np.concatenate([c[i] for c in cands]) for i in range(1, len(cands[0]))))


def _fill_hull(ray: Any, handles: list[Any], capacity: float, used: float, value: float) -> tuple[float, float, int]:
    """Upgrades to the next hull vertex, largest value gain first, while they fit (one process's greedy)."""
    room = capacity - used
    if room <= 0:
        return value, used, 0
    cands = _gather(ray, [h.hull_candidates.remote(room) for h in handles])
    if cands is None:
        return value, used, 0
    shard, rows, nxt, dw, gain = cands
    moves: dict[int, tuple[list[int], list[int]]] = {}
    n = 0
    for c in np.argsort(-gain, kind="stable"):
        if dw[c] <= room and gain[c] > 0:
            m = moves.setdefault(int(shard[c]), ([], []))
            m[0].append(int(rows[c]))
            m[1].append(int(nxt[c]))
            room -= float(dw[c])
            used += float(dw[c])
            value += float(gain[c])
            n += 1
    ray.get([h.move.remote(moves) for h in handles])
    return value, used, n


def _fill_pairs(ray: Any, handles: list[Any], capacity: float, used: float, value: float,
                max_moves: int = 64) -> tuple[float, float, int]:
    """Any upgrade that fits the left-over room, best value gain first (one process's second pass)."""
    room = capacity - used
    if room <= 0:
        return value, used, 0
    cands = _gather(ray, [h.pair_candidates.remote(room) for h in handles])
    if cands is None:
        return value, used, 0
    shard, rows, model, gain, dws = cands
    moves: dict[int, tuple[list[int], list[int]]] = {}
    moved: set[tuple[int, int]] = set()
    n = 0
    for c in np.argsort(-gain, kind="stable"):
        if n >= max_moves or room <= 0:
            break
        key = (int(shard[c]), int(rows[c]))
        if key in moved or dws[c] > room:
            continue
        m = moves.setdefault(key[0], ([], []))
        m[0].append(key[1])
        m[1].append(int(model[c]))
        room -= float(dws[c])
        used += float(dws[c])
        value += float(gain[c])
        moved.add(key)
        n += 1
    ray.get([h.move.remote(moves) for h in handles])
    return value, used, n


def _done(base: dict[str, Any], status: Status, t_start: float, ray: Any, handles: list[Any], *,
          objective: float | None = None, bound: float | None = None, gap: float | None = None,
          price: float | None = None, n_queued: int = 0, served: float = 0.0, message: str = "") -> ShardedPlan:
    stats = base["stats"]
    stats["worker_peak_rss_mb"] = ray.get([h.peak_rss_mb.remote() for h in handles])
    stats["driver_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ShardedPlan(status=status.value, goal=base["goal"], row=base["row"], limit=base["limit"],
                       objective=objective, bound=bound, gap=gap, budget_shadow_price=price,
                       n_tasks=base["n"], n_queued=n_queued if status.has_plan else base["n"],
                       served_weight=served, wall_s=time.perf_counter() - t_start, message=message, stats=stats)
