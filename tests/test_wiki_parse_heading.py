"""prepare's lead/body split: the literal-newline heading search finds what the ``^``-anchored regex finds."""

from __future__ import annotations

import random

from wikipersona_data.wiki.parse import _HEADING_RE, _first_heading

PIECES = ["=", "==", "===", "\n", " ", "\t", "a", "=\n", "\r", "\n=", "x=", "\n\n"]


def _plain(text: str) -> int | None:
    m = _HEADING_RE.search(text)
    return m.start() if m else None


def test_first_heading_equals_anchored_search_on_random_texts() -> None:
    rng = random.Random(20261127)
    found = 0
    for _ in range(20_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))
        assert _first_heading(text) == _plain(text), repr(text)
        found += _plain(text) is not None
    assert found > 1_000  # both outcomes are exercised


def test_first_heading_cases() -> None:
    assert _first_heading("== Early life ==\ntext") == 0
    assert _first_heading("lead\n== Early life == \t\nbody") == 5
    assert _first_heading("lead\n=not a heading\n") is None
    assert _first_heading("") is None
