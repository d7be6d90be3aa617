"""Stable, content-derived ids and seeded choices.

Ids depend only on content (titles, texts, other ids), never on run order, so a resumed or repeated
build assigns the same id to the same row and outputs can be sorted and compared byte for byte.
Seeded randomness is derived the same way: ``rng_for(seed, *parts)`` gives every (persona, question)
its own generator, so adding a persona never changes the draws of another.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata

_NON_SLUG = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")


def slug(title: str) -> str:
    """'Dana Okafor (chef)' -> 'dana-okafor-chef'; accents folded so ids stay ASCII and stable."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    value = _NON_SLUG.sub("-", folded).strip("-")
    if not value:  # titles in non-Latin scripts: fall back to a hash, still stable
        value = "p-" + content_id(title, length=10)
    return value


def normalise_text(text: str) -> str:
    """Case, whitespace and Unicode form folded: what 'the same question' means for ids."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def content_id(*parts: object, length: int = 16) -> str:
    """Hex digest of the parts joined by a separator that cannot occur in them."""
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:length]


def question_id(question_type: str, scope: str, text: str) -> str:
    return "q-" + content_id(question_type, scope, normalise_text(text))


def candidate_id(question_id_: str, k: int, text: str) -> str:
    return "c-" + content_id(question_id_, k, text)


def pair_id(persona_id: str, question_id_: str) -> str:
    return "p-" + content_id(persona_id, question_id_)


def judgment_id(persona_id: str, question_id_: str) -> str:
    return "j-" + content_id(persona_id, question_id_)


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator private to (seed, parts): independent of how many other draws happened before."""
    return random.Random(int(content_id(seed, *parts, length=16), 16))


def seeded_order(seed: int, items: list[str], *scope: object) -> list[str]:
    """Items sorted by a seeded hash: a deterministic shuffle that is stable when items are added."""
    return sorted(items, key=lambda item: (content_id(seed, *scope, item), item))
