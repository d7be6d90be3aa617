"""Reading dumps: schemas, compression, the multistream index and every kind of bad input."""

from __future__ import annotations

import bz2
import resource
from pathlib import Path

import pytest
from wiki_dump_fixtures import P, header, page_xml, small_wiki, write_multistream, write_xml

from wikipersona_data.cli import main
from wikipersona_data.wiki.dump import SequentialReader
from wikipersona_data.wiki.multistream import decompress_streams, index_streams, iter_index, parse_stream_pages


def _error_line(capsys, args: list[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    assert "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize("schema", ["0.10", "0.11"])
def test_sequential_reader_both_schemas(tmp_path: Path, schema: str) -> None:
    path = write_xml(tmp_path / "d.xml.bz2", small_wiki(), schema=schema)
    reader = SequentialReader(path)
    pages = list(reader.pages())
    assert [p.page_id for p in pages] == [p.page_id for p in small_wiki()]
    assert reader.site.schema == f"http://www.mediawiki.org/xml/export-{schema}/"
    assert reader.site.namespaces[14] == "Category" and reader.site.url_base() == "https://en.wikipedia.org/wiki/"
    by_title = {p.title: p for p in pages}
    assert by_title["Jane"].redirect == "Jane Doe"
    assert by_title["Talk:Jane Doe"].ns == 1
    assert by_title["AT&T Person"].text.startswith("{{Short description")  # entities decoded
    assert by_title["Jane Doe"].revision_id == 100


def test_index_lines_are_unescaped_and_split_on_first_two_colons(tmp_path: Path) -> None:
    pages = [P("AT&T Person", 1, "x"), P("Gadgets: a history: 2", 2, "y"), P('Say "hi"', 3, "z")]
    _, index = write_multistream(tmp_path, pages, per_stream=2, index_bz2=False)
    raw = index.read_text()
    assert "AT&amp;T" in raw and "&quot;hi&quot;" in raw
    entries = list(iter_index(index))
    assert [e.title for e in entries] == ["AT&T Person", "Gadgets: a history: 2", 'Say "hi"']
    assert entries[0].offset == entries[1].offset != entries[2].offset
    assert index_streams(index)[entries[2].offset] == (1, 3)


def test_stream_without_root_is_wrapped(tmp_path: Path) -> None:
    dump, index = write_multistream(tmp_path, small_wiki(), per_stream=5)
    offsets = sorted(index_streams(index))
    with open(dump, "rb") as f:
        data = decompress_streams(f, dump, offsets[0], offsets[1])
    assert not data.lstrip().startswith(b"<mediawiki")
    assert [p.title for p in parse_stream_pages(data, dump, offsets[0])][:2] == ["Jane Doe", "Acme Corp"]


def test_missing_file(tmp_path: Path, capsys) -> None:
    line = _error_line(capsys, ["scan", str(tmp_path / "nope.xml.bz2"), "--no-progress"])
    assert "nope.xml.bz2" in line and "no such file" in line


def test_not_bz2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "fake.xml.bz2"
    path.write_bytes(b"<mediawiki>not compressed</mediawiki>")
    line = _error_line(capsys, ["scan", str(path), "--no-progress"])
    assert "not a bz2 file" in line and "fake.xml.bz2" in line


def test_truncated_bz2_names_offset_and_pages(tmp_path: Path, capsys) -> None:
    pages = [P(f"Page {i}", i, f"filler text {i} " * 400) for i in range(1, 400)]
    full = write_xml(tmp_path / "full.xml.bz2", pages)
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    out = tmp_path / "out.jsonl"
    line = _error_line(capsys, ["scan", str(cut), "--out", str(out), "--no-progress"])
    size = cut.stat().st_size
    assert line.startswith(f"error: dump {cut} is truncated: the bz2 stream at offset 0 runs past the end of the file")
    assert f"(size {size} bytes)" in line
    read = int(line.rsplit(" after ", 1)[1].removesuffix(" pages"))
    assert 0 < read < len(pages)  # the pages before the cut were read, not "after 0 pages"
    assert not out.exists() and not (tmp_path / "out.jsonl.tmp").exists()


def test_truncated_multistream_stream(tmp_path: Path, capsys) -> None:
    dump, index = write_multistream(tmp_path, small_wiki(), per_stream=4)
    data = dump.read_bytes()
    last = max(index_streams(index))
    dump.write_bytes(data[: last + 40])
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert f"dump {dump} is truncated" in line and f"offset {last} runs past the end of the file" in line
    assert f"(size {last + 40} bytes)" in line and "index" not in line.split("truncated")[0]


def test_malformed_xml_names_the_last_good_page(tmp_path: Path, capsys) -> None:
    xml = header() + page_xml(P("Good Page", 1, "fine")) + "  <page><title>Broken</title><ns>0</ns></pagex>\n"
    path = tmp_path / "bad.xml.bz2"
    path.write_bytes(bz2.compress(xml.encode()))
    line = _error_line(capsys, ["scan", str(path), "--no-progress"])
    assert "malformed XML" in line and "'Good Page'" in line and "line" in line


def test_malformed_xml_in_a_stream_names_the_offset(tmp_path: Path, capsys) -> None:
    dump, index = write_multistream(tmp_path, [P("A", 1, "a"), P("B", 2, "b")], per_stream=1)
    offsets = sorted(index_streams(index))
    blob = dump.read_bytes()
    bad = bz2.compress(b"  <page><title>B</title><ns>0</ns><id>2</id></page></page>\n")
    footer = bz2.compress(b"</mediawiki>\n")
    dump.write_bytes(blob[: offsets[1]] + bad + footer)
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert "malformed XML" in line and f"offset {offsets[1]}" in line


def test_index_offset_not_at_a_stream_start(tmp_path: Path, capsys) -> None:
    dump, index = write_multistream(tmp_path, small_wiki(), per_stream=4, index_bz2=False)
    lines = index.read_text().splitlines()
    off, rest = lines[-1].split(":", 1)
    index.write_text("\n".join([*lines[:-1], f"{int(off) + 7}:{rest}"]) + "\n")
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert f"index {index} does not match dump {dump}" in line and f"offset {int(off) + 7}" in line


def test_index_of_another_dump(tmp_path: Path, capsys) -> None:
    dump, _ = write_multistream(tmp_path / "a", small_wiki(), per_stream=4)
    other = [P(f"Other {i}", 100 + i, "x") for i in range(12)]
    _, other_index = write_multistream(tmp_path / "b", other, per_stream=4)
    line = _error_line(capsys, ["scan", str(dump), "--index", str(other_index), "--no-progress"])
    assert "does not match" in line


def test_empty_dumps(tmp_path: Path, capsys) -> None:
    no_pages = write_xml(tmp_path / "empty.xml.bz2", [])
    assert "empty dump" in _error_line(capsys, ["scan", str(no_pages), "--no-progress"])
    zero = tmp_path / "zero.xml.bz2"
    zero.write_bytes(b"")
    assert "empty dump" in _error_line(capsys, ["scan", str(zero), "--no-progress"])
    empty_index = tmp_path / "index.txt"
    empty_index.write_text("")
    dump, _ = write_multistream(tmp_path / "m", small_wiki())
    assert "empty index" in _error_line(capsys, ["scan", str(dump), "--index", str(empty_index), "--no-progress"])


def test_bad_index_line(tmp_path: Path, capsys) -> None:
    dump, _ = write_multistream(tmp_path, small_wiki())
    index = tmp_path / "index.txt"
    index.write_text("123:abc:Title\n")
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert "line 1" in line and "offset:page_id:title" in line


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10))
    + "]>\n"
)


def test_billion_laughs_is_refused_before_expansion(tmp_path: Path, capsys) -> None:
    xml = BILLION_LAUGHS + header() + page_xml(P("Lol", 1, "x")).replace("<text bytes", "<text a='&lol9;' bytes")
    path = tmp_path / "lol.xml.bz2"
    path.write_bytes(bz2.compress((xml + "</mediawiki>\n").encode()))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = _error_line(capsys, ["scan", str(path), "--no-progress"])
    assert "DOCTYPE" in line and "entity-expansion" in line
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing was expanded


def test_doctype_inside_a_stream_is_a_syntax_error(tmp_path: Path, capsys) -> None:
    dump, index = write_multistream(tmp_path, [P("A", 1, "a")], per_stream=1)
    offsets = sorted(index_streams(index))
    blob = dump.read_bytes()
    evil = bz2.compress((BILLION_LAUGHS.split("\n", 1)[1] + page_xml(P("A", 1, "&lol9;"))).encode())
    dump.write_bytes(blob[: offsets[0]] + evil + bz2.compress(b"</mediawiki>\n"))
    line = _error_line(capsys, ["scan", str(dump), "--index", str(index), "--no-progress"])
    assert "malformed XML" in line
