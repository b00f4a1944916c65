"""Raw table readers for outcome history: a file in, a pandas DataFrame of its cells out.

Formats follow the suffix: ``.csv``/``.tsv`` (optionally ``.gz``, ``.bz2``, ``.xz``,
``.zst`` or ``.zip`` compressed), ``.jsonl``/``.ndjson`` (also compressed), ``.json`` (a
list of records) and ``.parquet``/``.pq``. Every failure is one
:class:`planner.errors.InputError` line naming the file (and the line where the format has
one). :class:`Where` turns a 0-based data row into "row N (line L)" for error messages; the
line is only looked up when an error is raised, so the happy path stays vectorised.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip")
#: Cells read as "not recorded" in number columns. Text columns treat only a blank cell as
#: missing, so a task id "NA" or a model called "None" survives.
NUMBER_NA = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "NULL", "null", "None", "#N/A", "<NA>"]


def file_format(path: Path) -> tuple[str, str | None]:
    """(format, compression suffix or None) from the file name; unknown is an InputError."""
    suffixes = [s.lower() for s in path.suffixes]
    comp = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSIONS else None
    main = suffixes[-2] if comp and len(suffixes) > 1 else (None if comp else (suffixes[-1] if suffixes else None))
    fmt = FORMATS.get(main or "")
    if fmt is None or (comp and fmt in ("json", "parquet")):
        shown = "".join(path.suffixes[-2:] if comp else path.suffixes[-1:]) or "(none)"
        raise InputError(f"unknown history file type {shown!r}; expected .csv, .tsv, .jsonl, .json or "
                         f".parquet (csv/tsv/jsonl may end in {', '.join(COMPRESSIONS)}), or a run folder",
                         file=str(path))
    return fmt, comp


@dataclass(frozen=True)
class Where:
    """Locates a data row of one file for error messages: ``row N`` (1-based), plus the
    line for CSV/TSV/JSONL, found by re-reading the file only when an error is raised."""

    path: Path
    fmt: str
    compression: str | None = None

    def row(self, pos: int) -> str:
        line = self._line(pos)
        return f"row {pos + 1}" + (f" (line {line})" if line else "")

    def fail(self, pos: int, column: str, message: str) -> InputError:
        return InputError(f"{self.row(pos)}, column {column}: {message}", file=str(self.path))

    def _line(self, pos: int) -> int | None:
        if self.compression or self.fmt not in ("csv", "tsv", "jsonl"):
            return None
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as fh:
                if self.fmt == "jsonl":
                    seen = -1
                    for lineno, line in enumerate(fh, 1):
                        seen += bool(line.strip())
                        if seen == pos:
                            return lineno
                    return None
                reader = csv.reader(fh, delimiter="\t" if self.fmt == "tsv" else ",")
                start, seen = 1, -2  # the header is record -1
                for rec in reader:
                    if rec:  # pandas skips blank lines too
                        seen += 1
                        if seen == pos:
                            return start
                    start = reader.line_num + 1
        except (OSError, UnicodeDecodeError, csv.Error):
            return None
        return None


TextColumns = Callable[[list[str]], Collection[str]]


def read_table(path: Path, text_columns: TextColumns | None = None) -> pd.DataFrame:
    """Read ``path`` as it is. ``text_columns(header)`` is asked which columns to keep as text
    (ids, names, prompts) so that ``007`` stays ``007`` and ``NA`` stays ``NA``."""
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if not path.is_file():
        raise InputError("not a file", file=str(path))
    fmt, comp = file_format(path)
    try:
        if fmt in ("csv", "tsv"):
            return _read_csv(path, fmt, text_columns or (lambda header: ()))
        if fmt == "jsonl":
            return _read_jsonl(path, comp)
        if fmt == "json":
            return _read_json(path)
        return _read_parquet(path)
    except PermissionError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                         f"save the file as UTF-8", file=str(path)) from None
    except (EOFError, OSError) as exc:  # truncated or corrupt compressed files
        raise InputError(f"cannot read: {exc}", file=str(path)) from None


def _read_csv(path: Path, fmt: str, text_columns: TextColumns) -> pd.DataFrame:
    sep = "\t" if fmt == "tsv" else ","
    try:
        header = list(pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8-sig").columns)
        wanted = set(text_columns(header))
        text = [c for c in header if c in wanted]
        na = {c: ([""] if c in text else NUMBER_NA) for c in header}
        return pd.read_csv(path, sep=sep, encoding="utf-8-sig", dtype=dict.fromkeys(text, str),
                           keep_default_na=False, na_values=na, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"empty file: expected a {fmt.upper()} header and outcome rows", file=str(path)) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"malformed {fmt.upper()}: {str(exc).strip().splitlines()[-1]}", file=str(path)) from None


def _read_jsonl(path: Path, comp: str | None) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise InputError("empty file: expected one JSON object per line", file=str(path))
    import pyarrow as pa
    import pyarrow.json as pa_json

    try:  # fast, multithreaded; refuses a column whose type changes (1 then "x", true then 0.5)
        return pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=1 << 24)).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if comp is not None:
        raise InputError("malformed or mixed-type JSON lines: expected one JSON object per line with "
                         "one type per field; decompress the file to see the line", file=str(path))
    return _read_jsonl_slowly(path)


def _read_jsonl_slowly(path: Path) -> pd.DataFrame:
    """Line by line with the standard library: mixed types per field are fine here, and a bad
    line is named."""
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), 1):
        if not line.strip():  # not splitlines: U+2028 is valid inside JSON strings
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {lineno}, column {exc.colno}: malformed JSON: {exc.msg}",
                             file=str(path)) from None
        if not isinstance(obj, dict):
            raise InputError(f"line {lineno}: expected a JSON object (one outcome record), "
                             f"got {type(obj).__name__}", file=str(path))
        records.append(obj)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _read_json(path: Path) -> pd.DataFrame:
    try:
        obj: Any = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(f"line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}",
                         file=str(path)) from None
    if not isinstance(obj, list):
        raise InputError(f"expected a JSON list of outcome records, got {type(obj).__name__}", file=str(path))
    bad = next((i for i, rec in enumerate(obj) if not isinstance(rec, dict)), None)
    if bad is not None:
        raise InputError(f"row {bad + 1}: expected an object (one outcome record), got "
                         f"{type(obj[bad]).__name__}", file=str(path))
    return pd.DataFrame.from_records(obj) if obj else pd.DataFrame()


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(f"malformed Parquet: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                         file=str(path)) from None
