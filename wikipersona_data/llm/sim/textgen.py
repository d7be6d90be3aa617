"""Deterministic prose and a token count that clients can reconcile with.

The simulator has no model, so "tokens" are words and punctuation marks: a stable, cheap
approximation of BPE counts (English averages ~1.3 tokens per word) that lets ``max_tokens``
truncation and usage accounting agree with each other exactly.
"""

from __future__ import annotations

import random
import re
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")

# Neutral connective words so generated prose reads like sentences, not a bag of the prompt's nouns.
FILLER_WORDS: tuple[str, ...] = (
    "about", "also", "because", "choice", "clear", "common", "consider", "daily", "detail", "different",
    "early", "example", "experience", "fact", "first", "general", "good", "helpful", "idea", "important",
    "interest", "known", "later", "life", "local", "long", "matter", "might", "most", "often", "option",
    "people", "personal", "place", "plan", "point", "practice", "public", "question", "reason", "simple",
    "small", "some", "support", "think", "through", "time", "usually", "value", "various", "way", "well",
    "work", "world", "years",
)  # fmt: skip


def count_tokens(text: str) -> int:
    """Approximate token count: one per word and one per punctuation mark."""
    return len(_TOKEN.findall(text))


def truncate_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` after its ``max_tokens``-th token; returns (text, was_truncated)."""
    if max_tokens <= 0:
        return "", bool(text)
    for index, match in enumerate(_TOKEN.finditer(text)):
        if index == max_tokens - 1:
            end = match.end()
            return text[:end], end < len(text.rstrip())
    return text, False


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of typed parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def user_text(messages: list[dict[str, Any]]) -> str:
    """The user messages of the current turn (after the last assistant message), in order, blank-line
    separated: a prompt may put its shared part (a persona card, an article) and its per-call part (the
    question) in separate user messages; a re-ask's turn is its correction message alone."""
    turn: list[str] = []
    for message in messages:
        if message.get("role") == "assistant":
            turn = []
        elif message.get("role") == "user":
            turn.append(message_text(message))
    return "\n\n".join(turn)


def words_of(text: str) -> list[str]:
    """Distinct content words in first-seen order (deterministic, case-folded)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text):
        seen.setdefault(word.lower(), None)
    return list(seen)


def sentence(rng: random.Random, vocabulary: list[str], min_words: int = 6, max_words: int = 14) -> str:
    """One capitalised sentence mixing prompt words with connective filler."""
    size = rng.randint(min_words, max_words)
    chosen = [
        rng.choice(vocabulary) if vocabulary and rng.random() < 0.6 else rng.choice(FILLER_WORDS) for _ in range(size)
    ]
    text = " ".join(chosen)
    return text[:1].upper() + text[1:] + "."


def paragraph(rng: random.Random, prompt: str, min_sentences: int = 2, max_sentences: int = 5) -> str:
    """A few sentences built from the prompt's words, different for every rng state."""
    vocabulary = words_of(prompt)
    return " ".join(sentence(rng, vocabulary) for _ in range(rng.randint(min_sentences, max_sentences)))


def phrase(rng: random.Random, vocabulary: list[str], min_words: int, max_words: int) -> str:
    """A short lowercase run of words, used to fill string fields."""
    size = rng.randint(min_words, max_words)
    return " ".join(
        rng.choice(vocabulary) if vocabulary and rng.random() < 0.5 else rng.choice(FILLER_WORDS) for _ in range(size)
    )
