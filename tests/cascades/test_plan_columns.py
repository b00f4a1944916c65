"""Cascades as columns of the assignment problem: coefficients, feasibility, exact solvers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import solvers
from planner.catalog import load_catalog
from planner.errors import InputError
from planner.formulation import formulate
from planner.plan import Limits
from planner.solve import make_plan
from planner.tasks import load_tasks
from planner.verifiers import Verifier, independence
from tests.cascades.conftest import MODELS
from tests.fast.test_fast_bruteforce import brute_force


def _f(cascade_files, **kw):
    tasks, cat = cascade_files
    return formulate(load_tasks(tasks), load_catalog(cat), models=MODELS.split(","), **kw)


def test_columns_follow_the_formulas(cascade_files):
    f = _f(cascade_files)
    cc = f.cascades
    k0 = f.n_offerings
    assert f.cost_usd.shape[1] == k0 + len(cc) and len(cc) == 5
    col = {o.name: j for j, o in enumerate(f.offerings)}
    ids = [t.id for t in f.tasks]
    agree = next(c for c in range(len(cc)) if cc.columns[c].verifier.kind == "agree")
    c = cc.columns[agree]
    assert c.label == "gpt-4.1-nano -> gpt-4.1 (agree: gpt-4.1-nano, gpt-4o-mini)"
    a, w, b = col["gpt-4.1-nano"], col["gpt-4o-mini"], col["gpt-4.1"]
    i = ids.index("q1")
    single = f.cost_usd[:, :k0]
    assert f.cost_usd[i, k0 + agree] == pytest.approx(single[i, a] + single[i, w] + 0.3 * single[i, b])
    assert f.worst_cost_usd[i, k0 + agree] == pytest.approx(
        f.worst_cost_usd[i, a] + f.worst_cost_usd[i, w] + f.worst_cost_usd[i, b])
    assert f.quality[i, k0 + agree] == pytest.approx(0.7 * 0.97 + 0.3 * 0.85)
    lat = f.latency_s
    assert f.latency_s[i, k0 + agree] == pytest.approx(max(lat[i, a], lat[i, w]) + 0.3 * lat[i, b])
    # a cascade serves its own category only
    assert f.feasible[:, k0 + agree].tolist() == [t.type == "qa" for t in f.tasks]
    # python_tests and json_schema need the task's own tests or schema
    py = next(c for c in range(len(cc)) if cc.columns[c].verifier.kind == "python_tests")
    assert f.feasible[ids.index("c1"), k0 + py] and not f.feasible[ids.index("c2"), k0 + py]
    js = next(c for c in range(len(cc)) if cc.columns[c].verifier.kind == "json_schema")
    assert f.feasible[ids.index("e1"), k0 + js]
    # independence: a judge is right about an answer with its own quality
    jd = next(c for c in range(len(cc)) if cc.columns[c].verifier.kind == "judge")
    s = ids.index("s1")
    q1, q2, qj = f.quality[s, a], f.quality[s, b], f.quality[s, col["gpt-4o-mini"]]
    p = q1 * qj + (1 - q1) * (1 - qj)
    assert cc.p_accept[s, jd] == pytest.approx(p)
    assert f.quality[s, k0 + jd] == pytest.approx(q1 * qj + (1 - p) * q2)
    # self-consistency of 3 free-number answers: all right, or (never) the same wrong number
    sc = next(c for c in range(len(cc)) if cc.columns[c].verifier.kind == "self_consistency")
    m = ids.index("m1")
    assert cc.p_accept[m, sc] == pytest.approx(f.quality[m, a] ** 3)
    assert cc.quality_accept[m, sc] == pytest.approx(1.0)


def test_independence_of_each_verifier():
    p, qa, qr = independence(Verifier("agree", ("w",), extractor="choice"), 0.6, 0.9, [0.6], n_labels=4)
    assert p == pytest.approx(0.36 + 0.16 / 3) and qa == pytest.approx(0.36 / p) and qr == 0.9
    p, qa, _ = independence(Verifier("self_consistency", samples=3, extractor="choice"), 0.5, 0.9, n_labels=5)
    assert p == pytest.approx(0.125 + 0.125 / 16)
    assert independence(Verifier("python_tests"), 0.4, 0.9)[:2] == (pytest.approx(0.4), pytest.approx(1.0))
    p, qa, _ = independence(Verifier("judge", judge="j"), 0.5, 0.9, q_judge=0.8)
    assert p == pytest.approx(0.5) and qa == pytest.approx(0.8)


def test_no_cascades_and_deadline(cascade_files):
    assert _f(cascade_files, cascades=False).cascades is None
    f = _f(cascade_files, limits=Limits(deadline_s=3600))
    assert f.cascades is None and any("not planned with a batch deadline" in n for n in f.notes)


def test_latency_limit_uses_the_worst_case(cascade_files):
    f = _f(cascade_files)
    agree = next(c for c in range(len(f.cascades)) if f.cascades.columns[c].verifier.kind == "agree")
    i = [t.id for t in f.tasks].index("q1")
    worst, expected = f.cascades.worst_latency[i, agree], f.latency_s[i, f.n_offerings + agree]
    assert worst > expected
    label = f.cascades.columns[agree].label

    def feasible_under(limit_s: float) -> bool:
        g = _f(cascade_files, limits=Limits(max_latency_s=limit_s, allow_queue=True))
        cols = [c.label for c in g.cascades.columns] if g.cascades else []
        return label in cols and bool(g.feasible[i, g.n_offerings + cols.index(label)])

    assert feasible_under(float(worst) * 1.001)
    assert not feasible_under(float(worst) * 0.999)  # though the expected latency is well inside


@pytest.mark.parametrize("goal", ["maximize_quality", "minimize_cost", "balanced"])
def test_exact_backends_agree_with_brute_force(cascade_files, goal):
    f = _f(cascade_files, goal=goal)
    keep = [j for j in range(f.cost_usd.shape[1]) if f.feasible[:, j].any()]  # small enough to enumerate
    rows = [i for i, t in enumerate(f.tasks) if t.id in ("q1", "m1", "c1", "s1")]
    p = f.problem
    lo = float(np.where(f.feasible, f.cost_usd, np.inf)[rows][:, keep].min(axis=1).sum())
    small = solvers.Problem(cost=p.cost[np.ix_(rows, keep)], quality=p.quality[np.ix_(rows, keep)],
                            latency=p.latency[np.ix_(rows, keep)], feasible=p.feasible_mask[np.ix_(rows, keep)],
                            goal=goal, budget=lo * 3, priority=p.priority[rows])
    best = brute_force(small)
    assert best is not None
    for backend in ("highs", "cpsat", "cbc"):
        if not solvers.get(backend).is_available():
            continue
        sol = solvers.solve(small, backend=backend, rel_gap=0.0)
        assert sol.objective == pytest.approx(best, rel=1e-6, abs=1e-9), backend


def test_catalog_entries_are_checked(tmp_path):
    def load(entry):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"extends": "default", "cascades": {
            "extractors": {"qa": "choice"}, "candidates": [entry]}}))
        return load_catalog(path)

    base = {"category": "qa", "first": "gpt-4.1-nano", "second": "gpt-4.1"}
    assert load({**base, "verifier": "judge", "judge": "gpt-4o-mini"}).cascades.others[0].verify.threshold == 0.7
    for bad, words in (({"verifier": "vote"}, "verifier: expected one of"),
                       ({"verifier": "self_consistency", "samples": 1}, "samples: expected a whole number"),
                       ({"verifier": "judge"}, "judge: expected the judge's model id"),
                       ({"verifier": "judge", "judge": "j", "threshold": 2}, "threshold"),
                       ({"verifier": "python_tests", "p_accept": 0.5}, "give all three or none"),
                       ({"verifier": "json_schema", "schema": {"type": 3}}, "schema"),
                       ({"verifier": "python_tests", "color": 1}, "unknown field 'color'")):
        with pytest.raises(InputError) as exc:
            load({**base, **bad})
        assert "cascades.candidates[0]" in str(exc.value) and words in str(exc.value), str(exc.value)


def test_plan_records_the_cascade(cascade_files):
    tasks, cat = cascade_files
    plan = make_plan(tasks, cat, goal="maximize_quality", models=MODELS.split(","))
    on = [a for a in plan.assignments if a.cascade is not None]
    assert on, "the qa cascade (quality 0.934) beats every single model here"
    names = {m.name for m in plan.models}
    for a in on:
        spec = a.cascade
        assert a.model == spec.first and {s.model for s in spec.stages} <= names
        assert a.worst_case_cost_usd == pytest.approx(sum(s.worst_case_cost_usd for s in spec.stages))
        assert a.projected_cost_usd <= a.worst_case_cost_usd
        assert spec.stages[0].role == "first" and spec.stages[-1].role == "second"
    assert any("cascade" in n and "planned" in n for n in plan.notes)
    again = type(plan).model_validate_json(plan.model_dump_json())
    assert again.assignments[0].cascade == plan.assignments[0].cascade
    if any(a.cascade.basis == "independence" for a in on):
        assert any("independently" in n for n in plan.notes)


def test_cli_solve_sweep_show(cascade_files, tmp_path, run_cli):
    tasks, cat = cascade_files
    out = tmp_path / "plan.json"
    code, stdout, err = run_cli("solve", tasks, "--catalog", cat, "--models", MODELS, "--goal", "maximize_quality",
                                "-o", out)
    assert code == 0, err
    assert "gpt-4.1-nano -> gpt-4.1 (agree: gpt-4.1-nano, gpt-4o-mini)" in stdout
    plan = json.loads(out.read_text())
    assert any(a.get("cascade") for a in plan["assignments"])
    code, shown, _ = run_cli("plan", "show", out)
    assert code == 0 and "(agree: gpt-4.1-nano, gpt-4o-mini)" in shown
    code, stdout, err = run_cli("solve", tasks, "--catalog", cat, "--models", MODELS, "--goal", "maximize_quality",
                                "--no-cascades", "-o", tmp_path / "p0.json")
    assert code == 0, err
    assert " -> " not in stdout
    assert not any(a.get("cascade") for a in json.loads((tmp_path / "p0.json").read_text())["assignments"])
    csv = tmp_path / "sweep.csv"
    code, stdout, err = run_cli("sweep", tasks, "--catalog", cat, "--models", MODELS, "--budget", "0.001:0.05:4",
                                "-o", csv)
    assert code == 0, err
    head = csv.read_text().splitlines()[0]
    assert "n_gpt-4.1-nano -> gpt-4.1 (agree: gpt-4.1-nano, gpt-4o-mini)" in head
    code, stdout, err = run_cli("sweep", tasks, "--catalog", cat, "--models", MODELS, "--budget", "0.001:0.05:4",
                                "--no-cascades", "-o", tmp_path / "s0.csv")
    assert code == 0 and " -> " not in (tmp_path / "s0.csv").read_text().splitlines()[0]
    # run the plan (simulated): the report shows each cascade, projected against actual
    code, stdout, err = run_cli("run", out, "--out", tmp_path / "run", "--seed", "2")
    assert code == 0, err
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Cascades" in md and "gpt-4.1-nano -> gpt-4.1 (agree: gpt-4.1-nano, gpt-4o-mini)" in md
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {c["cascade"] for c in report["cascades"]} == {a["cascade"]["label"] for a in plan["assignments"]
                                                          if a.get("cascade")}
    assert report["totals"]["n_done"] == len(plan["assignments"])
