"""Outcome history: what models actually scored, cost and took on past tasks.

One record per (task, model) observation, read into one pandas DataFrame with the columns
:data:`HISTORY_COLUMNS` (plus ``reasoning_tokens`` and ``ttft_s`` when a file records
them). Three layouts, recognised per input:

- **long** tables (CSV/TSV, JSONL, JSON list, Parquet): one row per observation with the
  columns below; ``mapping`` (``--map column=field``) renames a file's columns first.
  ``task_id``, ``model`` and ``score`` are required. ``category`` is optional: without the
  column (or in a blank cell) the record is in category ``"default"``, and the summary says
  so.
- **routerbench**: RouterBench's wide layout, one row per prompt and per model ``<model>``
  (the score), ``<model>|total_cost`` and ``<model>|model_response``; ``sample_id`` (or
  ``task_id``) is the task, ``eval_name`` (or ``category``) the category, ``prompt`` and
  responses may be Python-list strings (``"['text']"``, parsed safely, items joined with
  newlines). Any ``<model>|<field>`` for a per-observation field below is read too.
- **run**: a run folder (its ``ledger.sqlite``), graded, through the executor's reader.

Scores are numbers in [0, 1] (true/false read as 1/0). An empty score cell is skipped and
counted ("empty score"), never scored as 0. A bad cell is one :class:`InputError` line:
file, row (and line for CSV/TSV/JSONL), column, what was expected. Everything on the
happy path is vectorised (a million rows read in seconds, see benchmarks/bench_history.py).
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.history_files import TextColumns, Where, file_format, read_table

HISTORY_COLUMNS = ("task_id", "category", "model", "score", "cost_usd", "input_tokens",
                   "output_tokens", "latency_s", "prompt", "response", "source")
#: Kept in the frame when any input records them.
OPTIONAL_COLUMNS = ("reasoning_tokens", "ttft_s")
FIELDS = HISTORY_COLUMNS + OPTIONAL_COLUMNS
#: the run (ledger ``run_id``) a record of a run folder came from: calibrate records which runs
#: a fitted number holds, so reading a run again does not count it twice (planner.fit_layers)
RUN_ID = "run_id"
REQUIRED = ("task_id", "model", "score")
DEFAULT_CATEGORY = "default"

_NAMES = ("task_id", "category", "model", "source")  # short labels, stripped
_TEXTS = ("prompt", "response")  # free text, kept as written
_AMOUNTS = ("cost_usd", "input_tokens", "output_tokens", "latency_s", "reasoning_tokens", "ttft_s")
#: RouterBench's per-model column suffixes, and ours: ``<model>|<suffix>``.
WIDE_SUFFIXES = {"total_cost": "cost_usd", "model_response": "response",
                 **{f: f for f in (*_AMOUNTS, "response")}}
#: Columns shared by all models of a wide row, in order of preference.
WIDE_TASK_ID = ("task_id", "sample_id")
WIDE_CATEGORY = ("category", "eval_name")

Layout = Literal["long", "routerbench", "run"]


@dataclass(frozen=True)
class FileSummary:
    """What one input gave: ``records`` read, ``skipped`` by reason, and notes worth reading."""

    path: Path
    layout: Layout
    records: int
    skipped: dict[str, int] = field(default_factory=dict)
    #: empty score cells per model (their sum is ``skipped["empty score"]``)
    skipped_by_model: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass(frozen=True, eq=False)
class History:
    """Outcome records from one or more inputs.

    ``frame``: one row per (task, model) observation; columns :data:`HISTORY_COLUMNS` (+ any
    of :data:`OPTIONAL_COLUMNS` recorded); ``task_id``, ``category``, ``model``, ``source``
    text; ``score`` float64 in [0, 1]; ``cost_usd``, ``latency_s``, token counts float64
    (NaN when not recorded); ``prompt``, ``response`` object (None when absent).
    """

    frame: pd.DataFrame
    files: tuple[FileSummary, ...]
    #: cascade tasks of run folders (:func:`planner.cascade_runs.read_run_cascades` rows), read
    #: when asked for (``read_history(..., cascades=True)``); kept apart from ``frame``: the
    #: verifier selected their kept answers
    cascades: pd.DataFrame | None = None

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted(self.frame["model"].unique()))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted(self.frame["category"].unique()))

    def summary(self) -> str:
        """Records read from how many files, skipped and why, the models and categories."""
        skipped: Counter[str] = Counter()
        for f in self.files:
            skipped.update(f.skipped)
        n_files = len(self.files)
        lines = [f"{len(self.frame):,} records read from {n_files} file{'s' * (n_files != 1)}, "
                 f"{sum(skipped.values()):,} skipped{_reasons(skipped)}"]
        for f in self.files:
            line = f"  {f.path.name}: {f.layout}, {f.records:,} records"
            if f.skipped_total:
                line += f", {f.skipped_total:,} skipped{_reasons(f.skipped)}"
                if f.skipped_by_model:
                    line += "; empty scores by model: " + _listing(
                        [f"{m} {n:,}" for m, n in sorted(f.skipped_by_model.items(), key=lambda kv: -kv[1])])
            lines.append(line)
            lines.extend(f"    note: {note}" for note in f.notes)
        models = self.frame["model"].value_counts()
        cats = self.frame["category"].value_counts()
        if len(self.frame) or self.cascades is None:  # cascade tasks only: said below
            lines.append(f"{len(models)} model{'s' * (len(models) != 1)}: "
                         + _listing([f"{m} ({n:,})" for m, n in models.items()]))
            lines.append(f"{len(cats)} categor{'ies' if len(cats) != 1 else 'y'}: "
                         + _listing([f"{c} ({n:,})" for c, n in cats.items()]))
        repeated = int(self.frame.duplicated(["task_id", "model"]).sum())
        if repeated:
            lines.append(f"{repeated:,} records repeat a (task_id, model) pair already seen")
        if self.cascades is not None and len(self.cascades):
            lines.append(f"{len(self.cascades):,} cascade tasks read from run folders (for cascade statistics "
                         f"only: the verifier selected their kept answers)")
        return "\n".join(lines)


def _reasons(counts: Mapping[str, int]) -> str:
    shown = ", ".join(f"{r}: {n:,}" for r, n in sorted(counts.items()) if n)
    return f" ({shown})" if shown else ""


def _listing(items: Sequence[str], limit: int = 12) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... and {len(items) - limit} more"


# ----------------------------------------------------------------------- mapping
def parse_map(items: Sequence[str]) -> dict[str, str]:
    """``["correct=score", "eval=category"]`` -> ``{"correct": "score", "eval": "category"}``
    (a file's column -> a history field); malformed items are one-line InputErrors."""
    out: dict[str, str] = {}
    for item in items:
        column, sep, name = item.rpartition("=")
        column, name = column.strip(), name.strip()
        if not sep or not column or not name:
            raise InputError(f"--map: expected column=field, got {item!r}")
        if column in out and out[column] != name:
            raise InputError(f"--map: column {column!r} mapped twice ({out[column]} and {name})")
        out[column] = name
    check_mapping(out)
    return out


def check_mapping(mapping: Mapping[str, str]) -> None:
    """Every target is a history field, and no two columns feed the same field."""
    seen: dict[str, str] = {}
    for column, name in mapping.items():
        if name not in FIELDS:
            raise InputError(f"--map {column}={name}: unknown field {name!r}; expected one of {', '.join(FIELDS)}")
        if name in seen:
            raise InputError(f"--map: columns {seen[name]!r} and {column!r} both mapped to {name}")
        seen[name] = column


# ----------------------------------------------------------------------- reading
def history_frame(history: Any, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The records of ``history`` given as paths (read here), a :class:`History` or its frame:
    what the Python API of ``calibrate`` and ``evaluate`` accepts."""
    if isinstance(history, pd.DataFrame):
        return history
    if isinstance(history, History):
        return history.frame
    paths = [history] if isinstance(history, str | Path) else list(history)
    return read_history(paths, mapping).frame


def read_history(paths: Sequence[str | Path], mapping: Mapping[str, str] | None = None, *,
                 cascades: bool = False) -> History:
    """Read outcome records from each path (long table, RouterBench-wide table or run folder).

    ``cascades``: also read the cascade tasks of run folders into ``History.cascades`` (a run
    holding only cascade tasks is then not empty).

    ``mapping`` renames columns (file column -> field) in every table that has them; a
    mapped column that no table has is an error (a typo would otherwise pass unnoticed).
    Raises :class:`InputError` (one line) for a missing, malformed or invalid input, and
    when no input holds a single record.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    mapping = dict(mapping or {})
    check_mapping(mapping)
    if not paths:
        raise InputError("no history given: expected outcome files (CSV, JSONL, JSON, Parquet) or run folders")
    frames: list[pd.DataFrame] = []
    summaries: list[FileSummary] = []
    used: set[str] = set()
    tables = 0
    cascade_frames: list[pd.DataFrame] = []
    runs_read: dict[str, Path] = {}  # run id -> the folder it was read from
    for p in paths:
        path = Path(p)
        if path.is_dir():
            run_id = _run_id(path)
            if run_id is not None and run_id in runs_read:  # a copy of a run, or the same folder twice
                summaries.append(FileSummary(path, "run", 0, notes=(
                    f"run {run_id} already read from {runs_read[run_id]}: not counted twice",)))
                continue
            if run_id is not None:
                runs_read[run_id] = path
            frame, summary = _read_run(path)
            if cascades:
                from planner.cascade_runs import read_run_cascades

                records, notes = read_run_cascades(path)
                cascade_frames.append(records)
                if notes:
                    summary = replace(summary, notes=(*summary.notes, *notes))
        else:
            frame, summary, mapped = _read_file(path, mapping)
            used.update(mapped)
            tables += 1
        frames.append(frame)
        summaries.append(summary)
    unused = [c for c in mapping if c not in used]
    if unused and tables:
        raise InputError(f"--map {unused[0]}={mapping[unused[0]]}: no history file has a column {unused[0]!r}")
    total = sum(len(f) for f in frames)
    n_cascades = sum(len(f) for f in cascade_frames)
    if not total and not n_cascades:
        skipped: Counter[str] = Counter()
        for s in summaries:
            skipped.update(s.skipped)
        raise InputError(f"no outcome records in {', '.join(str(s.path) for s in summaries)}"
                         + (f" ({sum(skipped.values()):,} skipped{_reasons(skipped)})" if skipped else ""))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    columns = list(HISTORY_COLUMNS) + [c for c in (*OPTIONAL_COLUMNS, RUN_ID) if c in frame.columns]
    return History(frame=frame[columns].reset_index(drop=True), files=tuple(summaries),
                   cascades=pd.concat(cascade_frames, ignore_index=True) if n_cascades else None)


def _text_columns(mapping: Mapping[str, str]) -> TextColumns:
    names = set(_NAMES) | set(_TEXTS) | {*WIDE_TASK_ID, *WIDE_CATEGORY}

    def pick(header: list[str]) -> list[str]:
        return [c for c in header if mapping.get(c, c) in names
                or c.endswith("|model_response") or c.endswith("|response")]
    return pick


def _read_file(path: Path, mapping: Mapping[str, str]) -> tuple[pd.DataFrame, FileSummary, set[str]]:
    raw = read_table(path, _text_columns(mapping))
    used = {c for c in mapping if c in raw.columns}
    if used:  # a mapped column wins over a column already named like its field
        targets = {mapping[c] for c in used}
        raw = raw.drop(columns=[c for c in raw.columns if c in targets and c not in used])
        raw = raw.rename(columns={c: mapping[c] for c in used})
    shown = {mapping[c]: f"{c} (mapped to {mapping[c]})" for c in used}
    table = _Table(raw, Where(path, *file_format(path)), shown)
    if all(c in raw.columns for c in REQUIRED):
        frame, summary = _long(table, "long")
    elif "model" not in raw.columns and _wide_models(raw.columns):
        frame, summary = _wide(table)
    else:
        missing = [c for c in REQUIRED if c not in raw.columns]
        got = _listing([str(c) for c in raw.columns], 8) if len(raw.columns) else "none"
        raise InputError(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}: expected a long "
                         f"table (task_id, model, score, optional category, cost_usd, input_tokens, "
                         f"output_tokens, latency_s, prompt, response; --map column=field renames) or "
                         f"RouterBench's wide layout (<model>, <model>|total_cost, <model>|model_response, "
                         f"sample_id, eval_name, prompt); got columns: {got}", file=str(path))
    return frame, summary, used


def _read_run(path: Path) -> tuple[pd.DataFrame, FileSummary]:
    from planner.executor.ledger import LEDGER_NAME

    if not (path / LEDGER_NAME).is_file():
        raise InputError(f"not a run folder: expected {LEDGER_NAME} in it (a run's --out folder), "
                         f"or give an outcome file", file=str(path))
    reader = _run_outcomes_reader()
    if reader is None:
        raise InputError("reading a run folder as history needs graded runs (planner.checks.outcomes."
                         "run_outcomes), which this version of routeplan does not have; export the "
                         "outcomes to a CSV instead", file=str(path))
    try:
        raw = reader(path)
    except InputError:
        raise
    except Exception as exc:  # sqlite3.DatabaseError and kin: a damaged or foreign ledger
        raise InputError(f"cannot read the run ledger: {exc}", file=str(path / LEDGER_NAME)) from None
    raw = pd.DataFrame(raw)
    if "source" not in raw.columns:
        raw["source"] = path.name
    frame, summary = _long(_Table(raw, Where(path, "run"), {}), "run")
    frame[RUN_ID] = pd.Series([_run_id(path)] * len(frame), index=frame.index, dtype=object)
    return frame, summary


def _run_id(path: Path) -> str | None:
    """The run's identity in its ledger (None for a ledger that predates it, or none at all)."""
    import sqlite3

    from planner.executor.ledger import LEDGER_NAME, read_meta

    try:
        return read_meta(path / LEDGER_NAME).get("run_id") or None
    except (sqlite3.Error, OSError):
        return None  # _read_run says what is wrong with it


def _run_outcomes_reader() -> Any:
    """The graders' reader of a graded run (``run_dir -> DataFrame`` of outcome columns), or
    None where this build lacks it. Its rows go through the same checks as a long table."""
    try:
        from planner.checks.outcomes import run_outcomes  # type: ignore[import-not-found, unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name in ("planner.checks", "planner.checks.outcomes"):
            return None
        raise  # the reader is there but broken: not the user's input
    return run_outcomes


# ----------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class _Table:
    raw: pd.DataFrame
    where: Where
    shown: dict[str, str]  # field -> how to name its column in errors, when mapped

    def name(self, column: str) -> str:
        return self.shown.get(column, column)


def _long(t: _Table, layout: Layout) -> tuple[pd.DataFrame, FileSummary]:
    raw, notes = t.raw, []
    score, empty = _numbers(raw["score"], t, "score", score=True)
    task_id = _names(raw["task_id"], t, "task_id", required=True)
    model = _names(raw["model"], t, "model", required=True)
    if "category" in raw.columns:
        category = _names(raw["category"], t, "category")
        blank = category.isna().to_numpy()
        if blank.any():
            category = category.fillna(DEFAULT_CATEGORY)
            notes.append(f"{int(blank.sum()):,} rows without a category: category {DEFAULT_CATEGORY!r}")
    else:
        category = pd.Series(DEFAULT_CATEGORY, index=raw.index, dtype=object)
        notes.append(f"no category column: every record is in category {DEFAULT_CATEGORY!r} "
                     f"(--map COLUMN=category names one)")
    source = _source(raw, t)
    data: dict[str, Any] = {"task_id": task_id, "category": category, "model": model, "score": score}
    for name in _AMOUNTS:
        if name in raw.columns:
            data[name] = _numbers(raw[name], t, name)[0]
        elif name in HISTORY_COLUMNS:
            data[name] = np.full(len(raw), np.nan)
    for name in _TEXTS:
        data[name] = _free_text(raw[name]) if name in raw.columns else np.full(len(raw), None, dtype=object)
    data["source"] = source
    ignored = [c for c in raw.columns if c not in FIELDS and not str(c).startswith("Unnamed: ")]
    if ignored:
        notes.append("ignored columns: " + _listing([str(c) for c in ignored], 8))
    frame = _frame(data, keep=~empty)
    skipped_by_model = _count(model[empty].to_numpy(dtype=object)) if empty.any() else {}
    summary = FileSummary(t.where.path, layout, len(frame),
                          {"empty score": int(empty.sum())} if empty.any() else {},
                          skipped_by_model, tuple(notes))
    return frame, summary


def _wide_models(columns: Sequence[Any]) -> dict[str, dict[str, str]]:
    """{model: {field: column}} for every ``<model>|<suffix>`` column whose ``<model>`` is a column."""
    cols = set(map(str, columns))
    out: dict[str, dict[str, str]] = {}
    for c in map(str, columns):
        model, sep, suffix = c.rpartition("|")
        if sep and model in cols and suffix in WIDE_SUFFIXES:
            out.setdefault(model, {}).setdefault(WIDE_SUFFIXES[suffix], c)
    return out


def _wide(t: _Table) -> tuple[pd.DataFrame, FileSummary]:
    raw, notes = t.raw, []
    per_model = _wide_models(raw.columns)
    models = list(per_model)
    orphans = [c for c in map(str, raw.columns) if "|" in c and c.rpartition("|")[2] in WIDE_SUFFIXES
               and c.rpartition("|")[0] not in per_model]
    if orphans:
        raise InputError(f"column {orphans[0]}: no score column {orphans[0].rpartition('|')[0]!r} beside it "
                         f"(RouterBench's layout has <model>, <model>|total_cost, <model>|model_response)",
                         file=str(t.where.path))
    id_col = next((c for c in WIDE_TASK_ID if c in raw.columns), None)
    if id_col is None:
        raise InputError(f"a RouterBench-style table needs a task id column ({' or '.join(WIDE_TASK_ID)})",
                         file=str(t.where.path))
    n, m = len(raw), len(models)
    ids = _names(raw[id_col], t, id_col, required=True)
    repeated = int(ids.duplicated().sum())
    if repeated:
        notes.append(f"{repeated:,} rows repeat a {id_col} of an earlier row (kept: same task id)")
    task_id = ids.to_numpy(dtype=object)
    cat_col = next((c for c in WIDE_CATEGORY if c in raw.columns), None)
    if cat_col is None:
        category = np.full(n, DEFAULT_CATEGORY, dtype=object)
        notes.append(f"no {' or '.join(WIDE_CATEGORY)} column: every record is in category {DEFAULT_CATEGORY!r}")
    else:
        cat = _names(raw[cat_col], t, cat_col)
        if cat.isna().any():
            notes.append(f"{int(cat.isna().sum()):,} rows without a category: category {DEFAULT_CATEGORY!r}")
        category = cat.fillna(DEFAULT_CATEGORY).to_numpy(dtype=object)
    prompt = (_free_text(raw["prompt"], listy=True) if "prompt" in raw.columns
              else np.full(n, None, dtype=object))
    source = _source(raw, t).to_numpy(dtype=object)

    # (n, m) blocks, flattened row-major: each prompt's models stay together
    score = np.empty((n, m))
    empty = np.empty((n, m), dtype=bool)
    for j, model in enumerate(models):
        score[:, j], empty[:, j] = _numbers(raw[model], t, model, score=True)
    data: dict[str, Any] = {"task_id": np.repeat(task_id, m), "category": np.repeat(category, m),
                            "model": np.tile(np.array(models, dtype=object), n), "score": score.ravel()}
    for name in _AMOUNTS:
        shared = raw[name] if name in raw.columns else None
        if shared is None and name in OPTIONAL_COLUMNS and not any(name in f for f in per_model.values()):
            continue
        block = np.full((n, m), np.nan)
        for j, model in enumerate(models):
            column = per_model[model].get(name)
            if column is not None:
                block[:, j] = _numbers(raw[column], t, column)[0]
            elif shared is not None:
                block[:, j] = _numbers(shared, t, name)[0]
        data[name] = block.ravel()
    data["prompt"] = np.repeat(prompt, m)
    responses = np.full((n, m), None, dtype=object)
    for j, model in enumerate(models):
        column = per_model[model].get("response")
        if column is not None:
            responses[:, j] = _free_text(raw[column], listy=True)
    data["response"] = responses.ravel()
    data["source"] = np.repeat(source, m)

    used = {id_col, cat_col, "prompt", "source", *models, *_AMOUNTS,
            *(c for f in per_model.values() for c in f.values())}
    ignored = [str(c) for c in raw.columns if c not in used and not str(c).startswith("Unnamed: ")]
    if ignored:
        notes.append("ignored columns (not models): " + _listing(ignored, 8))
    flat_empty = empty.ravel()
    frame = _frame(data, keep=~flat_empty)
    counts = empty.sum(axis=0)
    skipped_by_model = {models[j]: int(counts[j]) for j in range(m) if counts[j]}
    summary = FileSummary(t.where.path, "routerbench", len(frame),
                          {"empty score": int(flat_empty.sum())} if flat_empty.any() else {},
                          skipped_by_model, tuple(notes))
    return frame, summary


def _frame(data: dict[str, Any], keep: np.ndarray) -> pd.DataFrame:
    """The history frame from column arrays/Series of one input, rows where ``keep``."""
    out: dict[str, pd.Series] = {}
    for name, values in data.items():
        if name in _TEXTS:  # pandas 3 would infer "str" from strings and None: keep None
            out[name] = pd.Series(values, dtype=object)
            continue
        s = values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(values)
        if name in _NAMES:
            out[name] = s.astype(str)
        else:
            out[name] = s.astype("float64")
    frame = pd.DataFrame(out)
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _count(values: np.ndarray) -> dict[str, int]:
    uniq, counts = np.unique(values.astype(str), return_counts=True)
    return {str(u): int(c) for u, c in zip(uniq, counts, strict=True)}


# ----------------------------------------------------------------------- cells
def _source(raw: pd.DataFrame, t: _Table) -> pd.Series:
    name = t.where.path.name
    if "source" not in raw.columns:
        return pd.Series(name, index=raw.index, dtype=object)
    return _names(raw["source"], t, "source").fillna(name)


def _names(col: pd.Series, t: _Table, column: str, *, required: bool = False) -> pd.Series:
    """Short labels as a "string" Series: stripped, blank -> <NA>; whole numbers read from
    JSON/Parquet as floats become ``7``, not ``7.0``. A missing required label is an InputError."""
    if pd.api.types.is_float_dtype(col.dtype):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        finite = vals[~np.isnan(vals)]
        if np.array_equal(finite, np.round(finite)) and (np.abs(finite) < 2**53).all():
            col = col.astype("Int64")
    text = col.astype("string").str.strip()
    text = text.mask(text.str.len() == 0)
    if required:
        missing = text.isna().to_numpy()
        if missing.any():
            pos = int(np.argmax(missing))
            raise t.where.fail(pos, t.name(column), f"{column.replace('_', ' ')} is missing"
                               if column in REQUIRED else "expected a value")
    return text


def _numbers(col: pd.Series, t: _Table, column: str, *, score: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(values float64, empty mask): numbers >= 0 (in [0, 1] and true/false for a score);
    NaN where empty; anything else is an InputError naming the first bad row."""
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        empty = np.isnan(vals)
    else:
        isna = np.array(col.isna().to_numpy(), dtype=bool)  # writable copies (pandas 3 hands out
        vals = np.array(pd.to_numeric(col.astype(object), errors="coerce"), dtype=float)  # read-only views)
        unread = np.isnan(vals) & ~isna
        if unread.any():  # text the number parser did not take: blanks, true/false
            idx = np.flatnonzero(unread)
            words = col.iloc[idx].astype("string").str.strip().str.lower().to_numpy(dtype=object)
            truth = {"true": 1.0, "false": 0.0} if score else {}
            blank = {"", "nan", "na", "n/a", "null", "none"}
            for k, word in zip(idx, words, strict=True):  # only cells pd.to_numeric could not read
                if word in truth:
                    vals[k] = truth[word]
                elif word in blank:
                    isna[k] = True
        empty = isna
    lo_hi = (vals < 0) | (vals > 1) if score else vals < 0
    bad = ~empty & (~np.isfinite(vals) | lo_hi)
    if bad.any():
        pos = int(np.argmax(bad))
        value = col.iloc[pos]
        shown = repr(value.item() if hasattr(value, "item") else value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        expected = "a number in [0, 1] or true/false" if score else "a number >= 0"
        raise t.where.fail(pos, t.name(column), f"expected {expected} (got {shown})")
    return vals, empty


def _free_text(col: pd.Series, *, listy: bool = False) -> np.ndarray:
    """Prompts and responses as str or None. With ``listy``, a Python-list string such as
    ``"['question']"`` (RouterBench) becomes its items joined by newlines; text that does not
    parse as a literal list stays as written."""
    values = np.array(col.to_numpy(dtype=object), dtype=object, copy=True)
    na = pd.isna(values)
    values[na] = None
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        for k in np.flatnonzero(~na):  # lists, arrays or numbers from JSON/Parquet: rare, small
            v = values[k]
            if not isinstance(v, str):
                values[k] = _join(list(v)) if isinstance(v, list | tuple | np.ndarray) else str(v)
    if listy and (~na).any():
        text = pd.Series(values[~na], dtype=object).astype("string")
        stripped = text.str.strip()
        looks = (stripped.str.startswith("[") & stripped.str.endswith("]")).to_numpy(dtype=bool, na_value=False)
        if looks.any():
            codes, uniques = pd.factorize(stripped[looks].to_numpy(dtype=object))
            parsed = np.array([_literal_list(u) for u in uniques], dtype=object)
            idx = np.flatnonzero(~na)[looks]
            parsed_values = parsed[codes]
            keep_raw = np.array([p is None for p in parsed_values], dtype=bool)
            values[idx[~keep_raw]] = parsed_values[~keep_raw]
    return values


def _literal_list(text: str) -> str | None:
    """The items of a Python-list literal joined by newlines, or None if it is not one."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return _join(value) if isinstance(value, list) else None


def _join(items: Sequence[Any]) -> str:
    parts = []
    for item in items:
        if isinstance(item, Mapping) and "content" in item:  # chat messages
            item = item["content"]
        parts.append(item if isinstance(item, str) else str(item))
    return "\n".join(parts)
