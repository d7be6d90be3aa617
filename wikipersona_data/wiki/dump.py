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
  ``<!ENTITY`` in the prolog is refused before a byte reaches expat (expat >= 2.4 also limits
  amplification, but we do not rely on it). A DOCTYPE after the root element is a syntax error for
  expat anyway. ``defusedxml`` would do the same check but forces the pure-Python ``XMLParser``
  subclass, which would make XML parsing, today noise next to bz2, a visible cost.
"""

from __future__ import annotations

import bz2
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from wikipersona_data.errors import InputError

BZ2_MAGIC = b"BZh"
READ_CHUNK = 1 << 20
DEFAULT_URL_BASE = "https://en.wikipedia.org/wiki/"
_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_]")


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


def check_no_dtd(head: bytes, path: Path) -> None:
    """Refuse a DOCTYPE/ENTITY declaration in the prolog (entity-expansion attacks)."""
    root = _ROOT_START.search(head)
    if root is None and len(head) >= READ_CHUNK:
        raise InputError(f"{path}: no root element in the first {READ_CHUNK} bytes (not a MediaWiki export)")
    prolog = head if root is None else head[: root.start()]
    if _DTD.search(prolog):
        raise InputError(f"{path}: refusing an XML DOCTYPE/ENTITY declaration (possible entity-expansion attack)")


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
    the indexed multistream path splits the work across processes instead.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.site = SiteInfo()
        self.pages_read = 0
        self.compressed_pos = 0  # bytes of the file consumed so far (for progress and error messages)
        self.size = self.path.stat().st_size if self.path.exists() else 0

    def pages(self, on_progress: Callable[[int], None] | None = None) -> Iterator[Page]:
        """Yield every page in file order; ``on_progress(bytes)`` gets each newly consumed byte count."""
        raw, is_bz2 = open_binary(self.path)
        with raw:
            source = bz2.BZ2File(raw) if is_bz2 else raw
            yield from self._parse(source, raw, on_progress)

    def _parse(self, source: BinaryIO, raw: BinaryIO, on_progress: Callable[[int], None] | None) -> Iterator[Page]:
        parser = ET.XMLPullParser(events=("start", "end"))
        ns = ""
        root: ET.Element | None = None
        first = True
        last_title: str | None = None
        while True:
            try:
                chunk = source.read(READ_CHUNK)
            except EOFError:
                raise InputError(
                    f"truncated bz2 stream in {self.path} at compressed offset {raw.tell()} "
                    f"after {self.pages_read} pages"
                ) from None
            except OSError as err:
                raise InputError(
                    f"corrupt bz2 data in {self.path} at compressed offset {raw.tell()} "
                    f"after {self.pages_read} pages ({err})"
                ) from None
            if first:
                check_no_dtd(chunk, self.path)
                first = False
            pos = raw.tell()
            if on_progress is not None and pos > self.compressed_pos:
                on_progress(pos - self.compressed_pos)
            self.compressed_pos = pos
            try:
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
                for event, elem in parser.read_events():
                    if event == "start":
                        if root is None:
                            root = elem
                            ns = elem.tag[: -len(local(elem.tag))]
                            self.site.schema = ns.strip("{}")
                        continue
                    name = local(elem.tag)
                    if name == "page":
                        page = page_from_element(elem, ns, self.path)
                        last_title = page.title
                        self.pages_read += 1
                        elem.clear()
                        if root is not None:
                            root.clear()  # drop references to finished pages (cpython#93618)
                        yield page
                    elif name == "siteinfo":
                        self.site = siteinfo_from_element(elem, ns)
                        self.site.schema = ns.strip("{}")
                        elem.clear()
            except ET.ParseError as err:
                if self.pages_read == 0 and root is None:
                    raise InputError(f"empty or non-XML dump {self.path}: {err}") from None
                raise InputError(
                    f"malformed XML in {self.path} (decompressed line {err.position[0]}, column {err.position[1]}) "
                    f"after page {last_title!r}: {err}"
                ) from None
            if not chunk:
                break
