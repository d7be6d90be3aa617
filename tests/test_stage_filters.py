"""Filters as data (issue 12 item 3): a recipe's ``[stage_filters]`` lists each stage's filters with parameters."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from filters_fixtures import question

from wikipersona_data.errors import ConfigError
from wikipersona_data.stages import registry
from wikipersona_data.stages.fingerprint import stage_fingerprints
from wikipersona_data.stages.recipe import load_recipe
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.grounding import GroundingFilter
from wikipersona_data.verify.pipeline import apply_filters

DEMO = Path(__file__).resolve().parents[1] / "builders" / "demo.toml"
QUESTIONS = '["text_safety", "question_length", "answerable", "identity_leak", "category_leak", "question_duplicate"]'


def recipe_with(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(DEMO.read_text(encoding="utf-8") + "\n[stage_filters]\n" + table + "\n", encoding="utf-8")
    return path


def test_listing_a_stage_changes_its_fingerprint_and_later_ones_only(tmp_path: Path) -> None:
    plain = stage_fingerprints(load_recipe(DEMO))
    listed = load_recipe(recipe_with(tmp_path, 'judge = ["text_safety", "judge_agreement"]'))
    fps = stage_fingerprints(listed)
    order = list(plain)  # the demo's stages in order (optional ones it leaves off have no fingerprint)
    before = order[: order.index("judge")]
    assert [fps[s] for s in before] == [plain[s] for s in before]  # unlisted stages keep their fingerprints
    assert all(fps[s] != plain[s] for s in order[len(before) :]) and "prefixes" in order
    empty = load_recipe(recipe_with(tmp_path, ""))  # an empty table is no table
    assert stage_fingerprints(empty) == plain


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('judgement = ["text_safety"]', "stage_filters.judgement: unknown stage (stages: personas, describe,"),
        ('judge = ["text_safety", "judge_agrement"]', "stage_filters.judge[1]: unknown filter 'judge_agrement' for"),
        (
            'questions = ["text_safety", { name = "question_duplicate", near = 0.8 }]',
            "stage_filters.questions[1].near: unknown parameter of question_duplicate (has: shingle_size,",
        ),
        (
            'questions = ["text_safety", { name = "question_duplicate", question_near_duplicate = 2.0 }]',
            "stage_filters.questions[1].question_near_duplicate: Input should be less than or equal to 1",
        ),
        ('questions = ["text_safety", { near = 1 }]', "stage_filters.questions[1].name: required"),
        ('questions = ["question_length", "text_safety"]', "stage_filters.questions: must start with 'text_safety'"),
        ('judge = ["text_safety", "cascade", "cascade"]', "stage_filters.judge: filter 'cascade' listed twice"),
        ('respond = ["text_safety", "grounding"]', "stage_filters.respond[1]: unknown filter 'grounding' for stage"),
    ],
)
def test_bad_listings_are_one_line_naming_the_key(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe_with(tmp_path, table))
    assert str(err.value).startswith(f"{tmp_path / 'recipe.toml'}: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_a_listing_runs_exactly_its_filters_with_their_parameters(tmp_path: Path) -> None:
    listing = ["text_safety", {"name": "question_length", "question_min_words": 6}]  # no duplicate filter
    recipe = SimpleNamespace(filters={}, stage_filters={"questions": listing})
    rows = [
        question("What should I eat before a long run?", qid="a"),
        question("What should I eat before a long run?", qid="b"),  # a duplicate: nobody checks for it
        question("Is running good today?", qid="c"),  # 4 words: kept by the defaults (3), dropped here (6)
    ]
    kept, rejects = asyncio.run(apply_filters("questions", rows, {"recipe": recipe}))
    assert [r.question_id for r in kept] == ["a", "b"]
    assert [(r.id, r.reason) for r in rejects] == [("c", "question_too_short")]
    kept, rejects = asyncio.run(apply_filters("questions", rows, {"recipe": SimpleNamespace(filters={})}))
    assert [(r.id, r.reason) for r in rejects] == [
        ("b", "exact_duplicate")
    ]  # the defaults: 'b' duplicates 'a', 'c' passes


def test_optional_filters_and_regeneration_follow_the_listing() -> None:
    cfg = FiltersConfig()  # balance_length off: the split defaults leave length_balance out
    split = registry.SPLIT.filter_list(cfg, ["cascade", {"name": "length_balance", "length_band": 0.55}])
    assert [f.name for f in split] == ["cascade", "length_balance"] and split[1].cfg.length_band == 0.55
    assert cfg.length_band == 0.6  # the parameter is that filter's alone
    assert registry.DESCRIBE.regenerate_on(cfg, ["text_safety"]) == frozenset()  # no grounding filter, no redo
    assert registry.DESCRIBE.regenerate_on(cfg, ["text_safety", "grounding"]) == frozenset(GroundingFilter.reasons)
    assert registry.DESCRIBE.regenerate_on(cfg) == frozenset(GroundingFilter.reasons)
