"""``wikipersona audit export`` / ``import`` on the demo release (issue 14, item 3).

The demo is built once (``lifecycle_fixtures.demo_build``, shared with the extend/regenerate tests) and
never changed: exports and imports write into this module's own temp folders.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from lifecycle_fixtures import demo_build
from release_fixtures import write_synthetic_release

from wikipersona_data.cli import main
from wikipersona_data.release.audit import COLUMNS
from wikipersona_data.release.extend import read_rows
from wikipersona_data.release.kappa import cohen_kappa, raw_agreement
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.verify import verify_release

SEED, N = 9, 10  # this sample of the demo's 96 test pairs shows the judge's chosen answer as A 6 times, as B 4 times


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = demo_build(tmp_path_factory)
    sheets = tmp_path_factory.mktemp("audit-sheets")
    assert (
        main(["audit", "export", str(base["release"]), "--sample", str(N), "--seed", str(SEED), "--out", str(sheets)])
        == 0
    )
    return {**base, "sheets": sheets}


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _write_csv(path: Path, rows: list[dict[str, str]], fields: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def _judge_letters(release: Path, rows: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    """For each sheet row, the letter under which the judge's chosen answer was shown, and the row's axis group,
    found by matching the texts against the release's test pairs (independently of the audit code's sampler)."""
    pairs, _ = read_rows(release)
    letters, groups = [], []
    for row in rows:
        found = [
            p
            for p in pairs["test"]
            if p["persona"] == row["persona"]
            and _text(p["prompt"]) == row["question"]
            and {_text(p["chosen"]), _text(p["rejected"])} == {row["answer_A"], row["answer_B"]}
        ]
        assert len(found) == 1, row["item_id"]
        letters.append("A" if _text(found[0]["chosen"]) == row["answer_A"] else "B")
        groups.append(found[0]["axis"] or "personal")
    return letters, groups


def test_kappa_of_a_small_table_by_hand() -> None:
    # rater 1: A A A B ; rater 2: A A B B -> p_o = 3/4; marginals 1: A 3/4, B 1/4; 2: A 1/2, B 1/2
    # p_e = 3/4*1/2 + 1/4*1/2 = 1/2 ; kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2
    assert raw_agreement(list("AAAB"), list("AABB")) == 0.75
    assert cohen_kappa(list("AAAB"), list("AABB")) == pytest.approx(0.5)
    assert cohen_kappa(list("AAAA"), list("AAAA")) is None  # chance agreement 1: undefined, not 0 or 1


def test_round_trip_gives_the_kappa_computed_by_hand(demo: dict[str, Any], tmp_path: Path) -> None:
    rows = _csv_rows(demo["sheets"] / "sheet.csv")
    judge, groups = _judge_letters(demo["release"], rows)
    assert (len(rows), judge.count("A"), judge.count("B")) == (N, 6, 4)
    # The synthetic annotator's confusion table (rows: judge's letter, columns: annotator's label):
    #            annot A  annot B  tie
    #   judge A     4        1      1     (6)
    #   judge B     1        3      0     (4)
    #   total       5        4      1     (10)
    plan = {"A": ["A", "A", "A", "A", "B", "tie"], "B": ["A", "B", "B", "B"]}
    filled = [{**row, "choice": plan[letter].pop(0)} for row, letter in zip(rows, judge, strict=True)]
    alice = _write_csv(tmp_path / "alice.csv", filled)
    bob = _write_csv(tmp_path / "bob.csv", filled)  # a second annotator with the very same choices
    # p_o = (4 + 3) / 10 = 0.7
    # p_e = P(judge A) * P(annot A) + P(judge B) * P(annot B) + P(judge tie) * P(annot tie)
    #     = 6/10 * 5/10 + 4/10 * 4/10 + 0 * 1/10 = 0.30 + 0.16 = 0.46
    # kappa = (0.7 - 0.46) / (1 - 0.46) = 0.24 / 0.54 = 0.444444...
    expected_kappa = (0.7 - 0.46) / (1 - 0.46)

    out = tmp_path / "release-v0.1.1"
    assert main(["audit", "import", str(demo["release"]), str(alice), str(bob), "--out", str(out), "--json"]) == 0

    assert verify_release(out).ok
    manifest = Manifest.load(out / "manifest.json")
    old = Manifest.load(demo["release"] / "manifest.json")
    assert manifest.data.version == "0.1.1" and old.data.version == "0.1.0"
    audit = manifest.data.judge_audit
    assert audit is not None and audit.annotators == ["alice", "bob"]
    for name in ("alice", "bob"):
        overall = audit.vs_judge[name]["overall"]
        assert overall.items == N
        assert overall.agreement == pytest.approx(0.7)
        assert overall.kappa == pytest.approx(expected_kappa, abs=1e-6)
        # mapped back to the pair: 7 picked the judge's chosen answer, 2 its rejected one, 1 said tie
        assert audit.choices[name] == {"chosen": 0.7, "rejected": 0.2, "tie": 0.1}
    per_group = {g: f.items for g, f in audit.vs_judge["alice"].items() if g != "overall"}
    assert per_group == {g: groups.count(g) for g in set(groups)}
    between = audit.between_annotators["alice / bob"]["overall"]
    assert (between.agreement, between.kappa) == (1.0, 1.0)

    entry = manifest.data.changelog[-1]
    assert entry.version == "0.1.1" and "Judge audit" in entry.summary and entry.counts_added == {}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "### Judge audit" in card and "| alice | judge | overall | 10 | 0.700 | 0.444 |" in card
    # a patch version: every data file byte-identical to the audited release's
    data = {p: e.sha256 for p, e in manifest.data.files.items() if p.startswith("data/")}
    assert data == {p: e.sha256 for p, e in old.data.files.items() if p.startswith("data/")}
    for rel, digest in data.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest


def test_several_annotator_columns_in_one_sheet(demo: dict[str, Any], tmp_path: Path) -> None:
    rows = _csv_rows(demo["sheets"] / "sheet.csv")
    judge, _ = _judge_letters(demo["release"], rows)
    flip = {"A": "B", "B": "A"}
    filled = [{**r, "choice": "", "x": j, "y": flip[j]} for r, j in zip(rows, judge, strict=True)]
    sheet = _write_csv(tmp_path / "team.csv", filled)
    out = tmp_path / "rel"
    args = ["audit", "import", str(demo["release"]), str(sheet), "--annotator-col", "x", "--annotator-col", "y"]
    assert main([*args, "--out", str(out)]) == 0
    audit = Manifest.load(out / "manifest.json").data.judge_audit
    assert audit is not None
    assert audit.vs_judge["team:x"]["overall"].kappa == 1.0
    assert audit.vs_judge["team:y"]["overall"].agreement == 0.0
    assert audit.choices["team:y"]["rejected"] == 1.0


def test_jsonl_and_spreadsheet_csv_sheets_are_read_alike(demo: dict[str, Any], tmp_path: Path) -> None:
    rows = _csv_rows(demo["sheets"] / "sheet.csv")
    judge, _ = _judge_letters(demo["release"], rows)
    by_item = dict(zip((r["item_id"] for r in rows), judge, strict=True))
    lines = (demo["sheets"] / "sheet.jsonl").read_text(encoding="utf-8").splitlines()
    filled = [{**json.loads(line), "choice": by_item[json.loads(line)["item_id"]].lower()} for line in lines]
    jsonl = tmp_path / "carol.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in filled), encoding="utf-8")
    excel = _write_csv(tmp_path / "dave.csv", [{**r, "choice": by_item[r["item_id"]]} for r in rows])
    excel.write_bytes("\ufeff".encode() + excel.read_bytes())  # as spreadsheet programs save UTF-8 CSV
    out = tmp_path / "rel"
    assert main(["audit", "import", str(demo["release"]), str(jsonl), str(excel), "--out", str(out)]) == 0
    audit = Manifest.load(out / "manifest.json").data.judge_audit
    assert audit is not None and audit.annotators == ["carol", "dave"]
    assert audit.vs_judge["carol"]["overall"].kappa == 1.0 and audit.vs_judge["dave"]["overall"].kappa == 1.0


def test_export_is_deterministic_for_a_seed(demo: dict[str, Any], tmp_path: Path) -> None:
    release = str(demo["release"])
    assert (
        main(["audit", "export", release, "--sample", str(N), "--seed", str(SEED), "--out", str(tmp_path / "a")]) == 0
    )
    assert (
        main(["audit", "export", release, "--sample", str(N), "--seed", str(SEED + 1), "--out", str(tmp_path / "b")])
        == 0
    )
    for name in ("sheet.csv", "sheet.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (demo["sheets"] / name).read_bytes()
        assert (tmp_path / "b" / name).read_bytes() != (demo["sheets"] / name).read_bytes()


def test_no_judge_verdict_leaks_into_the_sheet(demo: dict[str, Any]) -> None:
    rows = _csv_rows(demo["sheets"] / "sheet.csv")
    lines = (demo["sheets"] / "sheet.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["item_id"] for line in lines] == [r["item_id"] for r in rows]
    assert all(list(json.loads(line)) == list(COLUMNS) for line in lines)
    assert list(rows[0]) == list(COLUMNS) and all(r["choice"] == "" for r in rows)
    judge, _ = _judge_letters(demo["release"], rows)
    assert set(judge) == {"A", "B"}  # the chosen answer is not always in the same place
    pairs, _ = read_rows(demo["release"])
    secrets: set[str] = set()
    for p in pairs["test"]:
        secrets |= {p["pair_id"], p["chosen_id"], p["rejected_id"], p["judge_model"]}
        secrets |= {v["rationale"] for v in p["judge_votes"]}
    text = "\n".join(lines) + (demo["sheets"] / "sheet.csv").read_text(encoding="utf-8")
    assert not [s for s in secrets if s in text]
    assert not any(word in " ".join(COLUMNS) for word in ("judge", "chosen", "rejected", "winner", "agreement"))


def _error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    capsys.readouterr()
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_bad_sheets_are_one_line_and_exit_2(
    demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _csv_rows(demo["sheets"] / "sheet.csv")
    judge, _ = _judge_letters(demo["release"], rows)
    good = [{**r, "choice": j} for r, j in zip(rows, judge, strict=True)]
    release = str(demo["release"])
    out = tmp_path / "never"

    def run(name: str, sheet_rows: list[dict[str, str]]) -> str:
        sheet = _write_csv(tmp_path / f"{name}.csv", sheet_rows, fields=list(COLUMNS))
        return _error(capsys, ["audit", "import", release, str(sheet), "--out", str(out)])

    assert "rows missing" in run("missing", good[:-1])
    assert "unknown label 'maybe'" in run("label", [{**good[0], "choice": "maybe"}, *good[1:]])
    assert "no choice" in run("unfilled", [{**good[0], "choice": ""}, *good[1:]])
    assert "duplicate item_id" in run("duplicate", [*good, good[3]])
    assert "empty sheet" in run("empty", [])

    other = write_synthetic_release(tmp_path / "other-release")
    theirs = tmp_path / "theirs"
    assert main(["audit", "export", str(other), "--sample", "3", "--seed", "1", "--out", str(theirs)]) == 0
    foreign = [{**r, "choice": "A"} for r in _csv_rows(theirs / "sheet.csv")]
    assert "of another release" in run("foreign", foreign)
    assert not out.exists()  # nothing written for a refused sheet


def test_export_refuses_a_bad_sample_and_an_existing_sheet(
    demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = str(demo["release"])
    assert "only 96 test pairs" in _error(
        capsys, ["audit", "export", release, "--sample", "97", "--out", str(tmp_path)]
    )
    assert "exists" in _error(capsys, ["audit", "export", release, "--sample", "3", "--out", str(demo["sheets"])])
