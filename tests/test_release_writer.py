"""write_release: parquet layout, typing, determinism, atomicity, and load_dataset on the result."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pyarrow
import pyarrow.parquet as pq
import pytest
from datasets import Features
from release_fixtures import make_manifest, make_rows, write_synthetic_release

from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.release import schema
from wikipersona_data.release.selftest import load_offline, self_test
from wikipersona_data.release.writer import write_release


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    # a name no other test uses, so the ~/.cache assertion below is about this loader only
    return write_synthetic_release(tmp_path_factory.mktemp("rel") / "wp-writer-release")


def _all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_is_push_to_hub_style(release: Path) -> None:
    names = set(_all_files(release))
    assert {
        "README.md",
        "manifest.json",
        "data/pairs/train-00000-of-00001.parquet",
        "data/pairs/test-00000-of-00001.parquet",
        "data/personas/train-00000-of-00001.parquet",
    } <= names
    assert {n for n in names if n.startswith("charts/")} == {  # pairs per persona: all alike, so not drawn
        "charts/pairs_per_axis.png",
        "charts/answer_lengths.png",
        "charts/grounding.png",
    }
    assert [p.name for p in release.parent.iterdir()] == [release.name]  # no partial/backup folder left


def test_load_dataset_both_configs_offline(release: Path, tmp_path: Path) -> None:
    pairs, personas = make_rows()
    ds = load_offline(release, "pairs", tmp_path / "cache")
    assert set(ds) == {"train", "test"}
    assert ds["train"].num_rows == len(pairs["train"]) and ds["test"].num_rows == len(pairs["test"])
    assert ds["train"].features == Features.from_arrow_schema(schema.PAIRS)
    first = ds["train"][0]
    assert first["prompt"][0]["role"] == "user" and first["chosen"][0]["role"] == "assistant"
    people = load_offline(release, "personas", tmp_path / "cache")
    assert list(people) == ["train"]
    assert people["train"].features == Features.from_arrow_schema(schema.PERSONAS)
    assert sorted(people["train"]["persona_id"]) == sorted(p["persona_id"] for p in personas)
    assert self_test(release) == {
        "pairs_train": len(pairs["train"]),
        "pairs_test": len(pairs["test"]),
        "personas": len(personas),
    }
    assert not (Path.home() / ".cache" / "huggingface" / "datasets" / release.name).exists()


def test_parquet_is_typed_sorted_zstd(release: Path) -> None:
    for name, contract, key in [
        ("data/pairs/train-00000-of-00001.parquet", schema.PAIRS, "pair_id"),
        ("data/pairs/test-00000-of-00001.parquet", schema.PAIRS, "pair_id"),
        ("data/personas/train-00000-of-00001.parquet", schema.PERSONAS, "persona_id"),
    ]:
        pf = pq.ParquetFile(release / name)
        table = pf.read()
        assert table.schema.names == contract.names
        for field in contract:
            assert table.schema.field(field.name).type.equals(field.type), field.name
        ids = table.column(key).to_pylist()
        assert ids == sorted(ids)
        assert pf.metadata.row_group(0).column(0).compression == "ZSTD"
        # nothing volatile in the file metadata: only the arrow schema key-value entry
        assert set(pf.metadata.metadata or {}) <= {b"ARROW:schema"}


def test_identical_input_gives_identical_bytes(release: Path, tmp_path: Path) -> None:
    again = write_synthetic_release(tmp_path / "again")
    first, second = _all_files(release), _all_files(again)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], f"{name} differs between two identical writes"


def test_counts_files_and_changelog_are_filled_from_rows(release: Path) -> None:
    pairs, personas = make_rows()
    manifest = json.loads((release / "manifest.json").read_text())
    counts = manifest["data"]["counts"]
    all_pairs = pairs["train"] + pairs["test"]
    assert counts["pairs_train"] == len(pairs["train"]) and counts["pairs_test"] == len(pairs["test"])
    assert counts["personas"] == len(personas)
    assert counts["personal"] == sum(p["question_type"] == "personal" for p in all_pairs)
    assert counts["divergent"] == sum(p["question_type"] == "divergent" for p in all_pairs)
    assert counts["questions"] == 52  # the caller's counts are kept
    assert manifest["data"]["grounding"] == {"mean": 0.875, "min": 0.5}
    assert manifest["run"]["libraries"]["pyarrow"] == pyarrow.__version__  # filled by the writer when not given
    entry = manifest["data"]["files"]["data/pairs/train-00000-of-00001.parquet"]
    assert entry["rows"] == len(pairs["train"])
    assert entry["bytes"] == (release / "data/pairs/train-00000-of-00001.parquet").stat().st_size
    text = (release / "manifest.json").read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_changelog_entry_added_when_missing(tmp_path: Path) -> None:
    pairs, personas = make_rows()
    out = write_release(tmp_path / "r", pairs=pairs, personas=personas, manifest=make_manifest("0.3.0", changelog=[]))
    changelog = json.loads((out / "manifest.json").read_text())["data"]["changelog"]
    assert [e["version"] for e in changelog] == ["0.3.0"]
    assert changelog[0]["summary"] == "Initial release."


def test_large_split_is_sharded(tmp_path: Path, release: Path) -> None:
    out = write_synthetic_release(tmp_path / "sharded", max_shard_bytes=4_000)
    shards = sorted(p.name for p in (out / "data/pairs").glob("train-*.parquet"))
    assert len(shards) > 1
    assert shards[0] == f"train-00000-of-{len(shards):05d}.parquet"
    rows = sum(pq.ParquetFile(out / "data/pairs" / s).metadata.num_rows for s in shards)
    assert rows == len(make_rows()[0]["train"])
    ds = load_offline(out, "pairs", tmp_path / "cache")
    assert (
        ds["train"]["pair_id"]
        == pq.read_table(release / "data/pairs/train-00000-of-00001.parquet")["pair_id"].to_pylist()
    )


def test_bad_cell_names_row_and_column(tmp_path: Path) -> None:
    pairs, personas = make_rows()
    bad = copy.deepcopy(pairs)
    bad["train"][3]["prompt"] = "not a list of messages"
    with pytest.raises(InputError, match=r"pairs/train pair_id='[0-9a-f]+': column 'prompt' expects list"):
        write_release(tmp_path / "r", pairs=bad, personas=personas, manifest=make_manifest())
    bad = copy.deepcopy(pairs)
    del bad["test"][0]["judge_agreement"]
    with pytest.raises(InputError, match="missing column 'judge_agreement'"):
        write_release(tmp_path / "r", pairs=bad, personas=personas, manifest=make_manifest())
    bad_personas = copy.deepcopy(personas)
    bad_personas[1]["wiki_page_id"] = "twelve"
    with pytest.raises(InputError, match="column 'wiki_page_id' expects int64"):
        write_release(tmp_path / "r", pairs=pairs, personas=bad_personas, manifest=make_manifest())
    with pytest.raises(InputError, match="unknown split 'validation'"):
        write_release(tmp_path / "r", pairs={**pairs, "validation": []}, personas=personas, manifest=make_manifest())
    assert not (tmp_path / "r").exists()


def test_manifest_that_leaks_a_path_is_refused_in_one_line(tmp_path: Path) -> None:
    pairs, personas = make_rows()
    manifest = make_manifest()
    # model_copy skips validation, as a caller mutating a manifest would; the writer re-validates
    leaky = manifest.model_copy(update={"data": manifest.data.model_copy(update={"seeds": {"/home/me/x": 1}})})
    with pytest.raises(InputError, match=r"release manifest: Value error, manifest\.data\.seeds: absolute path"):
        write_release(tmp_path / "r", pairs=pairs, personas=personas, manifest=leaky)
    assert not (tmp_path / "r").exists()


def test_failure_leaves_previous_release_intact(tmp_path: Path) -> None:
    out = write_synthetic_release(tmp_path / "r")
    before = _all_files(out)
    pairs, personas = make_rows()
    with pytest.raises(ConfigError, match="cannot read the card template"):
        write_release(
            out, pairs=pairs, personas=personas, manifest=make_manifest("1.1.0"), template_path=tmp_path / "missing.md"
        )
    assert _all_files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no partial or backup folder left behind


def test_refuses_to_replace_a_folder_that_is_not_a_release(tmp_path: Path) -> None:
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a release folder"):
        write_synthetic_release(precious)
    assert (precious / "notes.txt").read_text() == "keep me"
