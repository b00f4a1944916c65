"""litellm's bundled price map, read as JSON straight from the installed package files.

Importing litellm costs seconds (and tries the network for a fresher map); ``solve`` only
needs the numbers, so this module locates ``model_prices_and_context_window_backup.json``
with ``importlib.util.find_spec`` and parses it, once per process.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PRICE_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class PriceEntry:
    """What the price map says about one model id (USD per token; None where absent)."""

    key: str
    provider: str
    input_cost_per_token: float
    output_cost_per_token: float
    input_cost_per_token_batches: float | None
    output_cost_per_token_batches: float | None
    max_input_tokens: int | None
    max_output_tokens: int | None
    supports_vision: bool
    supports_function_calling: bool
    supports_response_schema: bool
    cache_read_input_token_cost: float | None = None  # prompt caching, where the provider has it
    cache_creation_input_token_cost: float | None = None
    cache_read_input_token_cost_batches: float | None = None
    cache_creation_input_token_cost_batches: float | None = None
    prompt_cache_min_tokens: int | None = None


@cache
def price_map_path() -> Path:
    """Where the installed litellm keeps its bundled price map (litellm is not imported)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("litellm is not installed: no bundled price map")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / PRICE_FILE
        if p.is_file():
            return p
    raise FileNotFoundError(f"litellm is installed but {PRICE_FILE} is missing")


@cache
def price_map() -> dict[str, dict[str, Any]]:
    """The raw price map: litellm model id -> its entry."""
    data = json.loads(price_map_path().read_text())
    return {k: v for k, v in data.items() if isinstance(v, dict)}


@cache
def litellm_version() -> str:
    try:
        return importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def price_source(key: str) -> str:
    return f"litellm {litellm_version()} {PRICE_FILE}[{key!r}]"


def lookup(model: str) -> PriceEntry | None:
    """The entry for a litellm model id, trying ``provider/rest`` then ``rest`` as litellm does."""
    pm = price_map()
    key = model if model in pm else None
    if key is None and "/" in model:
        rest = model.split("/", 1)[1]
        key = rest if rest in pm else None
    if key is None:
        return None
    e = pm[key]
    if e.get("input_cost_per_token") is None or e.get("output_cost_per_token") is None:
        return None

    def opt_int(name: str) -> int | None:
        v = e.get(name)
        return int(v) if isinstance(v, int | float) else None

    def opt_float(name: str) -> float | None:
        v = e.get(name)
        return float(v) if isinstance(v, int | float) else None

    return PriceEntry(
        key=key,
        provider=str(e.get("litellm_provider", "unknown")),
        input_cost_per_token=float(e["input_cost_per_token"]),
        output_cost_per_token=float(e["output_cost_per_token"]),
        input_cost_per_token_batches=opt_float("input_cost_per_token_batches"),
        output_cost_per_token_batches=opt_float("output_cost_per_token_batches"),
        max_input_tokens=opt_int("max_input_tokens"),
        max_output_tokens=opt_int("max_output_tokens"),
        supports_vision=bool(e.get("supports_vision", False)),
        supports_function_calling=bool(e.get("supports_function_calling", False)),
        supports_response_schema=bool(e.get("supports_response_schema", False)),
        cache_read_input_token_cost=opt_float("cache_read_input_token_cost"),
        cache_creation_input_token_cost=opt_float("cache_creation_input_token_cost"),
        cache_read_input_token_cost_batches=opt_float("cache_read_input_token_cost_batches"),
        cache_creation_input_token_cost_batches=opt_float("cache_creation_input_token_cost_batches"),
        prompt_cache_min_tokens=opt_int("prompt_cache_min_tokens"),
    )


def known_chat_models() -> list[str]:
    """Every chat model id with prices, for "did you mean" hints."""
    return [k for k, v in price_map().items() if v.get("mode") == "chat" and v.get("input_cost_per_token") is not None]
