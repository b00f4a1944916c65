"""Reading what a free-text answer says: a chosen option, a number, a JSON value, a code block.

Models wrap answers in prose and markdown; these helpers find the part a check reads and
return None when there is none (the grader then says so in its reason).
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from typing import Any

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "¡¿«»“”‘’–—…·"})


def normalise(text: str, *, punctuation: bool = True) -> str:
    """Case-folded, NFKC, accents kept, punctuation (optionally) and runs of spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if punctuation:
        text = text.translate(_PUNCT)
    return " ".join(text.split())


def fenced_blocks(text: str, languages: tuple[str, ...] = ()) -> list[str]:
    """Bodies of ```fenced``` blocks, only those tagged with one of ``languages`` if given
    (untagged blocks always count)."""
    out = []
    for lang, body in _FENCE.findall(text):
        if not languages or not lang or lang.lower() in languages:
            out.append(body)
    return out


def code_of(text: str) -> str:
    """The answer's Python: its fenced python blocks joined, else the whole text."""
    blocks = fenced_blocks(text, ("python", "py", "python3"))
    return "\n\n".join(blocks) if blocks else text


def choice_of(text: str, labels: list[str], option_texts: dict[str, str] | None = None) -> str | None:
    """The option label an answer picks, or None when it picks none (or several equally).

    Labels are read in either case after "answer is", in "(b)" or "**b**"; a lone lower-case
    letter followed by a word ("answer is a bit ...") is the article, not an option.
    """
    alt = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    patterns = [
        (rf"(?i:answer|choice|option)\s*(?i:is|:)?\s*:?\s*[\(\[]?\**\s*((?i:{alt}))\b", 0),  # "answer is (B)"
        (rf"^\s*[\(\[]?\**({alt})\**[\)\]]?\s*(?:[.):]|$)", re.MULTILINE),             # "B." / "(B)" / "B"
        (rf"[\(\[]((?i:{alt}))[\)\]]", 0),                                                 # "... (c) ..."
        (rf"\*\*((?i:{alt}))\*\*", 0),                                                       # "**C**"
    ]
    for i, (pattern, flags) in enumerate(patterns):
        found = [m.group(1).upper() for m in re.finditer(pattern, text, flags)
                 if not (m.group(1).islower() and re.match(r"\s+[A-Za-z]", text[m.end():]))]
        if found:
            return found[-1] if i == 0 else found[0]  # the conclusion, or the first standalone label
    if option_texts:  # the option's text quoted instead of its letter
        norm = normalise(text)
        hits = [k for k, v in option_texts.items() if normalise(v) and normalise(v) in norm]
        if len(hits) == 1:
            return hits[0].upper()
    bare = re.findall(rf"\b({alt})\b", text.strip())
    return bare[0].upper() if len(set(bare)) == 1 else None


def number_of(text: str) -> float | None:
    """The number an answer gives: after 'answer' / '=' / in \\boxed{} when present, else the last."""
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    if boxed:
        value = _last_number(boxed[-1])
        if value is not None:
            return value
    marked = re.split(r"(?i)(?:final answer|answer)\s*(?:is|:|=)?", text)
    if len(marked) > 1:
        value = _first_number(marked[-1])
        if value is not None:
            return value
    return _last_number(text)


_FRACTION = re.compile(r"\\[dt]?frac\{\s*(-?\d+(?:\.\d+)?)\s*\}\{\s*(-?\d+(?:\.\d+)?)\s*\}"
                       r"|(?<![\w./])(-?\d+)\s*/\s*(\d+)(?![\w/]|\.\d)")


def _numbers(text: str) -> list[float]:
    """Numbers in order of appearance; ``\\frac{a}{b}`` and ``a/b`` count as one number."""
    out: list[tuple[int, float]] = []
    for m in _FRACTION.finditer(text):
        num, den = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
        if float(den) != 0:
            out.append((m.start(), float(num) / float(den)))
    text = _FRACTION.sub(lambda m: " " * len(m.group(0)), text)
    for value_at, value in _plain_numbers(text):
        out.append((value_at, value))
    return [v for _, v in sorted(out)]


def _plain_numbers(text: str) -> list[tuple[int, float]]:
    out = []
    for m in _NUMBER.finditer(text):
        token = m.group(0)
        if not any(ch.isdigit() for ch in token):
            continue
        pct = token.endswith("%")
        token = token.rstrip("%").replace(",", "").replace("−", "-")
        try:
            value = float(token)
        except ValueError:
            continue
        out.append((m.start(), value / 100 if pct else value))
    return out


def _first_number(text: str) -> float | None:
    found = _numbers(text)
    return found[0] if found else None


def _last_number(text: str) -> float | None:
    found = _numbers(text)
    return found[-1] if found else None


def json_of(text: str) -> tuple[bool, Any, str]:
    """(found, value, why not): the whole answer as JSON, else its fenced block, else the
    outermost {...} or [...] span."""
    candidates = [text.strip()]
    candidates += [b.strip() for b in fenced_blocks(text, ("json", "json5", "javascript"))]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            candidates.append(text[start:end + 1])
    error = "no JSON in the answer"
    for c in candidates:
        if not c:
            continue
        try:
            return True, json.loads(c), ""
        except json.JSONDecodeError as exc:
            error = f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    return False, None, error
