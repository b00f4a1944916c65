"""Outcome history readers: long tables in every format, --map, RouterBench's wide layout,
run folders, one-line errors for bad input, the summary, and the real RouterBench files."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner import history as history_module
from planner.errors import InputError
from planner.history import HISTORY_COLUMNS, History, parse_map, read_history

ROUTERBENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "routerbench"

LONG = [
    {"task_id": "q1", "category": "math", "model": "gpt-x", "score": 1, "cost_usd": 0.002,
     "input_tokens": 120, "output_tokens": 40, "latency_s": 1.5, "prompt": "2+2?", "response": "4"},
    {"task_id": "q1", "category": "math", "model": "small", "score": 0.25, "cost_usd": 0.0001,
     "input_tokens": 120, "output_tokens": 55, "latency_s": 0.4, "prompt": "2+2?", "response": "5"},
    {"task_id": "q2", "category": "code", "model": "gpt-x", "score": None, "cost_usd": 0.003,
     "input_tokens": 300, "output_tokens": 200, "latency_s": 3.0, "prompt": "fib", "response": ""},
    {"task_id": "q2", "category": "code", "model": "small", "score": 0, "cost_usd": None,
     "input_tokens": None, "output_tokens": None, "latency_s": None, "prompt": "fib", "response": None},
]


def write_long(tmp_path: Path, fmt: str, records=LONG, name: str = "outcomes") -> Path:
    df = pd.DataFrame(records)
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps({k: v for k, v in r.items() if v is not None}) for r in records) + "\n")
    elif fmt == "json":
        path.write_text(json.dumps(records))
    else:
        df.to_parquet(path, index=False)
    return path


def one_line_error(paths, mapping=None) -> str:
    with pytest.raises(InputError) as exc:
        read_history(paths, mapping)
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ------------------------------------------------------------------------ long tables
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_long_table_every_format(tmp_path, fmt):
    path = write_long(tmp_path, fmt)
    h = read_history([path])
    f = h.frame
    assert tuple(f.columns) == HISTORY_COLUMNS
    assert f["task_id"].tolist() == ["q1", "q1", "q2"]  # the empty score is skipped, not scored 0
    assert f["model"].tolist() == ["gpt-x", "small", "small"]
    assert f["category"].tolist() == ["math", "math", "code"]
    assert f["score"].tolist() == [1.0, 0.25, 0.0]
    assert f["cost_usd"].iloc[0] == pytest.approx(0.002) and math.isnan(f["cost_usd"].iloc[2])
    assert f["input_tokens"].tolist()[:2] == [120.0, 120.0] and math.isnan(f["output_tokens"].iloc[2])
    assert f["prompt"].tolist() == ["2+2?", "2+2?", "fib"]
    assert f["response"].iloc[2] is None
    assert set(f["source"]) == {path.name}
    for col in ("score", "cost_usd", "input_tokens", "output_tokens", "latency_s"):
        assert f[col].dtype == np.float64
    for col in ("task_id", "category", "model", "source"):
        assert pd.api.types.is_string_dtype(f[col])
    assert f["prompt"].dtype == object
    (summary,) = h.files
    assert (summary.layout, summary.records, summary.skipped) == ("long", 3, {"empty score": 1})
    assert summary.skipped_by_model == {"gpt-x": 1}


def test_minimal_long_table_fills_what_is_not_recorded(tmp_path):
    path = tmp_path / "min.csv"
    path.write_text("task_id,model,score\n1,a,true\n2,a,False\n3,b,0.5\n")
    h = read_history([path])
    f = h.frame
    assert f["score"].tolist() == [1.0, 0.0, 0.5]
    assert f["category"].tolist() == ["default"] * 3  # no category column: documented default
    assert f["cost_usd"].isna().all() and f["latency_s"].isna().all()
    assert f["prompt"].tolist() == [None] * 3
    assert "no category column" in h.summary()
    assert "reasoning_tokens" not in f.columns


def test_text_cells_stay_text(tmp_path):
    """Ids keep their zeros, 'NA' is an id and 'None' a model name, whole numbers from JSON are
    not '7.0', blanks around labels go."""
    csv = tmp_path / "ids.csv"
    csv.write_text("task_id,model,score,category\n007,None,1,  qa \nNA, m ,0,qa\n")
    f = read_history([csv]).frame
    assert f["task_id"].tolist() == ["007", "NA"] and f["model"].tolist() == ["None", "m"]
    assert f["category"].tolist() == ["qa", "qa"]
    jl = tmp_path / "ids.jsonl"
    jl.write_text('{"task_id": 7, "model": "m", "score": 1}\n{"task_id": 8, "model": "m", "score": null}\n')
    assert read_history([jl]).frame["task_id"].tolist() == ["7"]


def test_optional_columns_kept_when_recorded(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("task_id,model,score,reasoning_tokens,ttft_s,extra\nt,m,1,300,0.8,x\n")
    b = tmp_path / "b.csv"
    b.write_text("task_id,model,score\nu,m,0\n")
    h = read_history([a, b])
    assert list(h.frame.columns) == [*HISTORY_COLUMNS, "reasoning_tokens", "ttft_s"]
    assert h.frame["reasoning_tokens"].iloc[0] == 300 and math.isnan(h.frame["ttft_s"].iloc[1])
    assert "ignored columns: extra" in h.summary()


def test_source_per_row_and_compressed_csv(tmp_path):
    path = tmp_path / "logs.csv.gz"
    pd.DataFrame({"task_id": ["a", "b"], "model": ["m", "m"], "score": [1, 0],
                  "source": ["prod-eu", None]}).to_csv(path, index=False)
    assert read_history([path]).frame["source"].tolist() == ["prod-eu", "logs.csv.gz"]


def test_long_round_trip_of_generated_rows(tmp_path):
    rng = np.random.default_rng(3)
    n = 2_000
    df = pd.DataFrame({
        "task_id": [f"t{i // 4}" for i in range(n)], "category": rng.choice(["a", "b", "c"], n),
        "model": [f"m{i % 4}" for i in range(n)], "score": rng.random(n).round(4),
        "cost_usd": rng.random(n) / 100, "input_tokens": rng.integers(0, 9000, n),
        "output_tokens": rng.integers(0, 900, n), "latency_s": rng.random(n) * 9,
    })
    df.loc[rng.random(n) < 0.1, "score"] = np.nan
    for fmt in ("csv", "parquet"):
        path = tmp_path / f"gen.{fmt}"
        df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
        h = read_history([path])
        kept = df[df["score"].notna()].reset_index(drop=True)
        assert len(h.frame) == len(kept) and h.files[0].skipped["empty score"] == df["score"].isna().sum()
        for col in ("score", "cost_usd", "input_tokens", "output_tokens", "latency_s"):
            np.testing.assert_allclose(h.frame[col].to_numpy(), kept[col].to_numpy(dtype=float))
        assert h.frame["task_id"].tolist() == kept["task_id"].tolist()


# ------------------------------------------------------------------------ --map
def test_map_renames_columns(tmp_path):
    path = tmp_path / "evals.csv"
    path.write_text("id,llm,correct,eval,category\nx,m1,1,mmlu-law,ignored\ny,m2,0,mmlu-art,ignored\n")
    mapping = parse_map(["id=task_id", "llm=model", "correct=score", "eval=category"])
    assert mapping == {"id": "task_id", "llm": "model", "correct": "score", "eval": "category"}
    f = read_history([path], mapping).frame
    assert f["category"].tolist() == ["mmlu-law", "mmlu-art"]  # the mapped column wins
    assert f["task_id"].tolist() == ["x", "y"] and f["score"].tolist() == [1.0, 0.0]


def test_map_error_names_the_mapped_column(tmp_path):
    path = tmp_path / "evals.csv"
    path.write_text("task_id,model,correct\nx,m,1\ny,m,2\n")
    msg = one_line_error([path], parse_map(["correct=score"]))
    assert msg == (f"{path}: row 2 (line 3), column correct (mapped to score): "
                   f"expected a number in [0, 1] or true/false (got 2)")


@pytest.mark.parametrize("items, expected", [
    (["correct"], "--map: expected column=field, got 'correct'"),
    (["=score"], "--map: expected column=field"),
    (["correct=grade"], "--map correct=grade: unknown field 'grade'; expected one of task_id"),
    (["a=score", "b=score"], "--map: columns 'a' and 'b' both mapped to score"),
    (["a=score", "a=model"], "--map: column 'a' mapped twice"),
])
def test_parse_map_errors(items, expected):
    with pytest.raises(InputError) as exc:
        parse_map(items)
    assert str(exc.value).startswith(expected) and "\n" not in str(exc.value)


def test_map_of_a_column_no_file_has(tmp_path):
    path = write_long(tmp_path, "csv")
    assert one_line_error([path], {"corect": "score"}) == "--map corect=score: no history file has a column 'corect'"


# ------------------------------------------------------------------------ RouterBench layout
def routerbench_fixture(tmp_path: Path) -> Path:
    """Three models (names with '/' and '.'), an unnamed index, list-string prompts and
    responses, empty score cells, and the oracle column that is not a model."""
    models = ["org/model-a", "model.b", "c"]
    rows = [
        {"sample_id": "s1", "prompt": repr(["What is 'x'?\nA) 1\nB) 2"]), "eval_name": "arc",
         "scores": [1.0, 0.0, None], "costs": [0.001, 0.0002, 0.003], "responses": ["['A']", "['B']", "['A']"]},
        {"sample_id": "s2", "prompt": repr(["turn one", "turn two"]), "eval_name": "arc",
         "scores": [None, None, 1.0], "costs": [0.001, None, 0.003], "responses": ["['A']", None, '["say \\"hi\\""]']},
        {"sample_id": "s3", "prompt": "plain text, not a list", "eval_name": "mbpp",
         "scores": [0.0, 1.0, 1.0], "costs": [0.001, 0.0002, 0.003], "responses": ["['def f(): pass']", "[broken", "ok"]},
    ]
    table = {"": [10, 11, 12], "sample_id": [r["sample_id"] for r in rows], "prompt": [r["prompt"] for r in rows],
             "eval_name": [r["eval_name"] for r in rows]}
    for j, m in enumerate(models):
        table[m] = [r["scores"][j] for r in rows]
    for j, m in enumerate(models):
        table[f"{m}|model_response"] = [r["responses"][j] for r in rows]
    for j, m in enumerate(models):
        table[f"{m}|total_cost"] = [r["costs"][j] for r in rows]
    table["oracle_model_to_route_to"] = ["org/model-a", "c", "model.b"]
    path = tmp_path / "rb_train.csv"
    pd.DataFrame(table).to_csv(path, index=False)
    return path


def test_routerbench_layout(tmp_path):
    path = routerbench_fixture(tmp_path)
    h = read_history([path])
    f = h.frame
    assert h.files[0].layout == "routerbench"
    assert len(f) == 9 - 3 and h.files[0].skipped == {"empty score": 3}
    assert h.files[0].skipped_by_model == {"org/model-a": 1, "model.b": 1, "c": 1}
    assert set(h.models) == {"org/model-a", "model.b", "c"}  # the oracle column is not a model
    assert list(zip(f["task_id"], f["model"], f["score"], strict=True)) == [
        ("s1", "org/model-a", 1.0), ("s1", "model.b", 0.0), ("s2", "c", 1.0),
        ("s3", "org/model-a", 0.0), ("s3", "model.b", 1.0), ("s3", "c", 1.0)]
    assert f["category"].tolist() == ["arc", "arc", "arc", "mbpp", "mbpp", "mbpp"]
    assert f["prompt"].iloc[0] == "What is 'x'?\nA) 1\nB) 2"
    assert f["prompt"].iloc[2] == "turn one\nturn two"
    assert f["prompt"].iloc[3] == "plain text, not a list"
    assert f["response"].tolist() == ["A", "B", 'say "hi"', "def f(): pass", "[broken", "ok"]
    assert f["cost_usd"].tolist() == pytest.approx([0.001, 0.0002, 0.003, 0.001, 0.0002, 0.003])
    assert f["input_tokens"].isna().all()
    assert set(f["source"]) == {"rb_train.csv"}
    text = h.summary()
    assert "6 records read from 1 file, 3 skipped (empty score: 3)" in text
    assert "rb_train.csv: routerbench, 6 records" in text and "oracle_model_to_route_to" in text
    assert "3 models:" in text and "2 categories: arc (3), mbpp (3)" in text


def test_routerbench_extra_per_model_fields_and_parquet(tmp_path):
    df = pd.DataFrame({"sample_id": [1, 2], "m1": [1, 0], "m1|total_cost": [0.1, 0.2],
                       "m1|output_tokens": [10, 20], "m2": [True, None], "m2|latency_s": [0.5, 0.6],
                       "input_tokens": [100, 200]})
    path = tmp_path / "wide.parquet"
    df.to_parquet(path, index=False)
    f = read_history([path]).frame
    assert f["task_id"].tolist() == ["1", "1", "2"] and f["model"].tolist() == ["m1", "m2", "m1"]
    assert f["score"].tolist() == [1.0, 1.0, 0.0]
    assert f["input_tokens"].tolist() == [100, 100, 200]  # shared by the row's models
    assert f["output_tokens"].tolist()[::2] == [10, 20] and math.isnan(f["output_tokens"].iloc[1])
    assert f["latency_s"].iloc[1] == 0.5 and f["category"].tolist() == ["default"] * 3


def test_summary_counts_over_several_files(tmp_path):
    a = routerbench_fixture(tmp_path)
    b = write_long(tmp_path, "jsonl")
    h = read_history([a, b])
    assert isinstance(h, History) and len(h.frame) == 6 + 3
    assert [s.layout for s in h.files] == ["routerbench", "long"]
    first = h.summary().splitlines()[0]
    assert first == "9 records read from 2 files, 4 skipped (empty score: 4)"
    assert "empty scores by model: " in h.summary()


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("body, expected", [
    ("task_id,model,score\na,m,1\nb,m,1.5\n", "row 2 (line 3), column score: expected a number in [0, 1] or true/false (got 1.5)"),
    ("task_id,model,score\na,m,yes\n", "row 1 (line 2), column score: expected a number in [0, 1] or true/false (got 'yes')"),
    ("task_id,model,score\na,m,-0.1\n", "row 1 (line 2), column score: expected a number in [0, 1]"),
    ("task_id,model,score,cost_usd\na,m,1,0.1\nb,m,1,-2\n", "row 2 (line 3), column cost_usd: expected a number >= 0 (got -2.0)"),
    ("task_id,model,score,output_tokens\na,m,1,-5\n", "row 1 (line 2), column output_tokens: expected a number >= 0 (got -5)"),
    ("task_id,model,score,latency_s\na,m,1,inf\n", "row 1 (line 2), column latency_s: expected a number >= 0 (got inf)"),
    ("task_id,model,score\na,m,1\nb,,1\n", "row 2 (line 3), column model: model is missing"),
    ("task_id,model,score\n ,m,1\n", "row 1 (line 2), column task_id: task id is missing"),
    # a prompt over three lines: the bad row is data row 2 but starts on line 5
    ('task_id,model,score,prompt\na,m,1,"one\ntwo\nthree"\nb,m,2,x\n', "row 2 (line 5), column score"),
])
def test_bad_csv_rows_are_one_line(tmp_path, body, expected):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    assert one_line_error([path]).startswith(f"{path}: {expected}")


def test_bad_rows_in_jsonl_and_parquet(tmp_path):
    jl = tmp_path / "bad.jsonl"
    jl.write_text('{"task_id": "a", "model": "m", "score": 1}\n\n{"task_id": "b", "model": "m", "score": 7}\n')
    assert one_line_error([jl]) == f"{jl}: row 2 (line 3), column score: expected a number in [0, 1] or true/false (got 7)"
    pq = tmp_path / "bad.parquet"
    pd.DataFrame({"task_id": ["a", "b"], "model": ["m", None], "score": [1, 0]}).to_parquet(pq)
    assert one_line_error([pq]) == f"{pq}: row 2, column model: model is missing"


def test_bad_cell_in_routerbench_layout(tmp_path):
    path = routerbench_fixture(tmp_path)
    df = pd.read_csv(path)
    df.loc[2, "model.b|total_cost"] = -1
    df.to_csv(path, index=False)
    msg = one_line_error([path])
    assert msg.startswith(f"{path}: row 3 (line ") and msg.endswith("column model.b|total_cost: expected a number >= 0 (got -1.0)")
    df.loc[2, "model.b|total_cost"] = 0.1
    df.loc[0, "c"] = 3
    df.to_csv(path, index=False)
    assert one_line_error([path]).endswith("row 1 (line 2), column c: expected a number in [0, 1] or true/false (got 3.0)")


@pytest.mark.parametrize("name, content, expected", [
    ("x.csv", "a,b\n1,2\n", "missing columns task_id, model, score: expected a long table (task_id, model, score"),
    ("x.csv", "task_id,model,cost_usd\n1,2,3\n", "missing column score: expected a long table"),
    ("x.csv", "", "empty file: expected a CSV header and outcome rows"),
    ("x.csv", 'task_id,model,score\na,m,"1\n', "malformed CSV"),
    ("x.jsonl", '{"task_id": "a", "model": "m", "score": 1}\n{"task_id": \n', "line 2, column 13: malformed JSON"),
    ("x.jsonl", '{"task_id": "a", "model": "m", "score": 1}\n[1, 2]\n', "line 2: expected a JSON object"),
    ("x.json", '{"task_id": "a"}', "expected a JSON list of outcome records, got dict"),
    ("x.json", '[{"task_id": "a",}]', "line 1, column 18: malformed JSON"),
    ("x.parquet", "not parquet at all", "malformed Parquet"),
    ("x.xlsx", "", "unknown history file type '.xlsx'"),
    ("x.csv", "sample_id,m1|total_cost\na,0.1\n", "missing columns task_id, model, score"),
    ("x.csv", "task_id,model,score\n", "no outcome records in"),
    ("x.csv", "task_id,model,score\na,m,\n", "no outcome records in {path} (1 skipped (empty score: 1))"),
])
def test_bad_files_are_one_line(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    msg = one_line_error([path])
    assert expected.format(path=path) in msg and str(path) in msg


def test_missing_file_folder_without_ledger_and_no_input(tmp_path):
    assert one_line_error([tmp_path / "nope.csv"]) == f"{tmp_path / 'nope.csv'}: no such file"
    assert "not a run folder: expected ledger.sqlite" in one_line_error([tmp_path])
    assert "no history given" in one_line_error([])


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("task_id,model,score\nt\xe9,m,1\n".encode("latin-1"))
    assert "not UTF-8 text" in one_line_error([path])


# ------------------------------------------------------------------------ run folders
def make_ledger(folder: Path) -> Path:
    folder.mkdir()
    sqlite3.connect(folder / "ledger.sqlite").close()
    return folder


def test_run_folder_goes_through_the_graded_run_reader(tmp_path, monkeypatch):
    """A run folder's outcomes (from the executor's reader) get the long table's checks."""
    run = make_ledger(tmp_path / "run1")
    rows = pd.DataFrame({"task_id": ["a", "b"], "category": ["qa", "qa"], "model": ["m", "m"],
                         "score": [1.0, None], "cost_usd": [0.01, 0.02], "input_tokens": [5, 6],
                         "output_tokens": [7, 8], "latency_s": [0.1, 0.2]})
    monkeypatch.setattr(history_module, "_run_outcomes_reader", lambda: lambda path: rows)
    h = read_history([run])
    assert h.files[0].layout == "run" and h.files[0].skipped == {"empty score": 1}
    assert h.frame["source"].tolist() == ["run1"] and h.frame["score"].tolist() == [1.0]
    bad = rows.assign(cost_usd=[-1.0, 0.0])
    monkeypatch.setattr(history_module, "_run_outcomes_reader", lambda: lambda path: bad)
    assert one_line_error([run]) == f"{run}: row 1, column cost_usd: expected a number >= 0 (got -1.0)"


def test_run_folder_without_the_graded_run_reader(tmp_path):
    if history_module._run_outcomes_reader() is not None:
        pytest.skip("this build reads graded runs")
    run = make_ledger(tmp_path / "run1")
    assert "needs graded runs (planner.checks.outcomes.run_outcomes)" in one_line_error([run])


# ------------------------------------------------------------------------ the real data
@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="../shared/data/routerbench is not here")
def test_real_routerbench_files():
    files = sorted(ROUTERBENCH.glob("*.csv"))
    h = read_history(files)
    raw = [pd.read_csv(p) for p in files]
    n_prompts = sum(len(df) for df in raw)
    models = [c for c in raw[0].columns if f"{c}|total_cost" in raw[0].columns]
    empty = sum(int(df[models].isna().sum().sum()) for df in raw)
    assert n_prompts == 2_225 and len(models) == 11
    assert len(h.frame) == n_prompts * 11 - empty
    assert sum(s.skipped_total for s in h.files) == empty > 0
    assert set(h.models) == set(models) and "oracle_model_to_route_to" not in h.models
    assert set(h.categories) == {"arc-challenge", "mbpp", "winogrande"}
    assert set(h.frame["score"].unique()) <= {0.0, 1.0}
    assert (h.frame["cost_usd"] > 0).all()
    assert not h.frame["prompt"].str.startswith("['").any()
    assert h.frame["prompt"].notna().all() and h.frame["response"].notna().all()
    assert f"{len(h.frame):,} records read from 3 files, {empty} skipped (empty score: {empty})" in h.summary()


def test_a_graded_simulated_run_is_history(tmp_path):
    """End to end with the executor's graded-run reader (skipped where this build lacks it)."""
    run_outcomes = history_module._run_outcomes_reader()
    if run_outcomes is None:
        pytest.skip("this build has no graded runs (planner.checks.outcomes)")
    from planner.executor import RunOptions, run_plan
    from tests.executor.plans import make_plan

    out = tmp_path / "graded"
    plan = make_plan(12, check=lambda i: {"kind": "number", "answer": i} if i % 3 else None)
    run_plan(plan, out, RunOptions(mode="simulate", progress=False, seed=4))
    h = read_history([out, out.parent / "graded"])  # a run folder, twice: read once (its run id)
    expected = run_outcomes(out)
    assert len(expected) == 8 and len(h.frame) == 8
    assert [s.layout for s in h.files] == ["run", "run"] and [s.records for s in h.files] == [8, 0]
    assert "already read from" in h.files[1].notes[0] and "not counted twice" in h.summary()
    assert h.frame["run_id"].nunique() == 1
    first = h.frame.iloc[:8].reset_index(drop=True)
    assert first["task_id"].tolist() == expected["task_id"].tolist()
    assert first["score"].tolist() == expected["score"].astype(float).tolist()
    np.testing.assert_allclose(first["cost_usd"], expected["cost_usd"].astype(float))
    assert first["category"].tolist() == expected["category"].tolist()
    assert "repeat a (task_id, model) pair" not in h.summary()
