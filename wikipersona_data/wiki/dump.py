"""Open a MediaWiki XML export and iterate its pages.

Accepted inputs: plain ``.xml``, a single-stream ``.xml.bz2`` and a multistream ``.xml.bz2`` (Python's
``bz2`` reads concatenated streams transparently, so without an index a multistream file is read like a
single-stream one). Random access and the parallel scan of a multistream file with its index live in
``multistream.py``; this module is the sequential path and the page model both share.

Why these choices:

* The export namespace (``export-0.10``, ``export-0.11``, ...) is taken from the root tag, never
  hard-coded, and unknown children such as 0.11's ``<origin>`` are ignored.
* ``XMLPullParser`` is fed chunks we read ourselves, so we always know the compressed offset (for the
  "truncated bz2 stream ... at compressed offset N after M pages" message) and elements are cleared
  as soon as a page is built (bounded memory whatever the dump size).
* Entity-expansion attacks ("billion laughs"): a dump never carries a DTD, so any ``<!DOCTYPE`` or
  ``<!ENTITY`` anywhere in the prolog (behind any amount of comments) is refused before a byte reaches
  expat (expat >= 2.4 also limits amplification, but we do not rely on it). A DOCTYPE after the root
  element is a syntax error for expat anyway. ``defusedxml`` would do the same check but forces the
  pure-Python ``XMLParser`` subclass, which would make XML parsing, today noise next to bz2, a visible cost.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from wikipersona_data.errors import InputError
from wikipersona_data.wiki.bounded import (
    BZ2_MAGIC,
    CUT,
    DEFAULT_MAX_PAGE_BYTES,
    PageSplitter,
    bz2_chunks,
    checked_prolog,
    cut_page_fields,
    page_xml_cap,
    prolog_end,
)

READ_CHUNK = 1 << 20
DEFAULT_URL_BASE = "https://en.wikipedia.org/wiki/"


@dataclass(slots=True)
class Page:
    """One ``<page>`` of the export: what every later step needs, nothing else."""

    title: str
    ns: int
    page_id: int
    revision_id: int | None
    redirect: str | None
    text: str
    text_bytes: int  # <text bytes="..."> when present, else the UTF-8 length
    truncated: bool = False  # cut while decompressing (over the per-page cap): text is empty, text_bytes the XML size


@dataclass
class SiteInfo:
    """The ``<siteinfo>`` header: export schema, base URL and namespace names (to skip ``File:`` links)."""

    schema: str = ""
    base_url: str = ""
    dbname: str = ""
    namespaces: dict[int, str] = field(default_factory=dict)

    def url_base(self) -> str:
        """``https://en.wikipedia.org/wiki/`` from ``<base>https://en.wikipedia.org/wiki/Main_Page``."""
        if "/wiki/" in self.base_url:
            return self.base_url.split("/wiki/", 1)[0] + "/wiki/"
        return DEFAULT_URL_BASE

    def namespace_prefixes(self) -> frozenset[str]:
        """Lower-cased namespace names, e.g. ``{"file", "category", ...}``."""
        return frozenset(name.lower() for key, name in self.namespaces.items() if key != 0 and name)


def local(tag: str) -> str:
    """``{http://www.mediawiki.org/xml/export-0.11/}page`` -> ``page``."""
    return tag.rsplit("}", 1)[-1]


def check_no_dtd(data: bytes, path: Path) -> None:
    """Refuse a DOCTYPE/ENTITY declaration anywhere in the prolog of ``data`` (entity-expansion attacks)."""
    if prolog_end(data, path) is None:
        prolog_end(data + b"<" * 9, path)  # rootless input: still refuse a declaration in it


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def page_from_element(elem: ET.Element, ns: str, path: Path) -> Page:
    """Build a :class:`Page` from a ``<page>`` element whose children use namespace prefix ``ns``."""
    title = elem.findtext(f"{ns}title")
    page_id = _int(elem.findtext(f"{ns}id"))
    if title is None or page_id is None:
        raise InputError(f"{path}: malformed <page> (missing title or id) after title {title!r}")
    ns_num = _int(elem.findtext(f"{ns}ns"))
    redirect_el = elem.find(f"{ns}redirect")
    redirect = redirect_el.get("title") if redirect_el is not None else None
    revision = elem.find(f"{ns}revision")
    revision_id = None
    text = ""
    text_bytes = None
    if revision is not None:
        revision_id = _int(revision.findtext(f"{ns}id"))
        text_el = revision.find(f"{ns}text")
        if text_el is not None:
            text = text_el.text or ""
            text_bytes = _int(text_el.get("bytes"))
    if text_bytes is None:
        text_bytes = len(text.encode("utf-8"))
    return Page(title, ns_num if ns_num is not None else 0, page_id, revision_id, redirect, text, text_bytes)


def siteinfo_from_element(elem: ET.Element, ns: str) -> SiteInfo:
    site = SiteInfo(base_url=elem.findtext(f"{ns}base") or "", dbname=elem.findtext(f"{ns}dbname") or "")
    for item in elem.iterfind(f"{ns}namespaces/{ns}namespace"):
        key = _int(item.get("key"))
        if key is not None:
            site.namespaces[key] = item.text or ""
    return site


def open_binary(path: Path) -> tuple[BinaryIO, bool]:
    """Open ``path`` and tell whether it is bz2, refusing a ``.bz2`` name without bz2 magic."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - the caller owns it
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot open ({err.strerror})") from None
    magic = raw.read(3)
    raw.seek(0)
    if magic == BZ2_MAGIC:
        return raw, True
    if not magic:
        raw.close()
        raise InputError(f"empty dump: {path} is a 0-byte file")
    if path.name.endswith(".bz2"):
        raw.close()
        raise InputError(f"{path}: not a bz2 file (starts with {magic!r}, expected {BZ2_MAGIC!r})")
    return raw, False


class SequentialReader:
    """Sequential reader of a whole export (single-stream, plain XML, or multistream read in order).

    One process decompresses everything, so this runs at one core's bz2 speed (~30 MB/s of XML);
    the indexed multistream path splits the work across processes instead. Decompression is bounded
    (bounded.py): a page over ``max_page_bytes`` comes out as a ``truncated`` stub, never in memory.
    """

    def __init__(self, path: str | Path, *, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES) -> None:
        self.path = Path(path)
        self.site = SiteInfo()
        self.pages_read = 0
        self.compressed_pos = 0  # bytes of the file consumed so far (for progress and error messages)
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.cap = page_xml_cap(max_page_bytes)

    def pages(self, on_progress: Callable[[int], None] | None = None) -> Iterator[Page]:
        """Yield every page in file order; ``on_progress(bytes)`` gets each newly consumed byte count."""
        raw, is_bz2 = open_binary(self.path)
        with raw:
            self.size = os.fstat(raw.fileno()).st_size
            if is_bz2:
                chunks: Iterator[bytes] = bz2_chunks(
                    raw, self.path, 0, self.size, size=self.size, after=lambda: f" after {self.pages_read} pages"
                )
            else:
                chunks = iter(lambda: raw.read(READ_CHUNK), b"")
            yield from self._parse(checked_prolog(chunks, self.path), raw, on_progress)

    def _parse(
        self, chunks: Iterator[bytes], raw: BinaryIO, on_progress: Callable[[int], None] | None
    ) -> Iterator[Page]:
        parser = ET.XMLPullParser(events=("start", "end"))
        splitter = PageSplitter(self.cap, self.path)
        state = _ParseState()
        done = False
        while not done:
            chunk = next(chunks, None)
            pos = raw.tell()
            if on_progress is not None and pos > self.compressed_pos:
                on_progress(pos - self.compressed_pos)
            self.compressed_pos = pos
            if chunk is None:
                pieces = splitter.close()
                done = True
            else:
                pieces = splitter.feed(chunk)
            for kind, payload in pieces:
                if kind == CUT:
                    head, size = payload  # type: ignore[misc]
                    title, ns_num, page_id, redirect = cut_page_fields(head, self.path)
                    state.last_title = title
                    self.pages_read += 1
                    yield Page(title, ns_num, page_id, None, redirect, "", size, truncated=True)
                    continue
                yield from self._feed(parser, payload, state)  # type: ignore[arg-type]
            if done:
                yield from self._feed(parser, None, state)

    def _feed(self, parser: ET.XMLPullParser, data: bytes | None, state: _ParseState) -> Iterator[Page]:
        try:
            if data is None:
                parser.close()
            else:
                parser.feed(data)
            for event, elem in parser.read_events():
                if event == "start":
                    if state.root is None:
                        state.root = elem
                        state.ns = elem.tag[: -len(local(elem.tag))]
                        self.site.schema = state.ns.strip("{}")
                    continue
                name = local(elem.tag)
                if name == "page":
                    page = page_from_element(elem, state.ns, self.path)
                    state.last_title = page.title
                    self.pages_read += 1
                    elem.clear()
                    if state.root is not None:
                        state.root.clear()  # drop references to finished pages (cpython#93618)
                    yield page
                elif name == "siteinfo":
                    self.site = siteinfo_from_element(elem, state.ns)
                    self.site.schema = state.ns.strip("{}")
                    elem.clear()
        except ET.ParseError as err:
            if self.pages_read == 0 and state.root is None:
                raise InputError(f"empty or non-XML dump {self.path}: {err}") from None
            raise InputError(
                f"malformed XML in {self.path} (decompressed line {err.position[0]}, column {err.position[1]}) "
                f"after page {state.last_title!r}: {err}"
            ) from None


def read_export(
    data: bytes, label: str, *, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
) -> tuple[SiteInfo, list[Page]]:
    """The pages of a whole export document held in memory (a ``Special:Export`` reply, ``online.py``), read by
    the very code that reads a plain ``.xml`` dump: the same prolog check, page cap and page model. ``label``
    names the source in error messages."""
    import io

    reader = SequentialReader(label, max_page_bytes=max_page_bytes)
    raw = io.BytesIO(data)
    chunks = iter(lambda: raw.read(READ_CHUNK), b"")
    pages = list(reader._parse(checked_prolog(chunks, reader.path), raw, None))  # type: ignore[arg-type]
    return reader.site, pages


@dataclass
class _ParseState:
    ns: str = ""
    root: ET.Element | None = None
    last_title: str | None = None
