"""Near-duplicate question search: prefix-filtered shingle index vs the plain inverted index, side by side.

Both find the same duplicates (the script checks); the ratio is what prefix filtering buys on templated
questions, where most shingles ("what is the best way to") are shared by thousands of texts.

    .venv/bin/python benchmarks/bench_filters.py [N]
"""

from __future__ import annotations

import random
import sys
import time

from wikipersona_data.verify.questions import ShingleIndex, shingle_frequency
from wikipersona_data.verify.text import shingles

FORMS = (
    "What is the best way to {} {} for my {}?",
    "How should I {} my {} before {}?",
    "Can you suggest {} ideas for {} and {}?",
    "Which {} would you pick for {}, and why {}?",
    "What mistakes do people make with {} {} {}?",
)


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(n // 2)]
    return [rng.choice(FORMS).format(*(rng.choice(words) for _ in range(3))) for _ in range(n)]


def dedupe(items: list[str], threshold: float, prefix: bool) -> tuple[list[int], float]:
    """Indices dropped as near-duplicates, and seconds taken."""
    started = time.perf_counter()
    freq = shingle_frequency(items, 5)
    # threshold ~0 makes every shingle part of the prefix: the plain inverted index
    index = ShingleIndex(5, threshold if prefix else 1e-12, freq)
    dropped = []
    for i, text in enumerate(items):
        score, _key, grams = index.best(text)
        if score >= threshold:
            dropped.append(i)
        else:
            index.add(grams, i)
    return dropped, time.perf_counter() - started


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    items = texts(n)
    avg = sum(len(shingles(t, 5)) for t in items) / n
    fast, t_fast = dedupe(items, 0.7, prefix=True)
    slow, t_slow = dedupe(items, 0.7, prefix=False)
    assert fast == slow, "prefix filtering changed the verdicts"
    print(f"{n} templated questions, {avg:.0f} shingles each, {len(fast)} near-duplicates (jaccard >= 0.7)")
    print(f"plain inverted index: {t_slow:.2f} s")
    print(f"prefix filtering:     {t_fast:.2f} s")
    print(f"speed-up: {t_slow / t_fast:.1f}x")


if __name__ == "__main__":
    main()
