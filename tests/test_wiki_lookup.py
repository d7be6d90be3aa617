"""Title normalisation, the on-disk title lookup (build, reuse, rebuild, cache dir) and DumpReader."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from wiki_dump_fixtures import P, small_wiki, write_multistream

from wikipersona_data.errors import InputError
from wikipersona_data.wiki.lookup import DumpReader, open_lookup
from wikipersona_data.wiki.titles import fold_title, normalize_title


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Andre_agassi", "Andre agassi"),
        ("  jane   doe ", "Jane doe"),
        ("AT&amp;T", "AT&T"),
        ("élodie_x", "Élodie x"),
        (":Category:Foo", "Category:Foo"),
        ("ßtraße", "ßtraße"),  # 'ß'.upper() is 'SS': MediaWiki leaves it
        ("", ""),
    ],
)
def test_normalize_title(raw: str, expected: str) -> None:
    assert normalize_title(raw) == expected


def test_fold_title_is_case_insensitive() -> None:
    assert fold_title("andre_AGASSI") == fold_title("Andre Agassi")


@pytest.fixture
def multi(tmp_path: Path) -> tuple[Path, Path]:
    return write_multistream(tmp_path / "dump", small_wiki(), per_stream=3)


def test_lookup_is_built_once_then_reused_and_rebuilt_when_the_index_changes(multi: tuple[Path, Path]) -> None:
    _, index = multi
    lookup = open_lookup(index)
    db = lookup.path
    assert db == index.with_name(index.name + ".lookup.sqlite")
    assert lookup.find("Jane_Doe") == ("Jane Doe", lookup.find("Jane Doe")[1], 10)
    assert lookup.find("jane_doe")[0] == "Jane Doe"  # unique up to case
    assert lookup.find("Nobody") is None
    lookup.close()
    built = db.stat().st_mtime_ns
    open_lookup(index).close()
    assert db.stat().st_mtime_ns == built  # reused
    text = index.read_bytes()
    index.write_bytes(text)  # same content, new mtime
    os.utime(index, ns=(built + 10**9, built + 10**9))
    open_lookup(index).close()
    assert db.stat().st_mtime_ns != built  # rebuilt


def test_lookup_goes_to_the_cache_dir_when_the_index_folder_is_read_only(
    multi: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump, index = multi
    monkeypatch.setenv("WIKIPERSONA_CACHE", str(tmp_path / "cache"))
    folder = index.parent
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with DumpReader(dump, index) as reader:
            assert reader.resolve("Jane") == ("Jane Doe", 10)
            assert reader.lookup.path.parent == tmp_path / "cache" / "lookup"
        assert not any(p.name.endswith(".sqlite") for p in folder.iterdir())
    finally:
        folder.chmod(stat.S_IRWXU)


def test_dump_reader_api(multi: tuple[Path, Path]) -> None:
    dump, index = multi
    reader = DumpReader(dump, index)
    assert reader.resolve("j._doe") == ("Jane Doe", 10)
    assert reader.follow("J. Doe")[1] == ["J. Doe", "Jane Doe"]
    assert reader.get_wikitext("AT&T_Person").startswith("{{Short description|Test person}}")
    bio = reader.get("Jane")
    assert bio.title == "Jane Doe" and bio.is_living and bio.page_id == 10 and bio.revision_id == 100
    assert bio.sections and bio.sentences  # full parse
    reader.close()


def test_case_mistakes_resolve_when_unambiguous(multi: tuple[Path, Path]) -> None:
    dump, index = multi
    with DumpReader(dump, index) as reader:
        assert reader.resolve("mary_MAJOR") == ("Mary Major", 21)


def test_unknown_title_suggests_close_titles(multi: tuple[Path, Path]) -> None:
    dump, index = multi
    with DumpReader(dump, index) as reader, pytest.raises(InputError, match=r"unknown title 'Jane Dough'.*'Jane Doe'"):
        reader.get("Jane Dough")


def test_redirect_loop_is_a_clear_error(multi: tuple[Path, Path]) -> None:
    dump, index = multi
    with (
        DumpReader(dump, index) as reader,
        pytest.raises(InputError, match="redirect loop: Loop A -> Loop B -> Loop A"),
    ):
        reader.resolve("Loop A")


def test_redirect_to_a_missing_page(tmp_path: Path) -> None:
    dump, index = write_multistream(tmp_path, [P("Old", 1, "#REDIRECT [[Gone]]", redirect="Gone")])
    with DumpReader(dump, index) as reader, pytest.raises(InputError, match=r"redirect target 'Gone'.*not in index"):
        reader.resolve("Old")


def test_page_id_missing_from_its_stream(tmp_path: Path) -> None:
    dump, index = write_multistream(tmp_path, small_wiki(), per_stream=3, index_bz2=False)
    lines = index.read_text().splitlines()
    offset, _, title = lines[0].split(":", 2)
    index.write_text("\n".join([f"{offset}:999:{title}", *lines[1:]]) + "\n")
    with (
        DumpReader(dump, index) as reader,
        pytest.raises(InputError, match=r"page id 999 .* is not in the stream at offset"),
    ):
        reader.get_wikitext("Jane Doe")


def test_random_access_needs_a_bz2_dump(tmp_path: Path, multi: tuple[Path, Path]) -> None:
    plain = tmp_path / "plain.xml"
    plain.write_text("<mediawiki/>")
    with pytest.raises(InputError, match="multistream"):
        DumpReader(plain, multi[1])


def test_truncated_stream_during_random_access(tmp_path: Path) -> None:
    dump, index = write_multistream(tmp_path, small_wiki(), per_stream=6)
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) - 120])  # cut into the last page stream (the footer is ~40 bytes)
    with (
        DumpReader(dump, index) as reader,
        pytest.raises(
            InputError,
            match=r"dump .* is truncated: the bz2 stream at offset \d+ runs past the end of the file \(size \d+ ",
        ),
    ):
        reader.get_wikitext("Mary Major")
