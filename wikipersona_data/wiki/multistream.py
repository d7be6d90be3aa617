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
import itertools
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from wikipersona_data.errors import InputError
from wikipersona_data.wiki.bounded import (
    CUT,
    DEFAULT_MAX_PAGE_BYTES,
    OTHER,
    PAGE,
    PageSplitter,
    bz2_chunks,
    cut_page_fields,
    offset_past_end,
    page_xml_cap,
    tail_state,
)
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
HEADER_CAP = 16 << 20  # decompressed bytes of the header stream (<siteinfo> is a few KB)
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


MAX_INDEX_LINE = 16 * 1024  # bytes; real lines are offset:id:title with titles of at most 255 bytes
MAX_INDEX_NUMBER = 2**63 - 1  # offsets and ids are stored as SQLite INTEGERs
_INDEX_NUMBER = re.compile(rb"[0-9]{1,19}")


def open_index(path: str | Path) -> BinaryIO:
    """Open an index file, plain or bz2 (decided by magic bytes, not by name), as bytes read line by line."""
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
        return bz2.BZ2File(raw)  # type: ignore[return-value]  # readline(limit) decompresses only what it needs
    if path.name.endswith(".bz2"):
        raw.close()
        raise InputError(f"{path}: not a bz2 file (starts with {magic!r}, expected {BZ2_MAGIC!r})")
    return raw


def _index_number(text: bytes) -> int | None:
    """ASCII decimal digits within range, else ``None`` (``isdigit`` would accept superscripts)."""
    if _INDEX_NUMBER.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_INDEX_NUMBER else None


def iter_index(path: str | Path) -> Iterator[IndexEntry]:
    """Stream the index lines as entries; one clear error for the first bad line.

    Lines are read with a length limit, so a line with no end (a 218-byte bz2 index can expand to
    hundreds of MB of one line) costs at most ``MAX_INDEX_LINE`` bytes.
    """
    path = Path(path)
    with open_index(path) as lines:
        line_no = 0
        try:
            while True:
                line = lines.readline(MAX_INDEX_LINE + 1)
                if not line:
                    break
                line_no += 1
                if len(line) > MAX_INDEX_LINE and not line.endswith(b"\n"):
                    raise InputError(f"{path} line {line_no}: longer than {MAX_INDEX_LINE} bytes (not an index line)")
                line = line.rstrip(b"\r\n")
                if not line:
                    continue
                parts = line.split(b":", 2)
                offset = _index_number(parts[0]) if len(parts) == 3 else None
                page_id = _index_number(parts[1]) if len(parts) == 3 else None
                if offset is None or page_id is None:
                    shown = line[:80].decode("utf-8", "replace")
                    raise InputError(
                        f"{path} line {line_no}: expected 'offset:page_id:title' with decimal numbers "
                        f"below 2^63, got {shown!r}"
                    )
                yield IndexEntry(offset, page_id, html.unescape(parts[2].decode("utf-8")))
        except EOFError:
            raise InputError(f"truncated bz2 stream in index {path} after line {line_no}") from None
        except UnicodeDecodeError as err:
            raise InputError(f"{path} line {line_no}: not UTF-8 ({err.reason})") from None
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
    f: BinaryIO,
    path: Path,
    start: int,
    end: int,
    *,
    first_only: bool = False,
    index: Path | None = None,
    limit: int = HEADER_CAP,
) -> bytes:
    """Decompress the bz2 stream(s) in ``[start, end)`` of ``f`` (only the first if ``first_only``), at most
    ``limit`` bytes of output: for small parts (the header stream); pages go through :func:`stream_pages`."""
    size = os.fstat(f.fileno()).st_size
    out = bytearray()
    for chunk in bz2_chunks(f, path, start, min(end, size), size=size, index=index, first_only=first_only):
        out += chunk
        if len(out) > limit:
            raise InputError(
                f"{path}: the bz2 data at compressed offsets {start}..{end} decompresses to more than {limit} bytes"
            )
    return bytes(out)


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
SHOW_CHUNK = 256 * 1024  # decompressed bytes per step for show: it stops at the wanted page
PARSE_BATCH = 4 << 20  # page XML bytes parsed by lxml in one call


def cut_stub(head: bytes, size: int, path: Path) -> Page:
    """The stub of a page cut while decompressing: named, counted, never parsed."""
    title, ns_num, page_id, redirect = cut_page_fields(head, path)
    return Page(title, ns_num, page_id, None, redirect, "", size, truncated=True)


def stream_pages(
    f: BinaryIO, path: Path, start: int, end: int, *, size: int, cap: int, index: Path | None = None
) -> Iterator[tuple[list[Page], int]]:
    """``(pages, decompressed bytes)`` batches of the streams in ``[start, end)``, in order, memory bounded by
    ``cap`` (one page) plus ``PARSE_BATCH``; pages over ``cap`` come as ``truncated`` stubs."""
    splitter = PageSplitter(cap, path)
    batch: list[bytes] = []
    pending = bytearray()  # bytes between pages (whitespace, the footer)
    batch_bytes = 0
    produced = 0

    def flush() -> list[Page]:
        nonlocal batch_bytes
        pages = parse_stream_pages(b"".join(batch), path, start) if batch else []
        batch.clear()
        batch_bytes = 0
        return pages

    chunks: Iterator[bytes | None] = itertools.chain(bz2_chunks(f, path, start, end, size=size, index=index), [None])
    for chunk in chunks:
        if chunk is None:
            pieces = splitter.close()
        else:
            produced += len(chunk)
            pieces = splitter.feed(chunk)
        for kind, payload in pieces:
            if kind == OTHER:
                pending += payload  # type: ignore[arg-type]
                continue
            if pending.strip():
                batch.append(bytes(pending))
            pending.clear()
            if kind == CUT:
                head, cut_size = payload  # type: ignore[misc]
                yield [*flush(), cut_stub(head, cut_size, path)], 0
            else:
                batch.append(payload)  # type: ignore[arg-type]
                batch_bytes += len(payload)  # type: ignore[arg-type]
        if batch_bytes >= PARSE_BATCH:
            yield flush(), produced
            produced = 0
    rest = bytes(pending).strip()
    if rest.endswith(_FOOTER):
        rest = rest[: -len(_FOOTER)]
    if rest:
        batch.append(rest)
    yield flush(), produced


def checked_stream_pages(
    f: BinaryIO,
    path: Path,
    index: Path,
    stream: tuple[int, int, int, int],
    *,
    size: int,
    cap: int,
) -> Iterator[tuple[list[Page], int]]:
    """:func:`stream_pages` of one index stream ``(start, end, expected pages, sum of their ids)``, checked
    against the index once the stream is read: a different count or id sum raises :func:`mismatch`.
    Both scans (the in-process pool and the datatrove reader) read streams through this one check."""
    start, end, expected, id_sum = stream
    count = total = 0
    first_ids: list[int] = []
    for pages, produced in stream_pages(f, path, start, end, size=size, cap=cap, index=index):
        count += len(pages)
        total += sum(p.page_id for p in pages)
        first_ids.extend(p.page_id for p in pages[: 3 - len(first_ids)])
        yield pages, produced
    if count != expected or total != id_sum:
        raise mismatch(
            path,
            index,
            f"the stream at offset {start} holds {count} pages (first ids {first_ids}), "
            f"the index lists {expected} with other ids",
        )


def find_page(
    f: BinaryIO,
    path: Path,
    start: int,
    end: int,
    page_id: int,
    index: Path | None = None,
    *,
    cap: int = page_xml_cap(DEFAULT_MAX_PAGE_BYTES),
) -> Page | None:
    """Decompress the stream at ``start`` only as far as the page with ``page_id`` (random access for ``show``).

    On average this reads half a stream: the page id is the first ``<id>`` of each ``<page>``, so each
    complete page is checked with a regex and only the wanted one is XML-parsed. A page over ``cap``
    bytes of XML is returned as a ``truncated`` stub (its text was never kept).
    """
    size = os.fstat(f.fileno()).st_size
    splitter = PageSplitter(cap, path)
    for chunk in bz2_chunks(f, path, start, min(end, size), size=size, index=index, out_chunk=SHOW_CHUNK):
        for kind, payload in splitter.feed(chunk):
            if kind == PAGE:
                match = _PAGE_ID.search(payload)  # type: ignore[arg-type]
                if match is not None and int(match.group(1)) == page_id:
                    pages = parse_stream_pages(payload, path, start)  # type: ignore[arg-type]
                    return pages[0] if pages else None
            elif kind == CUT:
                head, cut_size = payload  # type: ignore[misc]
                stub = cut_stub(head, cut_size, path)
                if stub.page_id == page_id:
                    return stub
    return None


def read_header(f: BinaryIO, path: Path, first_offset: int, index: Path | None = None) -> SiteInfo:
    """The ``<siteinfo>`` of stream 0 (the bytes before the first indexed stream)."""
    if first_offset <= 0:
        return SiteInfo()
    data = decompress_streams(f, path, 0, first_offset, index=index)
    check_no_dtd(data, path)
    try:
        root = ET.fromstring(data + _FOOTER)
    except ET.ParseError as err:
        raise InputError(f"malformed XML header in {path} (bytes 0..{first_offset}): {err}") from None
    ns = root.tag[: -len(local(root.tag))]
    site_el = root.find(f"{ns}siteinfo")
    site = siteinfo_from_element(site_el, ns) if site_el is not None else SiteInfo()
    site.schema = ns.strip("{}")
    return site


def stream_bounds(
    offsets: list[int], file_size: int, dump: Path, index: Path, f: BinaryIO | None = None
) -> list[tuple[int, int]]:
    """``[(start, end)]`` per stream: a stream ends where the next indexed one starts (the last at EOF)."""
    if offsets[-1] >= file_size:
        raise past_end(f, dump, index, offsets[-1], file_size, [o for o in offsets if o < file_size])
    ends = [*offsets[1:], file_size]
    return list(zip(offsets, ends, strict=True))


def past_end(
    f: BinaryIO | None, dump: Path, index: Path, offset: int, size: int, below: list[int] | int | None
) -> InputError:
    """An indexed offset at or past the end of the dump: say whether the dump is cut short or the index is wrong.

    The dump is at fault when its last stream (the last indexed offset below its size) does not end
    complete; if it does, the dump is whole and the index lists streams it does not have.
    """
    last = max(below) if isinstance(below, list) and below else below if isinstance(below, int) else None
    if f is None or last is None:
        return offset_past_end(dump, index, offset, size)
    state = tail_state(f, dump, last, size)
    if state == "cut":
        return InputError(
            f"dump {dump} is truncated (size {size} bytes): index {index} lists a stream at offset {offset}, "
            f"past the end of the file, and the last stream the dump has (offset {last}) is cut short"
        )
    why = "the dump's last stream ends complete" if state == "complete" else f"offset {last} is not a stream start"
    return mismatch(
        dump, index, f"it lists a stream at offset {offset}, past the end of the dump (size {size} bytes); {why}"
    )
