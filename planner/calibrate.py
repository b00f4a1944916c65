"""Profiles from outcomes: ``routeplan calibrate`` (docs/concepts/history.md, docs/commands/calibrate.md).

Outcome history (one row per observation of one model on one task, see
:mod:`planner.history`) becomes a catalog that ``extends`` a base catalog:

- **quality** per (model, category): the posterior mean of a Beta prior centred on the base
  catalog's score (strength ``prior_strength`` pseudo-observations) updated with the observed
  scores, with a central credible interval. A model the base lacks is centred on its own mean
  over the categories observed. No data gives the prior; much data gives the observed mean.
- **output tokens** per (model, category): the median of what was recorded, or counted from
  the responses when tokens were not recorded; **reasoning tokens**: the median, per model.
- **prices** for a model litellm's price map lacks: non-negative least squares of cost on
  input and output tokens; a model the map has keeps the map's prices, with a warning when the
  recorded costs disagree with them by more than 5 %.
- **ttft and tokens/s** where the history recorded latencies (with ``ttft_s``, or fitted as
  ``latency = ttft + output_tokens / tokens_per_s``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.catalog import Catalog, ModelProfile, load_catalog
from planner.errors import InputError
from planner.tasks import category_label

DEFAULT_PRIOR_STRENGTH = 10.0
DEFAULT_INTERVAL = 0.9
PRICE_TOLERANCE = 0.05
#: where the prior of a model the base catalog lacks comes from
OWN_MEAN = "its mean over categories"
#: fewest rows with latency and tokens before a speed profile is fitted
MIN_LATENCY_ROWS = 10


def posterior_mean(score_sum: Any, n: Any, prior: Any, strength: float) -> Any:
    """Beta-binomial shrinkage: ``(sum + strength x prior) / (n + strength)``.

    ``n = 0`` gives the prior; as ``n`` grows the observed mean ``sum / n`` takes over.
    """
    return (np.asarray(score_sum, dtype=float) + strength * np.asarray(prior, dtype=float)) / (
        np.asarray(n, dtype=float) + strength)


def credible_interval(score_sum: Any, n: Any, prior: Any, strength: float,
                      level: float = DEFAULT_INTERVAL) -> tuple[Any, Any]:
    """Central ``level`` interval of the Beta posterior (scores in [0, 1] count as fractional
    successes, the usual approximation for graded scores)."""
    from scipy.special import betaincinv  # the Beta quantile; scipy.stats takes seconds to import

    prior = np.clip(np.asarray(prior, dtype=float), 1e-6, 1 - 1e-6)
    s = np.asarray(score_sum, dtype=float)
    a = strength * prior + s
    b = strength * (1 - prior) + np.asarray(n, dtype=float) - s
    a, b = np.maximum(a, 1e-9), np.maximum(b, 1e-9)
    tail = (1 - level) / 2
    return betaincinv(a, b, tail), betaincinv(a, b, 1 - tail)


@dataclass
class Calibration:
    """What ``calibrate`` learned: the per (model, category) table and the profiles to write."""

    table: pd.DataFrame  # model, category, n, observed, prior, prior_from, quality, lo, hi, output_tokens
    profiles: dict[str, dict[str, Any]]  # model id -> catalog profile fields (with sources)
    base: str  # what the written catalog extends: "default" or a path
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    n_records: int = 0
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    interval: float = DEFAULT_INTERVAL
    extra: dict[str, Any] = field(default_factory=dict)  # further top-level catalog keys (predictor)
    predictor_report: list[dict[str, Any]] = field(default_factory=list)  # per (model, category) CV figures
    run_cascades: list[Any] = field(default_factory=list)  # planner.cascade_runs.RunFit per cascade of the runs

    def catalog_text(self, out_path: str | Path) -> str:
        """The calibrated catalog as YAML; ``extends`` is written relative to ``out_path``."""
        import yaml

        out_dir = Path(out_path).resolve().parent
        extends = self.base
        if extends != "default":
            extends = _relative(Path(extends).resolve(), out_dir)
        doc: dict[str, Any] = {
            "version": 1,
            "extends": extends,
            "calibration": {
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": self.files, "records": int(self.n_records),
                "prior_strength": self.prior_strength, "interval": self.interval,
            },
            **self.extra,
            "models": [{"id": mid, **fields} for mid, fields in self.profiles.items()],
        }
        head = ("# Written by `routeplan calibrate`: quality, output length, prices and speeds learned "
                "from outcomes.\n# Use it with `routeplan solve --catalog THIS_FILE`; `routeplan catalog "
                "show MODEL --catalog THIS_FILE` credits each value.\n")
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return head + yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100)

    def write(self, out_path: str | Path) -> Path:
        path = Path(out_path)
        if path.is_dir():
            raise InputError("expected a file to write the profiles to, got a directory", file=str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.catalog_text(path), encoding="utf-8")
        tmp.replace(path)
        return path


def _relative(target: Path, start: Path) -> str:
    import os

    try:
        return os.path.relpath(target, start)
    except ValueError:  # another drive on Windows
        return str(target)


def calibrate(history: Any, base: str | Path | None = None, *,
              prior_strength: float = DEFAULT_PRIOR_STRENGTH, interval: float = DEFAULT_INTERVAL,
              files: Sequence[str] = (), count_tokens: bool = True, cascades: bool = True,
              run_cascades: pd.DataFrame | None = None) -> Calibration:
    """Fit profiles from outcome records over ``base`` (None: the built-in default catalog).

    ``history``: outcome files (paths), a :class:`planner.history.History`, or its DataFrame.
    ``Calibration.write(path)`` saves the catalog; ``Calibration.table`` is the fit.
    ``cascades``: also fit cascade statistics (``cascades:`` in the catalog, see
    :mod:`planner.cascade`) where the history holds several models' answers to the same prompts,
    and from ``run_cascades``, the cascade tasks of graded runs (``History.cascades``, read by
    ``read_history(..., cascades=True)``; taken from ``history`` when it is a History), for any
    verifier (:mod:`planner.cascade_runs`).
    """
    from planner.history import history_frame

    if run_cascades is None and cascades:
        run_cascades = getattr(history, "cascades", None)
    if not isinstance(history, pd.DataFrame):
        if not files and not hasattr(history, "frame"):
            files = [str(history)] if isinstance(history, str | Path) else [str(h) for h in history]
        history = history_frame(history)
    frame = history
    if not (math.isfinite(prior_strength) and prior_strength >= 0):
        raise InputError(f"--prior-strength: expected a number >= 0, got {prior_strength!r}")
    if not (0 < interval < 1):
        raise InputError(f"--interval: expected a level in (0, 1), got {interval!r}")
    has_runs = cascades and run_cascades is not None and len(run_cascades) > 0
    if frame.empty and not has_runs:
        raise InputError("no outcome records to calibrate from")
    base_cat = load_catalog(base)
    if frame.empty:  # cascade tasks of runs only: no single-model records to fit profiles from
        empty = pd.DataFrame(columns=["model", "category", "n", "observed", "prior", "prior_from", "quality", "lo",
                                      "hi", "output_tokens"])
        cal = Calibration(table=empty, profiles={}, base="default" if base is None else str(base),
                          files=[str(f) for f in files], n_records=0, prior_strength=prior_strength, interval=interval)
        _fit_run_cascades(run_cascades, base_cat, cal)
        return cal
    df = frame.copy()
    labels = df["category"].astype(str)
    df["category"] = labels.map({c: category_label(c) for c in labels.unique()})
    df["score"] = df["score"].astype(float)
    cal = Calibration(table=pd.DataFrame(), profiles={}, base="default" if base is None else str(base),
                      files=[str(f) for f in files], n_records=len(df), prior_strength=prior_strength,
                      interval=interval)
    if count_tokens:
        _fill_token_counts(df, cal)

    table = _quality_table(df, base_cat, prior_strength, interval)
    again = sorted({run for runs in table["again"] for run in runs})
    if again:
        n_again = int(sum(bool(x) for x in table["again"]))
        cal.notes.append(f"{n_again} (model, category) entries of the base catalog already held run"
                         f"{'s' * (len(again) > 1)} {', '.join(again)}, read again here: counted once "
                         f"(each shrunk toward the base entry without {'them' if len(again) > 1 else 'it'})")
    out_tok = _median_by(df, "output_tokens")
    table["output_tokens"] = [out_tok.get((m, c)) for m, c in zip(table["model"], table["category"], strict=True)]
    trio = df[["model", "category", "source"]].astype(str).drop_duplicates()
    src_files = {k: sorted(g["source"]) for k, g in trio.groupby(["model", "category"])}
    cal.table = table
    if cascades:
        _fit_cascades(df, cal)
        if has_runs:
            _fit_run_cascades(run_cascades, base_cat, cal)

    by_model = {p.id: p for p in base_cat.profiles}
    for mid, rows in table.groupby("model", sort=False):
        prof = by_model.get(mid)
        fields: dict[str, Any] = {}
        sources: dict[str, str] = {}
        quality = dict(prof.quality) if prof is not None else {}
        outputs = dict(prof.output_tokens) if prof is not None else {}
        calibration = dict(prof.calibration) if prof is not None else {}
        for r in rows.itertuples(index=False):
            quality[r.category] = round(float(r.quality), 4)
            calibration[r.category] = r.calibration
            where = ", ".join(src_files.get((mid, r.category), [])) or "history"
            sources[f"quality.{r.category}"] = (
                f"calibrated from {int(r.n):,} outcomes in {where}, {interval:.0%} interval "
                f"[{r.lo:.2f}, {r.hi:.2f}] (prior {r.prior:.3f} from {r.prior_from}, strength {prior_strength:g})")
            if r.output_tokens is not None and np.isfinite(r.output_tokens):
                outputs[r.category] = float(round(r.output_tokens))
                sources[f"output_tokens.{r.category}"] = f"median of {int(r.n):,} outcomes in {where}"
        fields["quality"] = quality
        sources["quality"] = ("calibrated by routeplan calibrate (per category below)" if prof is None else
                              "calibrated categories credited below; the others from the base catalog")
        fields["calibration"] = calibration
        if outputs:
            fields["output_tokens"] = outputs
            sources["output_tokens"] = "medians from outcome history (per category below)"
        rows_m = df[df["model"] == mid]
        _reasoning(rows_m, fields, sources)
        _prices(mid, rows_m, prof, fields, sources, cal)
        _speed(mid, rows_m, fields, sources, cal)
        fields["sources"] = sources
        cal.profiles[str(mid)] = fields
    return cal


def _fit_cascades(df: pd.DataFrame, cal: Calibration) -> None:
    from planner.cascade_fit import fit_cascades

    quality = {(str(r.model), str(r.category)): float(r.quality) for r in cal.table.itertuples(index=False)}
    fit = fit_cascades(df, quality, prior_strength=cal.prior_strength)
    cal.notes.extend(fit.notes)
    for cat, why in sorted(fit.skipped.items()):
        cal.notes.append(f"no cascades for {cat}: {why}")
    if fit.cascades:
        cal.extra["cascades"] = fit.block()
        cats = sorted({c.category for c in fit.cascades})
        cal.notes.append(f"{len(fit.cascades)} cascades kept (first -> agree(first, witness) -> second) "
                         f"for {', '.join(cats)}; probabilities from joint outcomes, shrunk toward "
                         f"independence (strength {cal.prior_strength:g})")


def _fit_run_cascades(records: Any, base: Catalog, cal: Calibration) -> None:
    """Cascade statistics from the cascade tasks of graded runs, merged into the ``cascades:`` block."""
    from planner.cascade_runs import fit_run_cascades, merge_block

    records = records.copy()
    labels = records["category"].astype(str)
    records["category"] = labels.map({c: category_label(c) for c in labels.unique()})
    quality = {(str(r.model), str(r.category)): float(r.quality) for r in cal.table.itertuples(index=False)}
    fits, notes = fit_run_cascades(records, base, quality, strength=cal.prior_strength, level=cal.interval)
    cal.notes.extend(notes)
    if not fits:
        return
    cal.run_cascades = fits
    block, merged = merge_block(base, cal.extra.get("cascades"), fits, strength=cal.prior_strength,
                                level=cal.interval)
    cal.extra["cascades"] = block
    cal.notes.extend(merged)
    cal.notes.append(f"{len(fits)} cascades fitted from {sum(f.decided for f in fits):,} decided tasks of graded "
                     f"runs (p_accept from every decided task, the qualities from graded ones), shrunk toward the "
                     f"base catalog's entry or independence (strength {cal.prior_strength:g})")


def _quality_table(df: pd.DataFrame, base: Catalog, strength: float, level: float) -> pd.DataFrame:
    """Per (model, category): the shrunk quality, its prior and interval, and ``calibration``:
    how it was fitted, runs by id (:mod:`planner.fit_layers`). A base entry that already holds a
    run read here is taken without it as the prior, so the run counts once (``again``)."""
    from planner.fit_layers import Fit, Fitted, base_fit, parse

    g = df.groupby(["model", "category"], sort=True)["score"].agg(["sum", "count"]).reset_index()
    g["observed"] = g["sum"] / g["count"]
    own_mean = g.groupby("model")["observed"].mean()  # a model's mean over its categories
    by_run = _counts_by_run(df)
    by_model = {p.id: p for p in base.profiles}
    priors, origin, records, agains = [], [], [], []
    for m, c, n, total in zip(g["model"], g["category"], g["count"], g["sum"], strict=True):
        prof = by_model.get(m)
        value, key = None, c
        if prof is not None:
            for key in (c, "default", base.default_category):
                if key is not None and key in prof.quality:
                    value = prof.quality[key]
                    break
        runs = by_run.get((m, c), {})
        in_runs = sum(x[0][0] for x in runs.values()), sum(x[0][1] for x in runs.values())
        layer = Fit(strength, runs, ((float(n) - in_runs[0], float(total) - in_runs[1]),))
        recorded = prof.calibration.get(key) if prof is not None and value is not None else None
        onto, again = base_fit(None if recorded is None else parse(recorded, 1),
                               (float(value),) if value is not None else (), frozenset(runs))
        if onto is not None and again:
            if onto.prior_from == OWN_MEAN:  # a prior drawn from the data: drawn from the data at hand
                onto = Fitted((float(own_mean[m]),), OWN_MEAN, onto.fits)
            prior = onto.value()[0]
            where = (f"catalog {base.name}'s entry without run{'s' * (len(again) > 1)} "
                     f"{', '.join(sorted(again))} (read again here)")
        elif value is not None:
            prior, where = float(value), f"catalog {base.name}"
        else:
            prior, where = float(own_mean[m]), OWN_MEAN
        priors.append(prior)
        origin.append(where)
        records.append((onto if onto is not None else Fitted((prior,), where)).then(layer).record())
        agains.append(sorted(again))
    g["prior"] = priors
    g["prior_from"] = origin
    g["calibration"] = records
    g["again"] = agains
    g["quality"] = posterior_mean(g["sum"], g["count"], g["prior"], strength)
    g["lo"], g["hi"] = credible_interval(g["sum"], g["count"], g["prior"], strength, level)
    return g.rename(columns={"count": "n"})[
        ["model", "category", "n", "observed", "prior", "prior_from", "quality", "lo", "hi", "calibration", "again"]]


def _counts_by_run(df: pd.DataFrame) -> dict[tuple[str, str], dict[str, tuple[tuple[float, float], ...]]]:
    """(model, category) -> run id -> ((n, score sum),) of the records read from run folders."""
    if "run_id" not in df or not df["run_id"].notna().any():
        return {}
    ok = df[df["run_id"].notna()]
    g = ok.groupby(["model", "category", "run_id"], sort=True)["score"].agg(["count", "sum"])
    out: dict[tuple[str, str], dict[str, tuple[tuple[float, float], ...]]] = {}
    for (m, c, run), row in g.iterrows():
        out.setdefault((str(m), str(c)), {})[str(run)] = ((float(row["count"]), float(row["sum"])),)
    return out


def _median_by(df: pd.DataFrame, column: str) -> dict[tuple[str, str], float]:
    if column not in df:
        return {}
    ok = df[df[column].notna()]
    return {k: float(v) for k, v in ok.groupby(["model", "category"])[column].median().items()}


def _fill_token_counts(df: pd.DataFrame, cal: Calibration) -> None:
    """Count input tokens from prompts and output tokens from responses where not recorded
    (litellm's counter for each model's tokenizer, offline, cached)."""
    from planner import tokens

    counted = {"input_tokens": 0, "output_tokens": 0}
    for column, text_col, role in (("input_tokens", "prompt", "user"), ("output_tokens", "response", "assistant")):
        if text_col not in df or column not in df:
            continue
        need = df[column].isna() & df[text_col].notna()
        if not need.any():
            continue
        cache: dict[tuple[str, str], int] = {}
        values = []
        for model, text in zip(df.loc[need, "model"], df.loc[need, text_col], strict=True):
            fam = tokens.family(str(model))
            key = (fam, str(text))
            if key not in cache:
                n = tokens.count(str(model), [{"role": role, "content": str(text)}])
                cache[key] = max(0, n - _CHAT_OVERHEAD) if role == "assistant" else n
            values.append(cache[key])
        df.loc[need, column] = np.asarray(values, dtype=float)
        counted[column] = int(need.sum())
    if counted["input_tokens"] or counted["output_tokens"]:
        cal.notes.append(f"token counts not recorded: counted {counted['input_tokens']:,} prompts and "
                         f"{counted['output_tokens']:,} responses with litellm's tokenizers "
                         f"({', '.join(tokens.counter_used()) or 'litellm'})")


#: tokens litellm's counter adds for the chat framing of one message
_CHAT_OVERHEAD = 4


def _reasoning(rows: pd.DataFrame, fields: dict[str, Any], sources: dict[str, str]) -> None:
    if "reasoning_tokens" not in rows:
        return
    r = rows["reasoning_tokens"].dropna()
    if len(r):
        fields["reasoning_tokens"] = int(round(float(r.median())))
        sources["reasoning_tokens"] = f"median of {len(r):,} recorded outcomes"


def _prices(mid: str, rows: pd.DataFrame, prof: ModelProfile | None, fields: dict[str, Any],
            sources: dict[str, str], cal: Calibration) -> None:
    """Fitted prices for a model without any; a warning where recorded costs disagree with them."""
    from planner import pricing

    ok = rows[["cost_usd", "input_tokens", "output_tokens"]].dropna()
    ok = ok[(ok["input_tokens"] + ok["output_tokens"]) > 0]
    entry = pricing.lookup(mid)
    has_own = prof is not None and prof.input_cost_per_token is not None and prof.output_cost_per_token is not None
    if entry is not None or has_own:
        pin = prof.input_cost_per_token if has_own else entry.input_cost_per_token  # type: ignore[union-attr]
        pout = prof.output_cost_per_token if has_own else entry.output_cost_per_token  # type: ignore[union-attr]
        if len(ok):
            expected = float((ok["input_tokens"] * pin + ok["output_tokens"] * pout).sum())
            recorded = float(ok["cost_usd"].sum())
            if expected > 0 and abs(recorded / expected - 1) > PRICE_TOLERANCE:
                where = "the base catalog" if has_own else f"litellm's price map [{entry.key!r}]"  # type: ignore[union-attr]
                cal.warnings.append(
                    f"{mid}: recorded costs (${recorded:.4g} over {len(ok):,} outcomes) differ from "
                    f"{where} (${expected:.4g}) by {recorded / expected - 1:+.1%}; kept the catalog's "
                    f"prices (set input_cost_per_token/output_cost_per_token to override)")
        return
    if len(ok) < 2:
        raise InputError(f"model {mid!r} is not in litellm's price map and the history has no costs with "
                         f"token counts to fit its prices from; give it input_cost_per_token and "
                         f"output_cost_per_token in the base catalog (--catalog)")
    from scipy.optimize import nnls

    a = ok[["input_tokens", "output_tokens"]].to_numpy(dtype=float)
    y = ok["cost_usd"].to_numpy(dtype=float)
    scale = a.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(a / scale, y)
    pin, pout = (coef / scale).tolist()
    if pin == 0 and pout == 0:
        pin = pout = float(y.sum() / a.sum())
    resid = y - a @ np.array([pin, pout])
    rel = float(np.abs(resid).sum() / max(y.sum(), 1e-300))
    fields["input_cost_per_token"] = float(f"{pin:.6g}")
    fields["output_cost_per_token"] = float(f"{pout:.6g}")
    sources["price"] = (f"fitted by non-negative least squares to {len(ok):,} recorded costs "
                        f"(mean absolute error {rel:.1%} of cost); not in litellm's price map")


def _speed(mid: str, rows: pd.DataFrame, fields: dict[str, Any], sources: dict[str, str],
           cal: Calibration) -> None:
    if "latency_s" not in rows:
        return
    lat = rows[rows["latency_s"].notna() & rows["output_tokens"].notna()]
    if "ttft_s" in rows and rows["ttft_s"].notna().sum() >= MIN_LATENCY_ROWS:
        t = lat[lat["ttft_s"].notna() & (lat["latency_s"] > lat["ttft_s"]) & (lat["output_tokens"] > 0)]
        ttft = float(rows["ttft_s"].dropna().median())
        if len(t) >= MIN_LATENCY_ROWS:
            tps = float((t["output_tokens"] / (t["latency_s"] - t["ttft_s"])).median())
            fields["ttft_s"], fields["output_tokens_per_s"] = round(ttft, 4), round(tps, 3)
            src = f"median of {len(t):,} recorded calls"
            sources["ttft_s"] = sources["output_tokens_per_s"] = src
        return
    if len(lat) < MIN_LATENCY_ROWS or lat["output_tokens"].nunique() < 3:
        return
    slope, intercept = np.polyfit(lat["output_tokens"].to_numpy(float), lat["latency_s"].to_numpy(float), 1)
    if slope <= 0 or intercept < 0:
        cal.notes.append(f"{mid}: latency does not grow with output length in the history "
                         f"(fit {intercept:.3g} s + {slope:.3g} s/token); no speed profile fitted")
        return
    fields["ttft_s"], fields["output_tokens_per_s"] = round(float(intercept), 4), round(float(1 / slope), 3)
    src = f"least-squares fit latency = ttft + output_tokens / tokens_per_s over {len(lat):,} recorded calls"
    sources["ttft_s"] = sources["output_tokens_per_s"] = src


def cascade_rows(cal: Calibration) -> list[dict[str, Any]]:
    """The printed table of cascades fitted from runs, one row per cascade."""
    out = []
    for f in cal.run_cascades:
        row: dict[str, Any] = {"cascade": f.label, "category": f.category, "decided": f.decided,
                               "accepted": f.accepted, "prior_from": f.prior_from}
        for (name, n), prior, value, (lo, hi) in zip(
                (("p_accept", f.decided), ("quality_accept", f.n_accept), ("quality_reject", f.n_reject)),
                f.prior, f.fitted, f.intervals, strict=True):
            row[name] = {"n": n, "prior": prior, "calibrated": value, "interval": f"[{lo:.2f}, {hi:.2f}]"}
        out.append(row)
    return out


def summary_rows(cal: Calibration) -> list[dict[str, Any]]:
    """The printed table, one row per (model, category)."""
    return [{"model": r.model, "category": r.category, "n": int(r.n), "observed": float(r.observed),
             "prior": float(r.prior), "calibrated": float(r.quality),
             "interval": f"[{r.lo:.2f}, {r.hi:.2f}]",
             "output_tokens": "-" if r.output_tokens is None or not np.isfinite(r.output_tokens)
             else f"{r.output_tokens:.0f}"}
            for r in cal.table.itertuples(index=False)]
