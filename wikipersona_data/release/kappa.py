"""Raw agreement and Cohen's kappa between two raters' labels of the same items.

Why here and not a library: the formula is three lines, and the only well-kept implementation
(scikit-learn's ``cohen_kappa_score``) is not a dependency of this package.

For two raters labelling the same ``n`` items with labels from a set ``L``:

- observed agreement ``p_o`` = share of items both gave the same label;
- chance agreement ``p_e`` = sum over labels ``l`` of ``share_rater1(l) * share_rater2(l)``
  (what two raters with these label frequencies would agree on by chance);
- ``kappa = (p_o - p_e) / (1 - p_e)``.

When ``p_e == 1`` (both raters used one and the same label for every item) kappa is undefined: it is
returned as ``None`` rather than a made-up 0 or 1, so a report never shows a figure that means nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def raw_agreement(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of items on which ``a`` and ``b`` agree (``p_o``)."""
    _check(a, b)
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels (``None`` when chance agreement is 1, see the module doc)."""
    _check(a, b)
    n = len(a)
    p_o = raw_agreement(a, b)
    count_a, count_b = Counter(a), Counter(b)
    p_e = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def _check(a: Sequence[str], b: Sequence[str]) -> None:
    if len(a) != len(b):
        raise ValueError(f"raters labelled different numbers of items ({len(a)} vs {len(b)})")
    if not a:
        raise ValueError("no items to compare")
