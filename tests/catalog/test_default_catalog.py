"""The default catalog has what people reach for first (Claude direct from Anthropic with its
batch and cache prices, Claude Haiku, OpenAI's 4o-mini generation), every number with its
source; the catalog is what its generator makes; the docs count it right."""

from __future__ import annotations

import re

import pytest

from planner import pricing
from planner.catalog import load_catalog, short_name
from tests.conftest import ROOT

SOURCES = ROOT.parent / "shared" / "data" / "catalog-sources"
ADDED = ("anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5", "gpt-4o-mini")


@pytest.mark.parametrize("model", ADDED)
def test_added_models_are_priced_by_litellms_map_with_batch_and_cache_prices(model):
    cat = load_catalog()
    realtime, batch = cat.get(model), cat.get(model + "@batch")
    entry = pricing.lookup(model)
    assert entry is not None and realtime.price_source == pricing.price_source(entry.key)
    assert (realtime.input_cost_per_token, realtime.output_cost_per_token) == (
        entry.input_cost_per_token, entry.output_cost_per_token)
    assert batch.input_cost_per_token == entry.input_cost_per_token_batches
    assert batch.output_cost_per_token == entry.output_cost_per_token_batches
    assert entry.cache_read_input_token_cost is not None
    assert realtime.cache_read_cost_per_token == entry.cache_read_input_token_cost
    assert "cache_" in realtime.cache_price_source
    for key in ("ttft_s", "output_tokens_per_s", "quality"):
        assert realtime.sources[key].startswith("aa: "), (key, realtime.sources[key])
    if model.startswith("anthropic/"):
        assert realtime.provider == "anthropic" and realtime.vendor == "Anthropic"
        assert "stands in" in realtime.sources["quality"]  # the AA row is a predecessor's: said so


def test_haiku_is_the_cheap_claude_and_short_names_stay_unique():
    cat = load_catalog()
    claude = [o for o in cat.offerings if o.vendor == "Anthropic" and o.mode == "realtime"]
    haiku = cat.get("claude-haiku-4-5")
    assert haiku.input_cost_per_token == min(o.input_cost_per_token for o in claude)
    shorts = [short_name(o.name) for o in cat.offerings]
    assert len(shorts) == len(set(shorts))


def test_catalog_show_prints_the_cache_prices_with_their_source(run_cli):
    code, out, _ = run_cli("catalog", "show", "claude-sonnet-4-5")
    assert code == 0
    line = next(x for x in out.splitlines() if x.strip().startswith("prompt cache"))
    assert "read $0.3 / write $3.75 per million tokens" in line and "prices_and_context_window" in line


@pytest.mark.skipif(not SOURCES.exists(), reason="needs ../shared/data/catalog-sources")
def test_default_yaml_is_what_the_generator_makes():
    import importlib

    build = importlib.import_module("catalogs.build_default").build
    assert build(SOURCES) == (ROOT / "catalogs" / "default.yaml").read_text()


def test_docs_count_the_catalog_right():
    cat = load_catalog()
    vendors = {p.vendor for p in cat.profiles}
    providers = {o.provider for o in cat.offerings}
    page = (ROOT / "docs" / "concepts" / "catalog.md").read_text()
    m = re.search(r"(\d+) models from (\d+) vendors .*? over (\d+) litellm\s+providers", page, re.S)
    assert m, "docs/concepts/catalog.md: the default catalog's counts"
    assert tuple(map(int, m.groups())) == (len(cat.profiles), len(vendors), len(providers))
    readme = (ROOT / "README.md").read_text()
    assert f"`default.yaml` ({len(cat.profiles)} models, {len(vendors)} vendors)" in readme
