"""Regenerate ``catalogs/default.yaml`` from the public sources, so every number is traceable.

    python catalogs/build_default.py [--sources ../shared/data/catalog-sources] [-o catalogs/default.yaml]

Speed (ttft_s, output_tokens_per_s) and benchmark scores come from the Artificial Analysis
snapshot ``artificial_analysis_latency_2025-10-26.csv`` (rows at the "Medium" prompt length,
1,000 tokens). Quality per task type is a weighted mean of raw benchmark accuracies (see
QUALITY_WEIGHTS); prices are *not* written here: they come from litellm's price map at load
time. Rerun after changing MODELS or QUALITY_WEIGHTS and commit both files.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

AA_FILE = "artificial_analysis_latency_2025-10-26.csv"
AA_LENGTH = "Medium"  # AA prompt-length class: Short = 300, Medium = 1,000, Long = 1,500 tokens

# litellm id -> (AA "Model" row, vendor, reasoning model?)
MODELS: dict[str, tuple[str, str, bool]] = {
    "gpt-5": ("GPT-5 (medium)", "OpenAI", True),
    "gpt-5-mini": ("GPT-5 mini (medium)", "OpenAI", True),
    "gpt-5-nano": ("GPT-5 nano (medium)", "OpenAI", True),
    "gpt-4.1": ("GPT-4.1", "OpenAI", False),
    "gpt-4.1-mini": ("GPT-4.1 mini", "OpenAI", False),
    "gpt-4.1-nano": ("GPT-4.1 nano", "OpenAI", False),
    "gemini/gemini-2.5-pro": ("Gemini 2.5 Pro (AI Studio)", "Google", True),
    "gemini/gemini-2.5-flash": ("Gemini 2.5 Flash (Vertex)", "Google", True),
    "bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0": ("Claude 4 Sonnet", "Anthropic", False),
    "bedrock/us.anthropic.claude-opus-4-20250514-v1:0": ("Claude 4 Opus", "Anthropic", False),
    "bedrock/us.meta.llama4-maverick-17b-instruct-v1:0": ("Llama 4 Maverick", "Meta", False),
    "bedrock/us.meta.llama4-scout-17b-instruct-v1:0": ("Llama 4 Scout", "Meta", False),
    "bedrock/us.meta.llama3-3-70b-instruct-v1:0": ("Llama 3.3 70B", "Meta", False),
    "bedrock/meta.llama3-1-8b-instruct-v1:0": ("Llama 3.1 8B", "Meta", False),
    "deepseek/deepseek-chat": ("DeepSeek V3 (DeepSeek)", "DeepSeek", False),
    "deepseek/deepseek-reasoner": ("DeepSeek R1 (DeepSeek) [128k]", "DeepSeek", True),
    "azure_ai/mistral-medium-2505": ("Mistral Medium 3", "Mistral", False),
    # direct Anthropic API (ANTHROPIC_API_KEY): the ids litellm's price map prices, with batch
    # and cache prices; AA measured their predecessors (see PROXIES)
    "anthropic/claude-sonnet-4-5": ("Claude 4 Sonnet", "Anthropic", False),
    "anthropic/claude-haiku-4-5": ("Claude 3.5 Haiku", "Anthropic", False),
    "gpt-4o-mini": ("GPT-4o mini", "OpenAI", False),
}

# models whose AA row is another model's: why that row stands in (printed in their sources)
PROXIES: dict[str, str] = {
    "anthropic/claude-sonnet-4-5": "AA's snapshot has no Claude Sonnet 4.5; its predecessor Claude 4 "
    "Sonnet (same price, Anthropic's API) stands in",
    "anthropic/claude-haiku-4-5": "AA's snapshot has no Claude Haiku 4.5; its predecessor Claude 3.5 "
    "Haiku (Anthropic's API) stands in, likely understating its quality and speed",
}

BENCH = {
    "mmlu_pro": "MMLU-Pro (Reasoning & Knowledge)",
    "gpqa": "GPQA Diamond (Scientific Reasoning)",
    "livecodebench": "LiveCodeBench (Coding)",
    "scicode": "SciCode (Coding)",
    "ifbench": "IFBench (Instruction Following)",
    "aime25": "AIME 2025 (Competition Math)",
}

# task type -> benchmark weights (sum 1). Quality = sum(weight * raw accuracy in [0, 1]).
# Raw accuracy, not min-max over the catalog: a min-max score would call the weakest model
# 0 and move every score when a model is added, which makes min_quality meaningless.
QUALITY_WEIGHTS: dict[str, dict[str, float]] = {
    "code": {"livecodebench": 0.6, "scicode": 0.4},
    "math": {"aime25": 1.0},
    "reasoning": {"gpqa": 0.5, "aime25": 0.3, "mmlu_pro": 0.2},
    "analysis": {"mmlu_pro": 0.5, "gpqa": 0.3, "ifbench": 0.2},
    "qa": {"mmlu_pro": 0.7, "gpqa": 0.3},
    "summarize": {"mmlu_pro": 0.5, "ifbench": 0.5},
    "extraction": {"ifbench": 0.6, "mmlu_pro": 0.4},
    "classification": {"mmlu_pro": 0.7, "ifbench": 0.3},
    # no multilingual benchmark covers these models in the sources (WMT/MGSM are sparse in
    # llm_stats_provider_catalog.csv): general knowledge + instruction following as a proxy
    "translate": {"mmlu_pro": 0.6, "ifbench": 0.4},
    "chat": {"ifbench": 0.4, "mmlu_pro": 0.3, "gpqa": 0.3},
    "writing": {"ifbench": 0.6, "mmlu_pro": 0.4},
}


def pct(s: str) -> float | None:
    """'84%' -> 0.84; AA's '--' (not measured) -> None."""
    s = s.strip()
    return None if s in ("", "--") else float(s.rstrip("%")) / 100.0


def type_scores(scores: dict[str, float | None]) -> tuple[dict[str, float], list[str]]:
    """Quality per task type from raw benchmark accuracies, and the notes on any gaps.

    A benchmark AA did not run for the model drops out and the type's other weights are
    renormalised; a type left with no benchmark at all takes the model's lowest score over
    the other types, so an unmeasured skill is never rated above a measured one.
    """
    out: dict[str, float] = {}
    notes: list[str] = []
    unmeasured = []
    for t, w in QUALITY_WEIGHTS.items():
        present = {b: wt for b, wt in w.items() if scores[b] is not None}
        if not present:
            unmeasured.append(t)
            continue
        total = sum(present.values())
        out[t] = sum(wt * scores[b] for b, wt in present.items()) / total  # type: ignore[operator]
    missing = [b for b, v in scores.items() if v is None]
    if missing:
        notes.append(f"not measured by AA: {', '.join(missing)} (weights renormalised over the rest)")
    if unmeasured:
        low = min(out.values())
        out = {t: out.get(t, low) for t in QUALITY_WEIGHTS}
        notes.append(f"{', '.join(unmeasured)}: no benchmark measured, the model's lowest type score")
    return out, notes


def build(sources: Path) -> str:
    rows = {r["Model"]: r for r in csv.DictReader((sources / AA_FILE).open()) if r["length"] == AA_LENGTH}
    picked = {mid: rows[name] for mid, (name, _, _) in MODELS.items()}
    # reasoning models think before the first visible token; their extra time to first token
    # over the non-reasoning median, at their output rate, estimates the hidden (billed) tokens
    # (stand-ins for other models, see PROXIES, are left out: their rows are not those models')
    base_ttft = statistics.median(float(picked[m]["MedianFirst Chunk (s)"])
                                  for m, (_, _, r) in MODELS.items() if not r and m not in PROXIES)
    out = [
        "# routeplan default catalog. GENERATED by catalogs/build_default.py: edit that, then rerun.",
        "# Methodology and sources: catalogs/README.md. Prices are read at load time from litellm's",
        "# bundled price map (model_prices_and_context_window_backup.json) unless a model sets",
        "# input_cost_per_token / output_cost_per_token here.",
        "version: 1",
        "sources:",
        f"  aa: \"Artificial Analysis, {AA_FILE} (artificialanalysis.ai, scraped by",
        "    Nidhal-Jegham/HowHungryisAIDashboard); rows at prompt length Medium (1,000 tokens)\"",
        "  limits: \"assumption: a modest paid tier; put your account's limits in an overrides catalog\"",
        "defaults:",
        "  concurrency: 16",
        "  rpm: 500",
        "  tpm: 400000",
        "  batch_window_s: 86400",
        "  verbosity: 1.0",
        "  sources:",
        "    concurrency: limits",
        "    rpm: limits",
        "    tpm: limits",
        "    batch_window_s: \"provider batch APIs complete within 24 h (OpenAI, Gemini, Bedrock, Anthropic docs)\"",
        "    verbosity: \"assumption: output length as the task expects (no public per-model data)\"",
        "models:",
    ]
    for mid, (name, vendor, reasoning) in MODELS.items():
        r = picked[mid]
        ttft = float(r["MedianFirst Chunk (s)"])
        tps = float(r["MedianTokens/s"])
        scores = {k: pct(r[col]) for k, col in BENCH.items()}
        quality, gaps = type_scores(scores)
        reasoning_tokens = int(round(max(ttft - base_ttft, 0.0) * tps, -1)) if reasoning else 0
        cite = f"aa: {name!s}, host {r['Host']}, {AA_LENGTH} prompt ({r['Query Length']} tokens)"
        if mid in PROXIES:
            cite = f"{cite} (a proxy: {PROXIES[mid]})"
        out += [
            f"  - id: {mid!r}",
            f"    vendor: {vendor}",
            f"    ttft_s: {ttft}",
            f"    output_tokens_per_s: {tps:g}",
            f"    reasoning_tokens: {reasoning_tokens}",
            "    quality:",
        ]
        for t, q in quality.items():
            out.append(f"      {t}: {q:.3f}")
        bench_txt = ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} --" for k, v in scores.items())
        notes = "".join(f"; {n}" for n in ([PROXIES[mid]] if mid in PROXIES else []) + gaps)
        out += [
            "    sources:",
            f"      ttft_s: \"{cite}, MedianFirst Chunk (s)\"",
            f"      output_tokens_per_s: \"{cite}, MedianTokens/s\"",
            (f"      reasoning_tokens: \"(ttft_s - {base_ttft:.2f} s non-reasoning median) x tokens/s\""
             if reasoning else "      reasoning_tokens: \"not a reasoning model\""),
            f"      quality: \"aa: {name}: {bench_txt}; weights in catalogs/README.md{notes}\"",
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=Path, default=here.parent.parent / "shared/data/catalog-sources")
    ap.add_argument("-o", "--out", type=Path, default=here / "default.yaml")
    args = ap.parse_args()
    args.out.write_text(build(args.sources))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
