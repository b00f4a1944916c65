"""Options shared by the planning commands (``solve``, ``sweep``): one definition each, so a
name means the same everywhere, with the parsers and checks that go with them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from planner.errors import InputError


def flag(*decls: str, help: str) -> Any:
    """A yes/no option that takes no value: ``--log``, not ``--log <bool>`` in the help (typer
    >= 0.29 prints every option's type, flags included, unless a metavar replaces it)."""
    return typer.Option(*decls, help=help, metavar="")


TasksArg = Annotated[Path, typer.Argument(help="Task batch: .yaml, .json, .jsonl, .csv or .parquet.")]
CatalogOpt = Annotated[Path | None, typer.Option(
    "--catalog", help="Model catalog YAML (default: the built-in catalog; `extends: default` to add to it).")]
ModelsOpt = Annotated[str | None, typer.Option(
    "--models", help="Only these catalog models, comma-separated: ids or the short names tables print (a realtime name keeps its @batch twin).")]
MaxLatencyOpt = Annotated[float | None, typer.Option(
    "--max-latency", help="Latency limit in seconds for every task (a task's own max_latency_s may be stricter).")]
MinQualityOpt = Annotated[float | None, typer.Option(
    "--min-quality", help="Quality floor in [0, 1] for every task (a task's own min_quality may be stricter).")]
AvgQualityOpt = Annotated[float | None, typer.Option(
    "--avg-quality", help="Floor on the mean quality of the served tasks, in [0, 1].")]
WeightsOpt = Annotated[str | None, typer.Option(
    "--weights", help="Balanced goal weights, e.g. cost=0.4,quality=0.4,speed=0.2.")]
AllowQueueOpt = Annotated[bool, flag(
    "--allow-queue", help="Queue tasks the limits cannot fit instead of failing.")]
ShareCapOpt = Annotated[list[str] | None, typer.Option(
    "--share-cap", help="model=fraction: at most that share of the tasks on a model (repeatable).")]
CascadesOpt = Annotated[bool, typer.Option(
    "--cascades/--no-cascades", help="Plan the catalog's cascades (first -> verifier -> second, its "
    "cascades: block) beside the single models; --no-cascades plans single models only.")]
SolverOpt = Annotated[str, typer.Option("--solver", help="auto, highs, cpsat, cbc or fast.")]
GapOpt = Annotated[float, typer.Option(
    "--gap", help="Relative optimality gap to prove before stopping (default 1e-4).")]


def parse_models(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def parse_weights(text: str | None) -> dict[str, float]:
    """'cost=0.4,quality=0.4,speed=0.2' -> dict; unknown names and bad numbers are InputError."""
    w = {"cost": 0.4, "quality": 0.4, "speed": 0.2}
    if not text:
        return w
    out = {"cost": 0.0, "quality": 0.0, "speed": 0.0}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in out:
            raise InputError(f"--weights: expected name=number with names cost, quality, speed, got {part!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise InputError(f"--weights: {name}: expected a number, got {value!r}") from None
        if not math.isfinite(out[name]) or out[name] < 0:
            raise InputError(f"--weights: {name}: expected a number >= 0, got {value!r}")
    if sum(out.values()) <= 0:
        raise InputError("--weights: at least one weight must be > 0")
    return out


def parse_shares(items: list[str] | None) -> dict[str, float]:
    """['model=0.3', ...] -> {model: 0.3}; a share outside [0, 1] is an InputError."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.rpartition("=")
        try:
            share = float(value)
        except ValueError:
            share = math.nan
        if not sep or not name or not 0 <= share <= 1:
            raise InputError(f"--share-cap: expected model=fraction in [0, 1], got {item!r}")
        out[name] = share
    return out


def check_out_file(path: Path | None, option: str = "--out") -> None:
    """An output file name must not name a folder (checked before any work is done)."""
    if path is not None and str(path) != "-" and path.is_dir():
        raise InputError(f"{option}: expected a file name, but it is a folder; choose another {option}",
                         file=str(path))


def check_number(name: str, v: float | None, positive: bool = False) -> None:
    """A finite number >= 0 (or > 0 with ``positive``); None is allowed (not given)."""
    if v is None:
        return
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise InputError(f"{name}: expected a number {'> 0' if positive else '>= 0'}, got {v:g}")


def check_common(*, max_latency: float | None, min_quality: float | None, avg_quality: float | None,
                 time_limit: float | None, gap: float) -> None:
    """The checks every planning command makes of the options it shares."""
    check_number("--max-latency", max_latency, positive=True)
    check_number("--time-limit", time_limit, positive=True)
    if not (math.isfinite(gap) and 0 <= gap < 1):
        raise InputError(f"--gap: expected a relative gap in [0, 1), got {gap:g}")
    for name, q in (("--min-quality", min_quality), ("--avg-quality", avg_quality)):
        if q is not None and not 0 <= q <= 1:
            raise InputError(f"{name}: expected a number in [0, 1], got {q:g}")
