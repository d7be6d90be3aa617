"""Candidate answer filters (stage "respond"): empty, length, refusal, truncation, leaks, near-duplicates.

Candidates are written persona-blind for one category of asker (cold start). An answer that refuses,
stops mid-sentence, or addresses its asker by the category ("As a vegan, ...") or a persona's name
would teach the preference model something other than the persona's preference, so it never reaches
the diversity selection or the judge. Two candidates of one question that are near copies waste a
slot of the kept set (the reference kept 4 without checking they differ).
"""

from __future__ import annotations

import re
from typing import Any

from wikipersona_data.stages.rows import CandidateRow
from wikipersona_data.verify.base import Filter, FilterResult
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.questions import (
    FoldedNames,
    ShingleIndex,
    category_forms,
    name_patterns,
    shingle_frequency,
)
from wikipersona_data.verify.text import tokens

REFUSALS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bI(?:'m| am) (?:so |very )?(?:sorry|afraid),? (?:but )?I (?:can(?:'|no)?t|cannot|won't|am unable|"
        r"am not able)",
        r"\bI (?:can(?:'|no)?t|cannot|won't|am unable to|am not able to) (?:help|assist|provide|answer|comply|do "
        r"that|fulfil|fulfill)",
        r"\bas an AI\b",
        r"\bas an? (?:AI |large )?language model\b",
        r"\bI(?:'m| am) (?:just |only )?an AI\b",
        r"\bI do not have (?:personal )?(?:opinions|preferences|access to real-time)",
    )
]
TERMINAL = re.compile(r"[.!?…)\]\"'”’»*`]\s*$|[\U0001F300-\U0001FAFF]\s*$")


class AnswerEmptyFilter(Filter):
    name = "answer_empty"
    reasons = ("empty_answer",)

    def check(self, row: CandidateRow, context: dict[str, Any]) -> FilterResult:
        if not tokens(row.text):
            return self.drop("empty_answer", f"{len(row.text)} chars, no words")
        return FilterResult.keep()


class AnswerLengthFilter(Filter):
    name = "answer_length"
    params = ("answer_min_words", "answer_max_words")
    reasons = ("answer_too_short", "answer_too_long")

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg

    def check(self, row: CandidateRow, context: dict[str, Any]) -> FilterResult:
        n = len(tokens(row.text))
        if n < self.cfg.answer_min_words:
            return self.drop("answer_too_short", f"{n} words < {self.cfg.answer_min_words}")
        if n > self.cfg.answer_max_words:
            return self.drop("answer_too_long", f"{n} words > {self.cfg.answer_max_words}")
        return FilterResult.keep()


class RefusalFilter(Filter):
    name = "refusal"
    reasons = ("refusal",)

    def check(self, row: CandidateRow, context: dict[str, Any]) -> FilterResult:
        for p in REFUSALS:
            m = p.search(row.text)
            if m:
                return self.drop("refusal", f"matched {m.group(0)!r}")
        return FilterResult.keep()


class TruncationFilter(Filter):
    """Ends mid-sentence, on a colon/comma, or with an open code fence (the reference's 512-token cut)."""

    name = "truncation"
    reasons = ("truncated",)

    def check(self, row: CandidateRow, context: dict[str, Any]) -> FilterResult:
        text = row.text.rstrip()
        if text.count("```") % 2:
            return self.drop("truncated", "unclosed code fence")
        last_line = text.splitlines()[-1] if text else ""
        if not TERMINAL.search(text) and not re.match(r"\s*([-*•]|\d+[.)])\s", last_line):
            return self.drop("truncated", f"ends with {text[-30:]!r}")
        if text.endswith((":", ",", ";")):
            return self.drop("truncated", f"ends with {text[-30:]!r}")
        return FilterResult.keep()


TOPICS = (
    r"(?:diet|eating style|way of eating|faith|religion|beliefs?|politics|political views|party|sport|team|"
    r"lifestyle|profession|job|career)"
)
"""What an answer may say the asker's category is *of*: 'your favourite diet is a ketogenic diet'."""
HABITS = r"(?:follow|practi[cs]e|observe|keep|identify as|live)"
"""Verbs that make a category the asker's own: 'you follow a vegan diet', 'you observe Orthodox Jewish law'."""


def address_patterns(forms: list[str]) -> list[re.Pattern[str]]:
    """'As a vegan', 'since you are Catholic', 'for an atheist like you', 'your Buddhist faith', 'your
    favourite diet is a ketogenic diet', 'you follow a vegan diet', 'You are a vegan.' (a sentence's subject:
    said of the asker, not of people in general)."""
    alt = "|".join(re.escape(f).replace(r"\ ", r"[\s-]+") for f in forms)
    cat = rf"(?:{alt})"
    return [
        re.compile(p, re.IGNORECASE)
        for p in (
            rf"\bas (?:an? )?{cat}\b",
            rf"\b(?:since|because|given that|now that|if|as|when) you(?:'re| are)(?: an?)? {cat}\b",
            rf"\bfor (?:an? )?{cat} like you\b",
            rf"\byou,? (?:being|as) (?:an? )?{cat}\b",
            rf"\byour {cat} (?:faith|beliefs?|diet|lifestyle|values|views|principles|convictions)\b",
            rf"\bfellow {cat}\b",
            rf"\byour (?:favou?rite |preferred |chosen |own )?{TOPICS} (?:is|of) (?:an? |the )?{cat}\b",
            rf"\byou {HABITS} (?:an? |the )?{cat}\b",
            rf"(?:^|[.!?:]\s+)you(?:'re| are)(?: an?)? {cat}\b",
        )
    ]


class AnswerLeakFilter(Filter):
    """The answer must not address its asker by category, nor name any persona of the build."""

    name = "answer_leak"
    params = ("category_aliases",)
    reasons = ("addresses_category", "names_persona_in_answer")

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg
        self._cache: dict[tuple[str | None, str], list[re.Pattern[str]]] = {}
        self.names: list[tuple[str, str, re.Pattern[str]]] = []
        self.any_name: re.Pattern[str] | None = None
        self.folded: list[tuple[str, FoldedNames]] = []

    async def prepare(self, rows: list[CandidateRow], context: dict[str, Any]) -> None:  # type: ignore[override]
        personas = context.get("personas") or {}
        bios = context.get("biographies") or {}
        self.names = [
            (pid, phrase, p) for pid in sorted(personas) for phrase, p in name_patterns(personas[pid], bios.get(pid))
        ]
        # one pass over the text for all names; the per-name patterns only run to say which one matched
        parts = [f"(?i:{p.pattern})" if p.flags & re.IGNORECASE else f"(?:{p.pattern})" for _, _, p in self.names]
        self.any_name = re.compile("|".join(parts)) if parts else None
        self.folded = [(pid, FoldedNames(name_patterns(personas[pid], bios.get(pid)))) for pid in sorted(personas)]

    def _patterns(self, recipe: Any, axis: str | None, category: str) -> list[re.Pattern[str]]:
        key = (axis, category)
        if key not in self._cache:
            cats = {category: list(self.cfg.category_aliases.get(category, []))}
            if recipe is not None and axis is not None:
                try:
                    for c in recipe.axis(axis).categories:
                        cats[c.name] = list(c.key_terms) + list(self.cfg.category_aliases.get(c.name, []))
                except KeyError:
                    pass
            forms = sorted({f for name, extra in cats.items() for f in category_forms(name, extra)})
            self._cache[key] = address_patterns(forms)
        return self._cache[key]

    def check(self, row: CandidateRow, context: dict[str, Any]) -> FilterResult:
        for p in self._patterns(context.get("recipe"), row.axis, row.category):
            m = p.search(row.text)
            if m:
                return self.drop("addresses_category", f"{row.category}: {m.group(0)!r}")
        if self.any_name is not None and self.any_name.search(row.text):
            for pid, phrase, pattern in self.names:
                if pattern.search(row.text):
                    return self.drop("names_persona_in_answer", f"{pid}: {phrase!r}")
        for pid, folded in self.folded:
            phrase = folded.search(row.text)
            if phrase is not None:
                detail = f"{pid}: {phrase!r} (hidden by look-alike or invisible characters)"
                return self.drop("names_persona_in_answer", detail)
        return FilterResult.keep()


class CandidateDuplicateFilter(Filter):
    """Near-copies among the candidates of one question (char n-gram Jaccard); the later k goes."""

    name = "candidate_duplicate"
    params = ("shingle_size", "answer_near_duplicate")
    reasons = ("near_duplicate_candidate",)

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg
        self.verdicts: dict[str, FilterResult] = {}

    async def prepare(self, rows: list[CandidateRow], context: dict[str, Any]) -> None:  # type: ignore[override]
        self.verdicts = {}
        by_q: dict[str, list[CandidateRow]] = {}
        for c in rows:
            by_q.setdefault(c.question_id, []).append(c)
        for qid in sorted(by_q):
            n, threshold = self.cfg.shingle_size, self.cfg.answer_near_duplicate
            index = ShingleIndex(n, threshold, shingle_frequency([c.text for c in by_q[qid]], n))
            for c in sorted(by_q[qid], key=lambda c: (c.k, c.candidate_id)):
                score, other, grams = index.best(c.text)
                if other is not None and score >= self.cfg.answer_near_duplicate:
                    detail = f"jaccard {score:.3f} with candidate k={other.k} ({other.candidate_id})"
                    self.verdicts[c.candidate_id] = self.drop("near_duplicate_candidate", detail)
                else:
                    index.add(grams, c)

    def check(self, row: CandidateRow, context: dict[str, Any]) -> FilterResult:
        return self.verdicts.get(row.candidate_id, FilterResult.keep())
