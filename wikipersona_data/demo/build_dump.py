"""Build the bundled demo dump (multistream XML + index) from the wikitext sources in this folder.

Why a build script instead of hand-made .bz2 files: the dump must look exactly like a Wikimedia
`pages-articles-multistream` file (export-0.11 XML, one bz2 stream for the header, one per N pages,
one for the footer, and a bz2 index of `offset:page_id:title` lines), and it must be byte-for-byte
reproducible from reviewable text sources. Everything here is a pure function of `pages.toml` and
`pages/*.wiki`: no clock, pages sorted by page id, fixed bz2 level.

Escaping follows MediaWiki's dump writer: `&`, `<`, `>` and `"` become entities in titles, text and
attributes (`xml.sax.saxutils.escape` plus `&quot;`); the index carries the title exactly as in
`<title>`. `<sha1>` is MediaWiki's base-36 SHA-1 of the wikitext (31 characters, zero-padded).

Run: `python -m wikipersona_data.demo.build_dump [--out-dir DIR] [--pages-per-stream N]`.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from wikipersona_data.demo.paths import DEMO_DATA_DIR, DEMO_DUMP, DEMO_INDEX
from wikipersona_data.errors import InputError, WikipersonaError
from wikipersona_data.fileio import write_atomic

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEMO_DIR = Path(__file__).resolve().parent
PAGE_TABLE = DEMO_DIR / "pages.toml"
DEFAULT_OUT_DIR = DEMO_DATA_DIR
DUMP_NAME = DEMO_DUMP.name
INDEX_NAME = DEMO_INDEX.name
COMPRESS_LEVEL = 9
DEFAULT_PAGES_PER_STREAM = 10  # real dumps use 100; 10 gives the demo several streams to split across workers

EXPORT_NS = "http://www.mediawiki.org/xml/export-0.11/"
# Namespaces as listed by enwiki's siteinfo (the subset a pages-articles reader may meet).
NAMESPACES: tuple[tuple[int, str], ...] = (
    (-2, "Media"),
    (-1, "Special"),
    (0, ""),
    (1, "Talk"),
    (2, "User"),
    (3, "User talk"),
    (4, "Wikipedia"),
    (5, "Wikipedia talk"),
    (6, "File"),
    (7, "File talk"),
    (8, "MediaWiki"),
    (9, "MediaWiki talk"),
    (10, "Template"),
    (11, "Template talk"),
    (12, "Help"),
    (13, "Help talk"),
    (14, "Category"),
    (15, "Category talk"),
    (100, "Portal"),
    (101, "Portal talk"),
    (118, "Draft"),
    (119, "Draft talk"),
    (828, "Module"),
    (829, "Module talk"),
)
NS_PREFIX = {key: name for key, name in NAMESPACES}


@dataclass(frozen=True)
class PageSpec:
    """One row of pages.toml, validated: either a wikitext file or a redirect target."""

    title: str
    page_id: int
    ns: int
    revision_id: int
    parent_id: int
    timestamp: str
    contributor: str
    contributor_id: int
    comment: str
    text: str
    redirect: str | None


def _xml(value: str) -> str:
    """Escape like MediaWiki's dump writer (htmlspecialchars): quotes too, so attributes and text agree."""
    return escape(value, {'"': "&quot;"})


def mediawiki_sha1(text: str) -> str:
    """MediaWiki's rev_sha1: SHA-1 of the UTF-8 text in base 36, zero-padded to 31 characters."""
    number = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest(), "big")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out.rjust(31, "0")


def redirect_text(target: str, rcat: str) -> str:
    """The wikitext of a redirect page, tagged with a redirect category template as editors do."""
    return f"#REDIRECT [[{target}]]\n\n{{{{Redirect category shell|\n{{{{{rcat}}}}}\n}}}}\n"


def _field(row: dict, name: str, kind: type, where: str):
    value = row.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(f"{where}: field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def load_pages(table: Path = PAGE_TABLE) -> list[PageSpec]:
    """Read and validate the page table; return pages sorted by page id (dump order)."""
    try:
        rows = tomllib.loads(table.read_text(encoding="utf-8")).get("page", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{table}: cannot read page table: {exc}") from exc
    pages: list[PageSpec] = []
    for number, row in enumerate(rows, start=1):
        where = f"{table}: page #{number} ({row.get('title', '?')!r})"
        title = _field(row, "title", str, where)
        ns = _field(row, "ns", int, where)
        prefix = NS_PREFIX.get(ns)
        if prefix is None:
            raise InputError(f"{where}: unknown namespace {ns}")
        if ns != 0 and not title.startswith(prefix + ":"):
            raise InputError(f"{where}: title must start with {prefix + ':'!r} for ns {ns}")
        redirect = row.get("redirect")
        file_name = row.get("file")
        if (redirect is None) == (file_name is None):
            raise InputError(f"{where}: give exactly one of 'file' or 'redirect'")
        if redirect is not None:
            text = redirect_text(redirect, row.get("rcat", "R from alternative name"))
        else:
            path = table.parent / "pages" / file_name
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"{where}: cannot read wikitext file {path}: {exc.strerror}") from exc
        pages.append(
            PageSpec(
                title=title,
                page_id=_field(row, "page_id", int, where),
                ns=ns,
                revision_id=_field(row, "revision_id", int, where),
                parent_id=_field(row, "parent_id", int, where),
                timestamp=_field(row, "timestamp", str, where),
                contributor=_field(row, "contributor", str, where),
                contributor_id=_field(row, "contributor_id", int, where),
                comment=row.get("comment", ""),
                text=text,
                redirect=redirect,
            )
        )
    _check_unique(pages, table)
    return sorted(pages, key=lambda p: p.page_id)


def _check_unique(pages: Sequence[PageSpec], table: Path) -> None:
    seen_ids: set[int] = set()
    seen_revs: set[int] = set()
    titles: set[str] = set()
    for page in pages:
        if page.page_id in seen_ids:
            raise InputError(f"{table}: duplicate page_id {page.page_id} ({page.title!r})")
        if page.revision_id in seen_revs:
            raise InputError(f"{table}: duplicate revision_id {page.revision_id} ({page.title!r})")
        if page.title in titles:
            raise InputError(f"{table}: duplicate title {page.title!r}")
        seen_ids.add(page.page_id)
        seen_revs.add(page.revision_id)
        titles.add(page.title)
    for page in pages:
        if page.redirect is not None and page.redirect not in titles:
            raise InputError(f"{table}: redirect {page.title!r} points to missing page {page.redirect!r}")


def header_xml() -> str:
    """`<mediawiki>` opening tag and `<siteinfo>`: the content of stream 0."""
    namespaces = "\n".join(
        f'      <namespace key="{key}" case="first-letter" />'
        if not name
        else f'      <namespace key="{key}" case="first-letter">{name}</namespace>'
        for key, name in NAMESPACES
    )
    return (
        f'<mediawiki xmlns="{EXPORT_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{EXPORT_NS} http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="en">\n'
        "  <siteinfo>\n"
        "    <sitename>Wikipedia</sitename>\n"
        "    <dbname>enwiki</dbname>\n"
        "    <base>https://en.wikipedia.org/wiki/Main_Page</base>\n"
        "    <generator>MediaWiki 1.46.0-wmf.2</generator>\n"
        "    <case>first-letter</case>\n"
        "    <namespaces>\n"
        f"{namespaces}\n"
        "    </namespaces>\n"
        "  </siteinfo>\n"
    )


def page_xml(page: PageSpec) -> str:
    """One `<page>` element, laid out like a Wikimedia pages-articles dump."""
    redirect = f'    <redirect title="{_xml(page.redirect)}" />\n' if page.redirect is not None else ""
    comment = f"      <comment>{_xml(page.comment)}</comment>\n" if page.comment else ""
    return (
        "  <page>\n"
        f"    <title>{_xml(page.title)}</title>\n"
        f"    <ns>{page.ns}</ns>\n"
        f"    <id>{page.page_id}</id>\n"
        f"{redirect}"
        "    <revision>\n"
        f"      <id>{page.revision_id}</id>\n"
        f"      <parentid>{page.parent_id}</parentid>\n"
        f"      <timestamp>{page.timestamp}</timestamp>\n"
        "      <contributor>\n"
        f"        <username>{_xml(page.contributor)}</username>\n"
        f"        <id>{page.contributor_id}</id>\n"
        "      </contributor>\n"
        f"{comment}"
        f"      <origin>{page.revision_id}</origin>\n"
        "      <model>wikitext</model>\n"
        "      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(page.text.encode("utf-8"))}" xml:space="preserve">{_xml(page.text)}</text>\n'
        f"      <sha1>{mediawiki_sha1(page.text)}</sha1>\n"
        "    </revision>\n"
        "  </page>\n"
    )


def _chunks(pages: Sequence[PageSpec], size: int) -> Iterable[Sequence[PageSpec]]:
    for start in range(0, len(pages), size):
        yield pages[start : start + size]


def build(pages: Sequence[PageSpec], pages_per_stream: int = DEFAULT_PAGES_PER_STREAM) -> tuple[bytes, bytes]:
    """Return (multistream dump bytes, compressed index bytes) for pages already in dump order."""
    if pages_per_stream < 1:
        raise InputError(f"--pages-per-stream must be >= 1, got {pages_per_stream}")
    dump = bytearray(bz2.compress(header_xml().encode("utf-8"), COMPRESS_LEVEL))
    index_lines: list[str] = []
    for chunk in _chunks(pages, pages_per_stream):
        offset = len(dump)
        dump += bz2.compress("".join(page_xml(p) for p in chunk).encode("utf-8"), COMPRESS_LEVEL)
        index_lines.extend(f"{offset}:{p.page_id}:{_xml(p.title)}\n" for p in chunk)
    dump += bz2.compress(b"</mediawiki>\n", COMPRESS_LEVEL)
    index = bz2.compress("".join(index_lines).encode("utf-8"), COMPRESS_LEVEL)
    return bytes(dump), index


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so a crash never leaves a half-written dump."""
    write_atomic(path, data, mode=0o644)  # shipped data files must be world-readable


def build_files(
    out_dir: Path = DEFAULT_OUT_DIR, table: Path = PAGE_TABLE, pages_per_stream: int = DEFAULT_PAGES_PER_STREAM
) -> tuple[Path, Path]:
    """Build both files into out_dir; return (dump path, index path)."""
    dump, index = build(load_pages(table), pages_per_stream)
    out_dir.mkdir(parents=True, exist_ok=True)
    dump_path, index_path = out_dir / DUMP_NAME, out_dir / INDEX_NAME
    _write_atomic(dump_path, dump)
    _write_atomic(index_path, index)
    return dump_path, index_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wikipersona_data.demo.build_dump", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="folder for the .bz2 files")
    parser.add_argument("--pages-per-stream", type=int, default=DEFAULT_PAGES_PER_STREAM)
    args = parser.parse_args(argv)
    try:
        dump_path, index_path = build_files(args.out_dir, PAGE_TABLE, args.pages_per_stream)
    except WikipersonaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {dump_path} ({dump_path.stat().st_size} bytes) and {index_path} ({index_path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
