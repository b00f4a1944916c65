"""Task loading: every format, defaults, and one-line errors for bad records."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from planner.errors import InputError
from planner.tasks import TASK_TYPES, load_tasks

RECORDS = [
    {"id": "a", "type": "summarize", "prompt": "Summarize this.", "complexity": "low"},
    {"id": "b", "type": "code", "messages": [{"role": "user", "content": "Write fib."}],
     "input_tokens": 12, "capabilities": ["json", "tools"], "priority": 2},
]


def write(tmp_path, fmt):
    p = tmp_path / f"tasks.{fmt}"
    if fmt == "yaml":
        import yaml
        p.write_text(yaml.safe_dump(RECORDS))
    elif fmt == "json":
        p.write_text(json.dumps({"tasks": RECORDS, "defaults": {"max_latency_s": 30}}))
    elif fmt == "jsonl":
        p.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    else:
        rows = [{**r, "messages": json.dumps(r["messages"]) if "messages" in r else None,
                 "capabilities": ",".join(r.get("capabilities", []))} for r in RECORDS]
        df = pd.DataFrame(rows)
        df.to_csv(p, index=False) if fmt == "csv" else df.to_parquet(p, index=False)
    return p


@pytest.mark.parametrize("fmt", ["yaml", "json", "jsonl", "csv", "parquet"])
def test_every_format_loads_the_same_tasks(tmp_path, fmt):
    tasks = load_tasks(write(tmp_path, fmt))
    assert [t.id for t in tasks] == ["a", "b"]
    a, b = tasks
    assert a.complexity == 0.2 and a.chat_messages == [{"role": "user", "content": "Summarize this."}]
    assert b.messages[0]["content"] == "Write fib." and b.input_tokens == 12
    assert set(b.capabilities) == {"json", "tools"} and b.priority == 2
    assert a.output_tokens == TASK_TYPES["summarize"][0]
    if fmt == "json":  # the mapping form applies defaults
        assert a.max_latency_s == 30 and b.max_latency_s == 30


@pytest.mark.parametrize("content, fmt, expected", [
    ("- id: a\n  type: summarize\n  prompt: x\n  colour: red\n", "yaml", "record 0 (id 'a'), line 4: unknown field 'colour'"),
    ("- id: a\n  type: '  '\n  prompt: x\n", "yaml", "line 2: field type is required"),
    ("- id: a\n  type: code\n", "yaml", "record 0 (id 'a'), line 1: expected exactly one of prompt or messages"),
    ("- id: a\n  type: code\n  prompt: [x\n", "yaml", "malformed YAML"),
    ('[{"id": "a", "type": "code", "prompt": "x",}]', "json", "line 1, column"),
    ('{"id": "a", "type": "code", "prompt": "x"}\n{"id": ', "jsonl", "line 2"),
    ('id,type,prompt\na,code,"x\n', "csv", "malformed CSV"),
    ("- id: a\n  type: code\n  prompt: x\n  complexity: extreme\n", "yaml", "field complexity: expected low, medium, high"),
    ("- id: a\n  type: code\n  prompt: x\n  max_cost_usd: -1\n", "yaml", "field max_cost_usd"),
    ("- id: a\n  type: code\n  prompt: x\n- id: a\n  type: code\n  prompt: y\n", "yaml", "record 1 (id 'a'), line 4: field id: duplicate id"),
    ("", "yaml", "empty file"),
])
def test_bad_input_is_one_line_naming_file_record_and_field(tmp_path, content, fmt, expected):
    p = tmp_path / f"bad.{fmt}"
    p.write_text(content)
    with pytest.raises(InputError) as exc:
        load_tasks(p)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(p)) and expected in msg, msg


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_tasks(tmp_path / "nope.yaml")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(InputError, match="unknown task file type"):
        load_tasks(tmp_path / "t.txt")
