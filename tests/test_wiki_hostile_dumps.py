"""Hostile dumps and indexes (issue 11 "Dumps", issue 17 "Dumps: precise errors"): real bz2/XML files in tmp dirs.

Each test builds the hostile file the way an attacker (or a broken download) would and checks that the
reader stays within a memory bound, and that bad input ends in one line naming the file at fault.
"""

from __future__ import annotations

import bz2
import tracemalloc
from pathlib import Path

import pytest
from wiki_dump_fixtures import P, header, page_xml, person_text, small_wiki, write_multistream, write_xml

from wikipersona_data.cli import main
from wikipersona_data.errors import InputError
from wikipersona_data.wiki.bounded import OUT_CHUNK, bz2_chunks, page_xml_cap
from wikipersona_data.wiki.dump import SequentialReader
from wikipersona_data.wiki.lookup import DumpReader
from wikipersona_data.wiki.multistream import MAX_INDEX_LINE, index_streams, iter_index, stream_pages

BOMB_BYTES = 256 << 20  # 256 MiB of decompressed text from about a kilobyte of bz2
MIB = 1 << 20


def _error_line(capsys, args: list[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def _bomb_page_stream(page_id: int = 99, title: str = "Bomb") -> bytes:
    """One bz2 stream holding a single page whose text is 256 MiB of 'a' (compressed incrementally)."""
    comp = bz2.BZ2Compressor(9)
    parts = [comp.compress(f"  <page>\n    <title>{title}</title>\n    <ns>0</ns>\n    <id>{page_id}</id>\n".encode())]
    parts.append(comp.compress(b'    <revision><id>1</id><text xml:space="preserve">'))
    block = b"a" * (16 * MIB)
    for _ in range(BOMB_BYTES // len(block)):
        parts.append(comp.compress(block))
    parts.append(comp.compress(b"</text></revision>\n  </page>\n"))
    parts.append(comp.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def bomb_stream() -> bytes:
    return _bomb_page_stream()


@pytest.fixture(scope="module")
def bomb_multistream(tmp_path_factory: pytest.TempPathFactory, bomb_stream: bytes) -> tuple[Path, Path, int]:
    """A multistream dump: person, bomb page, person, each in its own stream, with a correct index."""
    folder = tmp_path_factory.mktemp("bomb")
    dump, index = write_multistream(
        folder,
        [P("Ann Before", 10, person_text("Ann Before")), P("Bob After", 12, person_text("Bob After"))],
        per_stream=1,
    )
    blob = dump.read_bytes()
    lines = index.read_bytes()
    offsets = sorted(index_streams(index))
    # insert the bomb stream between the two person streams; shift the second offset by its length
    bomb_at = offsets[1]
    new = blob[:bomb_at] + bomb_stream + blob[bomb_at:]
    dump.write_bytes(new)
    entries = list(iter_index(index))
    text = f"{entries[0].offset}:10:Ann Before\n{bomb_at}:99:Bomb\n{bomb_at + len(bomb_stream)}:12:Bob After\n"
    index.write_bytes(bz2.compress(text.encode()))
    del lines
    return dump, index, bomb_at


def test_bomb_stream_is_small(bomb_stream: bytes) -> None:
    assert len(bomb_stream) < 4096  # the attack: kilobytes in, 256 MiB out


def test_decompression_never_returns_more_than_a_chunk(tmp_path: Path, bomb_stream: bytes) -> None:
    path = tmp_path / "bomb.bz2"
    path.write_bytes(bomb_stream)
    total = biggest = 0
    with open(path, "rb") as f:
        for chunk in bz2_chunks(f, path, 0, len(bomb_stream), size=len(bomb_stream)):
            biggest = max(biggest, len(chunk))
            total += len(chunk)
    assert biggest <= OUT_CHUNK and total > BOMB_BYTES  # all of it came out, one bounded chunk at a time


def test_sequential_reader_cuts_the_bomb_page_in_bounded_memory(tmp_path: Path, bomb_stream: bytes) -> None:
    """A single-stream-style read (no index) of header + bomb + person: peak Python memory stays near the cap."""
    path = tmp_path / "bomb-single.xml.bz2"
    tail = page_xml(P("After Bomb", 12, person_text("After Bomb"))) + "</mediawiki>\n"
    path.write_bytes(bz2.compress(header().encode()) + bomb_stream + bz2.compress(tail.encode()))
    max_page = 1_000_000
    tracemalloc.start()
    try:
        pages = list(SequentialReader(path, max_page_bytes=max_page).pages())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(p.title, p.truncated) for p in pages] == [("Bomb", True), ("After Bomb", False)]
    assert pages[0].text == "" and pages[0].text_bytes > page_xml_cap(max_page)
    assert peak < page_xml_cap(max_page) + 8 * OUT_CHUNK  # was > 256 MiB: the whole page in memory


def test_stream_pages_cut_the_bomb_in_bounded_memory(bomb_multistream: tuple[Path, Path, int]) -> None:
    dump, index, bomb_at = bomb_multistream
    end = sorted(index_streams(index))[2]
    tracemalloc.start()
    try:
        with open(dump, "rb") as f:
            batches = list(stream_pages(f, dump, bomb_at, end, size=dump.stat().st_size, cap=page_xml_cap(100_000)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    pages = [p for batch, _ in batches for p in batch]
    assert [(p.page_id, p.title, p.truncated) for p in pages] == [(99, "Bomb", True)]
    assert peak < 16 * MIB


def test_scan_skips_the_bomb_page_and_keeps_the_others(
    bomb_multistream: tuple[Path, Path, int], tmp_path: Path, capsys
) -> None:
    dump, index, _ = bomb_multistream
    out = tmp_path / "people.jsonl"
    args = ["scan", str(dump), "--index", str(index), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main([*args, "--max-page-bytes", "1000000"]) == 0
    captured = capsys.readouterr()
    assert "pages=3 " in captured.out and "errors=1 " in captured.out and "people=2 " in captured.out
    assert "skipped page 'Bomb' (id 99)" in captured.err and "cut while decompressing" in captured.err
    assert out.read_text().count("\n") == 2


def test_show_refuses_the_bomb_page_in_one_line(bomb_multistream: tuple[Path, Path, int], capsys) -> None:
    dump, index, _ = bomb_multistream
    line = _error_line(capsys, ["show", str(dump), "--index", str(index), "Bomb", "--max-page-bytes", "100000"])
    assert "'Bomb' (id 99)" in line and "over the per-page cap of 100000" in line
    assert main(["show", str(dump), "--index", str(index), "Bob After"]) == 0  # the next stream is still readable


# ----------------------------------------------------------------------------------------------------- index


def _bad_index(tmp_path: Path, content: bytes, name: str = "index.txt.bz2") -> tuple[Path, Path]:
    dump, _ = write_multistream(tmp_path / "d", small_wiki(), per_stream=4)
    index = tmp_path / name
    index.write_bytes(bz2.compress(content) if name.endswith(".bz2") else content)
    return dump, index


def test_index_of_one_endless_line_is_refused_after_the_cap(tmp_path: Path, capsys) -> None:
    dump, index = _bad_index(tmp_path, b"5" * (64 * MIB))
    assert index.stat().st_size < 1024  # a few hundred bytes that expand to 64 MiB of one line
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=f"line 1: longer than {MAX_INDEX_LINE} bytes"):
            list(iter_index(index))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert str(index) in line and "longer than" in line


@pytest.mark.parametrize(
    "line",
    [
        "\u00b9616:10:Jane Doe\n".encode(),  # superscript one: str.isdigit() says yes, int() says no
        b"616:\xd9\xa1\xd9\xa2:Jane Doe\n",  # Arabic-Indic digits
        b"9" * 5000 + b":10:Jane Doe\n",  # 5,000 digits
        b"9223372036854775808:10:Jane Doe\n",  # 2^63: past SQLite's INTEGER
        b"-5:10:Jane Doe\n",
    ],
)
def test_index_numbers_must_be_ascii_decimal_in_range(tmp_path: Path, capsys, line: bytes) -> None:
    dump, index = _bad_index(tmp_path, line, name="index.txt")
    for args in (
        ["scan", str(dump), "--index", str(index), "--no-progress"],
        ["show", str(dump), "--index", str(index), "X"],
    ):
        message = _error_line(capsys, args)
        assert f"{index} line 1: expected 'offset:page_id:title'" in message and len(message) < 400


# ---------------------------------------------------------------------------------------------------- prolog

COMMENTS = "".join(f"<!-- filler comment {i} with a <tag> inside -->\n" for i in range(1800))  # ~80 KB


def test_doctype_behind_70kb_of_comments_is_refused(tmp_path: Path, capsys) -> None:
    assert len(COMMENTS) > 70_000
    xml = '<?xml version="1.0"?>\n' + COMMENTS + '<!DOCTYPE x [<!ENTITY e "boom">]>\n' + header() + "</mediawiki>\n"
    for name, data in (("plain.xml", xml.encode()), ("packed.xml.bz2", bz2.compress(xml.encode()))):
        path = tmp_path / name
        path.write_bytes(data)
        line = _error_line(capsys, ["scan", str(path), "--no-progress"])
        assert str(path) in line and "DOCTYPE" in line


def test_doctype_behind_comments_in_the_multistream_header(tmp_path: Path, capsys) -> None:
    dump, index = write_multistream(tmp_path, small_wiki(), per_stream=4)
    offsets = sorted(index_streams(index))
    blob = dump.read_bytes()
    evil_head = bz2.compress((COMMENTS + '<!DOCTYPE x [<!ENTITY e "boom">]>\n' + header()).encode())
    shift = len(evil_head) - offsets[0]
    dump.write_bytes(evil_head + blob[offsets[0] :])
    lines = [f"{e.offset + shift}:{e.page_id}:{e.title}" for e in iter_index(index)]
    index.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert "DOCTYPE" in line


def test_comments_alone_in_the_prolog_are_fine(tmp_path: Path) -> None:
    xml = '<?xml version="1.0"?>\n' + COMMENTS + header() + page_xml(P("A", 1, "a")) + "</mediawiki>\n"
    path = tmp_path / "ok.xml"
    path.write_text(xml)
    assert [p.title for p in SequentialReader(path).pages()] == ["A"]


# -------------------------------------------------------------------------------------- which file is at fault


@pytest.fixture
def cut_in_half(tmp_path: Path) -> tuple[Path, Path, int]:
    """A multistream dump cut in the middle of a stream, half of its streams gone; its index is intact."""
    pages = [P(f"Person {i}", 100 + i, person_text(f"Person {i}", 1950 + i)) for i in range(12)]
    dump, index = write_multistream(tmp_path, pages, per_stream=2)
    offsets = sorted(index_streams(index))
    cut = offsets[3] + 50
    dump.write_bytes(dump.read_bytes()[:cut])
    return dump, index, cut


def test_truncated_dump_scanned_with_index_blames_the_dump(cut_in_half: tuple[Path, Path, int], capsys) -> None:
    dump, index, size = cut_in_half
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert line.startswith(f"error: dump {dump} is truncated (size {size} bytes)")
    assert "does not match" not in line and str(index) in line


def test_show_of_a_title_in_the_missing_half_says_past_the_end(cut_in_half: tuple[Path, Path, int], capsys) -> None:
    dump, index, size = cut_in_half
    offset = max(index_streams(index))
    line = _error_line(capsys, ["show", str(dump), "--index", str(index), "Person 11"])
    assert f"stream at offset {offset}, past the end of the file" in line and f"(size {size} bytes)" in line
    assert f"dump {dump} is truncated" in line and "'Person 11'" in line
    assert main(["show", str(dump), "--index", str(index), "Person 0"]) == 0  # intact streams still read


def test_truncated_dump_without_index_counts_the_pages_it_read(cut_in_half: tuple[Path, Path, int], capsys) -> None:
    dump, _, size = cut_in_half
    line = _error_line(capsys, ["scan", str(dump), "--no-progress"])
    assert f"dump {dump} is truncated" in line and f"(size {size} bytes)" in line
    assert line.endswith(" after 6 pages")  # three whole streams of two pages were intact


def test_show_with_another_dumps_index_blames_the_index(tmp_path: Path, capsys) -> None:
    dump, _ = write_multistream(tmp_path / "a", small_wiki(), per_stream=4)
    other = [P(f"Other {i}", 100 + i, person_text(f"Other {i}") * (i + 1)) for i in range(12)]
    _, other_index = write_multistream(tmp_path / "b", other, per_stream=3)
    for title in ("Other 0", "Other 5", "Other 11"):
        line = _error_line(capsys, ["show", str(dump), "--index", str(other_index), title])
        assert f"index {other_index} does not match dump {dump}" in line, line
        assert "bytes" in line or "page id" in line


def test_show_page_timeout_and_size_cap(tmp_path: Path, capsys) -> None:
    long_text = person_text("Long Person", extra=" ".join(f"[[Link {i}]] {{{{tpl|{i}}}}}" for i in range(20000)))
    dump, index = write_multistream(tmp_path, [P("Long Person", 1, long_text), P("Short", 2, "x")], per_stream=1)
    line = _error_line(capsys, ["show", str(dump), "--index", str(index), "Long Person", "--page-timeout", "0.001"])
    assert "'Long Person' (id 1): parse exceeded 0.001 s (--page-timeout)" in line
    line = _error_line(capsys, ["show", str(dump), "--index", str(index), "Long Person", "--max-page-bytes", "1000"])
    assert "'Long Person' (id 1) has more than" in line and "bytes of XML, over the per-page cap of 1000" in line
    line = _error_line(capsys, ["show", str(dump), "--index", str(index), "Long Person", "--max-page-bytes", "200000"])
    assert f"has {len(long_text.encode())} bytes, over the per-page cap of 200000 (--max-page-bytes)" in line
    # the build's persona lookup goes through the same reader and the same limit
    with DumpReader(dump, index, page_timeout=0.001) as reader, pytest.raises(InputError, match="parse exceeded"):
        reader.get("Long Person")


def test_single_stream_write_xml_still_reads(tmp_path: Path) -> None:
    path = write_xml(tmp_path / "d.xml.bz2", small_wiki())
    assert len(list(SequentialReader(path).pages())) == len(small_wiki())
