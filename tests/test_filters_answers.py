"""Candidate answer filters on crafted rows: one kept and one dropped case per reason."""

from __future__ import annotations

import pytest
from filters_fixtures import candidate, persona, run_check
from test_filters_questions import FakeRecipe

from wikipersona_data.verify.answers import (
    AnswerEmptyFilter,
    AnswerLeakFilter,
    AnswerLengthFilter,
    CandidateDuplicateFilter,
    RefusalFilter,
    TruncationFilter,
)
from wikipersona_data.verify.config import FiltersConfig

CFG = FiltersConfig()
GOOD = "Start with oats and fruit, then add beans at lunch. Keep snacks simple and plan the week on Sunday."


@pytest.mark.parametrize(("text", "reason"), [("", "empty_answer"), ("  ...  ", "empty_answer"), (GOOD, None)])
def test_empty(text: str, reason: str | None) -> None:
    result = run_check(AnswerEmptyFilter(), candidate(text))
    assert (result.kept, result.reason) == (reason is None, reason or "")


@pytest.mark.parametrize(
    ("text", "reason"), [("Yes, sure.", "answer_too_short"), ("word " * 900 + ".", "answer_too_long"), (GOOD, None)]
)
def test_length(text: str, reason: str | None) -> None:
    result = run_check(AnswerLengthFilter(CFG), candidate(text))
    assert (result.kept, result.reason) == (reason is None, reason or "")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I'm sorry, but I can't help with that request.", "refusal"),
        ("I cannot provide medical advice, please see a doctor.", "refusal"),
        ("As an AI, I do not eat breakfast, but here are ideas: oats.", "refusal"),
        ("As a language model I have no taste. Still, oats are fine.", "refusal"),
        (GOOD, None),
        ("You can't go wrong with oats; I can help you plan the rest too.", None),
    ],
)
def test_refusal(text: str, reason: str | None) -> None:
    result = run_check(RefusalFilter(), candidate(text))
    assert (result.kept, result.reason) == (reason is None, reason or "")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Start with oats and fruit, then add beans at lunch and keep the", "truncated"),
        ("Here is a plan for the week:", "truncated"),
        ("Use this:\n```python\nprint('hi')", "truncated"),
        (GOOD, None),
        ("Here is a plan:\n- oats for breakfast\n- beans for lunch", None),  # a list may end without a full stop
        ('She said "plan on Sunday."', None),
    ],
)
def test_truncation(text: str, reason: str | None) -> None:
    result = run_check(TruncationFilter(), candidate(text))
    assert (result.kept, result.reason) == (reason is None, reason or "")


CONTEXT = {
    "recipe": FakeRecipe(),
    "personas": {"ada-okafor": persona("ada-okafor", "Adaeze Okafor", (("diet", "vegan"),))},
}


@pytest.mark.parametrize(
    ("text", "category", "reason"),
    [
        ("As a vegan, you will love lentil curry. Try it tonight.", "vegan", "addresses_category"),
        ("Since you are vegan, skip the butter and use oil.", "vegan", "addresses_category"),
        ("For a keto eater like you... no: for a ketogenic like you, eggs work.", "ketogenic", "addresses_category"),
        ("As an atheist you might prefer a secular ceremony.", "vegan", None),  # another axis: not this answer's
        ("Adaeze Okafor swears by lentils, and so should you.", "vegan", "names_persona_in_answer"),
        ("Vegan recipes with lentils are quick: try a dal tonight.", "vegan", None),  # names food, not the asker
        ("Your favorite diet is a vegan diet, so lentils fit.", "vegan", "addresses_category"),
        ("Since your diet is vegan, lentils fit.", "vegan", "addresses_category"),
        ("Because you follow a vegan diet, skip the cheese.", "vegan", "addresses_category"),
        ("You are a vegan. Lentil curry is a good start.", "vegan", "addresses_category"),
        ("Great question! You're a vegan, so tofu works.", "vegan", "addresses_category"),
        ("Many people who are vegan like lentils; you may too.", "vegan", None),  # people in general
        ("If friends follow a vegan diet, cook dal for them.", "vegan", None),  # not the asker's habit
        ("Lentils suit a vegan diet and yours too.", "vegan", None),
        (GOOD, "vegan", None),
    ],
)
def test_answer_leak(text: str, category: str, reason: str | None) -> None:
    result = run_check(AnswerLeakFilter(CFG), candidate(text, category=category), CONTEXT)
    assert (result.kept, result.reason) == (reason is None, reason or ""), result.detail


def test_near_duplicate_candidates_of_one_question_only() -> None:
    rows = [
        candidate(GOOD, cid="c0", k=0),
        candidate(GOOD.replace("Sunday", "Sundays"), cid="c1", k=1),  # near copy of k=0
        candidate("Batch-cook a big pot of chilli and freeze portions for the week.", cid="c2", k=2),
        candidate(GOOD, cid="c3", qid="q2", k=0),  # same text, other question: fine
    ]
    f = CandidateDuplicateFilter(CFG)
    verdicts = {r.candidate_id: run_check(f, r, {}, rows).reason or "kept" for r in rows}
    assert verdicts == {"c0": "kept", "c1": "near_duplicate_candidate", "c2": "kept", "c3": "kept"}
