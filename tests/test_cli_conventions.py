"""One CLI convention: the same progress flags on every long command, results on stdout and logs on stderr,
``--json`` for scripts, the index found beside its dump, refusals before any work, quiet broken pipes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from release_fixtures import write_synthetic_release

from wikipersona_data.cli import main
from wikipersona_data.conventions import find_index, index_candidates
from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "builders" / "demo.toml"


@pytest.mark.parametrize("command", ["scan", "build", "extend", "demo", "get-dump"])
def test_every_long_command_has_the_same_progress_flags(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--progress / --no-progress" in text
    assert "only when stderr is a terminal" in text


def test_index_names_follow_wikimedia(tmp_path: Path) -> None:
    dump = tmp_path / "enwiki-20261101-pages-articles-multistream.xml.bz2"
    assert index_candidates(dump)[0].name == "enwiki-20261101-pages-articles-multistream-index.txt.bz2"
    part = tmp_path / "enwiki-20230520-pages-articles-multistream1.xml-p1p41242.bz2"
    assert index_candidates(part)[0].name == "enwiki-20230520-pages-articles-multistream-index1.txt-p1p41242.bz2"
    assert index_candidates(tmp_path / "pages.xml") == []
    assert find_index(dump) is None
    (tmp_path / "enwiki-20261101-pages-articles-multistream-index.txt").write_text("")
    assert find_index(dump) == tmp_path / "enwiki-20261101-pages-articles-multistream-index.txt"


def test_show_and_scan_find_the_index_beside_the_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = Path(shutil.copy(DEMO_DUMP, tmp_path))
    shutil.copy(DEMO_INDEX, tmp_path)
    assert main(["show", str(dump), "Adaeze Okafor"]) == 0
    assert capsys.readouterr().out.startswith("Adaeze Okafor\n")
    assert main(["scan", str(dump), "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"index: {tmp_path / DEMO_INDEX.name} (found beside the dump)" in err
    assert out.splitlines()[-1].startswith("pages=53 ")
    (tmp_path / DEMO_INDEX.name).unlink()
    assert main(["show", str(dump), "Adaeze Okafor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {dump}: show needs the multistream index; no --index given and none beside")
    assert DEMO_INDEX.name in err and "\n" not in err


def test_build_refuses_a_non_release_out_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    work = tmp_path / "work"
    assert main(["build", str(DEMO), "--out", str(out), "--work", str(work)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {out}: exists and is not a release folder (no manifest.json); choose another --out"
    )
    assert not work.exists()  # nothing was started
    assert (out / "mine.txt").read_text() == "keep me"


def test_estimate_json_in_pipeline_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(DEMO), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    stages = [r["stage"] for r in data["by_stage_model"]]
    order = ["personas", "describe", "questions", "respond", "embed", "judge", "split", "prefixes"]
    assert stages == sorted(stages, key=order.index)
    assert data["totals"]["calls"] == sum(r["calls"] for r in data["by_stage_model"])
    assert main(["estimate", str(DEMO)]) == 0
    text_stages = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:-4]]  # rule, total, 2 notes
    assert text_stages == stages


def test_build_results_on_stdout_logs_on_stderr_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work, out = tmp_path / "work", tmp_path / "release"
    assert main(["build", str(DEMO), "--work", str(work), "--out", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout.startswith("stage ") and f"release written to {out} (192 pairs, 8 personas)" in stdout
    assert "unit/s" not in stderr  # no bars: captured stderr is not a terminal
    manifest = json.loads((out / "manifest.json").read_text())["data"]
    total = next(line for line in stdout.splitlines() if line.startswith("total"))
    assert total.split()[1] == str(manifest["ledger"]["totals"]["calls"])
    # again, resumed from the journal: this run calls nothing, and says what the data cost (the card's figures)
    assert main(["build", str(DEMO), "--work", str(work), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    totals = manifest["ledger"]["totals"]
    assert (
        f"behind the data (manifest and card): {totals['calls']} calls, ${totals['cost_usd']:.4f} "
        "(this run resumed or replayed part of it)"
    ) in stdout
    assert main(["build", str(DEMO), "--work", str(work), "--out", str(out), "--json"]) == 0
    stdout = capsys.readouterr().out
    data = json.loads(stdout)
    assert data["release"] == str(out) and data["version"] == "0.1.0"
    assert data["counts"]["pairs_train"] + data["counts"]["pairs_test"] == 192
    assert data["ledger"]["totals"] == totals


def test_verify_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = write_synthetic_release(tmp_path / "release")
    assert main(["verify", str(release), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["failed"] == 0 and data["skipped"] == 0
    assert {c["status"] for c in data["checks"]} == {"ok"}


def test_publish_without_a_token_says_so_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    release = write_synthetic_release(tmp_path / "release")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr("huggingface_hub.constants.HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    assert main(["publish", str(release), "--repo-id", "org/name"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no Hugging Face token found: set HF_TOKEN, or run `hf auth login`"), err
    assert str(home / "token") in err and "\n" not in err


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    release = write_synthetic_release(tmp_path / "release")
    argv = [sys.executable, "-m", "wikipersona_data.cli", "publish", str(release), "--repo-id", "org/name", "--dry-run"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` that has already gone: every write meets a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert err == ""
