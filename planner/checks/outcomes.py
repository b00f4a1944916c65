"""A graded run read back as outcome history: one row per graded answer, for calibrating the
next plan's quality, token, cost and latency estimates (``routeplan calibrate``).

    from planner.checks import run_outcomes
    df = run_outcomes("runs/demo")
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from planner.errors import InputError

#: The columns of :func:`run_outcomes`, in order.
OUTCOME_COLUMNS = ["task_id", "category", "model", "score", "cost_usd", "input_tokens", "output_tokens",
                   "latency_s", "prompt", "response", "source"]


def run_outcomes(run_dir: str | Path) -> Any:
    """One row per graded task of the run in ``run_dir`` (a pandas DataFrame, columns
    ``OUTCOME_COLUMNS``): its type as ``category``, the litellm id of the model whose answer
    was graded, the score in [0, 1], that answer's cost (USD; grading excluded), tokens and
    latency, the prompt and the response, and ``source`` = ``"run <run_dir>"``.

    Tasks run as cascades are left out (the verifier selected their kept answers).

    Raises InputError when ``run_dir`` holds no run ledger. A run with no graded answer gives
    an empty frame with the same columns.
    """
    import pandas as pd

    from planner.executor.ledger import LEDGER_NAME, graded_answers
    from planner.money import to_usd

    path = Path(run_dir) / LEDGER_NAME
    if not path.exists():
        raise InputError(f"{run_dir}: no run ledger ({LEDGER_NAME}) here")
    try:
        meta, rows = graded_answers(path)
    except sqlite3.Error as exc:
        raise InputError(f"{path}: not a routeplan run ledger ({exc})") from None
    litellm_ids = {name: m.get("litellm_model", name) for name, m in json.loads(meta.get("models") or "{}").items()}
    source = f"run {run_dir}"
    records = [{"task_id": task_id, "category": category,
                "model": litellm_ids.get(model, (model or "").split("@")[0]),
                "score": float(score), "cost_usd": to_usd(cost or 0),
                "input_tokens": tin, "output_tokens": tout, "latency_s": latency,
                "prompt": prompt, "response": output, "source": source}
               for task_id, category, model, score, cost, tin, tout, latency, prompt, output in rows]
    frame = pd.DataFrame.from_records(records, columns=OUTCOME_COLUMNS)
    return frame.astype({"score": "float64", "cost_usd": "float64", "latency_s": "float64",
                         "input_tokens": "Int64", "output_tokens": "Int64"})
