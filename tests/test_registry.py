"""The stage registry (issue 12, items 1 and 3): one list that order, fingerprints, recipe validation, the
preflight, the filters hook and the tables read; regeneration reasons are a property of the filters."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from filters_fixtures import question

from wikipersona_data.stages import registry
from wikipersona_data.stages.fingerprint import stage_fingerprints
from wikipersona_data.stages.order import pipeline_order
from wikipersona_data.stages.recipe import STAGE_NAMES, StagesSpec, load_recipe
from wikipersona_data.stages.templates import TEMPLATE_DIR
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.grounding import GroundingFilter
from wikipersona_data.verify.pipeline import apply_filters, stage_filters

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "builders" / "demo.toml"


def test_entries_are_consistent() -> None:
    seen: set[str] = set()
    for stage in registry.STAGES:
        assert stage.id_field in stage.row.model_fields, stage.name
        assert set(stage.inputs) <= seen, f"{stage.name} reads a stage that runs after it"
        for name in stage.templates:
            assert (TEMPLATE_DIR / f"{name}.md").is_file(), name
        seen.add(stage.name)
    demo = registry.active(load_recipe(DEMO))
    assert len({s.shared_as for s in demo}) == len(demo)
    # the one exception: the optional reward band refines respond's candidates and shares them under respond's
    # name, so the judge, split and the filters see the banded, selected ones (a later stage's rows win)
    assert registry.REWARD.shared_as == registry.RESPOND.shared_as
    assert [s.name for s in registry.STAGES if s not in demo] == ["reward"]


def test_recipe_specs_are_the_calls_the_stages_declare() -> None:
    """A stage that calls an LLM needs its ``[stages.X]`` table, and the recipe has no table nobody calls."""
    assert set(registry.call_specs()) == set(StagesSpec.model_fields) == set(STAGE_NAMES)


def test_tables_list_stages_in_registry_order() -> None:
    assert pipeline_order() == (
        "personas", "describe", "questions", "respond", "embed", "reward", "judge", "split", "prefixes"
    )  # fmt: skip
    assert [s for s in pipeline_order() if s in registry.BY_NAME] == list(registry.ORDER)


def test_fingerprints_follow_the_declared_inputs() -> None:
    """Changing a setting a stage declares moves that stage's fingerprint and every later one, no earlier one."""
    recipe = load_recipe(DEMO)
    before = stage_fingerprints(recipe)
    order = [s.name for s in registry.active(recipe)]
    assert list(before) == order and "reward" not in order  # an optional stage left off is not in the chain
    recipe.counts.candidates_kept += 1  # declared by respond
    after = stage_fingerprints(recipe)
    cut = order.index("respond")
    assert [s for s in order if before[s] != after[s]] == order[cut:]


def test_filters_come_from_the_registry_entry() -> None:
    cfg = FiltersConfig()
    for stage in registry.STAGES:
        assert [f.name for f in stage_filters(stage.name, cfg)] == [f.name for f in stage.filter_list(cfg)]
    assert stage_filters("no-such-stage", cfg) == []
    balanced = [f.name for f in registry.SPLIT.filter_list(cfg.model_copy(update={"balance_length": True}))]
    plain = [f.name for f in registry.SPLIT.filter_list(cfg.model_copy(update={"balance_length": False}))]
    assert balanced == [*plain, "length_balance"]


def test_regeneration_reasons_are_a_filter_property() -> None:
    cfg = FiltersConfig()
    assert registry.DESCRIBE.regenerate_on(cfg) == frozenset(GroundingFilter.reasons)
    assert registry.JUDGE.regenerate_on(cfg) == {"low_judge_agreement"}
    others = [s.name for s in registry.STAGES if s.regenerate_on(cfg)]
    assert others == ["describe", "judge"]


def test_filter_logs_live_in_the_build_not_the_module(tmp_path: Path) -> None:
    """Two builds in one process with their own ``filter_logs`` never see each other's verdicts."""

    def context(stage_dir: Path, logs: dict) -> dict:
        return {"recipe": SimpleNamespace(filters={}), "stage_dir": stage_dir, "filter_logs": logs}

    row = question("Hi?", qid="q-1")
    first: dict = {}
    asyncio.run(apply_filters("questions", [row], context(tmp_path / "a" / "questions", first)))
    second: dict = {}
    asyncio.run(apply_filters("questions", [], context(tmp_path / "b" / "questions", second)))
    assert [log.decisions for log in first.values()] == [{"q-1": "question_too_short"}]
    assert [log.decisions for log in second.values()] == [{}]


def test_every_stage_that_calls_an_llm_is_estimated() -> None:
    """``wikipersona estimate`` reads the registry: a stage with LLM calls and no estimate would be priced at 0."""
    from wikipersona_data.stages.estimate import plan

    assert [s.name for s in registry.STAGES if s.calls] == [s.name for s in registry.STAGES if s.estimate]
    demo = load_recipe(DEMO)
    planned = {stage for stage, *_ in plan(demo)}
    # the demo lists its personas, and has no reward band
    assert planned == {s.name for s in registry.active(demo) if s.calls} - {"personas"}
