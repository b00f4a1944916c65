"""Model catalogs: profiles from YAML, priced from litellm's price map, expanded to offerings.

A catalog file has ``models`` (one profile each, keyed by the litellm model id), optional
``defaults`` applied to every profile, and optionally ``extends: default`` (or a path) to
start from another catalog: its profiles are merged by id (fields given here win),
``remove: [ids]`` drops some, and its ``defaults`` are inherited (this file's override them
key by key, and apply to inherited profiles too). Precedence, lowest first: extended
defaults, own defaults, extended profile, own profile. Prices, context window, output limit
and capabilities come from litellm's bundled price map unless the profile sets them. Every
value is credited to the source text its file gives, else to the file that set it.

An *offering* is a model in one serving mode: ``realtime``, plus ``batch`` (named
``<id>@batch``) where the price map has ``*_batches`` prices and the profile allows it.
A realtime price override carries to batch by litellm's batch/realtime ratio (see
:func:`_batch_prices`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from planner import pricing
from planner.errors import InputError
from planner.plan import ModelSnapshot
from planner.tasks import CAPABILITIES, TASK_TYPES, category_label

BATCH_SUFFIX = "@batch"


class ModelProfile(BaseModel):
    """One model as a catalog file describes it; every number may name its source."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="litellm model id, e.g. gpt-4.1-mini or bedrock/us.meta...")
    vendor: str | None = None
    provider: str | None = Field(None, description="default: the id's provider prefix, else the price map's")
    ttft_s: float | None = Field(None, ge=0, description="time to first token; None: no latency data")
    output_tokens_per_s: float | None = Field(None, gt=0, description="None: no latency data")
    reasoning_tokens: int = Field(0, ge=0, description="hidden reasoning tokens per call, billed as output")
    quality: dict[str, float] = Field(description="category label (or 'default') -> score in [0, 1]")
    output_tokens: dict[str, float] = Field(
        default_factory=dict, description="category label -> this model's expected visible output tokens "
                                          "(measured; replaces the task type's default x verbosity)")
    verbosity: float = Field(1.0, gt=0)
    concurrency: int | None = Field(None, gt=0)
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    share_cap: float | None = Field(None, ge=0, le=1)
    batch: bool = True
    batch_window_s: float | None = Field(None, gt=0)
    input_cost_per_token: float | None = Field(None, ge=0)
    output_cost_per_token: float | None = Field(None, ge=0)
    input_cost_per_token_batches: float | None = Field(None, ge=0)
    output_cost_per_token_batches: float | None = Field(None, ge=0)
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    cache_read_input_token_cost: float | None = Field(None, ge=0, description="USD per cached prompt token read")
    cache_creation_input_token_cost: float | None = Field(
        None, ge=0, description="USD per prompt token written to the cache (default: the input price)")
    cache_min_tokens: int | None = Field(None, ge=0, description="shortest prefix the provider caches")
    cache_ttl_s: float | None = Field(None, gt=0, description="how long a written prefix stays readable")
    capabilities: list[Literal["json", "tools", "vision"]] | None = None
    api_base: str | None = None
    api_key_env: str | None = Field(
        None, description="NAME of the environment variable holding the key for api_base (never the key)")
    extra_headers: dict[str, str] = Field(
        default_factory=dict, description="header -> NAME of the environment variable holding its value")
    enabled: bool = True
    sources: dict[str, str] = Field(default_factory=dict)
    calibration: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="category -> how calibrate fitted its quality (planner.fit_layers): "
                                          "the prior and each calibration's counts per run, so a run read again "
                                          "counts once")

    @field_validator("api_key_env")
    @classmethod
    def _key_env(cls, v: str | None) -> str | None:
        return None if v is None else env_var_name(v)

    @field_validator("extra_headers")
    @classmethod
    def _headers(cls, h: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, var in h.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"header {name!r}: expected an HTTP header name (letters, digits, '-')")
            try:
                out[name] = env_var_name(var)
            except ValueError as exc:
                raise ValueError(f"header {name}: {exc}") from None
        return out

    @field_validator("quality")
    @classmethod
    def _quality(cls, q: dict[str, float]) -> dict[str, float]:
        if not q:
            raise ValueError("expected at least one category score (a label such as code, or default)")
        out: dict[str, float] = {}
        for k, v in q.items():
            if not 0 <= v <= 1:
                raise ValueError(f"{k}: expected a score in [0, 1], got {v}")
            out[category_label(k)] = float(v)
        return out

    @field_validator("calibration")
    @classmethod
    def _calibration(cls, c: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from planner.fit_layers import parse

        out: dict[str, dict[str, Any]] = {}
        for k, v in c.items():
            try:
                parse(v, 1)
            except ValueError as exc:
                raise ValueError(f"{k}: {exc}") from None
            out[category_label(k)] = v
        return out

    @field_validator("output_tokens")
    @classmethod
    def _output_tokens(cls, q: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in q.items():
            if not v >= 0 or v == float("inf"):
                raise ValueError(f"{k}: expected a number of tokens >= 0, got {v}")
            out[category_label(k)] = float(v)
        return out

    @property
    def has_latency(self) -> bool:
        return self.ttft_s is not None and self.output_tokens_per_s is not None


_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def env_var_name(value: str) -> str:
    """``value`` as the name of an environment variable (``NAME`` or ``${NAME}``). Catalogs hold
    names only: anything else, or a name that looks like a key (long, no underscore, letters
    and digits mixed), is refused without echoing it, since it may be a secret."""
    name = value[2:-1] if value.startswith("${") and value.endswith("}") else value
    looks_random = (len(name) >= 16 and "_" not in name and any(c.isdigit() for c in name)
                    and any(c.isalpha() for c in name))
    if not _ENV_NAME.fullmatch(name) or looks_random:
        raise ValueError("expected the NAME of an environment variable (upper case, e.g. MY_API_KEY), "
                         "never the key itself; the value given is not shown in case it is a secret")
    return name


@dataclass(frozen=True)
class Offering:
    """A model in one serving mode, with the numbers the formulation uses."""

    name: str
    model: str
    vendor: str
    provider: str
    mode: Literal["realtime", "batch"]
    input_cost_per_token: float
    output_cost_per_token: float
    price_source: str
    ttft_s: float | None
    output_tokens_per_s: float | None
    reasoning_tokens: int
    verbosity: float
    quality: Mapping[str, float]
    output_tokens: Mapping[str, float]
    capabilities: frozenset[str]
    context_window: int | None
    max_output_tokens: int | None
    concurrency: int | None
    rpm: int | None
    tpm: int | None
    share_cap: float | None
    batch_window_s: float | None
    api_base: str | None
    sources: Mapping[str, str] = field(default_factory=dict)
    api_key_env: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)  # header -> env variable name
    # prompt-cache prices (planner.prefix_cache): the price map's, or the catalog's
    cache_read_cost_per_token: float | None = None
    cache_write_cost_per_token: float | None = None  # None: writes bill at the input price
    cache_price_source: str = ""
    cache_min_tokens: int = 1024  # planner.prefix_cache.DEFAULT_MIN_TOKENS
    cache_ttl_s: float = 300.0  # planner.prefix_cache.DEFAULT_TTL_S

    def quality_for(self, category: str) -> float | None:
        """The model's score for a category label, else its ``default`` score, else None."""
        q = self.quality.get(category, self.quality.get("default"))
        return None if q is None else float(q)

    @property
    def has_latency(self) -> bool:
        """False when the catalog has no speed data for the model (it plans without latency)."""
        return self.ttft_s is not None and self.output_tokens_per_s is not None

    def snapshot(self) -> ModelSnapshot:
        return ModelSnapshot(
            name=self.name, litellm_model=self.model, provider=self.provider, mode=self.mode,
            input_cost_per_token=self.input_cost_per_token,
            output_cost_per_token=self.output_cost_per_token, price_source=self.price_source,
            ttft_s=self.ttft_s, output_tokens_per_s=self.output_tokens_per_s,
            verbosity=self.verbosity, batch_window_s=self.batch_window_s,
            concurrency=self.concurrency, rpm=self.rpm, tpm=self.tpm,
            context_window=self.context_window, max_output_tokens=self.max_output_tokens,
            api_base=self.api_base, api_key_env=self.api_key_env,
            extra_headers={h: "${" + var + "}" for h, var in self.extra_headers.items()},
            cache_read_cost_per_token=self.cache_read_cost_per_token,
            cache_write_cost_per_token=self.cache_write_cost_per_token if self.cache_read_cost_per_token is not None
            else None,
            cache_price_source=self.cache_price_source or None if self.cache_read_cost_per_token is not None else None,
            cache_ttl_s=self.cache_ttl_s if self.cache_read_cost_per_token is not None else None,
        )


@dataclass(frozen=True)
class Catalog:
    """The offerings a plan may use, in catalog order (realtime, then its batch twin)."""

    name: str
    offerings: tuple[Offering, ...]
    profiles: tuple[ModelProfile, ...]
    #: the category a task label that no model scores falls back to (None: such a label is an error)
    default_category: str | None = None
    #: a per-prompt quality predictor saved by ``calibrate`` (path), used where it was kept
    predictor: str | None = None
    #: cascade statistics fitted by ``calibrate`` (:class:`planner.cascade.CascadeStats`), if any
    cascades: Any = None

    @property
    def categories(self) -> frozenset[str]:
        """The category labels the catalog knows: the built-in task types and every label a
        model scores explicitly."""
        return frozenset(TASK_TYPES) | {c for o in self.offerings for c in o.quality if c != "default"}

    def category_of(self, label: str) -> str | None:
        """The category whose profile a task of type ``label`` uses: the label itself when the
        catalog knows it or a model has a ``default`` score, else ``default_category``, else None."""
        if label in self.categories or any("default" in o.quality for o in self.offerings):
            return label
        return self.default_category

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.offerings]

    def get(self, name: str) -> Offering:
        """The offering for any name the tool prints for it (see :meth:`resolve`)."""
        return self.resolve(name)

    def resolve(self, name: str) -> Offering:
        """The offering ``name`` refers to: its litellm id (``id@batch`` for batch), its short
        name as tables print it (``llama3-1-8b``, ``llama3-1-8b@batch``), or either cut off with
        ``…`` by a narrow column. Unknown or ambiguous names are an :class:`InputError`.
        """
        key = name.strip()
        for o in self.offerings:
            if o.name == key:
                return o
        folded = key.casefold()
        hits = [o for o in self.offerings if folded in (o.name.casefold(), short_name(o.name).casefold())]
        if not hits and folded.endswith("…") and len(folded) > 1:
            stem = folded[:-1]
            hits = [o for o in self.offerings
                    if o.name.casefold().startswith(stem) or short_name(o.name).casefold().startswith(stem)]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise InputError(f"model name {name!r} is ambiguous in catalog {self.name}: it could be "
                             f"{', '.join(o.name for o in hits)}; give the full id")
        raise InputError(_unknown_model(key, self.names, self.name))

    def select(self, models: Sequence[str]) -> Catalog:
        """Only the named models (any name :meth:`resolve` accepts; a realtime name keeps its
        batch offering too)."""
        wanted = [self.resolve(m) for m in models if m.strip()]
        names = {o.name for o in wanted}
        realtime = {o.model for o in wanted if o.mode == "realtime"}
        keep = tuple(o for o in self.offerings if o.name in names or o.model in realtime)
        return replace(self, offerings=keep)


def short_name(name: str) -> str:
    """The name narrow tables print: provider prefix, region, date and Bedrock suffixes dropped.

    ``bedrock/meta.llama3-1-8b-instruct-v1:0@batch`` -> ``llama3-1-8b@batch``.
    """
    base, _, batch = name.partition("@")
    short = base.rsplit("/", 1)[-1].removeprefix("us.").removesuffix("-v1:0").removesuffix("-instruct")
    short = re.sub(r"-20\d{6}$", "", short.removeprefix("anthropic.").removeprefix("meta."))
    return short + ("@" + batch if batch else "")


def short_names(names: Sequence[str]) -> dict[str, str]:
    """Each name's short name, or the name itself where two names would share a short name
    (``cheap/m`` and ``dear/m`` both shorten to ``m``)."""
    short = {n: short_name(n) for n in names}
    seen: dict[str, int] = {}
    for s in short.values():
        seen[s] = seen.get(s, 0) + 1
    return {n: (s if seen[s] == 1 else n) for n, s in short.items()}


def aliases(name: str) -> tuple[str, str]:
    """Every name the tool prints for an offering or model id: the id and its short name."""
    return name, short_name(name)


def _unknown_model(name: str, names: Sequence[str], where: str) -> str:
    """One line: the name is unknown, with up to three close matches among ids and short names."""
    by_alias: dict[str, str] = {}
    for n in names:
        for a in aliases(n):
            by_alias.setdefault(a.casefold(), a)
    close = difflib.get_close_matches(name.casefold(), list(by_alias), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(by_alias[c] for c in close)}?" if close else "; see `routeplan catalog list`"
    return f"unknown model {name!r} in catalog {where}{hint}"


# ---------------------------------------------------------------------- loading
def default_catalog_path() -> Path:
    return Path(str(resources.files("catalogs").joinpath("default.yaml")))


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte at offset {exc.start}); save the file as UTF-8",
                         file=str(path)) from None
    except FileNotFoundError:
        raise InputError("no such catalog file", file=str(path)) from None
    except IsADirectoryError:
        raise InputError("expected a catalog YAML file, got a directory", file=str(path)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InputError(f"{where}malformed YAML: {exc.problem}", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping with a 'models' list", file=str(path))
    extra = set(data) - set(_TOP_KEYS)
    if extra:
        raise InputError(f"unknown top-level key {sorted(extra)[0]!r}; expected {', '.join(_TOP_KEYS)}",
                         file=str(path))
    return data


_TOP_KEYS = ("version", "sources", "defaults", "models", "extends", "remove", "default_category",
             "predictor", "calibration", "cascades")


# A raw profile (or a defaults block) is a dict of field values plus "sources" (the texts the
# files give) and "_origin" (source key -> the file that set the value), so every number can be
# credited to where it really came from however many files were layered.
_SOURCE_KEY = {"input_cost_per_token": "price", "output_cost_per_token": "price",
               "input_cost_per_token_batches": "batch_price", "output_cost_per_token_batches": "batch_price",
               "cache_read_input_token_cost": "cache_price", "cache_creation_input_token_cost": "cache_price"}


def _source_key(field_name: str) -> str:
    return _SOURCE_KEY.get(field_name, field_name)


def _empty_layer() -> dict[str, Any]:
    return {"sources": {}, "_origin": {}}


def _set_fields(layer: dict[str, Any], rec: Mapping[str, Any], where: str, what: str) -> None:
    """Lay ``rec``'s fields over ``layer``: a field set here takes its source from ``rec``'s
    ``sources`` or else is credited to ``where`` (a lower layer's source text no longer applies)."""
    srcs = rec.get("sources") or {}
    if not isinstance(srcs, dict):
        raise InputError(f"{what}: field sources: expected a mapping of field -> source text", file=where)
    for k, v in rec.items():
        if k in ("id", "sources"):
            continue
        key = _source_key(k)
        layer[k] = v
        layer["_origin"][key] = where
        if key not in srcs:
            layer["sources"].pop(key, None)
    layer["sources"].update({str(k): str(v) for k, v in srcs.items()})


def _with_defaults(defaults: dict[str, Any], prof: dict[str, Any]) -> dict[str, Any]:
    """A profile over its catalog's defaults: profile values (and their sources) win."""
    out = {**{k: v for k, v in defaults.items() if k not in ("sources", "_origin")}, **prof}
    out["sources"] = {**{k: v for k, v in defaults["sources"].items() if k not in prof["_origin"]},
                      **prof["sources"]}
    out["_origin"] = {**defaults["_origin"], **prof["_origin"]}
    return out


def _raw_catalog(path: Path, depth: int = 0) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """(defaults, id -> raw profile, catalog settings) of a catalog file, following ``extends``.

    Settings (``default_category``, ``predictor``) are inherited unless this file sets them; a
    predictor path is relative to the file that names it.

    Defaults layer like profiles: the extended catalog's, then this file's. They are applied
    to every profile (inherited or new) by :func:`_with_defaults` once all files are read.
    """
    if depth > 5:
        raise InputError("extends: chain too deep (a cycle?)", file=str(path))
    data = _read_yaml(path)
    defaults: dict[str, Any] = _empty_layer()
    base: dict[str, dict[str, Any]] = {}
    settings: dict[str, Any] = {}
    parent = data.get("extends")
    if parent:
        ppath = default_catalog_path() if parent == "default" else (path.parent / str(parent))
        defaults, base, settings = _raw_catalog(ppath, depth + 1)
    settings = dict(settings)
    if data.get("default_category") is not None:
        try:
            settings["default_category"] = category_label(str(data["default_category"]))
        except ValueError as exc:
            raise InputError(f"default_category: {exc}", file=str(path)) from None
    if data.get("predictor") is not None:
        settings["predictor"] = str(path.parent / str(data["predictor"]))
    if data.get("cascades") is not None:
        from planner.cascade import parse_block

        settings["cascades"] = parse_block(data["cascades"], str(path))
    for rid in data.get("remove") or []:
        if rid not in base:
            raise InputError(f"remove: {_unknown_model(str(rid), list(base), str(parent))}", file=str(path))
        del base[rid]
    own = data.get("defaults") or {}
    if not isinstance(own, dict):
        raise InputError("defaults: expected a mapping of profile fields", file=str(path))
    _set_fields(defaults, own, str(path), "defaults")
    models = data.get("models") or []
    if not isinstance(models, list):
        raise InputError("models: expected a list of model profiles", file=str(path))
    for idx, rec in enumerate(models):
        if not isinstance(rec, dict) or "id" not in rec:
            raise InputError(f"models[{idx}]: expected a mapping with an id", file=str(path))
        mid = str(rec["id"])
        layer = base.get(mid) or {**_empty_layer(), "id": mid}
        _set_fields(layer, rec, str(path), f"models[{idx}] (id {mid!r})")
        layer["_file"], layer["_index"] = str(path), idx
        base[mid] = layer
    return defaults, base, settings


def _apply_overrides(raw: dict[str, dict[str, Any]], overrides: Mapping[str, Any] | str | Path) -> None:
    if isinstance(overrides, str | Path):
        p = Path(overrides)
        data = _read_yaml(p)
        items = {str(m.get("id")): m for m in data.get("models") or [] if isinstance(m, dict)}
        where = str(p)
    else:
        items = {k: dict(v) for k, v in overrides.items()}
        where = "overrides"
    for mid, fields in items.items():
        if mid not in raw:
            if "quality" in fields:  # a whole new profile
                raw[mid] = {**_empty_layer(), "id": mid, "_file": where, "_index": 0}
            else:
                raise InputError(f"{where}: {_unknown_model(mid, list(raw), 'being overridden')}")
        _set_fields(raw[mid], fields, where, f"model {mid!r}")


def load_catalog(path: str | Path | None = None,
                 overrides: Mapping[str, Any] | str | Path | None = None) -> Catalog:
    """Load a catalog (the shipped default when ``path`` is None) and price it.

    ``overrides``: ``{model_id: {field: value}}`` or a YAML file with a ``models`` list,
    merged over the catalog's profiles by id.
    """
    cpath = Path(path) if path is not None else default_catalog_path()
    defaults, raw, settings = _raw_catalog(cpath)
    if overrides:
        _apply_overrides(raw, overrides)
    profiles: list[ModelProfile] = []
    offerings: list[Offering] = []
    for mid, layer in raw.items():
        rec = _with_defaults(defaults, layer)
        file, idx, origin = rec.pop("_file", str(cpath)), rec.pop("_index", 0), rec.pop("_origin")
        try:
            prof = ModelProfile.model_validate(rec)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown field; expected one of {', '.join(ModelProfile.model_fields)}"
            raise InputError(f"models[{idx}] (id {mid!r}): field {loc}: {msg}", file=file) from None
        if not prof.enabled:
            continue
        profiles.append(prof)
        offerings.extend(_offerings(prof, file, origin))
    if not offerings:
        raise InputError("no enabled models: expected at least one", file=str(cpath))
    name = "default" if path is None else str(path)
    cat = Catalog(name, tuple(offerings), tuple(profiles), default_category=settings.get("default_category"),
                  predictor=settings.get("predictor"), cascades=settings.get("cascades"))
    if cat.default_category is not None and cat.default_category not in cat.categories:
        raise InputError(f"default_category: {cat.default_category!r} is not a category any model scores; "
                         f"expected one of {', '.join(sorted(cat.categories))}", file=str(cpath))
    return cat


# fields whose source ``catalog show`` prints; the last three fall back to the price map
_CREDITED = ("ttft_s", "output_tokens_per_s", "reasoning_tokens", "verbosity", "quality", "concurrency",
             "rpm", "tpm", "share_cap", "batch_window_s", "context_window", "max_output_tokens", "capabilities")
_FROM_PRICE_MAP = frozenset({"context_window", "max_output_tokens", "capabilities"})


def _credits(p: ModelProfile, origin: Mapping[str, str], entry: pricing.PriceEntry | None) -> dict[str, str]:
    """Source key -> where the value came from: the file's own source text, else the file that
    set it, else (for price-map fields) the price map entry."""
    out = dict(p.sources)
    for key in _CREDITED:
        if key in p.sources:
            continue
        if key in origin:
            out[key] = f"set in {origin[key]}"
        elif key in _FROM_PRICE_MAP and entry is not None:
            out[key] = f"litellm price map [{entry.key!r}]"
    return out


def _batch_prices(p: ModelProfile, entry: pricing.PriceEntry | None,
                  file: str) -> tuple[float, float, str] | None:
    """(input, output USD per token, source) of the batch offering, or None when it has none.

    Per direction: an explicit ``*_cost_per_token_batches`` in the catalog wins; else, when
    the realtime price is overridden, the batch price is that override times litellm's own
    batch/realtime ratio for the model (a negotiated rate keeps the provider's batch
    discount, so batch is never dearer than realtime by accident); else the price map's.
    """
    sides: list[tuple[float, str]] = []
    for explicit, override, map_rt, map_batch in (
            (p.input_cost_per_token_batches, p.input_cost_per_token,
             entry.input_cost_per_token if entry else None, entry.input_cost_per_token_batches if entry else None),
            (p.output_cost_per_token_batches, p.output_cost_per_token,
             entry.output_cost_per_token if entry else None, entry.output_cost_per_token_batches if entry else None)):
        if explicit is not None:
            sides.append((explicit, p.sources.get("batch_price") or f"catalog override ({file})"))
        elif entry is None or map_rt is None or map_batch is None:
            return None
        elif override is not None:
            ratio = map_batch / map_rt if map_rt > 0 else 1.0
            sides.append((override * ratio, f"override x litellm batch ratio {ratio:.4g} "
                                            f"({pricing.price_source(entry.key)} *_batches / realtime)"))
        else:
            sides.append((map_batch, pricing.price_source(entry.key) + " *_batches"))
    (bin_, src_in), (bout, src_out) = sides
    return bin_, bout, src_in if src_in == src_out else f"input: {src_in}; output: {src_out}"


def _offerings(p: ModelProfile, file: str, origin: Mapping[str, str]) -> list[Offering]:
    entry = pricing.lookup(p.id)
    if entry is None and (p.input_cost_per_token is None or p.output_cost_per_token is None):
        close = difflib.get_close_matches(p.id, pricing.known_chat_models(), n=2, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InputError(f"model {p.id!r} is not in litellm's price map{hint}; set "
                         f"input_cost_per_token and output_cost_per_token", file=file)
    provider = p.provider or (p.id.split("/", 1)[0] if "/" in p.id else (entry.provider if entry else "custom"))
    caps: frozenset[str]
    if p.capabilities is not None:
        caps = frozenset(p.capabilities)
    elif entry is not None:
        flags = {"json": entry.supports_response_schema, "tools": entry.supports_function_calling,
                 "vision": entry.supports_vision}
        caps = frozenset(c for c in CAPABILITIES if flags[c])
    else:
        caps = frozenset()
    overridden = p.input_cost_per_token is not None or p.output_cost_per_token is not None
    pin = p.input_cost_per_token if p.input_cost_per_token is not None else entry.input_cost_per_token  # type: ignore[union-attr]
    pout = p.output_cost_per_token if p.output_cost_per_token is not None else entry.output_cost_per_token  # type: ignore[union-attr]
    src = (p.sources.get("price") or f"catalog override ({origin.get('price', file)})") if overridden else pricing.price_source(entry.key)  # type: ignore[union-attr]
    common: dict[str, Any] = dict(
        model=p.id, vendor=p.vendor or provider, provider=provider, ttft_s=p.ttft_s,
        output_tokens_per_s=p.output_tokens_per_s, reasoning_tokens=p.reasoning_tokens,
        verbosity=p.verbosity, quality=dict(p.quality), output_tokens=dict(p.output_tokens), capabilities=caps,
        context_window=p.context_window or (entry.max_input_tokens if entry else None),
        max_output_tokens=p.max_output_tokens or (entry.max_output_tokens if entry else None),
        share_cap=p.share_cap, api_base=p.api_base, sources=_credits(p, origin, entry),
        api_key_env=p.api_key_env, extra_headers=dict(p.extra_headers),
    )
    cache = _cache_prices(p, entry, overridden, origin.get("cache_price", file), batch=False, input_price=pin)
    out = [Offering(name=p.id, mode="realtime", input_cost_per_token=pin, output_cost_per_token=pout,
                    price_source=src, concurrency=p.concurrency, rpm=p.rpm, tpm=p.tpm,
                    batch_window_s=None, **common, **cache)]
    batch = _batch_prices(p, entry, origin.get("batch_price", file)) if p.batch else None
    if batch is not None:
        bin_, bout, bsrc = batch
        batch_overridden = overridden or p.input_cost_per_token_batches is not None
        bcache = _cache_prices(p, entry, batch_overridden, origin.get("cache_price", file), batch=True,
                               input_price=bin_)
        # batch APIs queue work server-side: no per-model rate limits inside the window
        out.append(Offering(name=p.id + BATCH_SUFFIX, mode="batch", input_cost_per_token=bin_,
                            output_cost_per_token=bout, price_source=bsrc, concurrency=None,
                            rpm=None, tpm=None, batch_window_s=p.batch_window_s or 86400.0, **common, **bcache))
    return out


def _cache_prices(p: ModelProfile, entry: pricing.PriceEntry | None, overridden: bool, where: str,
                  batch: bool, input_price: float) -> dict[str, Any]:
    """Prompt-cache prices of an offering, with their source: the catalog's (realtime), else the
    price map's (``*_batches`` for batch) unless the catalog overrides the offering's input price
    (a negotiated rate says nothing of the cache rate). Empty when there are none.

    A write price below the input price (the map gives DeepSeek 0.0: it has no write charge,
    a miss bills as input) is read as "writes bill at the input price" (None)."""
    out = _raw_cache_prices(p, entry, overridden, where, batch)
    write = out.get("cache_write_cost_per_token")
    if write is not None and write < input_price:
        out["cache_write_cost_per_token"] = None
        out["cache_price_source"] += f" (write price {write:g} < input price: writes bill as input)"
    return out


def _raw_cache_prices(p: ModelProfile, entry: pricing.PriceEntry | None, overridden: bool, where: str,
                      batch: bool) -> dict[str, Any]:
    common: dict[str, Any] = {}
    if p.cache_min_tokens is not None or (entry is not None and entry.prompt_cache_min_tokens is not None):
        common["cache_min_tokens"] = p.cache_min_tokens if p.cache_min_tokens is not None else entry.prompt_cache_min_tokens  # type: ignore[union-attr]
    if p.cache_ttl_s is not None:
        common["cache_ttl_s"] = p.cache_ttl_s
    if not batch and p.cache_read_input_token_cost is not None:
        src = p.sources.get("cache_price") or f"catalog override ({where})"
        return dict(cache_read_cost_per_token=p.cache_read_input_token_cost,
                    cache_write_cost_per_token=p.cache_creation_input_token_cost, cache_price_source=src, **common)
    if entry is None or overridden:
        return {}
    suffix = "_batches" if batch else ""
    read = getattr(entry, "cache_read_input_token_cost" + suffix)
    if read is None:
        return {}
    key = "cache_read_input_token_cost" + suffix
    write = getattr(entry, "cache_creation_input_token_cost" + suffix)
    names = f"{key}" + (f", cache_creation_input_token_cost{suffix}" if write is not None else
                        " (no write price: writes bill at the input price)")
    return dict(cache_read_cost_per_token=read, cache_write_cost_per_token=write,
                cache_price_source=f"{pricing.price_source(entry.key)} {names}", **common)
