"""Question filters (stage "questions"): length, answerability, identity and category leaks, duplicates.

Near-duplicates are found with exact character n-gram Jaccard, candidates found by prefix filtering
over an inverted shingle index (``ShingleIndex``), rather than MinHash/LSH (``datasketch``): questions
are short (tens of shingles), a build has a few thousand of them, so exact Jaccard on the few
candidates prefix filtering leaves is fast, has no false negatives at the threshold (LSH has), and
adds no dependency (datasketch needs scipy, which nothing else here uses). An optional
embedding-cosine pass (``question_embed_dedupe``) catches paraphrases that share few characters; it
uses the recipe's embedding model through the build's client.

Which of two duplicates is dropped is fixed by a deterministic order (type, scope, batch, position),
so the stage's repeated calls (after every top-up batch, then once on all questions) agree.
"""

from __future__ import annotations

import math
import re
from typing import Any

from wikipersona_data.stages.rows import QuestionRow
from wikipersona_data.textsafety import fold
from wikipersona_data.verify.base import Filter, FilterResult
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.text import jaccard, normalise, shingles, tokens, word_pattern

REALTIME = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(today'?s|tonight'?s|tomorrow'?s|current|right now|latest|live|this morning'?s)\b[^?.!]*"
        r"\b(weather|forecast|temperature|stock|share price|price of|score|scores|news|headlines|traffic|"
        r"exchange rate)\b",
        r"\b(weather|forecast|traffic|score)\b[^?.!]*\b(today|tonight|right now|at the moment|currently)\b",
        r"\bstock price\b",
        r"\bwhat time is it\b",
        r"\bwho (won|is winning) (last night|today|yesterday)\b",
    )
]
ACTIONS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\s*(please\s+)?(book|order|call|phone|text|email|e-mail|send|buy|purchase|schedule|reserve|remind|"
        r"turn (on|off)|set (an?|my) (alarm|timer|reminder))\b",
        r"\b(can|could|would|will) you (please )?(book|order|call|phone|text|email|e-mail|send|buy|purchase|"
        r"schedule|reserve|remind|turn (on|off)|set (an?|my) (alarm|timer|reminder)|transfer|pay)\b",
        r"\bremind me\b",
        r"\bset (an?|my) (alarm|timer|reminder)\b",
    )
]
MEDIA = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(draw|paint|sketch|illustrate)\b (me |us )?(an?|the|my|some)\b",
        r"\b(generate|create|make|render|design) (me |us )?(an?|the|some)? ?(image|picture|photo|photograph|"
        r"drawing|illustration|logo|video|animation|song recording|audio)\b",
        r"\bplay (me |us )?(an?|the|some|my)? ?(song|music|track|playlist|video|audio)\b",
        r"\bsing (me |us )?(an?|the)? ?(song|lullaby)\b",
    )
]


def scope(q: QuestionRow) -> str:
    return f"persona:{q.persona_id}" if q.question_type == "personal" else f"axis:{q.axis}"


def order_key(q: QuestionRow) -> tuple[str, str, int, int, str]:
    return (q.question_type, scope(q), q.batch, q.position, q.question_id)


class QuestionLengthFilter(Filter):
    name = "question_length"
    params = ("question_min_chars", "question_max_chars", "question_min_words", "question_max_words")
    reasons = ("question_too_short", "question_too_long")

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg

    def check(self, row: QuestionRow, context: dict[str, Any]) -> FilterResult:
        chars, words = len(row.text.strip()), len(tokens(row.text))
        c = self.cfg
        if chars < c.question_min_chars or words < c.question_min_words:
            return self.drop("question_too_short", f"{chars} chars, {words} words")
        if chars > c.question_max_chars or words > c.question_max_words:
            return self.drop("question_too_long", f"{chars} chars, {words} words")
        return FilterResult.keep()


class AnswerableFilter(Filter):
    """A text assistant cannot fetch live data, act in the world or produce media; such questions go."""

    name = "answerable"
    reasons = ("needs_realtime_data", "needs_action", "needs_media_output")

    def check(self, row: QuestionRow, context: dict[str, Any]) -> FilterResult:
        for reason, patterns in (
            ("needs_realtime_data", REALTIME),
            ("needs_action", ACTIONS),
            ("needs_media_output", MEDIA),
        ):
            for p in patterns:
                m = p.search(row.text)
                if m:
                    return self.drop(reason, f"matched {m.group(0)!r}")
        return FilterResult.keep()


def name_patterns(persona: Any, bio: Any) -> list[tuple[str, re.Pattern[str]]]:
    """Full names and aliases (case-insensitive) and the surname (capitalised only: 'Brown' not 'brown')."""
    phrases = {persona.name, persona.wiki_title.split(" (")[0], *(t.split(" (")[0] for t in persona.requested_titles)}
    if bio is not None and bio.infobox is not None:
        phrases.update(v for k, v in bio.infobox.fields.items() if k in ("name", "birth_name") and v)
    out = [(p, word_pattern(p)) for p in sorted(phrases) if len(p) >= 3]
    parts = persona.name.split(" (")[0].split()
    if len(parts) >= 2 and len(parts[-1]) >= 3:
        out.append((parts[-1], re.compile(r"(?<![\w])" + re.escape(parts[-1]) + r"(?![\w])")))
    return out


class FoldedNames:
    """The name patterns again, for text folded by ``textsafety.fold``: a zero-width character or a
    look-alike letter (Cyrillic "а" for Latin "a") inside a name must not hide it. A case-insensitive
    pattern (a full name) is matched on the case-folded then folded text, a case-sensitive one (a
    surname) on the folded text, exactly as the plain patterns are."""

    def __init__(self, patterns: list[tuple[str, re.Pattern[str]]]) -> None:
        self.patterns: list[tuple[str, re.Pattern[str], bool]] = []
        for phrase, pattern in patterns:
            if pattern.flags & re.IGNORECASE:
                self.patterns.append((phrase, word_pattern(fold(phrase.casefold())), True))
            else:
                target = re.escape(fold(phrase))
                self.patterns.append((phrase, re.compile(r"(?<![\w])" + target + r"(?![\w])"), False))

    def search(self, text: str) -> str | None:
        """The phrase whose folded form ``text`` contains, or None."""
        plain, lower = fold(text), None
        for phrase, pattern, insensitive in self.patterns:
            if insensitive and lower is None:
                lower = fold(text.casefold())
            if pattern.search(lower if insensitive else plain):  # type: ignore[arg-type]
                return phrase
        return None


class IdentityLeakFilter(Filter):
    """Questions must not name who asks: personal ones their persona, divergent ones any axis member."""

    name = "identity_leak"
    reasons = ("names_persona",)

    def __init__(self) -> None:
        self.patterns: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        self.folded: dict[str, FoldedNames] = {}

    async def prepare(self, rows: list[QuestionRow], context: dict[str, Any]) -> None:  # type: ignore[override]
        bios = context.get("biographies") or {}
        personas = context.get("personas") or {}
        self.patterns = {pid: name_patterns(p, bios.get(pid)) for pid, p in personas.items()}
        self.folded = {pid: FoldedNames(patterns) for pid, patterns in self.patterns.items()}

    def check(self, row: QuestionRow, context: dict[str, Any]) -> FilterResult:
        personas = context.get("personas") or {}
        if row.question_type == "personal":
            who = [personas[row.persona_id]] if row.persona_id in personas else []
        else:
            who = [p for p in personas.values() if any(m.axis == row.axis for m in p.axes)]
        for p in sorted(who, key=lambda p: p.persona_id):
            for phrase, pattern in self.patterns.get(p.persona_id, []):
                if pattern.search(row.text):
                    return self.drop("names_persona", f"{p.persona_id}: {phrase!r}")
            folded = self.folded.get(p.persona_id)
            phrase = folded.search(row.text) if folded is not None else None
            if phrase is not None:
                return self.drop(
                    "names_persona", f"{p.persona_id}: {phrase!r} (hidden by look-alike or invisible characters)"
                )
        return FilterResult.keep()


def category_forms(category: str, extra: list[str]) -> list[str]:
    """A category name and its obvious forms: plural, -ism, and the recipe's aliases ('keto')."""
    words = category.strip().split()
    head, last = words[:-1], words[-1].lower()
    lasts = {last, last + "s"}
    for suffix, base_len in (("ist", 3), ("ic", 0), ("an", 0), ("ive", 1), ("ive", 3)):
        if last.endswith(suffix):
            stem = last[: len(last) - base_len] if base_len else last
            lasts.add(stem + "ism")
    forms = {" ".join([*head, w]) for w in lasts}
    forms.update(a for a in extra if a)
    return sorted(forms, key=lambda f: (-len(f), f))


def category_patterns(recipe: Any, axis: str | None, cfg: FiltersConfig) -> list[tuple[str, re.Pattern[str]]]:
    if recipe is None or axis is None:
        return []
    try:
        spec = recipe.axis(axis)
    except KeyError:
        return []
    out = []
    for cat in spec.categories:
        extra = list(cat.key_terms) + list(cfg.category_aliases.get(cat.name, []))
        out += [(cat.name, word_pattern(form)) for form in category_forms(cat.name, extra)]
    return out


class CategoryLeakFilter(Filter):
    """Divergent questions are asked in common by people of every category: naming one gives it away."""

    name = "category_leak"
    params = ("category_aliases",)
    reasons = ("names_category",)

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg

    def check(self, row: QuestionRow, context: dict[str, Any]) -> FilterResult:
        if row.question_type != "divergent":
            return FilterResult.keep()
        for category, pattern in category_patterns(context.get("recipe"), row.axis, self.cfg):
            m = pattern.search(row.text)
            if m:
                return self.drop("names_category", f"{category}: {m.group(0)!r}")
        return FilterResult.keep()


class ShingleIndex:
    """Exact char-n-gram Jaccard against the sets added so far, finding candidates by prefix filtering.

    Two sets with Jaccard >= t share at least one of their first ``|A| - ceil(t |A|) + 1`` shingles when
    both are sorted by one global order; ordering rare shingles first keeps those prefixes selective, so
    only a few candidates get an exact Jaccard. Shingles common to a template ("what is the best way")
    are then never looked up, which is what keeps thousands of templated questions fast. Pairs below
    the threshold may be missed by ``best`` (they do not matter: they are not duplicates).
    """

    def __init__(self, n: int, threshold: float, frequency: dict[str, int] | None = None) -> None:
        self.n = n
        self.threshold = threshold
        self.frequency = frequency or {}
        self.sets: list[set[str]] = []
        self.keys: list[Any] = []
        self.index: dict[str, list[int]] = {}

    def _prefix(self, grams: set[str]) -> list[str]:
        ordered = sorted(grams, key=lambda g: (self.frequency.get(g, 0), g))
        return ordered[: len(ordered) - math.ceil(self.threshold * len(ordered) - 1e-9) + 1]

    def best(self, text: str) -> tuple[float, Any, set[str]]:
        """(best Jaccard among the candidates, its key, the text's shingles)."""
        grams = shingles(text, self.n)
        candidates = sorted({i for g in self._prefix(grams) for i in self.index.get(g, ())})
        best_score, best_key = 0.0, None
        for i in candidates:
            inter = len(grams & self.sets[i])
            score = inter / (len(grams) + len(self.sets[i]) - inter)
            if score > best_score:
                best_score, best_key = score, self.keys[i]
        return best_score, best_key, grams

    def add(self, grams: set[str], key: Any) -> None:
        self.sets.append(grams)
        self.keys.append(key)
        for g in self._prefix(grams):
            self.index.setdefault(g, []).append(len(self.sets) - 1)


def shingle_frequency(texts: list[str], n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in texts:
        for g in shingles(text, n):
            counts[g] = counts.get(g, 0) + 1
    return counts


class QuestionDuplicateFilter(Filter):
    """Exact (normalised) and near duplicates, within a persona/axis and across them; the later one goes."""

    name = "question_duplicate"
    params = ("shingle_size", "question_near_duplicate", "question_embed_dedupe", "question_embed_cosine")
    reasons = ("exact_duplicate", "near_duplicate", "cross_scope_duplicate", "embedding_duplicate")

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg
        self.verdicts: dict[str, FilterResult] = {}

    async def prepare(self, rows: list[QuestionRow], context: dict[str, Any]) -> None:  # type: ignore[override]
        ordered = sorted(rows, key=order_key)
        vectors = await self._embeddings(ordered, context)
        exact: dict[str, QuestionRow] = {}
        n, threshold = self.cfg.shingle_size, self.cfg.question_near_duplicate
        index = ShingleIndex(n, threshold, shingle_frequency([q.text for q in ordered], n))
        kept_vectors: list[tuple[Any, QuestionRow]] = []
        self.verdicts = {}
        for i, q in enumerate(ordered):
            norm = normalise(q.text)
            score, other, grams = index.best(q.text)
            verdict = FilterResult.keep()
            if norm in exact:
                first = exact[norm]
                reason = "exact_duplicate" if scope(first) == scope(q) else "cross_scope_duplicate"
                verdict = self.drop(reason, f"same text as {first.question_id} ({scope(first)})")
            elif other is not None and score >= self.cfg.question_near_duplicate:
                reason = "near_duplicate" if scope(other) == scope(q) else "cross_scope_duplicate"
                verdict = self.drop(reason, f"jaccard {score:.3f} with {other.question_id} ({scope(other)})")
            elif vectors is not None:
                hit = _closest(vectors[i], kept_vectors)
                if hit is not None and hit[0] >= self.cfg.question_embed_cosine:
                    verdict = self.drop("embedding_duplicate", f"cosine {hit[0]:.3f} with {hit[1].question_id}")
            self.verdicts[q.question_id] = verdict
            if verdict.kept:
                exact[norm] = q
                index.add(grams, q)
                if vectors is not None:
                    kept_vectors.append((vectors[i], q))

    async def _embeddings(self, rows: list[QuestionRow], context: dict[str, Any]) -> list[Any] | None:
        llm = context.get("llm")
        if not self.cfg.question_embed_dedupe or llm is None or not rows:
            return None
        import numpy as np

        vecs = np.asarray(await llm.embed([q.text for q in rows], ledger_stage="questions"), dtype=float)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return list(vecs / np.where(norms == 0, 1, norms))

    def check(self, row: QuestionRow, context: dict[str, Any]) -> FilterResult:
        return self.verdicts.get(row.question_id, FilterResult.keep())


def _closest(vector: Any, kept: list[tuple[Any, QuestionRow]]) -> tuple[float, QuestionRow] | None:
    best: tuple[float, QuestionRow] | None = None
    for v, q in kept:
        cos = float(vector @ v)
        if best is None or cos > best[0]:
            best = (cos, q)
    return best


def jaccard_text(a: str, b: str, n: int) -> float:
    return jaccard(shingles(a, n), shingles(b, n))
