"""Regenerating a release: same recipe, dump and cache -> the same bytes; a changed stage setting
recomputes that stage and what depends on it, and nothing upstream.

One demo build (lifecycle_fixtures.py: builders/demo.toml, simulator over HTTP); the other builds start from it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lifecycle_fixtures import DEMO, SIM, build, demo_build

from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.stages.fingerprint import stage_fingerprints
from wikipersona_data.stages.recipe import load_recipe, parse_recipe
from wikipersona_data.stages.registry import active

ORDER = tuple(s.name for s in active(load_recipe(DEMO)))
"""The demo's stages in order (the optional reward band is not among them)."""


def data_files(release: Path) -> dict[str, bytes]:
    return {p.relative_to(release).as_posix(): p.read_bytes() for p in sorted((release / "data").rglob("*.parquet"))}


def manifest(release: Path) -> dict:
    return json.loads((release / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return demo_build(tmp_path_factory)


def test_fresh_build_elsewhere_gives_the_same_bytes(first: dict, tmp_path: Path) -> None:
    """A second build from nothing (new work dir, new simulator with the recipe's seed): same data, same
    manifest ``data``; only ``run`` (timings) may differ."""
    with SimServer(SimConfig(**SIM)) as sim:
        release = build(tmp_path / "work", tmp_path / "out", sim)
        assert sim.stats()["requests"] == first["requests"] > 0
    assert data_files(release) == data_files(first["release"])
    assert manifest(release)["data"] == manifest(first["release"])["data"]
    assert (release / "README.md").read_bytes() == (first["release"] / "README.md").read_bytes()


def test_rebuild_in_the_same_work_dir_sends_nothing(first: dict, tmp_path: Path) -> None:
    with SimServer(SimConfig(**SIM)) as sim:
        release = build(first["work"], tmp_path / "out", sim)
        assert sim.stats()["requests"] == 0
    assert data_files(release) == data_files(first["release"])
    assert manifest(release)["data"] == manifest(first["release"])["data"]


@pytest.mark.parametrize("mode", ["use", "only"])
def test_other_work_dir_with_the_cache_sends_nothing(first: dict, tmp_path: Path, mode: str) -> None:
    """A new work dir holding only a copy of the call cache: every call replays (``--cache only`` too, where a
    miss would be an error); the simulator sees no request and the bytes are the same."""
    shutil.copytree(first["work"] / "cache", tmp_path / "work" / "cache")
    with SimServer(SimConfig(**SIM)) as sim:
        release = build(tmp_path / "work", tmp_path / "out", sim, cache_mode=mode)
        stats = sim.stats()
    assert stats["requests"] == 0 and stats["by_schema"] == {}
    assert data_files(release) == data_files(first["release"])
    assert manifest(release)["data"] == manifest(first["release"])["data"]


def test_manifest_says_how_to_regenerate(first: dict) -> None:
    data = manifest(first["release"])["data"]
    recipe = load_recipe(DEMO)
    assert data["recipe"]["text"] == DEMO.read_text(encoding="utf-8")
    assert data["recipe"]["sha256"] == recipe.sha256
    assert data["dump"] == {"name": "enwiki-demo-20261101", "date": "2026-11-01"}
    assert data["stage_fingerprints"] == stage_fingerprints(recipe)
    assert sorted(data["stage_fingerprints"]) == sorted(ORDER)
    # the recipe text in the manifest is enough to build again
    assert parse_recipe(data["recipe"]["text"], DEMO).sha256 == data["recipe"]["sha256"]
    for stage in ORDER:
        assert (first["work"] / stage / "fingerprint").read_text().strip() == data["stage_fingerprints"][stage]


def test_changed_judge_model_recomputes_judge_and_downstream_only(first: dict, tmp_path: Path) -> None:
    text = DEMO.read_text(encoding="utf-8")
    changed = text.replace(
        '[stages.judge]\nendpoint = "sim"\nmodel = "sim-large"', '[stages.judge]\nendpoint = "sim"\nmodel = "sim-small"'
    )
    assert changed != text
    recipe_path = tmp_path / "demo-small-judge.toml"  # package:demo dump paths work from anywhere
    recipe_path.write_text(changed, encoding="utf-8")
    work = tmp_path / "work"
    shutil.copytree(first["work"], work, ignore=shutil.ignore_patterns("release*", "extend"))

    old_fp = stage_fingerprints(load_recipe(DEMO))
    new_fp = stage_fingerprints(load_recipe(recipe_path))
    upstream, downstream = ORDER[:4], ORDER[4:]
    assert upstream == ("personas", "describe", "questions", "respond")
    assert all(old_fp[s] == new_fp[s] for s in upstream)
    assert all(old_fp[s] != new_fp[s] for s in downstream)

    with SimServer(SimConfig(**SIM)) as sim:
        release = build(work, tmp_path / "out", sim, recipe=recipe_path)
        by_schema = sim.stats()["by_schema"]
    # only judge (and prefixes, whose train pairs changed with the new judge) asked the server anything
    assert by_schema.get("judge", 0) > 0
    assert set(by_schema) <= {"judge", "prefixes_infer"}
    # the recomputed stages' old folders were moved aside, the others were resumed in place
    aside = sorted(p.name.split("@")[0] for p in work.iterdir() if "@" in p.name)
    assert aside == sorted(downstream)
    for stage in ORDER:
        assert (work / stage / "fingerprint").read_text().strip() == new_fp[stage]
    data = manifest(release)["data"]
    assert data["models"]["judge"]["requested"] == "sim-small"
    assert data["stage_fingerprints"] == new_fp
    pairs = manifest(first["release"])["data"]["counts"]
    assert data["counts"]["personas"] == pairs["personas"]

    # building the original recipe in that work dir again moves the new folders aside and brings the original
    # ones back: nothing recomputed, no request, the original bytes
    with SimServer(SimConfig(**SIM)) as sim:
        again = build(work, tmp_path / "out-again", sim)
        assert sim.stats()["requests"] == 0
    assert data_files(again) == data_files(first["release"])
    for stage in downstream:
        assert (work / f"{stage}@{new_fp[stage]}").is_dir() and not (work / f"{stage}@{old_fp[stage]}").exists()
        assert (work / stage / "fingerprint").read_text().strip() == old_fp[stage]


@pytest.mark.parametrize(
    ("old", "new", "first_changed"),
    [
        ("split = 24", "split = 25", "split"),
        ("inference_shots = 4", "inference_shots = 3", "prefixes"),
        ("both_orders = true", "both_orders = false", "judge"),
        (
            '[stages.respond]\nendpoint = "sim"\nmodel = "sim-small"',
            '[stages.respond]\nendpoint = "sim"\nmodel = "sim-large"',
            "respond",
        ),
        ("personal_questions = 12", "personal_questions = 10", "questions"),
        ("min_grounding_score = 0.85", "min_grounding_score = 0.8", "personas"),  # filters run in every stage
        ('personas = ["Brett Halvorsen"]', 'personas = ["Brett Halvorsen", "Mariana Teixeira Lopes"]', "personas"),
    ],
)
def test_a_setting_changes_its_stage_and_every_later_one(old: str, new: str, first_changed: str) -> None:
    text = DEMO.read_text(encoding="utf-8")
    assert old in text
    before = stage_fingerprints(parse_recipe(text, DEMO))
    after = stage_fingerprints(parse_recipe(text.replace(old, new, 1), DEMO))
    cut = ORDER.index(first_changed)
    assert [s for s in ORDER if before[s] != after[s]] == list(ORDER[cut:])
