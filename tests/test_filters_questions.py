"""Question filters on crafted rows: for every reason one row that must be dropped and one that must be kept."""

from __future__ import annotations

import pytest
from filters_fixtures import persona, question, run_check

from wikipersona_data.stages.recipe import AxisSpec, CategorySpec
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.questions import (
    AnswerableFilter,
    CategoryLeakFilter,
    IdentityLeakFilter,
    QuestionDuplicateFilter,
    QuestionLengthFilter,
    category_forms,
)

CFG = FiltersConfig()


class FakeRecipe:
    """Only what the category filter reads from a recipe: its axes."""

    def __init__(self) -> None:
        self.axes = [
            AxisSpec(
                name="diet",
                categories=[CategorySpec(name="vegan"), CategorySpec(name="ketogenic", key_terms=["keto"])],
            ),
            AxisSpec(name="religion", categories=[CategorySpec(name="atheist"), CategorySpec(name="Catholic")]),
        ]

    def axis(self, name: str) -> AxisSpec:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(name)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Why?", "question_too_short"),
        ("Tell me more " * 40, "question_too_long"),
        ("What is a good breakfast before a long run?", None),
    ],
)
def test_question_length(text: str, reason: str | None) -> None:
    result = run_check(QuestionLengthFilter(CFG), question(text))
    assert result.kept == (reason is None)
    assert result.reason == (reason or "")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("What's today's weather in Lagos?", "needs_realtime_data"),
        ("What is the current stock price of Apple?", "needs_realtime_data"),
        ("What was the latest score in the cup final?", "needs_realtime_data"),
        ("Can you book a table for two at a vegan restaurant?", "needs_action"),
        ("Order me a pizza with extra cheese.", "needs_action"),
        ("Please remind me to call my sister tomorrow.", "needs_action"),
        ("Could you set an alarm for 6am?", "needs_action"),
        ("Send an email to my agent about the contract.", "needs_action"),
        ("Draw me a picture of a cat in a spacesuit.", "needs_media_output"),
        ("Can you generate an image of my dream kitchen?", "needs_media_output"),
        ("Play a song that helps me focus.", "needs_media_output"),
        ("How do I plan meals for a busy week in order to save time?", None),
        ("What should I consider when I book a holiday for my family?", None),
        ("How do weather patterns affect marathon training?", None),
        ("Which songs would you recommend for a road trip playlist?", None),
    ],
)
def test_answerable(text: str, reason: str | None) -> None:
    result = run_check(AnswerableFilter(), question(text))
    assert result.kept == (reason is None), result
    assert result.reason == (reason or "")


CONTEXT = {
    "personas": {
        "ada-okafor": persona("ada-okafor", "Adaeze Okafor", (("diet", "vegan"),)),
        "brett-halvorsen": persona("brett-halvorsen", "Brett Halvorsen", (("diet", "ketogenic"),)),
    }
}
CONTEXT["personas"]["ada-okafor"].requested_titles.append("Ada Okafor")


@pytest.mark.parametrize(
    ("text", "kind", "reason"),
    [
        ("What would Adaeze Okafor cook for a party?", "personal", "names_persona"),
        ("How did ada okafor start her company?", "personal", "names_persona"),  # alias from the recipe, any case
        ("What do critics say about Okafor's latest film?", "personal", "names_persona"),  # surname
        ("Is Halvorsen right about low-carb diets?", "divergent", "names_persona"),  # another axis member
        ("What should I cook for a dinner party this weekend?", "personal", None),
        ("Where can I buy okra in Lagos?", "personal", None),  # 'okra' is not 'Okafor'
        ("What would Brett Halvorsen cook?", "personal", None),  # another persona: not this one's identity
    ],
)
def test_identity_leak(text: str, kind: str, reason: str | None) -> None:
    row = question(text, kind=kind, axis="diet")
    result = run_check(IdentityLeakFilter(), row, CONTEXT)
    assert result.kept == (reason is None), result
    assert result.reason == (reason or "")


@pytest.mark.parametrize(
    ("text", "axis", "kind", "reason"),
    [
        ("What is a good vegan breakfast?", "diet", "divergent", "names_category"),
        ("Is veganism healthy for children?", "diet", "divergent", "names_category"),
        ("How do I start a keto diet?", "diet", "divergent", "names_category"),  # recipe key term
        ("As an atheist, how should I talk about death with my kids?", "religion", "divergent", "names_category"),
        ("How did atheism shape modern ethics?", "religion", "divergent", "names_category"),
        ("Should Catholics fast before Christmas?", "religion", "divergent", "names_category"),
        ("What is a good breakfast before work?", "diet", "divergent", None),
        ("How should I talk about death with my kids?", "religion", "divergent", None),
        ("What is a good vegan breakfast?", "diet", "personal", None),  # personal questions may name it
        ("What is a good vegan breakfast?", "religion", "divergent", None),  # another axis's category
    ],
)
def test_category_leak(text: str, axis: str, kind: str, reason: str | None) -> None:
    row = question(text, kind=kind, axis=axis)
    result = run_check(CategoryLeakFilter(CFG), row, {"recipe": FakeRecipe()})
    assert result.kept == (reason is None), result
    assert result.reason == (reason or "")


def test_category_forms() -> None:
    assert {"atheist", "atheists", "atheism"} <= set(category_forms("atheist", []))
    assert "catholicism" in category_forms("Catholic", [])
    assert "progressivism" in category_forms("progressive", [])
    assert "digital minimalism" in category_forms("digital minimalist", [])
    assert "keto" in category_forms("ketogenic", ["keto"])


def dedupe(rows: list, **cfg: float) -> dict[str, str]:
    f = QuestionDuplicateFilter(FiltersConfig(**cfg))
    out = {}
    for row in rows:
        result = run_check(f, row, {}, rows)
        out[row.question_id] = result.reason or "kept"
    return out


def test_duplicates_within_and_across_scopes() -> None:
    rows = [
        question("What is a good breakfast before a long run?", qid="a", position=0),
        question("What's a good breakfast before a long run?", qid="b", position=1),  # near copy, same persona
        question("WHAT is a good breakfast before a long run", qid="c", position=2),  # same after normalising
        question("How do I learn to paint with watercolours?", qid="d", position=3),
        question("What is a good breakfast before a long run?", qid="e", pid="brett-halvorsen"),  # other persona
        question("How do I learn to paint with oils at home?", qid="f", position=4),
    ]
    verdicts = dedupe(rows)
    assert verdicts == {
        "a": "kept",
        "b": "near_duplicate",
        "c": "exact_duplicate",
        "d": "kept",
        "e": "cross_scope_duplicate",
        "f": "kept",
    }


def test_duplicate_verdicts_do_not_depend_on_input_order() -> None:
    """The stage calls the hook on growing collections in any order: the earlier (batch, position) one stays."""
    first = question("What is a good breakfast before a long run?", qid="late", batch=1, position=0)
    second = question("What's a good breakfast before a long run?", qid="early", batch=0, position=3)
    assert dedupe([first, second]) == {"late": "near_duplicate", "early": "kept"}
    assert dedupe([second, first]) == {"late": "near_duplicate", "early": "kept"}


def test_duplicate_threshold_is_the_recipes() -> None:
    rows = [
        question("What is a good breakfast before a long run?", qid="a", position=0),
        question("What is a good lunch before a long bike ride?", qid="b", position=1),
    ]
    assert dedupe(rows)["b"] == "kept"
    assert dedupe(rows, question_near_duplicate=0.3)["b"] == "near_duplicate"


def test_prefix_filtered_index_finds_what_brute_force_finds() -> None:
    """Every pair at or above the threshold is found, on templated texts where most shingles are common."""
    import random

    from wikipersona_data.verify.questions import ShingleIndex, shingle_frequency
    from wikipersona_data.verify.text import jaccard, shingles

    rng = random.Random(5)
    vocab = ["run", "runs", "bread", "breakfast", "plan", "plans", "week", "weeks", "lunch", "swim", "swims", "walk"]
    forms = ("What is a good {} before a long {}?", "How do I {} my {} this {}?", "Best {} for a {} {}?")
    texts = [rng.choice(forms).format(*(rng.choice(vocab) for _ in range(3))) for _ in range(300)]
    for threshold in (0.5, 0.7, 0.9):
        index = ShingleIndex(5, threshold, shingle_frequency(texts, 5))
        kept: list[str] = []
        for text in texts:
            score, _other, grams = index.best(text)
            brute = max((jaccard(grams, shingles(k, 5)) for k in kept), default=0.0)
            assert (score >= threshold) == (brute >= threshold), (text, score, brute)
            if score >= threshold:
                assert score == brute
            else:
                kept.append(text)
                index.add(grams, text)
        assert 0 < len(kept) < len(texts)
