"""Calibrate with and without cascades on histories that record every model's answer.

    .venv/bin/python benchmarks/bench_cascade_fit.py                     # 2,000 / 20,000 prompts x 12 models
    .venv/bin/python benchmarks/bench_cascade_fit.py --prompts 5000 --models 8 --repeats 1

``bench_quality.py``'s history has no responses, so calibrate fits no cascades there; this
one generates a multiple-choice history (one category, ``--models`` models of rising skill
and price, wrong answers drawn toward a shared lure so that errors correlate, every answer
recorded) and times ``calibrate`` on it with ``cascades=False`` and ``cascades=True``, each
the median of ``--repeats`` runs in this process (after one untimed warm-up). The difference is the cascade fit:
reading the answers, counting every (first, one to three witnesses, dearer second) on 5
folds, choosing per fold. Calibrate counts on at most 20,000 prompts per category and draws
candidates from the 12 best models, so beyond that the fit stays flat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.calibrate import calibrate  # noqa: E402

LETTERS = np.array(list("ABCD"))


def generate(prompts: int, models: int, seed: int = 0) -> pd.DataFrame:
    """A 4-option quiz: model j right with probability sigmoid(skill_j - difficulty), else
    mostly the prompt's lure; price rising with skill."""
    rng = np.random.default_rng(seed)
    skill, price = np.linspace(-1.0, 2.5, models), np.geomspace(1e-5, 1e-2, models)
    difficulty = rng.normal(0.0, 1.5, prompts)
    right = rng.integers(4, size=prompts)
    lure = (right + 1 + rng.integers(3, size=prompts)) % 4
    ok = rng.random((prompts, models)) < 1 / (1 + np.exp(difficulty[:, None] - skill[None, :]))
    wrong = np.where(rng.random((prompts, models)) < 0.6, lure[:, None], (right[:, None] + 1 + rng.integers(
        3, size=(prompts, models))) % 4)
    pick = np.where(ok, right[:, None], wrong)
    text = [f"Question {i}?\nA) one\nB) two\nC) three\nD) four\nAnswer:" for i in range(prompts)]
    return pd.DataFrame({
        "task_id": np.repeat([f"t{i}" for i in range(prompts)], models), "category": "quiz",
        "model": np.tile([f"bench/m{j:02d}" for j in range(models)], prompts),
        "score": ok.ravel().astype(float), "cost_usd": np.tile(price, prompts), "input_tokens": 50.0,
        "output_tokens": 3.0, "latency_s": np.nan, "prompt": np.repeat(text, models),
        "response": np.char.add("The answer is ", LETTERS[pick.ravel()]), "source": "bench"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, nargs="+", default=[2_000, 20_000])
    ap.add_argument("--models", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("| prompts | models | rows | calibrate s, no cascades | with cascades | cascade fit s | cascades kept |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    calibrate(generate(50, 4), count_tokens=False)  # imports and the base catalog, untimed
    for n in args.prompts:
        frame = generate(n, args.models)
        times: dict[bool, list[float]] = {False: [], True: []}
        kept = 0
        for _ in range(args.repeats):
            for cascades in (False, True):
                t = time.perf_counter()
                cal = calibrate(frame, count_tokens=False, cascades=cascades)
                times[cascades].append(time.perf_counter() - t)
                kept = len(cal.extra.get("cascades", {}).get("candidates", [])) if cascades else kept
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(f"| {n:,} | {args.models} | {len(frame):,} | {off:.2f} | {on:.2f} | {on - off:.2f} | {kept} |")


if __name__ == "__main__":
    main()
