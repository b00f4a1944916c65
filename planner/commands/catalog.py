"""``routeplan catalog list|show``: what the planner knows about each model and where from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from planner.catalog import Offering

catalog_app = typer.Typer(help="Inspect the model catalog (prices, speed, quality, sources).",
                          no_args_is_help=True)
CatalogOpt = Annotated[Path | None, typer.Option("--catalog", help="Catalog YAML (default: built-in).")]


@catalog_app.command("list")
def list_command(catalog: CatalogOpt = None) -> None:
    """One row per offering (by the short name tables print; `catalog show` gives the litellm id):
    prices per million tokens, speed, context, capabilities, quality."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from planner.catalog import load_catalog, short_name

    cat = load_catalog(catalog)
    t = Table(title=f"catalog {cat.name}: {len(cat.offerings)} offerings", title_justify="left")
    for col in ("model", "provider", "mode", "$/M in", "$/M out", "ttft s", "tok/s", "context",
                "caps", "mean quality"):
        t.add_column(col, justify="left" if col in ("model", "provider", "mode", "caps") else "right")
    for o in cat.offerings:
        q = [v for k, v in o.quality.items() if k != "default"] or [o.quality["default"]]
        t.add_row(Text(short_name(o.name)), Text(o.provider), o.mode, f"{o.input_cost_per_token * 1e6:.3f}",
                  f"{o.output_cost_per_token * 1e6:.3f}", _num(o.ttft_s, ".2f"), _num(o.output_tokens_per_s, "g"),
                  f"{o.context_window or '-'}", ",".join(sorted(o.capabilities)), f"{sum(q) / len(q):.3f}")
    console = Console()
    if not console.is_terminal:
        console.width = 170
    console.print(t)


@catalog_app.command("show")
def show_command(model: Annotated[str, typer.Argument(help="Model id or the short name tables print, with or without @batch.")],
                 catalog: CatalogOpt = None) -> None:
    """Every number the planner uses for one model, with its source."""
    from planner.catalog import load_catalog, short_name

    o = load_catalog(catalog).get(model)
    lines = [f"{short_name(o.name)}  ({o.vendor} via {o.provider}, {o.mode})",
             f"  litellm id     {o.model}" + ("  (through its batch API)" if o.mode == "batch" else ""),
             f"  price in/out   ${o.input_cost_per_token * 1e6:.4g} / ${o.output_cost_per_token * 1e6:.4g}"
             f" per million tokens  [{o.price_source}]",
             f"  ttft           {_num(o.ttft_s, 'g', ' s')}  [{o.sources.get('ttft_s', '-')}]",
             f"  output speed   {_num(o.output_tokens_per_s, 'g', ' tokens/s')}"
             f"  [{o.sources.get('output_tokens_per_s', '-')}]",
             f"  reasoning      {o.reasoning_tokens} hidden tokens per call  [{o.sources.get('reasoning_tokens', '-')}]",
             f"  verbosity      {o.verbosity:g}  [{o.sources.get('verbosity', '-')}]",
             f"  context        {o.context_window} input, {o.max_output_tokens} output tokens"
             f"  [{_context_source(o)}]",
             f"  capabilities   {', '.join(sorted(o.capabilities)) or 'none'}  [{o.sources.get('capabilities', '-')}]",
             f"  limits         concurrency {o.concurrency}, rpm {o.rpm}, tpm {o.tpm}"
             f"  [{o.sources.get('concurrency', '-')}]"]
    if o.cache_read_cost_per_token is not None or o.cache_write_cost_per_token is not None:
        write = ("the input price" if o.cache_write_cost_per_token is None
                 else f"${_per_m(o.cache_write_cost_per_token)}")
        lines.append(f"  prompt cache   read ${_per_m(o.cache_read_cost_per_token)} / write {write} per million "
                     f"tokens, prefixes of {o.cache_min_tokens}+ tokens, kept {o.cache_ttl_s:g} s  "
                     f"[{o.cache_price_source}]")
    if o.batch_window_s:
        lines.append(f"  batch window   {o.batch_window_s:g} s  [{o.sources.get('batch_window_s', '-')}]")
    lines.append(f"  quality        [{o.sources.get('quality', '-')}]")
    lines += [_per_category(o, k, f"{v:.3f}", "quality") for k, v in o.quality.items()]
    if o.output_tokens:
        lines.append(f"  output tokens  per category  [{o.sources.get('output_tokens', '-')}]")
        lines += [_per_category(o, k, f"{v:g}", "output_tokens") for k, v in o.output_tokens.items()]
    typer.echo("\n".join(lines))


def _per_m(usd_per_token: float | None) -> str:
    return "-" if usd_per_token is None else f"{usd_per_token * 1e6:.4g}"


def _num(v: float | None, fmt: str, unit: str = "") -> str:
    """A speed figure, or 'no data' when the catalog has none (the model plans without latency)."""
    return "no data" if v is None else f"{v:{fmt}}{unit}"


def _per_category(o: Offering, category: str, value: str, key: str) -> str:
    """One category's value, with its own source when the catalog credits it (calibrated values)."""
    src = o.sources.get(f"{key}.{category}")
    return f"    {category:<15}{value}" + (f"  [{src}]" if src else "")


def _context_source(o: Offering) -> str:
    """One source for the context line, or both when input and output limits differ in origin."""
    cw, mo = o.sources.get("context_window", "-"), o.sources.get("max_output_tokens", "-")
    return cw if cw == mo else f"input: {cw}; output: {mo}"


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
