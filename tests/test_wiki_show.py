"""``wikipersona show``: readable text, --json, normalisation, redirects and errors, on test dumps and samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wiki_dump_fixtures import SAMPLE_INDEX, SAMPLE_MULTI, small_wiki, write_multistream

from wikipersona_data.cli import main
from wikipersona_data.wiki.biography import Biography


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_multistream(tmp_path_factory.mktemp("show"), small_wiki(), per_stream=3)


def test_show_text_follows_redirects(multi: tuple[Path, Path], capsys) -> None:
    dump, index = multi
    assert main(["show", str(dump), "--index", str(index), "j._doe"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("redirect: J. Doe -> Jane Doe\nJane Doe\n")
    assert "url: https://en.wikipedia.org/wiki/Jane_Doe" in out
    assert "living: yes" in out and "born: 1970-04-29" in out and "infobox: infobox person" in out
    assert "Career" in out


def test_show_json_is_a_biography(multi: tuple[Path, Path], capsys) -> None:
    dump, index = multi
    assert main(["show", str(dump), "--index", str(index), "AT&T_Person", "--json"]) == 0
    bio = Biography.model_validate(json.loads(capsys.readouterr().out))
    assert bio.title == "AT&T Person" and bio.page_id == 17 and bio.birth_year == 1985
    assert main(["show", str(dump), "--index", str(index), "Jane", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["title"] == "Jane Doe" and "redirect: Jane -> Jane Doe" in captured.err


def test_show_unknown_title_one_line_with_suggestion(multi: tuple[Path, Path], capsys) -> None:
    dump, index = multi
    assert main(["show", str(dump), "--index", str(index), "Mary Majr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown title 'Mary Majr'") and "'Mary Major'" in err[0]


def test_show_redirect_loop(multi: tuple[Path, Path], capsys) -> None:
    dump, index = multi
    assert main(["show", str(dump), "--index", str(index), "Loop B"]) == 2
    assert "redirect loop: Loop B -> Loop A -> Loop B" in capsys.readouterr().err


needs_samples = pytest.mark.skipif(not SAMPLE_INDEX.is_file(), reason="shared wikipedia samples absent")


@needs_samples
def test_show_sample_normalises_andre_agassi(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIKIPERSONA_CACHE", str(tmp_path))  # the samples folder is read-only
    assert main(["show", str(SAMPLE_MULTI), "--index", str(SAMPLE_INDEX), "Andre_agassi", "--json"]) == 0
    bio = json.loads(capsys.readouterr().out)
    assert bio["title"] == "Andre Agassi" and bio["page_id"] == 595 and bio["revision_id"] == 716730004
    assert bio["is_living"] is True and bio["birth_date"] == "1970-04-29"
    assert not any(p.name.endswith(".sqlite") for p in SAMPLE_INDEX.parent.iterdir())


@needs_samples
def test_show_sample_redirects(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIKIPERSONA_CACHE", str(tmp_path))
    assert main(["show", str(SAMPLE_MULTI), "--index", str(SAMPLE_INDEX), "AynRand"]) == 0
    assert capsys.readouterr().out.startswith("redirect: AynRand -> Ayn Rand\nAyn Rand\n")
    # AccessibleComputing redirects to "Computer accessibility", which the 206-page sample does not contain
    assert main(["show", str(SAMPLE_MULTI), "--index", str(SAMPLE_INDEX), "AccessibleComputing"]) == 2
    assert "redirect target 'Computer accessibility' (from AccessibleComputing)" in capsys.readouterr().err
