"""Cascades (first -> agree(first, witness) -> second): fitting, pruning, offline scoring."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from planner.calibrate import calibrate
from planner.cascade import (
    Cascade,
    _prune,
    answer_of,
    choose_extractor,
    independence,
    labels_in,
    pareto,
)
from planner.errors import InputError
from planner.evaluate import ROUTEPLAN, evaluate_history

LETTERS = "ABCD"
ACC = {"cheap/a": 0.8, "cheap/b": 0.8, "dear/c": 0.85}
COST = {"cheap/a": 1e-5, "cheap/b": 2e-5, "dear/c": 1e-3}


def _prompt(i: int) -> str:
    return (f"Question {i}: which one?\nA) red\nB) green\nC) blue\nD) black\n"
            f"Print only a single choice from \"A\" or \"B\" or \"C\" or \"D\".\nAnswer:")


def _mc_truth(n: int, seed: int, code: int = 0) -> pd.DataFrame:
    """A 4-option quiz: each model right with its accuracy, else a uniformly wrong letter,
    independently; plus ``code`` tasks whose answers are Python (no extractor applies)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        right = LETTERS[rng.integers(4)]
        for m, acc in ACC.items():
            ok = rng.random() < acc
            pick = right if ok else rng.choice([x for x in LETTERS if x != right])
            rows.append({"task_id": f"q{i}", "category": "quiz", "model": m, "score": float(ok),
                         "cost_usd": COST[m], "input_tokens": 60.0, "output_tokens": 5.0, "latency_s": np.nan,
                         "prompt": _prompt(i), "response": f"The answer is ({pick})", "source": "synthetic"})
    for i in range(code):
        for m, acc in ACC.items():
            rows.append({"task_id": f"c{i}", "category": "code", "model": m,
                         "score": float(rng.random() < acc), "cost_usd": COST[m] * 10, "input_tokens": 60.0,
                         "output_tokens": 50.0, "latency_s": np.nan, "prompt": f"Write function {i}",
                         "response": f"```python\ndef f{i}(x):\n    return x + {rng.integers(9)}\n```",
                         "source": "synthetic"})
    return pd.DataFrame(rows)


def test_extractors():
    assert labels_in(_prompt(1)) == list(LETTERS)
    assert labels_in("no options here") == ["A", "B", "C", "D", "E"]
    assert answer_of("choice", "I think the answer is (C).", _prompt(1)) == "C"
    assert answer_of("choice", None, _prompt(1)) is None
    assert answer_of("number", "so x = 1,200.") == answer_of("number", "The answer: 1200") == "1200"
    assert answer_of("match", "  Paris! ") == answer_of("match", "paris") == "paris"
    kind, _ = choose_extractor(["(B)", "A", "answer: D"], [_prompt(0)] * 3)
    assert kind == "choice"
    kind, why = choose_extractor(["```python\ndef f(): return 1\n```"] * 3, ["write f"] * 3)
    assert kind is None and "code" in why
    assert choose_extractor(["42", "x is 7", "it is 3.5"], ["q"] * 3)[0] == "number"


def test_independence_formula():
    p, qa, qr = independence(0.6, 0.6, 0.9, 4)
    assert p == pytest.approx(0.36 + 0.16 / 3)
    assert qa == pytest.approx(0.36 / p) and qr == 0.9
    assert independence(0.6, 0.5, 0.9, math.inf)[0] == pytest.approx(0.3)


def test_pareto_and_pruning():
    # (cost, quality): the second point is dominated by the first, the third by a single model
    assert pareto([(1.0, 0.8), (2.0, 0.7), (3.0, 0.85), (4.0, 0.95)], [(2.5, 0.9)]) == [0, 3]
    assert pareto([(1.0, 0.8), (1.0, 0.8)]) == [0]  # of exact ties, one survives

    def cas(p: float, qa: float, qr: float) -> Cascade:
        return Cascade("quiz", "cheap/a", ("cheap/b",), "dear/c", p, qa, qr)

    singles_cost = np.array([1.0, 2.0, 10.0])
    singles_q = np.array([0.6, 0.6, 0.9])
    above = cas(0.5, 0.9, 0.92)  # quality 0.91 at cost ~8: above the singles' hull
    dominated = cas(0.1, 0.5, 0.8)  # quality 0.77 at ~12: dearer and worse than dear/c
    below_hull = cas(0.9, 0.6, 0.9)  # quality 0.63 at 4: under the chord from 1 to 10
    cands = [(above, above.expected_cost(1.0, 2.0, 10.0)), (dominated, dominated.expected_cost(1.0, 2.0, 10.0)),
             (below_hull, below_hull.expected_cost(1.0, 2.0, 10.0))]
    assert _prune(cands, list(ACC), singles_cost, singles_q, limit=20) == [above]
    many = [(cas(0.5, 0.9 + k / 1000, 0.92), 8.0 + k / 10) for k in range(30)]
    kept = _prune(many, list(ACC), singles_cost, singles_q, limit=5)
    assert len(kept) == 5


def test_calibrate_fits_cascades_near_their_empirical_rates(tmp_path):
    cal = calibrate(_mc_truth(3000, seed=1, code=40), count_tokens=False)
    block = cal.extra["cascades"]
    assert block["extractors"] == {"quiz": "choice"} and "code" in block["skipped"]
    assert any("no cascades for code" in n for n in cal.notes)
    by = {(c["first"], *c["witnesses"], c["second"]): c for c in block["candidates"]}
    c = by[("cheap/a", "cheap/b", "dear/c")]
    p_ind, qa_ind, _ = independence(0.8, 0.8, 0.85, 4)
    assert c["p_accept"] == pytest.approx(p_ind, abs=0.03)
    assert c["quality_accept"] == pytest.approx(qa_ind, abs=0.03)
    assert c["quality_reject"] == pytest.approx(0.85, abs=0.03)
    assert c["n"] == 3000 and c["basis"] == "joint outcomes"
    assert all(c["second"] == "dear/c" for c in block["candidates"])  # the second stage is the dearer
    out = tmp_path / "cal.yaml"
    cal.write(out)
    # the expected values hold on fresh prompts: the cascade beats dear/c alone, so a generous
    # budget puts every task on it; its acceptance rate and realised score are the projected ones
    ev = evaluate_history(_mc_truth(3000, seed=2), out, budgets=[1e9])
    assert any("cascades planned" in n for n in ev.notes)
    row = ev.points[ev.points["curve"] == ROUTEPLAN].iloc[0]
    assert row["cascade_tasks"] == 3000
    chosen = [x for x in block["candidates"]
              if abs(x["p_accept"] * x["quality_accept"] + (1 - x["p_accept"]) * x["quality_reject"]
                     - row["projected_quality"]) < 1e-3]
    assert chosen
    assert 1 - row["escalated"] / 3000 == pytest.approx(chosen[0]["p_accept"], abs=0.03)
    assert row["score"] == pytest.approx(row["projected_quality"], abs=0.03)
    assert row["cost_usd"] == pytest.approx(row["projected_cost_usd"], rel=0.1)


@pytest.fixture
def hand_catalog(tmp_path):
    """Profiles from a synthetic quiz, and one cascade written by hand."""
    out = tmp_path / "cat.yaml"
    calibrate(_mc_truth(200, seed=3), count_tokens=False, cascades=False).write(out)
    doc = yaml.safe_load(out.read_text())
    doc["cascades"] = {"extractors": {"quiz": "choice"}, "candidates": [
        {"category": "quiz", "first": "cheap/a", "witnesses": ["cheap/b"], "second": "dear/c",
         "p_accept": 0.5, "quality_accept": 0.99, "quality_reject": 0.95}]}
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def _hand_history() -> pd.DataFrame:
    """Four prompts: (a, b) agree and a right; agree and a wrong; disagree; a unreadable."""
    answers = {"q0": ("B", "B", "C", "B"), "q1": ("A", "A", "B", "B"), "q2": ("A", "C", "D", "D"),
               "q3": ("I am not sure", "D", "D", "D")}  # a, b, c, truth
    rows = []
    for tid, (*picks, right) in answers.items():
        for m, pick in zip(ACC, picks, strict=True):
            response = f"answer: ({pick})" if len(pick) == 1 else pick
            rows.append({"task_id": tid, "category": "quiz", "model": m, "score": float(pick == right),
                         "cost_usd": COST[m], "input_tokens": 60.0, "output_tokens": 5.0, "latency_s": np.nan,
                         "prompt": _prompt(int(tid[1])), "response": response, "source": "hand"})
    return pd.DataFrame(rows)


def test_offline_scoring_by_hand(hand_catalog, tmp_path):
    ev = evaluate_history(_hand_history(), hand_catalog, budgets=[1.0], plans_dir=tmp_path / "plans")
    plan = pd.read_csv(next((tmp_path / "plans").glob("*.csv")))
    # expected quality 0.97 beats dear/c's calibrated ~0.85: every task on the cascade
    assert (plan["offering"] == "a -> c (agree: a, b)").all()
    assert plan["called_models"].tolist() == ["cheap/a;cheap/b", "cheap/a;cheap/b", "cheap/a;cheap/b;dear/c",
                                              "cheap/a;cheap/b;dear/c"]
    assert plan["final_model"].tolist() == ["cheap/a", "cheap/a", "dear/c", "dear/c"]
    row = ev.points[ev.points["curve"] == ROUTEPLAN].iloc[0]
    ab, c = COST["cheap/a"] + COST["cheap/b"], COST["dear/c"]
    assert row["cost_usd"] == pytest.approx(4 * ab + 2 * c)
    assert row["score"] == pytest.approx((1 + 0 + 1 + 1) / 4)  # q1: accepted, a was wrong
    assert row["cascade_tasks"] == 4 and row["escalated"] == 2
    assert row["projected_cost_usd"] < row["worst_cost_usd"]
    # anyone can re-score the plan from the records
    h = _hand_history().set_index(["task_id", "model"])
    cost = sum(h.loc[(t, m), "cost_usd"] for t, ms in zip(plan["task_id"], plan["called_models"], strict=True)
               for m in ms.split(";"))
    score = np.mean([h.loc[(t, m), "score"] for t, m in zip(plan["task_id"], plan["final_model"], strict=True)])
    assert cost == pytest.approx(row["cost_usd"]) and score == pytest.approx(row["score"])
    # --no-cascades: single models only
    ev0 = evaluate_history(_hand_history(), hand_catalog, budgets=[1.0], cascades=False)
    assert "cascade_tasks" not in ev0.points


def test_cli_evaluate_cascades_flag(hand_catalog, tmp_path, run_cli):
    hist = tmp_path / "h.csv"
    _hand_history().to_csv(hist, index=False)
    code, out, err = run_cli("evaluate", hist, "--catalog", hand_catalog, "--budget", "0.001:1:3", "--log",
                             "--plans", tmp_path / "p")
    assert code == 0, err
    assert "cascades planned" in err
    code, out, err = run_cli("evaluate", hist, "--catalog", hand_catalog, "--no-cascades", "--budget", "0.01:1:2")
    assert code == 0, err
    assert "cascades planned" not in err


@pytest.mark.parametrize("block, message", [
    ("cascades: [1]", "cascades: expected a mapping"),
    ("cascades: {extractors: {quiz: regex}}", "cascades.extractors"),
    ("cascades: {extractors: {quiz: choice}, candidates: [{category: quiz, first: a, witnesses: [b], second: c, "
     "p_accept: 1.5, quality_accept: 0.9, quality_reject: 0.9}]}", "p_accept: expected a number in [0, 1]"),
    ("cascades: {extractors: {quiz: choice}, candidates: [{category: other, first: a, witnesses: [b], second: c, "
     "p_accept: 0.5, quality_accept: 0.9, quality_reject: 0.9}]}", "has no extractor"),
    ("cascades: {extractors: {quiz: choice}, candidates: [{category: quiz, first: a}]}", "witnesses: expected"),
    ("cascades: {extractors: {quiz: choice}, candidates: [{category: quiz, first: a, witnesses: [b]}]}",
     "candidates[0]"),
])
def test_bad_cascade_block(tmp_path, block, message):
    from planner.catalog import load_catalog

    p = tmp_path / "c.yaml"
    p.write_text(f"version: 1\nextends: default\n{block}\n")
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_catalog(p)


def test_many_models_draw_candidates_from_the_best(monkeypatch):
    import planner.cascade as cascade

    monkeypatch.setattr(cascade, "MAX_POOL", 2 + 1)
    h = _mc_truth(300, seed=5)
    extra = h[h["model"] == "cheap/a"].assign(model="poor/d", score=0.0, cost_usd=1e-6)
    cal = calibrate(pd.concat([h, extra]), count_tokens=False)
    assert any("3 models of best quality" in n for n in cal.notes)
    assert all("poor/d" not in (c["first"], *c["witnesses"], c["second"])
               for c in cal.extra["cascades"]["candidates"])


def test_many_prompts_are_sampled(monkeypatch):
    import planner.cascade as cascade

    monkeypatch.setattr(cascade, "MAX_TASKS", 100)
    cal = calibrate(_mc_truth(300, seed=6), count_tokens=False)
    assert any("sample of 100 prompts" in n for n in cal.notes)
    assert {c["n"] for c in cal.extra["cascades"]["candidates"]} == {100}


def test_history_without_prompts_or_tasks_of_the_cascade_category(hand_catalog):
    cal = calibrate(_mc_truth(300, seed=7).drop(columns=["prompt"]), count_tokens=False)
    # no prompts to list the options: the short answers are compared as normalised text
    assert cal.extra["cascades"]["extractors"] == {"quiz": "match"} and cal.extra["cascades"]["candidates"]
    doc = yaml.safe_load(hand_catalog.read_text())  # the catalog's only cascade is for another category
    doc["cascades"]["extractors"] = {"trivia": "choice"}
    doc["cascades"]["candidates"][0]["category"] = "trivia"
    hand_catalog.write_text(yaml.safe_dump(doc, sort_keys=False))
    ev = evaluate_history(_hand_history(), hand_catalog, budgets=[1.0])
    assert any("no cascade of the catalog applies" in n for n in ev.notes)
    assert "cascade_tasks" not in ev.points
