"""routeplan calibrate: shrinkage, fitted prices and speeds, the written catalog."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import make_plan
from planner.calibrate import calibrate, credible_interval, posterior_mean
from planner.catalog import load_catalog
from planner.errors import InputError
from planner.tasks import tasks_from_records

COLUMNS = ("task_id", "category", "model", "score", "cost_usd", "input_tokens", "output_tokens",
           "latency_s", "prompt", "response", "source")


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df:
            df[c] = np.nan if c in ("cost_usd", "input_tokens", "output_tokens", "latency_s") else None
    df["source"] = df["source"].fillna("fixture.csv")
    return df


# ---------------------------------------------------------------- shrinkage properties
@given(prior=st.floats(0, 1), strength=st.floats(0.1, 100))
def test_no_data_gives_the_prior(prior, strength):
    assert posterior_mean(0.0, 0, prior, strength) == pytest.approx(prior)


@given(mean=st.floats(0, 1), prior=st.floats(0, 1), strength=st.floats(0, 50))
def test_much_data_gives_the_observed_mean(mean, prior, strength):
    n = 10**7
    assert posterior_mean(mean * n, n, prior, strength) == pytest.approx(mean, abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 500), frac=st.floats(0, 1), prior=st.floats(0.01, 0.99), strength=st.floats(0.5, 50))
def test_posterior_lies_between_prior_and_data_inside_its_interval(n, frac, prior, strength):
    s = frac * n
    post = float(posterior_mean(s, n, prior, strength))
    assert min(prior, frac) - 1e-12 <= post <= max(prior, frac) + 1e-12
    lo, hi = credible_interval(s, n, prior, strength, 0.9)
    assert 0 <= lo <= hi <= 1
    if strength * prior + s >= 1 and strength * (1 - prior) + n - s >= 1:  # unimodal: the mean is inside
        assert lo <= post + 1e-9 and post - 1e-9 <= hi


def test_interval_narrows_with_data():
    w = [float(np.subtract(*credible_interval(0.8 * n, n, 0.5, 10)[::-1])) for n in (10, 100, 1000)]
    assert w[0] > w[1] > w[2] > 0


# ---------------------------------------------------------------- fitting
def _rows(model, category, scores, **fields):
    return [{"task_id": f"{category}-{i}", "category": category, "model": model, "score": s, **fields}
            for i, s in enumerate(scores)]


def test_base_model_shrinks_toward_the_base_score():
    base = load_catalog().get("gpt-5-mini").quality["code"]
    cal = calibrate(frame(_rows("gpt-5-mini", "code", [1.0] * 10)), prior_strength=10, count_tokens=False)
    (row,) = cal.table.itertuples()
    assert row.prior == pytest.approx(base)
    assert row.quality == pytest.approx((10 + 10 * base) / 20)
    prof = cal.profiles["gpt-5-mini"]
    assert prof["quality"]["code"] == pytest.approx(row.quality, abs=1e-4)
    assert prof["quality"]["math"] == load_catalog().get("gpt-5-mini").quality["math"]  # kept from the base


def test_new_model_shrinks_toward_its_own_mean_and_gets_fitted_prices():
    rng = np.random.default_rng(1)
    rows = []
    for cat, p in (("arc", 0.9), ("wino", 0.5)):
        for i in range(200):
            tin, tout = int(rng.integers(50, 900)), int(rng.integers(1, 300))
            rows.append({"task_id": f"{cat}{i}", "category": cat, "model": "house/llm", "score": float(rng.random() < p),
                         "input_tokens": tin, "output_tokens": tout, "cost_usd": tin * 3e-7 + tout * 9e-7})
    cal = calibrate(frame(rows), count_tokens=False)
    t = cal.table.set_index("category")
    own = (t.loc["arc", "observed"] + t.loc["wino", "observed"]) / 2
    assert t["prior"].tolist() == pytest.approx([own, own])
    assert (t["prior_from"] == "its mean over categories").all()
    prof = cal.profiles["house/llm"]
    assert prof["input_cost_per_token"] == pytest.approx(3e-7, rel=1e-4)
    assert prof["output_cost_per_token"] == pytest.approx(9e-7, rel=1e-4)
    assert "fitted by non-negative least squares" in prof["sources"]["price"]


def test_cost_disagreeing_with_the_price_map_warns():
    cat = load_catalog().get("gpt-4.1-mini")
    rows = _rows("gpt-4.1-mini", "qa", [1, 0, 1], input_tokens=1000, output_tokens=100,
                 cost_usd=1.2 * (1000 * cat.input_cost_per_token + 100 * cat.output_cost_per_token))
    cal = calibrate(frame(rows), count_tokens=False)
    assert len(cal.warnings) == 1 and "+20.0%" in cal.warnings[0] and "gpt-4.1-mini" in cal.warnings[0]
    ok = _rows("gpt-4.1-mini", "qa", [1, 0, 1], input_tokens=1000, output_tokens=100,
               cost_usd=1.01 * (1000 * cat.input_cost_per_token + 100 * cat.output_cost_per_token))
    assert calibrate(frame(ok), count_tokens=False).warnings == []


def test_unpriced_model_without_tokens_is_one_line():
    with pytest.raises(InputError, match="'house/x' is not in litellm's price map"):
        calibrate(frame(_rows("house/x", "qa", [1, 0], cost_usd=0.01)), count_tokens=False)


def test_output_tokens_median_and_speed_fit():
    rows = []
    for i in range(40):
        out = 20 + 10 * i
        rows.append({"task_id": f"t{i}", "category": "code", "model": "gpt-4.1-mini", "score": 1.0,
                     "output_tokens": out, "input_tokens": 100, "latency_s": 0.4 + out / 80})
    cal = calibrate(frame(rows), count_tokens=False)
    prof = cal.profiles["gpt-4.1-mini"]
    assert prof["output_tokens"]["code"] == np.median([20 + 10 * i for i in range(40)])
    assert prof["ttft_s"] == pytest.approx(0.4, abs=1e-3)
    assert prof["output_tokens_per_s"] == pytest.approx(80, rel=1e-3)


def test_tokens_counted_from_text_when_not_recorded():
    rows = _rows("gpt-4.1-mini", "qa", [1.0, 0.0], prompt="What is the capital of France? " * 5,
                 response="Paris is the capital of France.")
    cal = calibrate(frame(rows))
    out = cal.profiles["gpt-4.1-mini"]["output_tokens"]["qa"]
    assert 5 <= out <= 10
    assert any("counted 2 prompts and 2 responses" in n for n in cal.notes)


def test_written_catalog_extends_the_base_plans_and_credits(tmp_path, run_cli):
    rows = (_rows("gpt-4.1-mini", "mmlu-physics", [1.0] * 30 + [0.0] * 10, input_tokens=200, output_tokens=5)
            + _rows("gpt-4.1-nano", "mmlu-physics", [1.0] * 5 + [0.0] * 35, input_tokens=200, output_tokens=5))
    cal = calibrate(frame(rows), count_tokens=False, files=["physics.csv"])
    out = cal.write(tmp_path / "sub" / "profiles.yaml")
    cat = load_catalog(out)
    assert len(cat.offerings) == len(load_catalog().offerings)  # extends: every base model is still there
    mini = cat.get("gpt-4.1-mini")
    assert mini.quality["mmlu-physics"] == pytest.approx(cal.profiles["gpt-4.1-mini"]["quality"]["mmlu-physics"])
    assert mini.output_tokens["mmlu-physics"] == 5
    tasks = tasks_from_records([{"id": "q1", "type": "mmlu-physics", "prompt": "F = ?", "input_tokens": 200}])
    plan = make_plan(tasks, cat, goal="maximize_quality", models=["gpt-4.1-mini", "gpt-4.1-nano"])
    assert plan.assignments[0].model == "gpt-4.1-mini"
    code, text, _ = run_cli("catalog", "show", "gpt-4.1-mini", "--catalog", out)
    assert code == 0
    assert "calibrated from 40 outcomes in fixture.csv, 90 % interval" not in text  # the file of each row
    line = next(x for x in text.splitlines() if x.strip().startswith("mmlu-physics"))
    assert "calibrated from 40 outcomes in fixture.csv, 90% interval [" in line


def test_bad_options_are_input_errors():
    f = frame(_rows("gpt-4.1-mini", "qa", [1.0]))
    with pytest.raises(InputError, match="--prior-strength"):
        calibrate(f, prior_strength=-1)
    with pytest.raises(InputError, match="--interval"):
        calibrate(f, interval=1.5)
    with pytest.raises(InputError, match="no outcome records"):
        calibrate(f.iloc[:0])
    assert math.isfinite(calibrate(f, count_tokens=False).table["quality"].iloc[0])
