"""`wikipersona verify`: passes a good release; each kind of damage fails its check with a clear message."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from release_fixtures import make_manifest, make_rows, write_synthetic_release

from wikipersona_data.cli import main
from wikipersona_data.release.verify import name_pattern, verify_release
from wikipersona_data.release.writer import write_release

TRAIN = "data/pairs/train-00000-of-00001.parquet"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_synthetic_release(tmp_path_factory.mktemp("verify") / "release")


@pytest.fixture
def copy_of(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "release"))


def _failed(release: Path) -> dict[str, str]:
    report = verify_release(release)
    assert not report.ok
    return {c.name: c.detail for c in report.failures}


def _write(tmp_path: Path, mutate) -> Path:
    pairs, personas = make_rows()
    pairs = copy.deepcopy(pairs)
    mutate(pairs, personas)
    return write_release(tmp_path / "bad", pairs=pairs, personas=personas, manifest=make_manifest())


def test_good_release_passes_every_check(good: Path, capsys) -> None:
    report = verify_release(good)
    assert report.ok, report.lines()
    assert len(report.checks) == 16
    assert main(["verify", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.count("\nok   ") + out.startswith("ok   ") == 16
    assert "release OK" in out


def test_tampered_data_file(copy_of: Path, capsys) -> None:
    path = copy_of / TRAIN
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    failed = _failed(copy_of)
    assert failed["checksums"] == f"{TRAIN}: sha256 differs from manifest.json (file corrupted or modified)"
    assert main(["verify", str(copy_of)]) == 2
    captured = capsys.readouterr()
    assert "FAIL checksums" in captured.out
    assert captured.err.strip().startswith("error: ") and captured.err.count("\n") == 1


def test_truncated_data_file(copy_of: Path) -> None:
    path = copy_of / TRAIN
    path.write_bytes(path.read_bytes()[:100])
    failed = _failed(copy_of)
    assert "truncated or replaced" in failed["checksums"] and TRAIN in failed["checksums"]
    assert TRAIN in failed["schema"]  # the parquet footer is gone: named, not a crash


def test_missing_file(copy_of: Path) -> None:
    (copy_of / "data/personas/train-00000-of-00001.parquet").unlink()
    failed = _failed(copy_of)
    assert failed["checksums"] == "data/personas/train-00000-of-00001.parquet: listed in manifest.json but missing"
    assert "no parquet file for personas/train" in failed["schema"]


def test_missing_or_corrupt_manifest(copy_of: Path) -> None:
    (copy_of / "manifest.json").write_text("{not json")
    failed = _failed(copy_of)
    assert "invalid manifest" in failed["manifest"]
    assert "checksums" not in failed  # it cannot run: skipped, not failed; the manifest check names the cause
    skipped = {c.name: c.detail for c in verify_release(copy_of).skipped}
    assert skipped["checksums"] == "skipped: no valid manifest.json (see manifest)"
    (copy_of / "manifest.json").unlink()
    assert "manifest.json is missing" in _failed(copy_of)["manifest"]


def test_duplicate_pair_id(tmp_path: Path) -> None:
    def dup(pairs, _personas):
        pairs["test"][0]["pair_id"] = pairs["train"][0]["pair_id"]

    failed = _failed(_write(tmp_path, dup))
    assert set(failed) == {"unique pair_id"}
    assert "appears twice" in failed["unique pair_id"]


def test_identity_leak(tmp_path: Path) -> None:
    def leak(pairs, _personas):
        row = next(r for r in pairs["train"] if r["persona"] == "Bram Okafor")
        row["prompt"] = [{"role": "user", "content": "As Okafor, what should I cook tonight?"}]

    failed = _failed(_write(tmp_path, leak))
    assert set(failed) == {"identity leaks"}
    assert "prompt names the persona ('Okafor')" in failed["identity leaks"]


@pytest.mark.parametrize(
    ("name", "text", "leak"),
    [
        ("Emma Stone", "How do I build a stone wall?", None),
        ("Emma Stone", "What would Stone's fans like?", "Stone"),
        ("Emma Stone", "is emma stone vegan?", "emma stone"),
        ("Madonna", "Which Madonna album first?", "Madonna"),
        ("Bill Gates", "Gatesville trip ideas?", None),
    ],
)
def test_name_pattern(name: str, text: str, leak: str | None) -> None:
    match = name_pattern(name).search(text)
    assert (match.group(0) if match else None) == leak


def test_split_overlap(tmp_path: Path) -> None:
    def overlap(pairs, _personas):
        # one persona's pair on a shared divergent question moves to the other split
        moved = next(r for r in pairs["test"] if r["question_type"] == "divergent")
        pairs["test"].remove(moved)
        pairs["train"].append(moved)

    failed = _failed(_write(tmp_path, overlap))
    assert set(failed) == {"split disjointness"}
    assert "is in both train and test" in failed["split disjointness"]


def test_duplicate_question_and_identical_answers(tmp_path: Path) -> None:
    def damage(pairs, _personas):
        a, b = [r for r in pairs["train"] if r["persona"] == "Ada Quill" and r["question_type"] == "personal"][:2]
        b["prompt"] = copy.deepcopy(a["prompt"])
        b["rejected"] = copy.deepcopy(b["chosen"])

    failed = _failed(_write(tmp_path, damage))
    assert set(failed) == {"duplicate questions", "chosen != rejected"}
    assert "has the same question twice in train" in failed["duplicate questions"]


def test_persona_name_must_match_personas(tmp_path: Path) -> None:
    def rename(pairs, _personas):
        pairs["train"][0]["persona"] = "Someone Else"

    assert "is not the name of" in _failed(_write(tmp_path, rename))["personas referenced"]


def test_card_features_must_match_the_contract(copy_of: Path) -> None:
    card = copy_of / "README.md"
    text = card.read_text()
    assert text.count("  - name: judge_agreement\n    dtype: float64") == 1
    card.write_text(
        text.replace("  - name: judge_agreement\n    dtype: float64", "  - name: judge_agreement\n    dtype: string")
    )
    assert _failed(copy_of)["card"] == "README.md dataset_info pairs: features differ from the column contract"


def test_bad_message_shapes(tmp_path: Path) -> None:
    def damage(pairs, _personas):
        pairs["train"][0]["chosen"] = [{"role": "user", "content": "wrong role"}]

    assert "chosen must be [{role: assistant, content}]" in _failed(_write(tmp_path, damage))["message shapes"]

    def blank(pairs, _personas):
        pairs["test"][1]["prompt"] = [{"role": "user", "content": "   "}]

    assert _failed(_write(tmp_path / "2", blank))["message shapes"].endswith("empty content in prompt")


def test_card_config_must_match_files(copy_of: Path) -> None:
    card = copy_of / "README.md"
    card.write_text(card.read_text().replace("path: data/pairs/test-*.parquet", "path: data/pairs/dev-*.parquet"))
    failed = _failed(copy_of)
    assert set(failed) == {"card"}
    assert "config pairs/test" in failed["card"] and "no files" in failed["card"]


def test_key_or_path_in_card(copy_of: Path) -> None:
    card = copy_of / "README.md"
    fake_key = "sk-" + "abcdefghijklmnopqrstu"  # built at run time: no key-shaped literal in the repo
    card.write_text(card.read_text() + f"\nBuilt in /home/builder/wikipersona with {fake_key}\n")
    failed = _failed(copy_of)
    assert set(failed) == {"no paths or keys"}
    assert "README.md: absolute path '/home/builder/wikipersona'" == failed["no paths or keys"]


def test_unlisted_extra_data_file(copy_of: Path) -> None:
    shutil.copy(copy_of / TRAIN, copy_of / "data/pairs/train-00001-of-00001.parquet")
    failed = _failed(copy_of)
    assert failed["checksums"] == "data/pairs/train-00001-of-00001.parquet: file not listed in manifest.json"


def test_not_a_folder(tmp_path: Path) -> None:
    report = verify_release(tmp_path / "nope")
    assert not report.ok and "is not a directory" in report.checks[0].detail


def test_unreadable_parquet_is_reported_once_and_its_dependents_skipped(copy_of: Path, capsys) -> None:
    path = copy_of / TRAIN
    path.write_bytes(path.read_bytes()[:100])
    report = verify_release(copy_of)
    causes = [c for c in report.failures if "not a readable parquet file" in c.detail]
    assert [c.name for c in causes] == ["schema"]  # the cause, once
    assert report.skipped and all(c.detail == f"skipped: {TRAIN} is unreadable (see schema)" for c in report.skipped)
    assert {c.name for c in report.failures} == {"checksums", "schema"}
    assert main(["verify", str(copy_of)]) == 2
    out, err = capsys.readouterr()
    n_skipped = len(report.skipped)
    assert sum(line.startswith("skip ") for line in out.splitlines()) == n_skipped
    assert sum(line.startswith("FAIL ") for line in out.splitlines()) == 2
    assert f"release FAILED: 2 of {len(report.checks)} checks failed, {n_skipped} skipped" in out
    assert err.strip() == f"error: {copy_of}: 2 check(s) failed, first: checksums; {n_skipped} skipped"
    assert main(["verify", str(copy_of), "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["failed"] == 2 and data["skipped"] == n_skipped
    assert [c["status"] for c in data["checks"]].count("skip") == n_skipped
