"""The bundled demo dump: reproducible from its sources, a well-formed multistream export, and a roster that
matches the pages (the demo recipe and the extension tests rely on axes.toml naming real living people)."""

from __future__ import annotations

import bz2
import hashlib
import html
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from wikipersona_data.demo import build_dump
from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX
from wikipersona_data.errors import InputError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEMO_DIR = Path(build_dump.__file__).resolve().parent
LIVING = "[[Category:Living people]]"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in elem if _local(c.tag) == name), None)


def _text(elem: ET.Element, *path: str) -> str:
    for name in path:
        found = _child(elem, name)
        assert found is not None, f"missing <{name}>"
        elem = found
    return elem.text or ""


@pytest.fixture(scope="module")
def root() -> ET.Element:
    return ET.fromstring(bz2.decompress(DEMO_DUMP.read_bytes()))


@pytest.fixture(scope="module")
def pages(root: ET.Element) -> dict[str, dict]:
    """title -> {id, ns, redirect, text, revision element} for every page in the shipped dump."""
    out = {}
    for page in root:
        if _local(page.tag) != "page":
            continue
        redirect = _child(page, "redirect")
        revision = _child(page, "revision")
        out[_text(page, "title")] = {
            "id": int(_text(page, "id")),
            "ns": int(_text(page, "ns")),
            "redirect": None if redirect is None else redirect.get("title"),
            "text": _text(revision, "text"),
            "revision": revision,
        }
    return out


@pytest.fixture(scope="module")
def index_lines() -> list[tuple[int, int, str]]:
    lines = bz2.decompress(DEMO_INDEX.read_bytes()).decode("utf-8").splitlines()
    out = []
    for line in lines:
        offset, page_id, title = line.split(":", 2)
        out.append((int(offset), int(page_id), title))
    return out


def test_rebuild_is_byte_identical_to_shipped_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wikipersona_data.demo.build_dump", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / DEMO_DUMP.name).read_bytes() == DEMO_DUMP.read_bytes()
    assert (tmp_path / DEMO_INDEX.name).read_bytes() == DEMO_INDEX.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([DEMO_DUMP.name, DEMO_INDEX.name])  # no temp files


def _streams(data: bytes) -> list[tuple[int, bytes]]:
    """Split a multistream file into (offset, decompressed bytes) by walking the bz2 streams one after another."""
    out, offset = [], 0
    while offset < len(data):
        decompressor = bz2.BZ2Decompressor()
        chunk = decompressor.decompress(data[offset:])
        assert decompressor.eof, f"truncated bz2 stream at offset {offset}"
        out.append((offset, chunk))
        offset = len(data) - len(decompressor.unused_data)
    return out


def test_streams_are_header_pages_footer_as_the_index_says(index_lines: list[tuple[int, int, str]]) -> None:
    streams = _streams(DEMO_DUMP.read_bytes())
    header, *page_streams, footer = streams
    assert header[0] == 0 and header[1].startswith(b"<mediawiki ") and header[1].rstrip().endswith(b"</siteinfo>")
    assert footer[1].strip() == b"</mediawiki>"
    assert len(page_streams) >= 5, "the demo must have several page streams to split across workers"
    by_offset: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for offset, page_id, title in index_lines:
        by_offset[offset].append((page_id, html.unescape(title)))
    assert sorted(by_offset) == [offset for offset, _ in page_streams]
    for offset, chunk in page_streams:
        stream = ET.fromstring(b"<pages>" + chunk + b"</pages>")  # a stream has no root element
        found = [(int(_text(p, "id")), _text(p, "title")) for p in stream]
        assert found == by_offset[offset]
        assert 1 <= len(found) <= build_dump.DEFAULT_PAGES_PER_STREAM


def test_bzcat_output_is_one_xml_document() -> None:
    bzcat = shutil.which("bzcat")
    if bzcat is None:
        pytest.skip("bzcat is not installed")
    out = subprocess.run([bzcat, str(DEMO_DUMP)], capture_output=True, check=True).stdout
    assert out == bz2.decompress(DEMO_DUMP.read_bytes())
    assert _local(ET.fromstring(out).tag) == "mediawiki"


def test_stream_size_is_a_parameter() -> None:
    pages = build_dump.load_pages()
    dump, index = build_dump.build(pages, pages_per_stream=100)  # real dumps' size: header, one page stream, footer
    assert len(_streams(dump)) == 3
    assert len({line.split(":", 1)[0] for line in bz2.decompress(index).decode().splitlines()}) == 1


def test_index_is_in_page_id_order_and_covers_every_page(
    index_lines: list[tuple[int, int, str]], pages: dict[str, dict]
) -> None:
    ids = [page_id for _, page_id, _ in index_lines]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert sorted(ids) == sorted(p["id"] for p in pages.values())
    escaped = {title for _, _, title in index_lines}
    assert "Kestrel &amp; the Lanterns" in escaped, "index titles are XML-escaped like <title>"


def test_export_header_and_namespaces(root: ET.Element) -> None:
    assert root.tag == "{http://www.mediawiki.org/xml/export-0.11/}mediawiki"
    assert root.get("version") == "0.11"
    siteinfo = _child(root, "siteinfo")
    assert siteinfo is not None
    assert _text(siteinfo, "dbname") == "enwiki"
    assert _text(siteinfo, "base").startswith("https://en.wikipedia.org/wiki/")
    namespaces = {int(ns.get("key")): (ns.text or "") for ns in _child(siteinfo, "namespaces")}
    assert {0: "", 4: "Wikipedia", 10: "Template", 14: "Category"}.items() <= namespaces.items()


def test_revision_fields_match_the_text(pages: dict[str, dict]) -> None:
    for title, page in pages.items():
        revision = page["revision"]
        text_elem = _child(revision, "text")
        assert int(text_elem.get("bytes")) == len(page["text"].encode("utf-8")), title
        # MediaWiki's sha1 is base 36; read back independently from the hex digest
        assert int(_text(revision, "sha1"), 36) == int(hashlib.sha1(page["text"].encode("utf-8")).hexdigest(), 16)
        assert re.fullmatch(r"2026-10-\d\dT\d\d:\d\d:\d\dZ", _text(revision, "timestamp")), title
        assert _text(revision, "model") == "wikitext" and _text(revision, "format") == "text/x-wiki"
        assert _text(revision, "contributor", "username") and int(_text(revision, "contributor", "id")) > 0
        assert int(_text(revision, "parentid")) < int(_text(revision, "id"))


def test_content_mix(pages: dict[str, dict]) -> None:
    articles = {t: p for t, p in pages.items() if p["ns"] == 0 and p["redirect"] is None}
    living = [t for t, p in articles.items() if LIVING in p["text"]]
    assert len(living) >= 30
    assert {p["ns"] for p in pages.values()} >= {0, 4, 10, 14}
    redirects = {t: p["redirect"] for t, p in pages.items() if p["redirect"] is not None}
    assert len(redirects) >= 10
    for title, target in redirects.items():
        assert pages[title]["text"].startswith(f"#REDIRECT [[{target}]]")
        assert target in pages
    assert redirects["The Kerala Express"] == "Arjun Valsaraj"  # a double redirect chain
    assert redirects["Arjun Valsaraj"] == "Arjun Valsaraj (cricketer)"
    assert "Kestrel & the Lanterns" in articles
    dead = [t for t, p in articles.items() if re.search(r"\[\[Category:\d{4} deaths\]\]", p["text"])]
    assert len(dead) == 3 and not any(LIVING in articles[t]["text"] for t in dead)
    assert sum("background      = group_or_band" in p["text"] for p in articles.values()) == 1


def test_axes_roster_matches_the_pages(pages: dict[str, dict]) -> None:
    axes = tomllib.loads((DEMO_DIR / "axes.toml").read_text(encoding="utf-8"))
    assert set(axes) == {"diet", "religion", "politics", "sport", "technology"}
    everyone = []
    for axis, categories in axes.items():
        assert len(categories) == 3, axis
        assert sorted(c["role"] for c in categories.values()) == ["demo", "demo", "extension"], axis
        for category, entry in categories.items():
            assert isinstance(entry["name"], str) and entry["name"], f"{axis}/{category}: no name"
            for title in entry["people"]:
                page = pages.get(title)
                assert page is not None, f"{axis}/{category}: {title!r} is not in the dump"
                assert page["ns"] == 0 and page["redirect"] is None, title
                assert LIVING in page["text"], title
                assert 4000 <= len(page["text"].encode("utf-8")) <= 8192, title
                for snippet in entry["evidence"]:
                    assert snippet in page["text"], f"{title}: evidence not found: {snippet!r}"
                everyone.append(title)
    assert len(everyone) == len(set(everyone)) == 15


def test_parser_classifies_demo_pages(pages: dict[str, dict]) -> None:
    from wikipersona_data.wiki.parse import parse_biography

    non_persons = {"The Velvet Orchard", "Kestrel & the Lanterns", "Blue Kettle Foods", "Lanternfish Robotics"}
    dead = {"Edmund Faraway", "Marguerite Osei", "Harold Vinter"}
    seen_living = 0
    for title, page in pages.items():
        if page["ns"] != 0 or page["redirect"] is not None:
            continue
        bio = parse_biography(page["text"], title=title, page_id=page["id"], revision_id=None)
        if title in non_persons:
            assert not bio.is_person and not bio.is_living, title
        elif title in dead:
            assert bio.is_person and not bio.is_living and bio.death_year is not None, title
        else:
            assert LIVING in page["text"], title
            assert bio.is_person and bio.is_living, title
            assert 1950 <= bio.birth_year <= 2004, title
            seen_living += 1
    assert seen_living >= 30


def test_bad_page_table_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    table = tmp_path / "pages.toml"
    table.write_text(
        '[[page]]\ntitle = "Nobody"\npage_id = 1\nns = 0\nrevision_id = 2\nparent_id = 1\n'
        'timestamp = "2026-10-01T00:00:00Z"\ncontributor = "X"\ncontributor_id = 3\nfile = "missing.wiki"\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        build_dump.load_pages(table)
    assert "missing.wiki" in str(err.value) and "\n" not in str(err.value)
    table.write_text(table.read_text().replace('file = "missing.wiki"', 'redirect = "Somebody"'), encoding="utf-8")
    with pytest.raises(InputError, match="missing page 'Somebody'"):
        build_dump.load_pages(table)


def test_cli_rejects_bad_stream_size_without_writing(tmp_path: Path, capsys) -> None:
    assert build_dump.main(["--out-dir", str(tmp_path / "out"), "--pages-per-stream", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --pages-per-stream")
    assert not (tmp_path / "out").exists()
