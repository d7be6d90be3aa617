"""Size bounds of every stage's structured output, derived from the stage's ``max_tokens`` in one place.

Why: under grammar-constrained decoding (llama.cpp, vLLM) a weak model that is allowed an unbounded
array or string can loop inside it until ``max_tokens`` and the reply ends with ``finish_reason=length``
(issue 10: every describe call of SmolLM2-135M did). With ``maxItems`` on every array, ``maxLength`` on
every free text and a ``pattern`` on every id, the grammar itself closes the JSON in time: the largest
reply the schema allows fits in ``max_tokens``. The same bounds are enforced locally by the pydantic
models (a server that does not enforce the schema gets a re-ask, never a silently cut value).

The budget arithmetic: ``CHARS_PER_TOKEN`` = 3 where English BPE averages about 4, and each item is
charged a fixed number of tokens for its JSON punctuation, keys and ids. That alone proved too tight on
a real model (SmolLM2-135M on llama.cpp, issue 10): a good describe reply filled its schema at 3.1-3.2
characters per token (the grammar lets the model pretty-print, and newlines plus indentation cost
tokens) and used 380 of 400 tokens, and a degenerate one ("Nigerian-born Nigerian-born ...") came out at
2.8 characters per token and was cut by ``length``. So the schema is sized for ``REPLY_SHARE`` of
``max_tokens`` and the rest is headroom. ``worst_case_tokens`` says what the largest allowed reply
costs by the rule; the tests check it is within that share for every stage across a range of ``max_tokens``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wikipersona_data.errors import ConfigError

CHARS_PER_TOKEN = 3
"""Characters of free text counted per token (conservative; English averages ~4 with BPE tokenizers)."""
TOP_OVERHEAD = 12
"""Tokens of the reply's outer object: braces, top-level keys, the closing of the last array."""
SENTENCE_ID_PATTERN = r"^[0-9]{1,3}\.[0-9]{1,4}$"
"""A Biography sentence id, e.g. ``2.14`` (section index, sentence index)."""
SENTENCE_ID_TOKENS = 6
MAX_EVIDENCE_IDS = 3
NAME_CHARS = 80
"""An axis, category or article title."""
MIN_TEXT_CHARS = 40
REPLY_SHARE = 0.8
"""Share of ``max_tokens`` the largest reply a schema allows may fill by the budget rule (headroom: above)."""


def usable(max_tokens: int) -> int:
    """Tokens of ``max_tokens`` the schema's largest reply is sized for."""
    return int(max_tokens * REPLY_SHARE)


def chars(tokens: int, cap: int) -> int:
    """Free-text characters that fit in ``tokens`` tokens, at most ``cap`` and at least ``MIN_TEXT_CHARS``."""
    return max(MIN_TEXT_CHARS, min(cap, tokens * CHARS_PER_TOKEN))


def text_tokens(n_chars: int) -> int:
    return -(-n_chars // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ListBounds:
    """An array of free-text items (or objects with one free text): item count and text length."""

    min_items: int
    max_items: int
    item_chars: int
    item_overhead: int
    """Tokens per item besides its free text (keys, quotes, commas, ids)."""

    def worst_case_tokens(self, extra: int = 0) -> int:
        """Tokens of the largest reply these bounds allow (``extra``: other fields of the reply)."""
        return TOP_OVERHEAD + extra + self.max_items * (self.item_overhead + text_tokens(self.item_chars))


def fit_list(
    max_tokens: int, *, wanted: int, min_items: int, item_overhead: int, cap: int, extra: int = 0
) -> ListBounds:
    """At most ``wanted`` items of at most ``cap`` characters each, shrinking the count before the text.

    Items get a text of at least 2 x ``MIN_TEXT_CHARS`` while the count can still go down to
    ``min_items``; below that the text shrinks (never under ``MIN_TEXT_CHARS``)."""
    budget = max(1, usable(max_tokens) - TOP_OVERHEAD - extra)
    floor = item_overhead + text_tokens(2 * MIN_TEXT_CHARS)
    n = max(min_items, min(wanted, budget // floor))
    per_item = budget // n - item_overhead
    needed = math.ceil((TOP_OVERHEAD + extra + min_items * (item_overhead + text_tokens(MIN_TEXT_CHARS))) / REPLY_SHARE)
    if per_item * CHARS_PER_TOKEN < MIN_TEXT_CHARS:
        raise ConfigError(
            f"max_tokens = {max_tokens} cannot hold {min_items} item(s) of {MIN_TEXT_CHARS} characters"
            f" (needs about {needed}); raise the stage's max_tokens"
        )
    item_chars = max(MIN_TEXT_CHARS, min(cap, per_item * CHARS_PER_TOKEN))
    return ListBounds(min_items=min(min_items, n), max_items=n, item_chars=item_chars, item_overhead=item_overhead)


# ---- per stage -------------------------------------------------------------------------------------------

CLAIM_OVERHEAD = 24 + MAX_EVIDENCE_IDS * SENTENCE_ID_TOKENS  # {"kind": "preference", "text": "", "evidence": [...]},
DESCRIBE_MIN_CLAIMS = 4  # two of each kind
DESCRIBE_MAX_CLAIMS = 12
CLAIM_CHARS = 200


def describe(max_tokens: int) -> ListBounds:
    return fit_list(
        max_tokens,
        wanted=DESCRIBE_MAX_CLAIMS,
        min_items=DESCRIBE_MIN_CLAIMS,
        item_overhead=CLAIM_OVERHEAD,
        cap=CLAIM_CHARS,
    )


QUESTION_CHARS = 240


def questions(max_tokens: int, n: int) -> ListBounds:
    """``n`` = the batch size the prompt asks for; the schema allows 1 to ``n`` questions."""
    return fit_list(max_tokens, wanted=n, min_items=1, item_overhead=3, cap=QUESTION_CHARS)


CATEGORY_OVERHEAD = 3


def respond_categories(n_min: int, n_max: int) -> ListBounds:
    """Short category names; tiny next to any sensible ``max_tokens``."""
    return ListBounds(min_items=n_min, max_items=n_max, item_chars=NAME_CHARS, item_overhead=CATEGORY_OVERHEAD)


ANSWER_CHARS = 6000


def answer_chars(max_tokens: int) -> int:
    """One answer string filling the reply (``{"answer": "..."}``)."""
    return chars(usable(max_tokens) - TOP_OVERHEAD, ANSWER_CHARS)


RATIONALE_CHARS = 300


def rationale_chars(max_tokens: int) -> int:
    """A judge's or checker's one- or two-sentence rationale before a short verdict field."""
    return chars(usable(max_tokens) - TOP_OVERHEAD - 6, RATIONALE_CHARS)


PERSONA_CHARS = 1500


def persona_chars(max_tokens: int) -> int:
    """An inferred persona text (two short paragraphs)."""
    return chars(usable(max_tokens) - TOP_OVERHEAD, PERSONA_CHARS)


REASON_CHARS = 160


def candidates(max_tokens: int, n: int) -> ListBounds:
    """Proposed people: a title (``NAME_CHARS``) and a short reason each."""
    return fit_list(max_tokens, wanted=n, min_items=1, item_overhead=14 + text_tokens(NAME_CHARS), cap=REASON_CHARS)


MAX_EVIDENCE = 5
