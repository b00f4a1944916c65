"""`routeplan calibrate RUN_DIR` fits cascade statistics from graded runs of cascades.

End to end through the CLI: `solve` plans a cascade from a catalog entry with a deliberately
wrong p_accept (0.3); `run --live` runs it on the loopback server through litellm's real
client, whose scripted answers make the verifier accept at a known rate (0.7) and the kept
answers right at known rates; `calibrate RUN_DIR` fits them back and `solve` plans with the
fitted values."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
import yaml

from planner.calibrate import credible_interval, posterior_mean
from planner.executor import RunOptions, run_plan
from tests.cascades.plans import cascade_plan
from tests.executor.loopback import LoopbackServer

N = 200
KEY = "sk-routeplan-FAKE-calibrate-0123456789"
MODELS = "openai/cheap,openai/witness,openai/strong"
WRONG = {"p_accept": 0.3, "quality_accept": 0.9, "quality_reject": 0.95, "n": 40}
ENTRY = {"category": "qa", "first": "openai/cheap", "witnesses": ["openai/witness"], "second": "openai/strong"}


def _answer(i: int) -> str:
    """The right letter of question i: the cheap model's (B) for 6 in 10, never for the
    questions the witness rejects (7, 8, 9 of 10), where the strong model's (D) is right."""
    r = i % 10
    return "B" if r < 6 else "A" if r == 6 else "D"


def _question(body: dict) -> int:
    text = "\n".join(str(m.get("content")) for m in body["messages"])
    return int(text.split(":")[0].split()[-1])


def _catalog(api_base: str, cascade: dict) -> dict:
    def model(name: str, cin: float, cout: float, q: float) -> dict:
        return {"id": f"openai/{name}", "provider": "local", "api_base": api_base, "api_key_env": "RP_CAL_KEY",
                "input_cost_per_token": cin, "output_cost_per_token": cout, "quality": {"qa": q},
                "ttft_s": 0.2, "output_tokens_per_s": 80}

    return {"extends": "default",
            "models": [model("cheap", 1e-7, 2e-7, 0.6), model("witness", 5e-7, 1e-6, 0.65),
                       model("strong", 3e-6, 1.2e-5, 0.8)],
            "cascades": {"extractors": {"qa": "choice"}, "candidates": [{**ENTRY, **cascade}]}}


@pytest.fixture
def server():
    s = LoopbackServer().start()
    s.replies["cheap"] = lambda body: "The answer is (B)."
    s.replies["witness"] = lambda body: "The answer is (B)." if _question(body) % 10 < 7 else "The answer is (C)."
    s.replies["strong"] = lambda body: "The answer is (D)." if _question(body) % 10 in (7, 8) else "The answer is (A)."
    yield s
    s.stop()


def test_calibrate_from_a_graded_cascade_run(server, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("RP_CAL_KEY", KEY)
    cat = tmp_path / "cat.yaml"
    cat.write_text(yaml.safe_dump(_catalog(server.api_base, WRONG), sort_keys=False))
    tasks = [{"id": f"t{i:03d}", "type": "qa", "input_tokens": 20, "expected_output_tokens": 20, "max_tokens": 60,
              "prompt": f"Question {i}: which letter?\nA) one\nB) two\nC) three\nD) four",
              "check": {"kind": "choice", "answer": _answer(i)}} for i in range(N)]
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump({"tasks": tasks}, sort_keys=False))
    plan_path = tmp_path / "plan.json"
    code, _, err = run_cli("solve", tmp_path / "tasks.yaml", "--catalog", cat, "--models", MODELS,
                           "--goal", "maximize_quality", "-o", plan_path)
    assert code == 0, err
    plan = json.loads(plan_path.read_text())
    assert all(a["cascade"]["p_accept"] == pytest.approx(0.3) for a in plan["assignments"])
    code, _, err = run_cli("run", plan_path, "--out", tmp_path / "run", "--live", "--budget", "1",
                           "--concurrency", "16")
    assert code == 0, err

    out = tmp_path / "cal.yaml"
    code, stdout, err = run_cli("calibrate", tmp_path / "run", "--catalog", cat, "-o", out)
    assert code == 0, err
    assert "cascades calibrated from graded runs" in stdout and "p_accept" in stdout
    (entry,) = yaml.safe_load(out.read_text())["cascades"]["candidates"]
    assert {k: entry[k] for k in ENTRY} == ENTRY and entry["verifier"] == "agree"
    assert entry["n"] == N and entry["accepted"] == 7 * N // 10 and entry["basis"] == "graded runs"
    # the truth: accepted 0.7, right when accepted 6/7, right when escalated 2/3; shrunk toward the
    # catalog's wrong entry by 10 observations
    assert entry["p_accept"] == pytest.approx((140 + 10 * 0.3) / 210, abs=1e-4)
    assert entry["quality_accept"] == pytest.approx((120 + 10 * 0.9) / 150, abs=1e-4)
    assert entry["quality_reject"] == pytest.approx((40 + 10 * 0.95) / 70, abs=1e-4)
    assert abs(entry["p_accept"] - 0.7) < 0.03 and abs(entry["quality_accept"] - 6 / 7) < 0.01
    assert abs(entry["quality_reject"] - 2 / 3) < 0.05
    assert "graded runs" in entry["source"] and f"catalog {cat}" in entry["source"]
    assert "replace the entry from catalog" in err

    code, _, err = run_cli("solve", tmp_path / "tasks.yaml", "--catalog", out, "--models", MODELS,
                           "--goal", "maximize_quality", "-o", tmp_path / "plan2.json")
    assert code == 0, err
    plan2 = json.loads((tmp_path / "plan2.json").read_text())
    specs = [a["cascade"] for a in plan2["assignments"] if a.get("cascade")]
    assert specs and all(s["p_accept"] == pytest.approx(entry["p_accept"]) and s["basis"] == "graded runs"
                         for s in specs)
    assert all(s["quality_reject"] == pytest.approx(entry["quality_reject"]) for s in specs)


def test_shrinkage_and_interval_of_the_rates():
    """The run-fitted rates use calibrate's Beta-binomial shrinkage: no data gives the prior,
    much data the observed rate, and the interval narrows around it."""
    assert posterior_mean(0, 0, 0.3, 10) == pytest.approx(0.3)
    assert posterior_mean(70, 100, 0.3, 10) == pytest.approx(73 / 110)
    assert posterior_mean(7000, 10000, 0.3, 10) == pytest.approx(0.7, abs=1e-3)
    assert posterior_mean(7, 10, 0.3, 0) == pytest.approx(0.7)
    lo, hi = credible_interval(70, 100, 0.3, 10, 0.9)
    lo2, hi2 = credible_interval(7000, 10000, 0.3, 10, 0.9)
    assert lo < 73 / 110 < hi and lo2 < 0.7 < hi2 and hi2 - lo2 < (hi - lo) / 5


def _fit(records, base=None, strength=10.0):
    import pandas as pd

    from planner.cascade_runs import RECORD_COLUMNS, fit_run_cascades
    from planner.catalog import load_catalog

    frame = pd.DataFrame.from_records(records, columns=RECORD_COLUMNS)
    return fit_run_cascades(frame, load_catalog(base), {}, strength=strength, level=0.9)


def _rec(i: int, accepted: float, kept: str | None, score: float, verifier: dict) -> dict:
    return {"source": "runs/a", "task_id": f"t{i}", "category": "code", "label": "nano -> 4.1 (python_tests)",
            "first": "gpt-4.1-nano", "second": "gpt-4.1", "verifier": verifier, "accepted": accepted, "kept": kept,
            "score": score, "prompt": "Write add.", "plan": (0.5, 0.9, 0.8),
            "litellm": {"gpt-4.1-nano": "gpt-4.1-nano", "gpt-4.1": "gpt-4.1"}}


def test_unit_fit_counts_only_what_each_rate_measures():
    """p_accept over decided tasks; quality_accept over graded accepted ones; quality_reject
    over graded tasks that kept the second model's answer (a failed escalation kept the first:
    decision only); an undecided task counts for nothing. Prior: independence from the base
    catalog's qualities (python_tests: p = q(first), q(first | accept) = 1)."""
    from planner.catalog import load_catalog

    v = {"verifier": "python_tests"}
    recs = [_rec(0, 1.0, "first", 1.0, v), _rec(1, 1.0, "first", 0.0, v), _rec(2, 1.0, "first", math.nan, v),
            _rec(3, 0.0, "second", 1.0, v), _rec(4, 0.0, None, math.nan, v), _rec(5, math.nan, None, math.nan, v)]
    (f,), notes = _fit(recs)
    assert (f.decided, f.accepted, f.n_accept, f.sum_accept, f.n_reject, f.sum_reject) == (5, 3, 2, 1.0, 1, 1.0)
    base = load_catalog(None)
    q1 = next(p for p in base.profiles if p.id == "gpt-4.1-nano").quality
    q2 = next(p for p in base.profiles if p.id == "gpt-4.1").quality
    q1c, q2c = q1.get("code", q1.get("default")), q2.get("code", q2.get("default"))
    assert f.prior == pytest.approx((q1c, 1.0, q2c)) and f.prior_from.startswith("independence")
    assert f.fitted == pytest.approx(((3 + 10 * q1c) / 15, (1 + 10) / 12, (1 + 10 * q2c) / 11))
    assert all(lo <= x <= hi for x, (lo, hi) in zip(f.fitted, f.intervals, strict=True))
    assert not notes


def test_ungraded_cascade_fits_decisions_only(tmp_path, run_cli):
    """A run without checks: p_accept fitted from the decisions, the qualities left at the
    prior (the base catalog's entry), and calibrate says so."""
    plan = cascade_plan(30, ("judge",), checks=False, p_accept=0.5)
    run_plan(plan, tmp_path / "run", RunOptions(mode="simulate", seed=3, progress=False))
    conn = sqlite3.connect(tmp_path / "run" / "ledger.sqlite")
    accepted = conn.execute("SELECT SUM(accepted), COUNT(score) FROM tasks").fetchone()
    conn.close()
    assert accepted[1] == 0
    spec = plan.assignments[0].cascade
    base = tmp_path / "base.yaml"
    entry = {"category": spec.category, "first": spec.first, "second": spec.second, **spec.verifier,
             "p_accept": 0.2, "quality_accept": 0.8, "quality_reject": 0.9, "n": 10}
    base.write_text(yaml.safe_dump({"extends": "default", "cascades": {"candidates": [entry]}}, sort_keys=False))
    out = tmp_path / "cal.yaml"
    code, stdout, err = run_cli("calibrate", tmp_path / "run", "--catalog", base, "-o", out)
    assert code == 0, err
    flat = " ".join(err.split())
    assert "none graded" in flat and "left at the prior" in flat, flat
    assert "a simulated run" in flat
    (got,) = yaml.safe_load(out.read_text())["cascades"]["candidates"]
    assert got["verifier"] == "judge" and got["judge"] == spec.verifier["judge"] and got["n"] == 30
    assert got["p_accept"] == pytest.approx((accepted[0] + 10 * 0.2) / 40, abs=1e-4)
    assert (got["quality_accept"], got["quality_reject"]) == (0.8, 0.9)
    assert "qualities left at the prior" in got["source"]
    from planner.catalog import load_catalog

    (c,) = load_catalog(out).cascades.others  # solve reads it back
    assert c.p_accept == pytest.approx(got["p_accept"]) and c.basis == "graded runs"


def test_run_without_cascades_fits_none(tmp_path, run_cli):
    """A graded run of single models (one model per task, so no joint outcomes): profiles
    calibrated, no cascade entry at all (neither from the run's cascades nor the wide-table fit,
    which has nothing to count: no `n: 0` independence entries), a note saying why, no error."""
    from tests.executor.plans import make_plan

    plan = make_plan(60, check=lambda i: {"kind": "choice", "answer": "ABCD"[i % 4]})
    plan = plan.model_copy(update={"assignments": [  # prompts whose answers the choice extractor reads
        a.model_copy(update={"messages": [{"role": "user", "content": f"Q{i}: which?\nA) w\nB) x\nC) y\nD) z"}]})
        for i, a in enumerate(plan.assignments)]})
    run_plan(plan, tmp_path / "run", RunOptions(mode="simulate", seed=1, progress=False))
    out = tmp_path / "cal.yaml"
    code, stdout, err = run_cli("calibrate", tmp_path / "run", "-o", out)
    assert code == 0, err
    written = yaml.safe_load(out.read_text())
    assert "cascades" not in written and len(written["models"]) == 3
    assert "cascades calibrated from graded runs" not in stdout
    assert "no cascades for summarize: no prompt has answers from two or more models" in " ".join(err.split())


def test_run_folder_without_a_ledger_is_one_line(tmp_path, run_cli):
    (tmp_path / "empty").mkdir()
    code, stdout, err = run_cli("calibrate", tmp_path / "empty", "-o", tmp_path / "cal.yaml")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "ledger.sqlite" in err and "Traceback" not in err
    assert not (tmp_path / "cal.yaml").exists()


def test_merge_keeps_base_and_wide_entries_and_run_fits_win(tmp_path):
    """The written block: the base catalog's entries, those fitted from wide tables, then the
    run-fitted ones, a later one replacing an earlier one for the same cascade (noted)."""
    from planner.cascade_runs import merge_block
    from planner.catalog import load_catalog

    v = {"verifier": "python_tests"}
    base_path = tmp_path / "base.yaml"
    base_path.write_text(yaml.safe_dump({"extends": "default", "cascades": {
        "extractors": {"qa": "choice"},
        "candidates": [
            {"category": "code", "first": "gpt-4.1-nano", "second": "gpt-4.1", **v,
             "p_accept": 0.4, "quality_accept": 1.0, "quality_reject": 0.7, "n": 5},
            {"category": "math", "first": "gpt-4.1-nano", "second": "gpt-4.1", "verifier": "self_consistency",
             "samples": 3, "extractor": "number"}]}}, sort_keys=False))
    base = load_catalog(base_path)
    (fit,), _ = _fit([_rec(i, float(i % 2), "first" if i % 2 else "second", 1.0, v) for i in range(20)],
                     base_path)
    assert fit.prior == (0.4, 1.0, 0.7) and fit.prior_from == f"catalog {base_path}"
    wide = {"verifier": "agree", "fit": "cross-fitted", "extractors": {"qa": "choice"}, "skipped": {},
            "candidates": [{"category": "qa", "first": "gpt-4.1-nano", "witnesses": ["gpt-4o-mini"],
                            "second": "gpt-4.1", "p_accept": 0.6, "quality_accept": 0.9, "quality_reject": 0.8,
                            "n": 100, "basis": "joint outcomes", "verifier": "agree"}]}
    block, notes = merge_block(base, wide, [fit], strength=10, level=0.9)
    got = {(c["category"], c["verifier"]): c for c in block["candidates"]}
    assert set(got) == {("code", "python_tests"), ("math", "self_consistency"), ("qa", "agree")}
    assert got[("code", "python_tests")]["basis"] == "graded runs" and got[("code", "python_tests")]["n"] == 20
    assert "p_accept" not in got[("math", "self_consistency")]  # the base's unfitted entry stays unfitted
    assert block["fit"] == "cross-fitted" and block["extractors"] == {"qa": "choice"}
    assert notes == [f"cascade {fit.label}: the run-fitted statistics replace the entry from catalog {base_path}"]
    out = tmp_path / "merged.yaml"
    out.write_text(yaml.safe_dump({"extends": "default", "cascades": block}, sort_keys=False))
    cat = load_catalog(out)  # solve reads the merged block back
    assert len(cat.cascades.cascades) == 1 and len(cat.cascades.others) == 2


def test_every_verifier_kind_is_fitted_from_a_graded_run(tmp_path, run_cli):
    """A simulated, graded run with one cascade of each verifier: calibrate fits each from the
    ledger's own counts (exactly), keyed by its verifier and settings; a task whose ledger row
    lacks the cascade's spec (an older ledger) is left out with a note."""
    from tests.cascades.plans import VERIFIERS

    plan = cascade_plan(50, tuple(VERIFIERS), p_accept=0.6)
    run_plan(plan, tmp_path / "run", RunOptions(mode="simulate", seed=5, progress=False))
    conn = sqlite3.connect(tmp_path / "run" / "ledger.sqlite")
    conn.execute("UPDATE tasks SET cascade_spec = NULL WHERE task_id = ?", (plan.assignments[0].task_id,))
    conn.commit()
    kind_of = {a.task_id: a.cascade.verifier["verifier"] for a in plan.assignments[1:]}
    rows = conn.execute("SELECT task_id, accepted, model, score FROM tasks").fetchall()
    conn.close()
    out = tmp_path / "cal.yaml"
    code, _, err = run_cli("calibrate", tmp_path / "run", "--prior-strength", "4", "-o", out)
    assert code == 0, err
    assert "1 cascade tasks left out" in " ".join(err.split())
    block = yaml.safe_load(out.read_text())["cascades"]
    got = {c["verifier"]: c for c in block["candidates"]}
    assert set(got) == set(VERIFIERS)
    assert block["extractors"] == {got["agree"]["category"]: "choice"}  # the agree entry's, as it ran
    from planner.catalog import load_catalog

    stats = load_catalog(out).cascades  # solve reads all five back
    assert len(stats.cascades) == 1 and len(stats.others) == 4
    first, second = plan.assignments[0].cascade.first, plan.assignments[0].cascade.second
    for kind, c in got.items():
        mine = [r for r in rows if kind_of.get(r[0]) == kind]
        acc = [r for r in mine if r[1] == 1 and r[2] == first and r[3] is not None]
        rej = [r for r in mine if r[1] == 0 and r[2] == second and r[3] is not None]
        assert c["n"] == len(mine) and c["accepted"] == sum(r[1] for r in mine), kind
        assert c["first_right_accepted"] == pytest.approx(sum(r[3] for r in acc)), kind
        assert c["second_right_rejected"] == pytest.approx(sum(r[3] for r in rej)), kind
        assert {k: c[k] for k in VERIFIERS[kind] if k != "extractor" or kind != "agree"} == \
            {k: v for k, v in VERIFIERS[kind].items() if k != "extractor" or kind != "agree"}, kind
        assert c["basis"] == "graded runs" and "(prior" in c["source"], kind


def test_tasks_the_verifier_never_decided_are_left_out(tmp_path, run_cli):
    """Under faults, a cascade escalates when stage one or a verifier call fails (or goes on to
    the fallbacks when everything failed): the ledger says rejected, but the verifier never
    decided. Those tasks count for none of the three rates (as rejections they would bias
    p_accept down), with a note; the rest count as before."""
    from planner.executor import RetryPolicy

    plan = cascade_plan(80, ("agree", "judge"), p_accept=0.6)
    run_plan(plan, tmp_path / "run", RunOptions(mode="simulate", seed=9, progress=False, fail_rate=0.3,
                                                retry=RetryPolicy(max_retries=0)))
    conn = sqlite3.connect(tmp_path / "run" / "ledger.sqlite")
    rows = conn.execute("SELECT t.task_id, t.accepted, (SELECT group_concat(idx) FROM cascade_stages s "
                        "WHERE s.task_id = t.task_id) FROM tasks t").fetchall()
    conn.close()
    kind = {a.task_id: a.cascade.verifier["verifier"] for a in plan.assignments}
    decided = {k: [0, 0] for k in ("agree", "judge")}
    forced = 0
    for task_id, accepted, stages in rows:
        done = {int(x) for x in (stages or "").split(",") if x}
        if accepted is None:
            continue
        if {0, 1} <= done:  # stage one and the witness / judge answered: the verifier decided
            decided[kind[task_id]][0] += 1
            decided[kind[task_id]][1] += accepted
        else:
            forced += 1
    assert forced >= 5  # the faults forced some escalations
    out = tmp_path / "cal.yaml"
    code, _, err = run_cli("calibrate", tmp_path / "run", "-o", out)
    assert code == 0, err
    assert f"{forced} cascade tasks left out: stage one or a verifier call failed" in " ".join(err.split())
    got = {c["verifier"]: c for c in yaml.safe_load(out.read_text())["cascades"]["candidates"]}
    for k, (n, accepted) in decided.items():
        assert (got[k]["n"], got[k]["accepted"]) == (n, accepted), k
