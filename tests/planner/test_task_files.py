"""Task files a new user writes: encodings, BOMs, non-finite numbers, zero output, empty messages."""

from __future__ import annotations

import json

import pytest

from planner.errors import InputError
from planner.tasks import load_tasks

REC = {"id": "a", "type": "chat", "prompt": "hi"}


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".jsonl"])
def test_not_utf8_is_one_line_input_error(tmp_path, suffix):
    path = tmp_path / f"tasks{suffix}"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match=r"tasks\.\w+: line 1: not UTF-8 text"):
        load_tasks(path)


@pytest.mark.parametrize("suffix,body", [
    (".json", json.dumps([REC])),
    (".jsonl", json.dumps(REC) + "\n"),
    (".yaml", "- {id: a, type: chat, prompt: hi}\n"),
    (".csv", "id,type,prompt\na,chat,hi\n"),
])
def test_utf8_bom_is_accepted(tmp_path, suffix, body):
    path = tmp_path / f"tasks{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert [t.id for t in load_tasks(path)] == ["a"]


def test_jsonl_keeps_line_separator_inside_strings(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({**REC, "prompt": "one\u2028two"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_tasks(path)[0].prompt == "one\u2028two"


@pytest.mark.parametrize("field,value", [("priority", "Infinity"), ("max_latency_s", "NaN"),
                                         ("max_cost_usd", "Infinity"), ("complexity", "NaN")])
def test_non_finite_numbers_are_rejected(tmp_path, field, value):
    path = tmp_path / "tasks.json"
    path.write_text(f'[{{"id": "a", "type": "chat", "prompt": "hi", "{field}": {value}}}]')
    with pytest.raises(InputError, match=field):
        load_tasks(path)


def test_csv_inf_is_rejected_but_empty_cell_is_not_given(tmp_path):
    path = tmp_path / "tasks.csv"
    path.write_text("id,type,prompt,priority\na,chat,hi,\nb,chat,ho,inf\n")
    with pytest.raises(InputError, match=r"record 1 \(id 'b'\): field priority: .*finite"):
        load_tasks(path)
    path.write_text("id,type,prompt,priority\na,chat,hi,\n")
    assert load_tasks(path)[0].priority == 1.0


def test_zero_expected_output_is_kept(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{**REC, "type": "classification", "expected_output_tokens": 0}]))
    assert load_tasks(path)[0].output_tokens == 0


def test_empty_messages_are_rejected(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"id": "a", "type": "chat", "messages": []}]))
    with pytest.raises(InputError, match="at least one message"):
        load_tasks(path)


def test_cli_infinite_priority_exit_2(run_cli, tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text('[{"id": "a", "type": "chat", "prompt": "hi", "priority": Infinity}]')
    code, _, err = run_cli("solve", path, "-o", "-")
    assert code == 2 and "Traceback" not in err and "priority" in err
