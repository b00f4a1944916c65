"""Generate a realistic mixed batch of LLM tasks (seeded), e.g. examples/tasks/batch_10k.jsonl.

    python examples/generate_batch.py -n 10000 --seed 7 -o examples/tasks/batch_10k.jsonl

The mix imitates a support/analytics backlog: many short classifications, extractions and
translations, fewer long analyses and code tasks. Input tokens are drawn from a log-normal
per type and written into the file (so loading never needs a tokenizer); prompts are short
stand-ins that say what the task is. Some tasks need JSON output, tools or vision, carry a
latency limit or a quality floor, or share a prompt prefix (prefix_group).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# type: (share of the batch, median input tokens, log-normal sigma, expected output tokens)
MIX = {
    "classification": (0.22, 180, 0.6, 8),
    "extraction": (0.16, 600, 0.7, 150),
    "summarize": (0.14, 1500, 0.8, 160),
    "translate": (0.12, 120, 0.7, 130),
    "chat": (0.10, 400, 0.8, 250),
    "qa": (0.08, 700, 0.7, 120),
    "analysis": (0.07, 2500, 0.8, 500),
    "code": (0.06, 800, 0.8, 450),
    "reasoning": (0.03, 500, 0.6, 600),
    "math": (0.02, 250, 0.5, 400),
}
LANGS = ["Spanish", "French", "German", "Italian", "Japanese", "Portuguese"]
PROMPTS = {
    "classification": "Classify the sentiment of support ticket #{k} as positive, neutral or negative.",
    "extraction": "Extract the customer name, order id and refund amount from email #{k} as JSON.",
    "summarize": "Summarize meeting transcript #{k} in three bullet points.",
    "translate": "Translate product description #{k} into {lang}.",
    "chat": "Reply helpfully to customer message #{k} about a delayed delivery.",
    "qa": "Answer the question in knowledge-base ticket #{k} using the attached article.",
    "analysis": "Analyse the weekly metrics in report #{k} and list the three main risks.",
    "code": "Write a Python function for spec #{k} with tests.",
    "reasoning": "Work out the scheduling puzzle #{k} and justify the answer.",
    "math": "Solve competition problem #{k} and give the final number.",
}


def generate(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    types = list(MIX)
    shares = np.array([MIX[t][0] for t in types])
    picks = rng.choice(len(types), size=n, p=shares / shares.sum())
    cplx_levels = np.array(["low", "medium", "high"])
    out = []
    for k, ti in enumerate(picks.tolist()):
        t = types[ti]
        _, med, sigma, exp_out = MIX[t]
        rec: dict = {
            "id": f"t{k:05d}",
            "type": t,
            "prompt": PROMPTS[t].format(k=k, lang=LANGS[k % len(LANGS)]),
            "input_tokens": int(np.clip(rng.lognormal(np.log(med), sigma), 20, 60000)),
            "expected_output_tokens": int(max(4, exp_out * rng.uniform(0.6, 1.4))),
            "complexity": str(cplx_levels[rng.choice(3, p=[0.45, 0.4, 0.15])]),
        }
        u = rng.random(8)
        if t == "extraction" and u[0] < 0.5:
            rec["capabilities"] = ["json"]
        if t == "chat" and u[1] < 0.15:
            rec["capabilities"] = ["tools"]
        if t in ("qa", "analysis") and u[2] < 0.05:
            rec["capabilities"] = ["vision"]
        if u[3] < 0.15:
            rec["max_latency_s"] = float(rng.choice([5, 10, 30]))
        if u[4] < 0.2 and "max_latency_s" not in rec:
            rec["min_quality"] = round(float(rng.uniform(0.3, 0.5)), 2)
        if u[5] < 0.1:
            rec["priority"] = float(rng.choice([2, 3, 5]))
        if t in ("classification", "extraction") and u[6] < 0.6:
            rec["prefix_group"] = f"{t}-instructions-v{1 + int(u[7] * 3)}"
        out.append(rec)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("-o", "--out", type=Path, default=Path(__file__).parent / "tasks/batch_10k.jsonl")
    args = ap.parse_args()
    with args.out.open("w") as fh:
        for rec in generate(args.n, args.seed):
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
    print(f"wrote {args.n} tasks to {args.out}")


if __name__ == "__main__":
    main()
