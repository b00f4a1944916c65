"""Per-prompt quality: a predictor that ``calibrate`` keeps only where it beats the category profile.

For each (model, category) with enough outcomes and both right and wrong answers, a logistic
regression on hashed word and bigram features of the prompt (scikit-learn's stateless
``HashingVectorizer``: nothing to fit, nothing to pickle) predicts the score; graded scores
that are not 0/1 use ridge regression. Five-fold cross-validation by task compares its Brier
score (mean squared error of the predicted score) with the category profile's (the shrunk
mean of the training folds). The predictor is kept for that pair only when it is better by
at least 1 %; both figures are printed.

The kept models are saved as plain arrays (``numpy.savez``: the non-zero weights and the
intercept), never as pickles, so loading a catalog's predictor runs no code. ``formulate``
applies it to every task whose category it covers (``solve``, ``sweep`` and ``evaluate``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from planner.calibrate import Calibration
    from planner.catalog import Offering

N_FEATURES = 2**18
FOLDS = 5
MIN_TASKS = 50  # fewest tasks of a (model, category) worth a per-prompt model
MIN_GAIN = 0.01  # relative Brier improvement a predictor must show in cross-validation
FORMAT = "routeplan-predictor-1"


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=N_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2")


def _model(binary: bool) -> Any:
    if binary:
        from sklearn.linear_model import LogisticRegression

        # the dual liblinear solver: ~50x faster than lbfgs when features far outnumber tasks
        return LogisticRegression(C=1.0, solver="liblinear", dual=True, max_iter=500)
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1.0, solver="sparse_cg")


def _predict(model: Any, x: Any, binary: bool) -> np.ndarray:
    p = model.predict_proba(x)[:, 1] if binary else model.predict(x)
    return np.clip(p, 0.0, 1.0)


def fit_predictor(frame: pd.DataFrame, cal: Calibration, out_path: str | Path) -> Path | None:
    """Cross-validate a per-prompt predictor for every (model, category) of ``frame``; save the
    ones that beat the profile beside ``out_path`` and name the file in ``cal`` (None: none kept)."""
    from sklearn.model_selection import KFold

    from planner.calibrate import posterior_mean

    if "prompt" not in frame or frame["prompt"].isna().all():
        cal.notes.append("no prompts in the history: no per-prompt predictor (category profiles only)")
        return None
    df = frame[frame["prompt"].notna()]
    prompts = df.drop_duplicates("task_id").set_index("task_id")["prompt"].astype(str)
    vec = _vectorizer()
    x_all = vec.transform(prompts.to_numpy())
    row_of = {t: i for i, t in enumerate(prompts.index)}
    prior = {(r.model, r.category): float(r.prior) for r in cal.table.itertuples(index=False)}
    kept: dict[str, dict[str, Any]] = {}
    report: list[dict[str, Any]] = []
    for (model, category), g in df.groupby(["model", "category"], sort=True):
        g = g.drop_duplicates("task_id")
        y = g["score"].to_numpy(dtype=float)
        n = len(y)
        binary = bool(np.isin(y, (0.0, 1.0)).all())
        if n < MIN_TASKS or y.min() == y.max() or (binary and min(y.sum(), n - y.sum()) < FOLDS):
            continue
        x = x_all[[row_of[t] for t in g["task_id"]]]
        p0 = prior.get((model, category), float(y.mean()))
        err_profile = err_model = 0.0
        for train, test in KFold(FOLDS, shuffle=True, random_state=0).split(x):
            flat = float(posterior_mean(y[train].sum(), train.size, p0, cal.prior_strength))
            err_profile += float(((y[test] - flat) ** 2).sum())
            m = _model(binary).fit(x[train], y[train])
            err_model += float(((y[test] - _predict(m, x[test], binary)) ** 2).sum())
        keep = err_model < (1 - MIN_GAIN) * err_profile
        report.append({"model": model, "category": category, "n": n, "brier_profile": err_profile / n,
                       "brier_predictor": err_model / n, "kept": keep})
        if keep:
            m = _model(binary).fit(x, y)
            w = np.ravel(m.coef_)
            nz = np.flatnonzero(w)
            kept[f"{model}\t{category}"] = {"idx": nz.astype(np.int32), "val": w[nz].astype(np.float32),
                                            "b": float(np.ravel(m.intercept_)[0]), "binary": binary}
    cal.predictor_report = report
    if not report:
        cal.notes.append(f"per-prompt predictor: no (model, category) has the {MIN_TASKS} tasks with both "
                         f"right and wrong answers it needs; category profiles only")
        return None
    if not kept:
        cal.notes.append(f"per-prompt predictor: tried {len(report)} (model, category) pairs, none beat the "
                         f"category profile in {FOLDS}-fold cross-validation; profiles only")
        return None
    out_path = Path(out_path)
    path = out_path.with_name(out_path.stem + ".predictor.npz")
    save(path, kept)
    cal.extra["predictor"] = path.name
    cal.notes.append(f"per-prompt predictor kept for {len(kept)} of {len(report)} (model, category) pairs "
                     f"(saved to {path.name})")
    return path


def save(path: Path, kept: dict[str, dict[str, Any]]) -> None:
    keys = sorted(kept)
    meta = {"format": FORMAT, "n_features": N_FEATURES, "keys": keys,
            "intercepts": [kept[k]["b"] for k in keys], "binary": [kept[k]["binary"] for k in keys]}
    arrays = {"meta": np.array(json.dumps(meta))}
    for i, k in enumerate(keys):
        arrays[f"idx{i}"], arrays[f"val{i}"] = kept[k]["idx"], kept[k]["val"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]


@cache
def _load(path: str, mtime: float) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, float, bool]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT or meta.get("n_features") != N_FEATURES:
                raise InputError(f"predictor: not a {FORMAT} file; calibrate again", file=path)
            out = {}
            for i, key in enumerate(meta["keys"]):
                model, category = key.split("\t")
                out[(model, category)] = (z[f"idx{i}"], z[f"val{i}"], float(meta["intercepts"][i]),
                                          bool(meta["binary"][i]))
            return out
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"predictor: cannot read it ({exc}); calibrate again", file=path) from None


def load(path: str | Path) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, float, bool]]:
    p = Path(path)
    if not p.is_file():
        raise InputError("predictor: no such file (named by the catalog's 'predictor:')", file=str(p))
    return _load(str(p), p.stat().st_mtime)


def predict_quality(path: str | Path, texts: Sequence[str], categories: Sequence[str],
                    offerings: Sequence[Offering], quality: np.ndarray) -> np.ndarray:
    """``quality`` with the predictor's per-prompt score wherever it covers (model, category)."""
    models = load(path)
    if not models:
        return quality
    out = np.array(quality, dtype=np.float64, copy=True)
    cats = np.asarray(categories)
    vec = _vectorizer()
    for (model, category), (idx, val, b, binary) in models.items():
        cols = np.array([j for j, o in enumerate(offerings) if o.model == model], dtype=np.int64)
        rows = np.flatnonzero(cats == category)
        if cols.size == 0 or rows.size == 0:
            continue
        w = np.zeros(N_FEATURES, dtype=np.float64)
        w[idx] = val
        z = vec.transform([texts[int(i)] for i in rows]) @ w + b
        p = 1.0 / (1.0 + np.exp(-z)) if binary else z
        out[np.ix_(rows, cols)] = np.clip(p, 0.0, 1.0)[:, None]
    return out
