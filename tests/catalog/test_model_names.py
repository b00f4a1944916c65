"""Every model name the tool prints resolves in catalog show, --models and allow lists."""

from __future__ import annotations

import pytest

from planner.catalog import load_catalog
from planner.errors import InputError

LLAMA = "bedrock/meta.llama3-1-8b-instruct-v1:0"


# ---------------------------------------------------------------- 1. every printed name resolves
@pytest.mark.parametrize("name, expected", [
    (LLAMA, LLAMA), ("llama3-1-8b", LLAMA), ("llama3-1-8b@batch", LLAMA + "@batch"),
    (LLAMA + "@batch", LLAMA + "@batch"), ("claude-sonnet-4", "bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0"),
    ("gemini-2.5-flash", "gemini/gemini-2.5-flash"), ("gpt-4.1-mini", "gpt-4.1-mini"),
])
def test_get_accepts_printed_names(name: str, expected: str) -> None:
    assert load_catalog().get(name).name == expected


def test_every_rendered_short_name_resolves() -> None:
    from planner.render import fit_name

    cat = load_catalog()
    for o in cat.offerings:
        assert cat.get(fit_name(o.name, width=200)).name == o.name
        assert cat.get(fit_name(o.name)).name == o.name  # the cut-off form a narrow table prints


def test_catalog_show_short_name(run_cli) -> None:
    code, out, err = run_cli("catalog", "show", "llama3-1-8b")
    assert code == 0, err
    # the short name tables print, then the litellm id
    assert out.startswith("llama3-1-8b  (Meta via bedrock, realtime)\n")
    assert out.splitlines()[1].split() == ["litellm", "id", LLAMA]


def test_catalog_list_prints_short_names(run_cli) -> None:
    code, out, _ = run_cli("catalog", "list")
    assert code == 0 and "llama3-1-8b@batch" in out and "claude-haiku-4-5" in out
    assert "bedrock/" not in out and "anthropic/" not in out


def test_unknown_name_lists_close_matches(run_cli) -> None:
    code, out, err = run_cli("catalog", "show", "llama3-8b")
    assert code == 2
    msg = (out + err).strip()
    assert len(msg.splitlines()) == 1
    assert "did you mean" in msg and "llama3-1-8b" in msg


def test_models_option_accepts_short_names() -> None:
    cat = load_catalog().select(["llama3-1-8b", "gpt-4.1-mini@batch"])
    assert sorted(cat.names) == sorted([LLAMA, LLAMA + "@batch", "gpt-4.1-mini@batch"])
    with pytest.raises(InputError, match="did you mean"):
        load_catalog().select(["llama3-8b"])


def test_allow_models_match_short_names() -> None:
    from planner.formulation import _list_mask
    from planner.tasks import Task

    cat = load_catalog()
    task = Task.model_validate({"id": "t", "type": "qa", "prompt": "hi", "allow_models": ["llama3-1-8b*"]})
    allowed = [o.name for o, out in zip(cat.offerings, _list_mask([task], cat.offerings)[0], strict=True) if not out]
    assert allowed == [LLAMA, LLAMA + "@batch"]

