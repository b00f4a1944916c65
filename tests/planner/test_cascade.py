"""Cascades (first -> agree(first, witness) -> second): fitting, pruning, offline scoring."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from planner.calibrate import calibrate
from planner.cascade import (
    answer_of,
    choose_extractor,
    independence,
    labels_in,
    pareto,
)
from planner.cascade_fit import _chosen, fold_of
from planner.errors import InputError
from planner.evaluate import HULL, ROUTEPLAN, evaluate_history

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

    # (cost, quality) of candidates against single models at (1, 0.6), (2, 0.6), (10, 0.9)
    singles_cost, singles_q = np.array([1.0, 2.0, 10.0]), np.array([0.6, 0.6, 0.9])
    above = (8.0, 0.91)  # above the singles' hull
    dominated = (12.0, 0.77)  # dearer and worse than the (10, 0.9) model
    below_hull = (4.0, 0.63)  # under the chord from 1 to 10
    cost, q = np.array([above[0], dominated[0], below_hull[0]]), np.array([above[1], dominated[1], below_hull[1]])
    assert _chosen(cost, q, singles_cost, singles_q, limit=20) == [0]
    many_cost = 8.0 + np.arange(30) / 10
    many_q = 0.9 + np.arange(30) / 1000
    assert len(_chosen(many_cost, many_q, singles_cost, singles_q, limit=5)) == 5


def test_folds_are_stable_and_balanced():
    ids = np.array([f"task-{i}" for i in range(5000)])
    f = fold_of(ids, 5)
    assert (f == fold_of(ids, 5)).all() and set(f.tolist()) == set(range(5))
    assert np.bincount(f).min() > 900  # about 1,000 each
    assert fold_of(ids[:3], 5).tolist() == f[:3].tolist()  # a task's fold does not depend on the others


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
    # counted on the folds it was not chosen on: at least half of the prompts
    assert 1500 <= c["n"] <= 3000 and c["basis"] == "joint outcomes"
    assert "cross-fitted" in block["fit"]
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
    import planner.cascade_fit as cascade

    monkeypatch.setattr(cascade, "MAX_POOL", 2 + 1)
    h = _mc_truth(300, seed=5)
    extra = h[h["model"] == "cheap/a"].assign(model="poor/d", score=0.0, cost_usd=1e-6)
    cal = calibrate(pd.concat([h, extra]), count_tokens=False)
    assert any("3 models of best quality" in n for n in cal.notes)
    assert all("poor/d" not in (c["first"], *c["witnesses"], c["second"])
               for c in cal.extra["cascades"]["candidates"])


def test_many_prompts_are_sampled(monkeypatch):
    import planner.cascade_fit as cascade

    monkeypatch.setattr(cascade, "MAX_TASKS", 100)
    cal = calibrate(_mc_truth(300, seed=6), count_tokens=False)
    assert any("sample of 100 prompts" in n for n in cal.notes)
    assert all(50 <= c["n"] <= 100 for c in cal.extra["cascades"]["candidates"])


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


def test_cascades_beat_the_hull_where_agreement_is_informative(tmp_path):
    # independent models on a 4-option quiz: two cheap answers that agree are nearly always
    # right, so checking a cheap answer and escalating the rest beats every single model
    out = tmp_path / "cal.yaml"
    calibrate(_mc_truth(2000, seed=11), count_tokens=False).write(out)
    fresh = _mc_truth(2000, seed=12)
    without, with_ = evaluate_history(fresh, out, cascades=False), evaluate_history(fresh, out)
    assert with_.aiq[ROUTEPLAN] > without.aiq[ROUTEPLAN] + 0.05
    assert with_.aiq[ROUTEPLAN] > with_.aiq[HULL] + 0.05
    assert with_.match_cost is not None and with_.match_cost < 0.5 * with_.best_model_cost


def _tie_truth(n: int, seed: int) -> pd.DataFrame:
    """Six cheap models that mostly repeat a shared answer (right 90 % of the time), and a dear
    model right 90 % of the time on its own: where the cheap ones agree they are right no more
    often than the dear one, so no cascade really beats it."""
    rng = np.random.default_rng(seed)
    cheap = [f"cheap/{c}" for c in "abcdef"]
    rows = []
    for i in range(n):
        right = int(rng.integers(4))
        shared = right if rng.random() < 0.9 else (right + 1 + int(rng.integers(3))) % 4
        picks = {m: shared if rng.random() < 0.7 else int(rng.integers(4)) for m in cheap}
        picks["dear/z"] = right if rng.random() < 0.9 else (right + 1 + int(rng.integers(3))) % 4
        for j, (m, pick) in enumerate(picks.items()):
            rows.append({"task_id": f"q{i}", "category": "quiz", "model": m, "score": float(pick == right),
                         "cost_usd": 1e-3 if m == "dear/z" else 1e-5 * (1 + j), "input_tokens": 60.0,
                         "output_tokens": 5.0, "latency_s": np.nan, "prompt": _prompt(i),
                         "response": f"The answer is ({LETTERS[pick]})", "source": "synthetic"})
    return pd.DataFrame(rows)


def test_no_cascade_projected_past_its_second_model_by_luck():
    # dozens of cascades tie with dear/z at best; counted on the prompts they were chosen on,
    # the luckiest projected above it on every seed (the plan then preferred it at the dearest
    # budgets and fell short of dear/z on fresh prompts). Cross-fitted, with the first model's
    # lead taken conservatively, hardly any does.
    lucky = 0
    for seed in range(1, 7):
        cal = calibrate(_tie_truth(600, seed), count_tokens=False)
        dear = float(cal.table.set_index("model").loc["dear/z", "quality"])
        lifts = [c["p_accept"] * c["quality_accept"] + (1 - c["p_accept"]) * c["quality_reject"] - dear
                 for c in cal.extra.get("cascades", {}).get("candidates", []) if c["second"] == "dear/z"]
        lucky += bool(lifts) and max(lifts) > 0.005
    assert lucky <= 1


def test_plans_rescore_to_what_evaluate_reports_at_every_budget(tmp_path):
    out = tmp_path / "cal.yaml"
    calibrate(_mc_truth(1500, seed=13), count_tokens=False).write(out)
    fresh = _mc_truth(800, seed=14)
    ev = evaluate_history(fresh, out, points=12, plans_dir=tmp_path / "plans")
    rows = ev.points[ev.points["curve"] == ROUTEPLAN].reset_index(drop=True)
    truth = fresh.set_index(["task_id", "model"])
    plans = sorted((tmp_path / "plans").glob("plan_*.csv"))
    assert len(plans) == rows["score"].notna().sum() and rows["cascade_tasks"].max() > 0
    mixed = 0
    for path in plans:
        plan = pd.read_csv(path)
        row = rows.iloc[int(path.name.split("_")[1])]
        cost = sum(truth.loc[(t, m), "cost_usd"] for t, ms in zip(plan["task_id"], plan["called_models"], strict=True)
                   for m in ms.split(";"))
        score = truth.loc[list(zip(plan["task_id"], plan["final_model"], strict=True)), "score"].mean()
        assert cost == pytest.approx(row["cost_usd"], rel=1e-9) and score == pytest.approx(row["score"], abs=1e-12)
        on_cascade = plan["called_models"].str.contains(";")
        assert on_cascade.sum() == row["cascade_tasks"]
        escalated = on_cascade & (plan["final_model"] != plan["called_models"].str.split(";").str[0])
        assert escalated.sum() == row["escalated"]
        mixed += bool(0 < on_cascade.sum() < len(plan))
    assert mixed  # some budget mixes cascades and single models


def test_no_cascade_entry_without_joint_outcomes():
    """Only joint outcomes fit a cascade: a category whose prompts each have one model's answer
    (a run folder of single-model tasks) gets no entry, with the reason in `skipped` and a note;
    a model never observed on the same prompts as the others (a prompt set of its own) is in no
    kept cascade; no entry is written with n = 0."""
    h = _mc_truth(600, seed=12)
    one_each = h.assign(category="solo")
    one_each = one_each[[int(t[1:]) % 3 == list(ACC).index(m) for t, m in zip(one_each["task_id"], one_each["model"],
                                                                          strict=True)]]
    apart = h[h["model"] == "dear/c"].assign(model="apart/e", task_id=lambda d: "e" + d["task_id"],
                                             cost_usd=2e-3)  # dear/c's twin, dearer, on prompts of its own
    cal = calibrate(pd.concat([h, one_each, apart]), count_tokens=False)
    block = cal.extra["cascades"]
    assert "solo" not in {c["category"] for c in block["candidates"]}
    assert "no joint outcomes" in block["skipped"]["solo"]
    assert any(n.startswith("no cascades for solo: no prompt has answers from two or more models") for n in cal.notes)
    assert block["candidates"] and all(c["n"] > 0 and c["basis"] == "joint outcomes" for c in block["candidates"])
    assert all("apart/e" not in (c["first"], *c["witnesses"], c["second"]) for c in block["candidates"])
