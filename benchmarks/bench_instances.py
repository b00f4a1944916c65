"""``fast`` against known optima: OR-Library GAP (gapa-gapc) and the classic MMKP instances.

GAP (jobs = tasks, agents = models, resource = load, capacity per agent) goes through the
``fast`` backend as a :class:`solvers.Problem`, both as the minimisation the files state
and as the maximisation whose optima the OR-Library also lists (profit scaled into
quality in [0, 1], rescaled back for the table). MMKP (one item per class, maximise value,
M global resource limits) has M global rows, which a Problem does not express, so it goes
to ``fast``'s engine directly (:func:`solvers.lagrangian.solve_coupled`: the same dual,
repair and improvement passes). Each row: time, fast's objective, its proven bound, the
known optimum / best-known value, the gap to it, and whether the bound is valid.

    python benchmarks/bench_instances.py                      # gapa gapb gapc + all MMKP
    python benchmarks/bench_instances.py --gap gapa --mmkp mmkp_a_07 --out results.md

Data: ../shared/data/gap and ../shared/data/mmkp (skipped when absent).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import solvers  # noqa: E402
from solvers import Goal, Options, Problem  # noqa: E402
from solvers.lagrangian import Coupled, GlobalRow, solve_coupled  # noqa: E402
from solvers.orlib import read_gap  # noqa: E402

DATA = Path(os.environ.get("ROUTEPLAN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared/data"))


def gap_rows(files: list[str], rel_gap: float, time_limit: float) -> list[str]:
    d = DATA / "gap"
    if not (d / "known_optima.csv").exists():
        return [f"(GAP data not found in {d})"]
    with open(d / "known_optima.csv") as f:
        known = {(r["orlib_file"], int(r["index_in_file"])): r for r in csv.DictReader(f)}
    out = []
    for name in files:
        for idx, p in enumerate(read_gap(d / f"{name}.txt"), start=1):
            k = known[(name, idx)]
            for sense in ("min", "max"):
                prob, scale = (p, 1.0) if sense == "min" else _as_max(p)
                opts = Options(rel_gap=rel_gap, time_limit_s=time_limit)
                t = time.perf_counter()
                try:
                    sol = solvers.solve(prob, backend="fast", options=opts)
                except solvers.SolverError as exc:
                    out.append(f"| {k['instance']} | {sense} | refused: {exc} |")
                    continue
                dt = time.perf_counter() - t
                best = float(k["min_best"] if sense == "min" else k["max_best"])
                obj = None if sol.objective is None else sol.objective * scale
                status = sol.status.value
                if sol.status.has_plan and prob.violations(sol.assignment):
                    status = "INVALID PLAN"
                bound = None if sol.bound is None else sol.bound * scale
                out.append(_row(k["instance"], sense, dt, status, obj, bound, best,
                                maximize=(sense == "max")))
    return out


def _as_max(p: Problem) -> tuple[Problem, float]:
    """The same GAP as a maximisation: profit / max profit as quality."""
    assert p.cost is not None
    scale = float(p.cost.max())
    return Problem(quality=p.cost / scale, load=p.load, capacity=p.capacity, goal=Goal.MAXIMIZE_QUALITY), scale


def read_mmkp(path: Path) -> tuple[Coupled, int]:
    """An MMKP file as a maximisation form: classes x (most items), M global rows."""
    nums = path.read_text().split()
    pos = 0

    def take(count: int) -> list[float]:
        nonlocal pos
        vals = [float(x) for x in nums[pos : pos + count]]
        pos += count
        return vals

    n_classes, m = (int(x) for x in take(2))
    caps = np.array(take(m))
    classes = []
    for _ in range(n_classes):
        (count,) = take(1)
        items = np.array(take(int(count) * (m + 1))).reshape(int(count), m + 1)
        classes.append(items)
    width = max(c.shape[0] for c in classes)
    value = np.zeros((n_classes, width))
    weight = np.zeros((m, n_classes, width))
    mask = np.zeros((n_classes, width), dtype=bool)
    for i, c in enumerate(classes):
        value[i, : c.shape[0]] = c[:, 0]
        weight[:, i, : c.shape[0]] = c[:, 1:].T
        mask[i, : c.shape[0]] = True
    rows = tuple(GlobalRow(f"resource{r}", weight[r], float(caps[r])) for r in range(m))
    return Coupled(value, mask, rows, ()), m


def mmkp_rows(names: list[str] | None, rel_gap: float, time_limit: float) -> list[str]:
    d = DATA / "mmkp"
    if not (d / "solutions.csv").exists():
        return [f"(MMKP data not found in {d})"]
    with open(d / "solutions.csv") as f:
        best = {r[0]: float(r[1]) for r in csv.reader(f) if len(r) >= 2 and r[1].replace(".", "").isdigit()}
    out = []
    files = sorted((d / "standard").glob("*.txt"))
    for path in files:
        if names and path.stem not in names:
            continue
        if path.name not in best:
            continue
        form, m = read_mmkp(path)
        t = time.perf_counter()
        res = solve_coupled(form, rel_gap=rel_gap, time_limit_s=time_limit)
        dt = time.perf_counter() - t
        obj = res.value if res.assignment is not None and np.isfinite(res.value) else None
        status = "feasible" if obj is not None else "infeasible" if res.infeasible else "no plan"
        if obj is not None and not form.is_feasible(res.assignment):
            status = "INVALID PLAN"
        out.append(_row(f"{path.stem} ({form.shape[0]}x{form.shape[1]}, M={m})", "max", dt,
                        status, obj, res.bound, best[path.name], True))
    return out


def _row(name: str, sense: str, dt: float, status: str, obj: float | None, bound: float | None,
         best: float, maximize: bool) -> str:
    # signed: negative when fast's plan beats the listed value (not every listed value is optimal)
    gap_best = None if obj is None else ((best - obj) if maximize else (obj - best)) / max(abs(best), 1e-12)
    if gap_best is not None and abs(gap_best) < 1e-9:  # the GAP maximisation's rescaling rounds
        gap_best = 0.0
    valid = "n/a" if bound is None else ("yes" if (bound >= best - 1e-6 * abs(best) if maximize
                                                    else bound <= best + 1e-6 * abs(best)) else "NO")
    own = None if obj is None or bound is None else solvers.relative_gap(obj, bound, Goal.MAXIMIZE_QUALITY if maximize else Goal.MINIMIZE_COST)
    return f"| {name} | {sense} | {dt:.3f} | {status} | {_num(obj)} | {_num(bound)} | {_num(best)} | {_sci(gap_best)} | {_sci(own)} | {valid} |"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


def _sci(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1e}"


HEADER = ("| instance | sense | time s | status | fast objective | fast bound | known best | "
          "gap to known | own gap | bound valid |\n|---|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gap", nargs="*", default=["gapa", "gapb", "gapc"], help="OR-Library GAP files")
    ap.add_argument("--mmkp", nargs="*", default=None, help="MMKP instance names (default: all)")
    ap.add_argument("--rel-gap", type=float, default=1e-6)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    lines = [HEADER]
    print(HEADER, flush=True)
    for part_fn in (lambda: gap_rows(a.gap, a.rel_gap, a.time_limit), lambda: mmkp_rows(a.mmkp, a.rel_gap, a.time_limit)):
        part = part_fn()
        for line in part:
            print(line, flush=True)
            lines.append(line)
    summary = summarise(lines[1:])
    print(summary)
    if a.out:
        a.out.write_text("\n".join(lines) + "\n\n" + summary + "\n")


def summarise(lines: list[str]) -> str:
    """Median and worst gap to the known value per family (GAP min, GAP max, MMKP)."""
    fam: dict[str, list[tuple[float, float]]] = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 10 or cells[7] == "n/a":
            continue
        key = ("MMKP" if cells[0].startswith("mmkp") else "GAP") + " " + cells[1]
        fam.setdefault(key, []).append((float(cells[7]), float(cells[2])))
    out = []
    for key, vals in fam.items():
        beaten = sum(v[0] < 0 for v in vals)
        gaps = [max(v[0], 0.0) for v in vals]  # a beaten listed value counts as gap 0
        times = [v[1] for v in vals]
        note = f"; {beaten} listed value(s) beaten by a feasible plan" if beaten else ""
        out.append(f"- {key}: {len(vals)} instances with a plan, gap to known median {statistics.median(gaps):.1e}, "
                   f"worst {max(gaps):.1e}; time median {statistics.median(times):.3f} s, max {max(times):.3f} s{note}")
    for key in sorted({("MMKP" if c[0].startswith("mmkp") else "GAP") + " " + c[1]
                       for c in ([x.strip() for x in line.strip("|").split("|")] for line in lines)
                       if len(c) >= 10 and c[7] == "n/a"}):
        out.append(f"- {key}: some instance(s) without a plan (see the table)")
    return "\n".join(out)


if __name__ == "__main__":
    main()
