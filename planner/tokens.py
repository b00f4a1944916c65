"""Input token counts with litellm's token counter, offline, imported only when needed.

Importing litellm costs seconds, so it happens only when a task has no ``input_tokens``.
Counts are cached per (tokenizer family, text): in memory, and on disk in
``$ROUTEPLAN_CACHE_DIR`` (default ``~/.cache/routeplan``) so a second ``solve`` of the same
batch does not import litellm at all. The family is the tokenizer litellm selects for the
model (``huggingface_tokenizer_kind``: anthropic, deepseek, llama3 ... or tiktoken).

litellm runs offline here: ``LITELLM_LOCAL_MODEL_COST_MAP`` stops it fetching the price map,
``LITELLM_OFFLINE_MODE`` makes it use only its bundled tokenizers (a model whose tokenizer
would be downloaded falls back to tiktoken inside litellm). Only when litellm cannot be
imported at all do we fall back to tiktoken directly, and failing that to len(text) / 4;
``counter_used()`` says which one counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

_memory: dict[tuple[str, str], int] = {}
_families: dict[str, str] = {}
_used: set[str] = set()


def _cache_path() -> Path:
    root = os.environ.get("ROUTEPLAN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "routeplan")
    return Path(root) / "token_counts.sqlite"


@cache
def _db() -> sqlite3.Connection | None:
    """The on-disk cache, or None when it cannot be opened (read-only home...)."""
    try:
        path = _cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        con.execute("CREATE TABLE IF NOT EXISTS counts (family TEXT, digest TEXT, n INTEGER, "
                    "PRIMARY KEY (family, digest))")
        con.execute("CREATE TABLE IF NOT EXISTS families (model TEXT, version TEXT, family TEXT, "
                    "PRIMARY KEY (model, version))")
        return con
    except (OSError, sqlite3.Error):
        return None


def _version() -> str:
    from planner.pricing import litellm_version

    return litellm_version()


@cache
def _litellm() -> Any | None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    try:
        import litellm
    except Exception:  # not installed or broken: the cheap fallbacks below count instead
        return None
    return litellm


def family(model: str) -> str:
    """The tokenizer family litellm uses for ``model`` (cached on disk per litellm version)."""
    if model in _families:
        return _families[model]
    db = _db()
    if db is not None:
        row = db.execute("SELECT family FROM families WHERE model=? AND version=?",
                         (model, _version())).fetchone()
        if row:
            _families[model] = row[0]
            return str(row[0])
    lm = _litellm()
    fam = "tiktoken"
    if lm is not None:
        try:
            from litellm.utils import huggingface_tokenizer_kind

            fam = huggingface_tokenizer_kind(model) or "tiktoken"
        except ImportError:  # an older litellm: one family per model id is always correct
            fam = f"model:{model}"
    else:
        fam = "fallback"
    _families[model] = fam
    if db is not None and lm is not None:
        db.execute("INSERT OR REPLACE INTO families VALUES (?, ?, ?)", (model, _version(), fam))
    return fam


def _digest(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


def _count_uncached(model: str, messages: list[dict[str, Any]]) -> int:
    lm = _litellm()
    if lm is not None:
        _used.add(f"litellm {_version()} token_counter")
        return int(lm.token_counter(model=model, messages=messages))
    text = "\n".join(m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
                     for m in messages)
    try:
        import tiktoken

        _used.add("tiktoken o200k_base (litellm unavailable)")
        return len(tiktoken.get_encoding("o200k_base").encode(text)) + 3 * len(messages) + 3
    except Exception:
        _used.add("len/4 estimate (litellm and tiktoken unavailable)")
        return max(1, len(text) // 4) + 3 * len(messages) + 3


def count(model: str, messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of ``messages`` for ``model``'s tokenizer (chat overhead included)."""
    fam = family(model)
    key = (fam, _digest(messages))
    if key in _memory:
        return _memory[key]
    db = _db()
    if db is not None:
        row = db.execute("SELECT n FROM counts WHERE family=? AND digest=?", key).fetchone()
        if row:
            _memory[key] = int(row[0])
            return int(row[0])
    n = _count_uncached(model, messages)
    _memory[key] = n
    if db is not None and _litellm() is not None:
        db.execute("INSERT OR REPLACE INTO counts VALUES (?, ?, ?)", (*key, n))
    return n


def count_matrix(messages: Sequence[list[dict[str, Any]] | None], given: Sequence[int | None],
                 models: Sequence[str]) -> np.ndarray:
    """Input tokens, shape (n_tasks, n_models): ``given[i]`` where set, else counted per model.

    Models sharing a tokenizer family are counted once per text.
    """
    n, k = len(given), len(models)
    out = np.zeros((n, k), dtype=np.float64)
    need = [i for i, g in enumerate(given) if g is None]
    for i, g in enumerate(given):
        if g is not None:
            out[i, :] = g
    if not need:
        return out
    from planner.status import status

    # cold, this imports litellm and loads tokenizers: seconds with nothing else to see
    what = f"counting input tokens of {len(need):,} task(s) with litellm's tokenizers"
    with status(what) as say:
        by_family: dict[str, list[int]] = {}
        for j, m in enumerate(models):
            by_family.setdefault(family(m), []).append(j)
        total, done = len(by_family) * len(need), 0
        for cols in by_family.values():
            rep = models[cols[0]]
            for i in need:
                msgs = messages[i]
                assert msgs is not None
                out[i, cols] = count(rep, msgs)
                done += 1
                say(f"{what}: {done / total:.0%}")
    return out


def counter_used() -> list[str]:
    """Which counters ran in this process (empty when every count came from a cache or file)."""
    return sorted(_used)
