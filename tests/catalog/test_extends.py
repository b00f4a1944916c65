"""A catalog that extends another inherits its defaults; every value credits its real source."""

from __future__ import annotations

import textwrap
from pathlib import Path

from planner.catalog import load_catalog

LLAMA = "bedrock/meta.llama3-1-8b-instruct-v1:0"


# ---------------------------------------------------------------- 2. defaults and sources through extends
def _user_catalog(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "mycat.yaml"
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


NEW_MODEL = """\
    extends: default
    models:
      - id: ollama/llama3.2
        ttft_s: 0.3
        output_tokens_per_s: 50
        context_window: 8192
        max_output_tokens: 2048
        input_cost_per_token: 0
        output_cost_per_token: 0
        quality: {default: 0.4}
"""


def test_new_model_inherits_extended_defaults(tmp_path: Path) -> None:
    o = load_catalog(_user_catalog(tmp_path, NEW_MODEL)).get("ollama/llama3.2")
    assert (o.concurrency, o.rpm, o.tpm) == (16, 500, 400000)
    assert o.sources["concurrency"] == "limits"


def test_own_defaults_override_extended_ones(tmp_path: Path) -> None:
    body = NEW_MODEL.replace("    models:\n", "    defaults: {concurrency: 4, sources: {concurrency: ours}}\n    models:\n")
    cat = load_catalog(_user_catalog(tmp_path, body))
    o = cat.get("ollama/llama3.2")
    assert (o.concurrency, o.rpm, o.sources["concurrency"]) == (4, 500, "ours")
    assert cat.get("gpt-4.1").concurrency == 4  # a file's defaults apply to every profile


def test_user_values_credited_to_user_file(tmp_path: Path, run_cli) -> None:
    path = _user_catalog(tmp_path, NEW_MODEL)
    o = load_catalog(path).get("ollama/llama3.2")
    assert str(path) in o.sources["context_window"] and str(path) in o.sources["ttft_s"]
    code, out, err = run_cli("catalog", "show", "ollama/llama3.2", "--catalog", path)
    assert code == 0, err
    ctx_line = next(line for line in out.splitlines() if line.strip().startswith("context"))
    assert "litellm" not in ctx_line and str(path) in ctx_line
    assert "concurrency 16" in out


def test_overridden_field_drops_stale_source(tmp_path: Path) -> None:
    body = "extends: default\nmodels:\n  - id: gpt-4.1\n    concurrency: 64\n"
    o = load_catalog(_user_catalog(tmp_path, body)).get("gpt-4.1")
    assert o.concurrency == 64 and "mycat.yaml" in o.sources["concurrency"]


def test_context_from_price_map_credited_to_it() -> None:
    o = load_catalog().get("gpt-4.1")
    assert "litellm price map" in o.sources["context_window"]

