"""Multistream dumps: the index, stream offsets, and decompressing one stream (or a run of streams).

A ``pages-articles-multistream.xml.bz2`` is a concatenation of independent bz2 streams: stream 0 holds
``<mediawiki>`` + ``<siteinfo>``, then one stream per 100 pages, then a final stream with
``</mediawiki>``. The index (``.txt`` or ``.txt.bz2``) has one ``offset:page_id:title`` line per page,
the offset being the byte where that page's stream starts. Because each stream is a complete bz2
stream, any process can ``seek`` to an offset and decompress from there: that is what lets the scan
split work across processes and lets ``show`` read one page without touching the rest.

A stream's XML has no root and no namespace (bare ``<page>`` elements), so it is wrapped in a
synthetic ``<pages>`` element before parsing; a DOCTYPE inside that wrapper is a syntax error, so
entity-expansion payloads cannot hide in page streams.
"""

from __future__ import annotations

import bz2
import html
import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from lxml import etree

from wikipersona_data.errors import InputError
from wikipersona_data.wiki.dump import (
    BZ2_MAGIC,
    Page,
    SiteInfo,
    check_no_dtd,
    local,
    page_from_element,
    siteinfo_from_element,
)

_FOOTER = b"</mediawiki>"
# Stream XML is parsed with lxml (libxml2), ~2x ElementTree's speed on page streams, the scan workers' largest
# cost after bz2. No entity is ever resolved (a DTD inside the <pages> wrapper is a syntax error anyway);
# huge_tree only lifts libxml2's 10 MB cap on one text node, which ElementTree does not have either. Comments
# and processing instructions are dropped, as ElementTree does, so texts around them join the same way.
_STREAM_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True, remove_pis=True
)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    offset: int
    page_id: int
    title: str  # unescaped (the index stores the raw, XML-escaped <title> text)


def open_index(path: str | Path) -> TextIO:
    """Open an index file, plain or bz2 (decided by magic bytes, not by name)."""
    path = Path(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned wrapped
    except FileNotFoundError:
        raise InputError(f"{path}: no such index file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot open index ({err.strerror})") from None
    magic = raw.read(3)
    raw.seek(0)
    if magic == BZ2_MAGIC:
        return io.TextIOWrapper(bz2.BZ2File(raw), encoding="utf-8", newline="\n")
    if path.name.endswith(".bz2"):
        raw.close()
        raise InputError(f"{path}: not a bz2 file (starts with {magic!r}, expected {BZ2_MAGIC!r})")
    return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")


def iter_index(path: str | Path) -> Iterator[IndexEntry]:
    """Stream the index lines as entries; one clear error for the first bad line."""
    path = Path(path)
    with open_index(path) as lines:
        line_no = 0
        try:
            for line_no, line in enumerate(lines, 1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                parts = line.split(":", 2)
                if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
                    raise InputError(f"{path} line {line_no}: expected 'offset:page_id:title', got {line[:80]!r}")
                yield IndexEntry(int(parts[0]), int(parts[1]), html.unescape(parts[2]))
        except EOFError:
            raise InputError(f"truncated bz2 stream in index {path} after line {line_no}") from None
        except UnicodeDecodeError as err:
            raise InputError(f"{path} line {line_no + 1}: not UTF-8 ({err.reason})") from None
        except OSError as err:
            raise InputError(f"{path}: corrupt bz2 data after line {line_no} ({err})") from None


def index_streams(index_path: str | Path) -> dict[int, tuple[int, int]]:
    """Stream offset -> (pages the index lists in it, sum of their ids): one entry per stream (~70k for enwiki).

    The sum lets a worker check cheaply that the stream it decompressed holds the pages the index claims.
    """
    streams: dict[int, tuple[int, int]] = {}
    for entry in iter_index(index_path):
        n, total = streams.get(entry.offset, (0, 0))
        streams[entry.offset] = (n + 1, total + entry.page_id)
    if not streams:
        raise InputError(f"empty index: {index_path} lists no pages")
    return streams


def mismatch(dump: Path, index: Path | None, detail: str) -> InputError:
    where = f"index {index}" if index is not None else "the index"
    return InputError(f"{where} does not match dump {dump}: {detail}")


def decompress_streams(
    f: BinaryIO, path: Path, start: int, end: int, *, first_only: bool = False, index: Path | None = None
) -> bytes:
    """Decompress the bz2 stream(s) stored in ``[start, end)`` of ``f`` (only the first if ``first_only``)."""
    f.seek(start)
    comp = f.read(end - start) if end > start else b""
    if not comp.startswith(BZ2_MAGIC):
        raise mismatch(path, index, f"offset {start} is not the start of a bz2 stream")
    view = memoryview(comp)
    out: list[bytes] = []
    pos = 0
    while pos < len(comp):
        dec = bz2.BZ2Decompressor()
        try:
            out.append(dec.decompress(view[pos:]))
        except OSError as err:
            raise InputError(
                f"corrupt bz2 data in {path} in the stream at compressed offset {start + pos} ({err})"
            ) from None
        if not dec.eof:
            if end < os.fstat(f.fileno()).st_size:  # the stream runs past the next indexed offset
                raise mismatch(path, index, f"offset {end} is not the start of a bz2 stream")
            pages = sum(chunk.count(b"</page>") for chunk in out)
            raise InputError(
                f"truncated bz2 stream in {path} at compressed offset {start + pos} after {pages} pages of that stream"
            )
        if first_only:
            break
        rest = len(dec.unused_data)
        pos = len(comp) - rest
        if rest and not dec.unused_data.startswith(BZ2_MAGIC):
            raise InputError(f"corrupt bz2 data in {path} at compressed offset {start + pos}: not a bz2 stream")
    return b"".join(out)


def parse_stream_pages(data: bytes, path: Path, offset: int) -> list[Page]:
    """Parse the bare ``<page>``s of decompressed stream data (the footer, if present, is dropped)."""
    stripped = data.rstrip()
    if stripped.endswith(_FOOTER):
        data = stripped[: -len(_FOOTER)]
    try:
        root = etree.fromstring(b"<pages>" + data + b"</pages>", _STREAM_PARSER)
    except etree.XMLSyntaxError as err:
        line, col = err.position
        raise InputError(
            f"malformed XML in {path} in the stream at compressed offset {offset} (line {line}, column {col}): "
            f"{err.msg}"
        ) from None
    pages = []
    for elem in root:
        if isinstance(elem.tag, str) and local(elem.tag) == "page":
            ns = elem.tag[: -len("page")]
            pages.append(page_from_element(elem, ns, path))
    return pages


_PAGE_ID = re.compile(rb"<id>\s*(\d+)\s*</id>")
READ_STEP = 256 * 1024


def find_page(f: BinaryIO, path: Path, start: int, end: int, page_id: int, index: Path | None = None) -> Page | None:
    """Decompress the stream at ``start`` only as far as the page with ``page_id`` (random access for ``show``).

    On average this reads half a stream: the page id is the first ``<id>`` of each ``<page>``, so each
    complete page is checked with a regex and only the wanted one is XML-parsed.
    """
    f.seek(start)
    remaining = end - start
    head = f.read(min(READ_STEP, remaining))
    if not head.startswith(BZ2_MAGIC):
        raise mismatch(path, index, f"offset {start} is not the start of a bz2 stream")
    remaining -= len(head)
    dec = bz2.BZ2Decompressor()
    buf = bytearray()
    pos = 0
    comp = head
    while True:
        try:
            buf += dec.decompress(comp)
        except OSError as err:
            raise InputError(f"corrupt bz2 data in {path} in the stream at compressed offset {start} ({err})") from None
        while True:
            close = buf.find(b"</page>", pos)
            if close < 0:
                break
            close += len(b"</page>")
            match = _PAGE_ID.search(buf, pos, close)
            if match is not None and int(match.group(1)) == page_id:
                pages = parse_stream_pages(bytes(buf[pos:close]), path, start)
                return pages[0] if pages else None
            pos = close
        if dec.eof:
            return None
        if remaining <= 0:
            raise InputError(f"truncated bz2 stream in {path} at compressed offset {start} (stream ends before {end})")
        comp = f.read(min(READ_STEP, remaining))
        remaining -= len(comp)
        if pos > READ_STEP:  # drop pages already checked
            del buf[:pos]
            pos = 0


def read_header(f: BinaryIO, path: Path, first_offset: int, index: Path | None = None) -> SiteInfo:
    """The ``<siteinfo>`` of stream 0 (the bytes before the first indexed stream)."""
    if first_offset <= 0:
        return SiteInfo()
    data = decompress_streams(f, path, 0, first_offset, index=index)
    check_no_dtd(data[:65536], path)
    try:
        root = ET.fromstring(data + _FOOTER)
    except ET.ParseError as err:
        raise InputError(f"malformed XML header in {path} (bytes 0..{first_offset}): {err}") from None
    ns = root.tag[: -len(local(root.tag))]
    site_el = root.find(f"{ns}siteinfo")
    site = siteinfo_from_element(site_el, ns) if site_el is not None else SiteInfo()
    site.schema = ns.strip("{}")
    return site


def stream_bounds(offsets: list[int], file_size: int, dump: Path, index: Path) -> list[tuple[int, int]]:
    """``[(start, end)]`` per stream: a stream ends where the next indexed one starts (the last at EOF)."""
    if offsets[-1] >= file_size:
        raise mismatch(dump, index, f"offset {offsets[-1]} is past the end of the file ({file_size} bytes)")
    ends = [*offsets[1:], file_size]
    return list(zip(offsets, ends, strict=True))
