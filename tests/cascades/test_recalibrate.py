"""Recalibrating from runs a base catalog was already fitted from counts each run once.

`calibrate RUN --catalog cal.yaml`, where cal.yaml was fitted from RUN, used to shrink toward
an entry that already held RUN's observations, so they counted twice. Every calibrated rate now
records the runs (ledger run ids) it was fitted from (planner.fit_layers); a run read again is
taken out of the base entry first. So: recalibrating from the same runs gives the same numbers;
reading a run again beside a new one over a base fitted from the first gives what reading both
over the base's own prior gives."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from planner.executor import RunOptions, run_plan
from planner.fit_layers import Fit, Fitted, base_fit, parse
from tests.cascades.plans import cascade_plan
from tests.executor.plans import make_plan


def _cascade_run(out, seed: int, n: int = 60):
    run_plan(cascade_plan(n, ("agree", "judge"), p_accept=0.6), out, RunOptions(mode="simulate", seed=seed,
                                                                               progress=False))
    return out


def _single_run(out, seed: int, n: int = 60):
    plan = make_plan(n, check=lambda i: {"kind": "choice", "answer": "ABCD"[i % 4]})
    plan = plan.model_copy(update={"assignments": [
        a.model_copy(update={"messages": [{"role": "user", "content": f"Q{i}: which?\nA) w\nB) x\nC) y\nD) z"}]})
        for i, a in enumerate(plan.assignments)]})
    run_plan(plan, out, RunOptions(mode="simulate", seed=seed, progress=False))
    return out


def _run_id(out) -> str:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return conn.execute("SELECT value FROM meta WHERE key='run_id'").fetchone()[0]
    finally:
        conn.close()


def _calibrate(run_cli, out, *args) -> tuple[dict, str]:
    code, _, err = run_cli("calibrate", *args, "-o", out)
    assert code == 0, err
    return yaml.safe_load(out.read_text()), " ".join(err.split())


def _cascades(doc: dict) -> dict[str, dict]:
    return {c["verifier"]: c for c in doc["cascades"]["candidates"]}


def _stats(c: dict) -> tuple[float, float, float]:
    return c["p_accept"], c["quality_accept"], c["quality_reject"]


def _quality(doc: dict) -> dict[tuple[str, str], float]:
    return {(m["id"], cat): q for m in doc["models"] for cat, q in m["quality"].items()
            if f"quality.{cat}" in m.get("sources", {}) and "calibrated from" in m["sources"][f"quality.{cat}"]}


def test_recalibrating_a_cascade_from_its_own_run_counts_it_once(tmp_path, run_cli):
    run1, run2 = _cascade_run(tmp_path / "run1", 1), _cascade_run(tmp_path / "run2", 2)
    cal1, _ = _calibrate(run_cli, tmp_path / "cal1.yaml", run1)
    for c in _cascades(cal1).values():  # each entry says which runs it holds
        assert c["calibration"]["fits"][0]["runs"].keys() == {_run_id(run1)}
    again, notes = _calibrate(run_cli, tmp_path / "again.yaml", run1, "--catalog", tmp_path / "cal1.yaml")
    for kind, c in _cascades(cal1).items():
        assert _stats(_cascades(again)[kind]) == pytest.approx(_stats(c), abs=1e-4), kind  # not shrunk again
        assert _cascades(again)[kind]["n"] == c["n"]
    assert "counted once" in notes
    # run1 read again beside run2, over the base fitted from run1 = both over the base's own prior
    both, _ = _calibrate(run_cli, tmp_path / "both.yaml", run1, run2)
    over, _ = _calibrate(run_cli, tmp_path / "over.yaml", run1, run2, "--catalog", tmp_path / "cal1.yaml")
    for kind, c in _cascades(both).items():
        assert _stats(_cascades(over)[kind]) == pytest.approx(_stats(c), abs=1e-4), kind
    # a chain: cal2 fitted from run2 over cal1 (no overlap: shrunk toward cal1, as before); run1
    # read again over cal2 = run1 over (run2 over the default), run1 taken out of cal2's prior
    cal2, _ = _calibrate(run_cli, tmp_path / "cal2.yaml", run2, "--catalog", tmp_path / "cal1.yaml")
    assert {r for f in _cascades(cal2)["agree"]["calibration"]["fits"] for r in f["runs"]} == \
        {_run_id(run1), _run_id(run2)}
    only2, _ = _calibrate(run_cli, tmp_path / "only2.yaml", run2)
    chain, _ = _calibrate(run_cli, tmp_path / "chain.yaml", run1, "--catalog", tmp_path / "cal2.yaml")
    want, _ = _calibrate(run_cli, tmp_path / "want.yaml", run1, "--catalog", tmp_path / "only2.yaml")
    for kind, c in _cascades(want).items():
        assert _stats(_cascades(chain)[kind]) == pytest.approx(_stats(c), abs=1e-4), kind


def test_recalibrating_single_model_qualities_from_their_own_run_counts_it_once(tmp_path, run_cli):
    run1, run2 = _single_run(tmp_path / "run1", 1), _single_run(tmp_path / "run2", 2)
    cal1, _ = _calibrate(run_cli, tmp_path / "cal1.yaml", run1)
    q1 = _quality(cal1)
    assert len(q1) == 3
    again, notes = _calibrate(run_cli, tmp_path / "again.yaml", run1, "--catalog", tmp_path / "cal1.yaml")
    assert _quality(again) == pytest.approx(q1, abs=1e-4)
    assert "counted once" in notes
    both, _ = _calibrate(run_cli, tmp_path / "both.yaml", run1, run2)
    over, _ = _calibrate(run_cli, tmp_path / "over.yaml", run1, run2, "--catalog", tmp_path / "cal1.yaml")
    assert _quality(over) == pytest.approx(_quality(both), abs=1e-4)
    # a hand edit after calibrating: the record no longer explains the value, so the edited value
    # is the prior (as for any hand-written entry), shrunk toward by prior-strength observations
    doc = yaml.safe_load((tmp_path / "cal1.yaml").read_text())
    model = doc["models"][0]
    (cat,) = [c for c in model["quality"] if f"quality.{c}" in model["sources"]]
    model["quality"][cat] = 0.123
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    edited, _ = _calibrate(run_cli, tmp_path / "edited.yaml.out.yaml", run1, "--catalog", tmp_path / "edited.yaml")
    assert _quality(edited)[(model["id"], cat)] < q1[(model["id"], cat)]


def test_the_same_run_folder_given_twice_is_read_once(tmp_path, run_cli):
    import shutil

    run1 = _single_run(tmp_path / "run1", 1, n=30)
    shutil.copytree(run1, tmp_path / "copy")
    once, _ = _calibrate(run_cli, tmp_path / "once.yaml", run1)
    twice, notes = _calibrate(run_cli, tmp_path / "twice.yaml", run1, tmp_path / "copy")
    assert _quality(twice) == pytest.approx(_quality(once), abs=1e-4)
    assert "already read" in notes


def test_fold_strip_and_parse():
    f = Fitted((0.5,), "catalog default", (Fit(10, {"a": ((10, 8),), "b": ((20, 10),)}, ((0, 0),)),))
    assert f.value() == pytest.approx(((8 + 10 + 5) / 40,))
    assert f.without(frozenset({"a"})).value() == pytest.approx(((10 + 5) / 30,))
    assert f.without(frozenset({"a", "b"})).fits == () and f.without(frozenset({"a", "b"})).value() == (0.5,)
    assert parse(f.record(), 1) == f
    onto, again = base_fit(f, f.value(), frozenset({"b", "c"}))
    assert again == {"b"} and onto is not None and onto.runs == {"a"}
    assert base_fit(f, (0.9,), frozenset({"a"})) == (None, frozenset())  # edited since: no record
    three = Fitted((0.6, 0.9, 0.8), "independence", (Fit(4, {"r": ((10, 7), (5, 4.5), (3, 2.0))}, ((0, 0),) * 3),))
    assert parse(three.record(), 3) == three
    assert three.value() == pytest.approx(((7 + 2.4) / 14, (4.5 + 3.6) / 9, (2 + 3.2) / 7))
    for bad, msg in (({"prior": 2}, "calibration.prior"), ({"prior": 0.5, "fits": [{"strength": -1}]}, "strength"),
                     ({"prior": 0.5, "fits": [{"strength": 1, "runs": {"x": [1]}}]}, "runs.x")):
        with pytest.raises(ValueError, match=msg):
            parse(bad, 1)


def test_a_malformed_calibration_record_is_one_line(tmp_path, run_cli):
    cat = tmp_path / "cat.yaml"
    cat.write_text(yaml.safe_dump({"extends": "default", "models": [
        {"id": "gpt-4.1", "quality": {"qa": 0.8}, "calibration": {"qa": {"prior": "high"}}}]}))
    code, _, err = run_cli("solve", tmp_path / "nothing.yaml", "--catalog", cat, "-o", tmp_path / "p.json")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "calibration" in err and "Traceback" not in err
