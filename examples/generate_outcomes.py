"""Write examples/history/outcomes.csv: a small, seeded outcome history for the docs' examples of
`routeplan calibrate` and `routeplan evaluate` (three models of the default catalog answering
the same 60 prompts in two categories; scores drawn from fixed per-category accuracies).

    python examples/generate_outcomes.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

# model -> (accuracy per category, USD per 1k input tokens, USD per 1k output tokens, tokens/s)
MODELS = {
    "gpt-4.1-nano": ({"arithmetic": 0.55, "capitals": 0.80}, 0.0001, 0.0004, 160.0),
    "gpt-4.1-mini": ({"arithmetic": 0.75, "capitals": 0.90}, 0.0004, 0.0016, 90.0),
    "gpt-4.1": ({"arithmetic": 0.92, "capitals": 0.95}, 0.002, 0.008, 70.0),
}
OUT = Path(__file__).parent / "history" / "outcomes.csv"


def main() -> None:
    rng = random.Random(16)
    rows = []
    for i in range(60):
        category = "arithmetic" if i % 2 else "capitals"
        prompt = f"What is {i} + {i * 7 % 13}?" if category == "arithmetic" else f"Capital of country #{i}?"
        tin = 20 + rng.randint(0, 20)
        for model, (acc, pin, pout, tps) in MODELS.items():
            tout = rng.randint(3, 12)
            rows.append({"task_id": f"q{i:03d}", "category": category, "model": model,
                         "score": int(rng.random() < acc[category]),
                         "cost_usd": round(tin / 1000 * pin + tout / 1000 * pout, 9),
                         "input_tokens": tin, "output_tokens": tout,
                         "latency_s": round(0.4 + tout / tps, 3), "prompt": prompt})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} outcomes written to {OUT}")


if __name__ == "__main__":
    main()
