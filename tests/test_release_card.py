"""The rendered card: Hub-parsable front matter whose configs and dataset_info match the files, numbers from data."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Features
from huggingface_hub import DatasetCard
from release_fixtures import make_manifest, make_rows, write_synthetic_release

from wikipersona_data.release import schema
from wikipersona_data.release.card import size_category
from wikipersona_data.release.writer import write_release


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_synthetic_release(tmp_path_factory.mktemp("card") / "release")


@pytest.fixture(scope="module")
def card(release: Path) -> str:
    return (release / "README.md").read_text(encoding="utf-8")


def _parquet_files(release: Path) -> list[str]:
    return sorted(p.relative_to(release).as_posix() for p in release.rglob("*.parquet"))


def test_front_matter_parses_with_huggingface_hub(card: str, release: Path) -> None:
    data = DatasetCard(card).data.to_dict()
    assert data["license"] == "cc-by-sa-4.0"
    assert data["language"] == ["en"]
    assert data["pretty_name"] == "WikiPersona"
    assert {"synthetic", "dpo", "preference", "personalization", "wikipedia"} <= set(data["tags"])
    assert data["annotations_creators"] == ["machine-generated"]
    assert "text-generation" in data["task_categories"]
    assert data["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in data["configs"]}
    assert configs["pairs"]["default"] is True
    assert "default" not in configs["personas"]
    files = _parquet_files(release)
    for config, split_specs in ((name, c["data_files"]) for name, c in configs.items()):
        for spec in split_specs:
            matched = [f for f in files if fnmatch.fnmatchcase(f, spec["path"])]
            assert matched == [f for f in files if f.startswith(f"data/{config}/{spec['split']}-")], spec
            assert matched


def test_dataset_info_is_complete_and_matches_the_files(card: str, release: Path) -> None:
    front = yaml.safe_load(card.split("---\n")[1])
    infos = {i["config_name"]: i for i in front["dataset_info"]}
    assert set(infos) == {"pairs", "personas"}
    for config, contract in (("pairs", schema.PAIRS), ("personas", schema.PERSONAS)):
        info = infos[config]
        assert Features._from_yaml_list(info["features"]) == Features.from_arrow_schema(contract)
        total_bytes = 0
        for split in info["splits"]:
            tables = [pq.read_table(release / f) for f in _parquet_files(release) if f"/{config}/{split['name']}-" in f]
            assert split["num_examples"] == sum(t.num_rows for t in tables)
            assert split["num_bytes"] == sum(t.nbytes for t in tables) > 0
            total_bytes += split["num_bytes"]
        assert info["dataset_size"] == total_bytes
        assert info["download_size"] == sum(
            (release / f).stat().st_size for f in _parquet_files(release) if f.startswith(f"data/{config}/")
        )


def test_body_numbers_come_from_the_data(card: str, release: Path) -> None:
    pairs, personas = make_rows()
    n_pairs = len(pairs["train"]) + len(pairs["test"])
    assert f"**{n_pairs} chosen/rejected preference pairs**" in card
    assert f"**{len(personas)} famous living people**" in card
    assert 'load_dataset("ORG/NAME", "pairs", revision="v1.0.0")' in card
    assert 'load_dataset("ORG/NAME", "personas", revision="v1.0.0")' in card
    for persona in personas:
        rev = persona["wiki_revision_id"]
        assert f"https://en.wikipedia.org/w/index.php?oldid={rev}" in card
        assert persona["name"] in card
    example = json.loads(re.search(r"```json\n(.*?)\n```", card, re.S).group(1))
    first_train = pq.read_table(release / "data/pairs/train-00000-of-00001.parquet").slice(0, 1).to_pylist()[0]
    assert example["pair_id"] == first_train["pair_id"]
    assert example["prompt"] == first_train["prompt"]
    assert "| judge | agreement | 48 | 4 | order_disagrees: 3, tie: 1 |" in card
    assert "| diet | 0.750 |" in card
    assert "| judge | `sim-judge` | sim-judge-2026-11 |" in card
    assert "In total: 260 LLM calls, 12,000 input tokens, 5,000 output tokens, $0.7500 at the recipe's prices." in card
    assert "| judge | sim-judge | 104 | 0.25 | 5,000 | 900 |" in card
    assert "| **total** |  | 260 | 0.75 | 12,000 | 5,000 |" in card
    assert "- **judge:** mean_judge_agreement 0.9, votes 208" in card
    assert "\n\n\n" not in card
    assert "- **v1.0.0** (2026-11-26): Synthetic test release." in card
    for chart in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card):
        assert (release / chart).is_file(), chart
    # every persona of the fixture has 4 personal and 6 divergent pairs: a flat bar chart is a sentence instead
    assert len(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card)) == 3
    assert "Every persona has the same pairs: 4 personal and 6 divergent." in card
    assert "pairs_per_persona.png" not in card
    for section in ("Personal and sensitive information", "Bias, risks and limitations", "License and attribution"):
        assert f"## {section}" in card
    assert "arxiv.org/abs/2505.13257" in card
    assert "{{" not in card and "{%" not in card


def test_repo_id_and_changelog_history(tmp_path: Path) -> None:
    pairs, personas = make_rows()
    history = [
        {"version": "1.0.0", "date": "2026-10-01", "summary": "First.", "counts_added": {"personas": 2}},
        {"version": "1.1.0", "date": "2026-11-26", "summary": "Two more personas.", "counts_added": {"personas": 2}},
    ]
    manifest = make_manifest("1.1.0", repo_id="wikipersona/WikiPersona", changelog=history)
    out = write_release(tmp_path / "r", pairs=pairs, personas=personas, manifest=manifest)
    card = (out / "README.md").read_text()
    assert 'load_dataset("wikipersona/WikiPersona", "pairs", revision="v1.1.0")' in card
    assert "ORG/NAME" not in card
    assert card.index("**v1.1.0**") < card.index("**v1.0.0**")  # newest first
    assert "(personas +2)" in card


@pytest.mark.parametrize(
    ("n", "label"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (15_000, "10K<n<100K"), (2_000_000, "1M<n<10M")]
)
def test_size_category(n: int, label: str) -> None:
    assert size_category(n) == label
