"""A build with nothing to release fails loudly: exit 2, one line naming the stage and its reasons, no
release folder, the work dir (and its paid calls) kept; the writer and ``verify`` refuse empty splits."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from release_fixtures import make_manifest, make_rows, write_synthetic_release

from wikipersona_data.cli import main
from wikipersona_data.errors import NoDataError
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.release import writer
from wikipersona_data.release.verify import verify_release
from wikipersona_data.stages.context import StageStats
from wikipersona_data.stages.nodata import check_release_rows, empty_parts
from wikipersona_data.stages.rows import RejectRow

DEMO = Path(__file__).resolve().parents[1] / "wikipersona_data" / "demo" / "recipe.toml"


def _recipe(tmp_path: Path, old: str, new: str) -> Path:
    text = DEMO.read_text()
    assert old in text
    path = tmp_path / "recipe.toml"
    path.write_text(text.replace(old, new))
    return path


def test_judge_that_always_picks_a_names_position_biased_ties(tmp_path: Path, capsys) -> None:
    """Every match is a position-biased tie, every pair is dropped: exit 2, judge named, nothing written."""
    recipe = _recipe(tmp_path, "position_bias_rate = 0.1", "position_bias_rate = 1.0")
    work, out = tmp_path / "work", tmp_path / "out"
    code = main(["build", str(recipe), "--work", str(work), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "pairs/train, pairs/test would be empty" in lines[0]
    assert "stage judge kept no rows" in lines[0]
    assert "low_judge_agreement x" in lines[0]
    assert "position-biased ties" in lines[0]
    assert "Traceback" not in err
    assert not out.exists() and not (work / "release").exists()
    with CallCache(work / "cache", mode="use") as cache:
        assert len(cache.keys()) > 0  # what was paid for stays: a rerun resumes from it


def test_rows_lost_in_an_earlier_stage_are_named_with_their_reason(tmp_path: Path) -> None:
    (tmp_path / "describe").mkdir()
    rejects = [RejectRow(stage="describe", id=f"p{i}", reason="llm_failure", detail="length") for i in range(3)]
    rejects.append(RejectRow(stage="describe", id="p9", reason="low_grounding", detail="0.2 < 0.85"))
    (tmp_path / "describe" / "rejects.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rejects))
    stats = {"personas": StageStats(rows=4), "describe": StageStats(rows=0), "questions": StageStats(rows=0)}
    with pytest.raises(NoDataError) as caught:
        check_release_rows(tmp_path, stats, {"train": [], "test": []}, [])
    message = str(caught.value)
    assert "pairs/train, pairs/test, personas/train would be empty" in message
    assert "stage describe kept no rows; top reasons: llm_failure x3 (e.g. length); low_grounding x1" in message
    assert str(tmp_path) in message and "\n" not in message


def test_an_empty_test_split_alone_is_refused(tmp_path: Path) -> None:
    stats = {s: StageStats(rows=5) for s in ("personas", "describe", "questions", "respond", "judge", "split")}
    rows = [{"pair_id": "x"}]
    assert empty_parts({"train": rows, "test": []}, [{"persona_id": "p"}]) == ["pairs/test"]
    with pytest.raises(NoDataError, match=r"pairs/test would be empty; split: pairs/test empty \(1 train / 0 test"):
        check_release_rows(tmp_path, stats, {"train": rows, "test": []}, [{"persona_id": "p"}])
    check_release_rows(tmp_path, stats, {"train": rows, "test": rows}, [{"persona_id": "p"}])  # complete: no error


def test_writer_refuses_an_empty_split(tmp_path: Path) -> None:
    pairs, personas = make_rows()
    pairs = copy.deepcopy(pairs)
    pairs["test"] = []
    with pytest.raises(NoDataError, match="pairs/test: no rows"):
        writer.write_release(tmp_path / "rel", pairs=pairs, personas=personas, manifest=make_manifest())
    assert not (tmp_path / "rel").exists()
    assert list(tmp_path.iterdir()) == []  # no partial folder either


def test_verify_fails_a_release_with_an_empty_split(tmp_path: Path, monkeypatch) -> None:
    """A release written by a writer without the refusal (an older version): verify must catch it, and
    ``datasets.load_dataset`` really cannot load it."""
    monkeypatch.setattr(writer, "_refuse_empty", lambda tables: None)
    pairs, personas = make_rows()
    pairs = copy.deepcopy(pairs)
    pairs["test"] = []
    release = writer.write_release(tmp_path / "rel", pairs=pairs, personas=personas, manifest=make_manifest())
    report = verify_release(release)
    failed = {c.name: c.detail for c in report.failures}
    assert failed["no empty split"] == "pairs/test: no rows (an empty split cannot be loaded or trained on)"
    assert failed["loads with datasets"].startswith("load_dataset('rel', 'pairs'): ")
    assert main(["verify", str(release)]) == 2


def test_verify_loads_every_config_of_a_good_release(tmp_path: Path) -> None:
    release = write_synthetic_release(tmp_path / "rel")
    checks = {c.name: c for c in verify_release(release).checks}
    pairs, personas = make_rows()
    assert checks["loads with datasets"].ok
    assert checks["loads with datasets"].detail == (
        f"pairs train {len(pairs['train'])}/test {len(pairs['test'])}; personas train {len(personas)}"
    )
