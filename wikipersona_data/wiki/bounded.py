"""Bounded reading of dumps: decompression, the XML prolog, and one page at a time.

Why: a bz2 stream is a compression bomb waiting to happen (1.2 KB can expand to 256 MiB, and a
plain ``decompress(data)`` returns all of it at once), and an XML page has no size limit of its own.
Everything a dump reader decompresses therefore goes through :func:`bz2_chunks`, which asks
``BZ2Decompressor`` for at most ``OUT_CHUNK`` bytes at a time (``max_length``), and through
:class:`PageSplitter`, which cuts the decompressed bytes into ``<page>`` elements and stops keeping
the bytes of a page that grows past the per-page cap (``--max-page-bytes`` x 6, the worst case of XML
escaping, so a page the old parser accepted is never cut): the rest of that page is decompressed and
thrown away, and the reader gets a stub :class:`Page` (``truncated=True``) that the scan counts as a
skipped page. Memory is then bounded by the cap, not by the data.

The same module checks the whole XML prolog (everything before the root element, comments included)
for a DOCTYPE/ENTITY declaration, and says which file is at fault when a stream ends early: the dump
(cut short) or the index (its offsets are not where this dump's streams start).
"""

from __future__ import annotations

import bz2
import html
import re
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from wikipersona_data.errors import InputError

BZ2_MAGIC = b"BZh"
OUT_CHUNK = 1 << 20  # decompressed bytes per decompress() call
READ_STEP = 256 * 1024  # compressed bytes per read
XML_ESCAPE_FACTOR = 6  # '"' -> '&quot;': the most one byte of wikitext can grow in XML
PAGE_XML_SLACK = 64 * 1024  # title, ids, contributor, comment around the text
PROLOG_CAP = 1 << 20  # bytes before the root element (real dumps: 0)
HEAD_KEEP = 64 * 1024  # bytes kept of a page that is cut, to name it
DEFAULT_MAX_PAGE_BYTES = 4_000_000  # the longest enwiki articles are ~1.5 MB of wikitext
DEFAULT_PAGE_TIMEOUT = 20.0  # seconds one page may take to parse (scan, show, the build's persona lookup)

_PAGE_OPEN = b"<page"
_PAGE_CLOSE = b"</page>"
_TITLE = re.compile(rb"<title>([^<]*)</title>")
_ID = re.compile(rb"<id>\s*([0-9]{1,19})\s*</id>")
_NS = re.compile(rb"<ns>\s*(-?[0-9]{1,9})\s*</ns>")
_REDIRECT = re.compile(rb'<redirect\s+title="([^"]*)"')


def page_xml_cap(max_page_bytes: int) -> int:
    """Decompressed XML bytes one page may take before it is cut (its wikitext may be ``max_page_bytes``)."""
    return max_page_bytes * XML_ESCAPE_FACTOR + PAGE_XML_SLACK


class StreamError(InputError):
    """A bz2 stream that is cut short, corrupt or not where the index says; the message names the file at fault.

    ``kind``: ``"cut"`` (the dump ends inside the stream), ``"mismatch"`` (the index is wrong about
    where streams start or end), ``"corrupt"`` (bad bz2 data).
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple[type[StreamError], tuple[str, str]]:  # raised in scan workers, re-raised in main
        return (StreamError, (str(self), self.kind))


def bz2_chunks(
    f: BinaryIO,
    path: object,
    start: int,
    end: int,
    *,
    size: int,
    index: object = None,
    first_only: bool = False,
    after: Callable[[], str] = lambda: "",
    out_chunk: int = OUT_CHUNK,
) -> Iterator[bytes]:
    """Decompressed bytes of the bz2 stream(s) in ``[start, end)`` of ``f``, at most ``out_chunk`` per item.

    ``size`` is the file's size: a stream that needs bytes beyond ``end`` is the dump's fault when
    ``end`` is the end of the file (the dump is cut short) and the index's fault otherwise (it says the
    next stream starts at ``end``, but this stream goes on). ``after()`` adds "after N pages" context.
    """
    if start >= size:
        raise offset_past_end(path, index, start, size)
    f.seek(start)
    remaining = end - start
    data = b""
    stream_start = start
    first = True
    while True:
        while len(data) < len(BZ2_MAGIC) and remaining > 0:
            more = f.read(min(READ_STEP, remaining))
            if not more:
                remaining = 0
                break
            remaining -= len(more)
            data += more
        if not data:
            return
        if not data.startswith(BZ2_MAGIC):
            if first and index is not None:
                raise StreamError(
                    f"index {index} does not match dump {path}: offset {start} is not the start of a bz2 stream "
                    f"(dump size {size} bytes)",
                    "mismatch",
                )
            raise StreamError(
                f"corrupt bz2 data in {path} at compressed offset {stream_start}: not a bz2 stream{after()}", "corrupt"
            )
        first = False
        dec = bz2.BZ2Decompressor()
        stream_start = end - remaining - len(data)  # file offset of data[0]
        while True:
            try:
                out = dec.decompress(data, out_chunk)
            except OSError as err:
                raise StreamError(
                    f"corrupt bz2 data in {path} in the stream at compressed offset {stream_start} ({err}){after()}",
                    "corrupt",
                ) from None
            data = b""
            if out:
                yield out
            if dec.eof:
                break
            if dec.needs_input:
                if remaining <= 0:
                    raise _cut_short(path, index, stream_start, end, size, after())
                data = f.read(min(READ_STEP, remaining))
                if not data:
                    raise _cut_short(path, index, stream_start, end, size, after())
                remaining -= len(data)
        if first_only:
            return
        data = dec.unused_data


def _cut_short(path: object, index: object, stream_start: int, end: int, size: int, after: str) -> StreamError:
    if end < size:
        return StreamError(
            f"index {index} does not match dump {path}: the bz2 stream at offset {stream_start} goes on past "
            f"offset {end}, where the index says the next stream starts (dump size {size} bytes)",
            "mismatch",
        )
    return StreamError(
        f"dump {path} is truncated: the bz2 stream at offset {stream_start} runs past the end of the file "
        f"(size {size} bytes){after}",
        "cut",
    )


def offset_past_end(path: object, index: object, offset: int, size: int) -> StreamError:
    return StreamError(
        f"offset {offset} from index {index} is past the end of dump {path} (size {size} bytes): "
        "the dump is truncated or the index belongs to another dump",
        "mismatch",
    )


def tail_state(f: BinaryIO, path: object, last_start: int, size: int) -> str:
    """How the dump ends from ``last_start`` (the last indexed offset inside it) to the end of the file.

    ``"cut"``: a stream there runs past the end (the dump is short); ``"complete"``: the streams end
    whole; ``"mismatch"``/``"corrupt"``: ``last_start`` is not a stream start (the index is wrong).
    """
    try:
        for _ in bz2_chunks(f, path, last_start, size, size=size, index="?"):
            pass
    except StreamError as err:
        return err.kind
    return "complete"


# ------------------------------------------------------------------------------------------------ the prolog


def prolog_end(data: bytes | bytearray, path: object) -> int | None:
    """Where the root element starts, ``None`` if ``data`` ends inside the prolog; refuses a DTD anywhere in it.

    Walks the prolog token by token (XML declaration, processing instructions, comments, whitespace),
    so a ``<!DOCTYPE`` behind any amount of comments is seen, and a ``<`` inside a comment is not
    mistaken for the root element.
    """
    i = 0
    n = len(data)
    while i < n:
        if data[i] in b" \t\r\n":
            i += 1
            continue
        if data.startswith(b"\xef\xbb\xbf", i):  # UTF-8 BOM
            i += 3
            continue
        if data[i] != 0x3C:  # '<'
            raise InputError(f"{path}: text before the root element (not a MediaWiki export)")
        if n - i < 9:
            return None
        if data.startswith(b"<?", i):
            close = data.find(b"?>", i + 2)
            if close < 0:
                return None
            i = close + 2
        elif data.startswith(b"<!--", i):
            close = data.find(b"-->", i + 4)
            if close < 0:
                return None
            i = close + 3
        elif data.startswith(b"<!", i):
            raise InputError(
                f"{path}: refusing an XML DOCTYPE/ENTITY declaration at decompressed byte {i} "
                "(possible entity-expansion attack)"
            )
        else:
            return i
    return None


def checked_prolog(chunks: Iterable[bytes], path: object) -> Iterator[bytes]:
    """Pass ``chunks`` through after checking the whole prolog (buffered, at most ``PROLOG_CAP`` bytes)."""
    head = bytearray()
    it = iter(chunks)
    for chunk in it:
        head += chunk
        if prolog_end(head, path) is not None:
            yield bytes(head)
            yield from it
            return
        if len(head) > PROLOG_CAP:
            raise InputError(f"{path}: no root element in the first {PROLOG_CAP} bytes (not a MediaWiki export)")
    if head:
        prolog_end(head + b"<" * 9, path)  # a DTD in a short, rootless input is still refused
        yield bytes(head)


# ---------------------------------------------------------------------------------------------- page splitter

PAGE, OTHER, CUT = "page", "other", "cut"


class PageSplitter:
    """Cut decompressed XML into ``<page>...</page>`` pieces without holding more than one page.

    ``feed(chunk)`` returns ``(kind, payload)`` pieces in order: ``PAGE`` with the page's bytes,
    ``OTHER`` with bytes between pages (header, footer), ``CUT`` with the first bytes and total size
    of a page that grew past ``cap`` (its remaining bytes are dropped as they arrive).
    """

    def __init__(self, cap: int, path: object) -> None:
        self.cap = cap
        self.path = path
        self.buf = bytearray()
        self.cut_head: bytes | None = None
        self.cut_size = 0
        self.other_run = 0  # bytes outside any page since the last page

    def feed(self, chunk: bytes) -> list[tuple[str, bytes | tuple[bytes, int]]]:
        out: list[tuple[str, bytes | tuple[bytes, int]]] = []
        buf = self.buf
        if self.cut_head is not None:
            keep = len(buf)
            buf += chunk
            close = buf.find(_PAGE_CLOSE)
            if close < 0:
                self.cut_size += len(chunk)
                del buf[: max(0, len(buf) - len(_PAGE_CLOSE))]
                return out
            self.cut_size += close + len(_PAGE_CLOSE) - keep
            out.append((CUT, (self.cut_head, self.cut_size)))
            self.cut_head = None
            del buf[: close + len(_PAGE_CLOSE)]
        else:
            buf += chunk
        pos = 0
        while True:
            open_at = buf.find(_PAGE_OPEN, pos)
            if open_at < 0:
                keep_from = max(pos, len(buf) - len(_PAGE_OPEN))
                self._other(out, buf, pos, keep_from)
                del buf[:keep_from]
                return out
            self._other(out, buf, pos, open_at)
            close = buf.find(_PAGE_CLOSE, open_at)
            if close >= 0:
                end = close + len(_PAGE_CLOSE)
                out.append((PAGE, bytes(buf[open_at:end])))
                self.other_run = 0
                pos = end
                continue
            if len(buf) - open_at > self.cap:
                self.cut_head = bytes(buf[open_at : open_at + HEAD_KEEP])
                self.cut_size = len(buf) - open_at
                del buf[: len(buf) - len(_PAGE_CLOSE)]
                return out
            del buf[:open_at]
            return out

    def _other(self, out: list, buf: bytearray, lo: int, hi: int) -> None:  # type: ignore[type-arg]
        if hi <= lo:
            return
        self.other_run += hi - lo
        if self.other_run > self.cap:
            raise InputError(f"{self.path}: more than {self.cap} decompressed bytes outside any <page>")
        out.append((OTHER, bytes(buf[lo:hi])))

    def close(self) -> list[tuple[str, bytes | tuple[bytes, int]]]:
        """The bytes left at the end (a page cut short ends as ``OTHER`` so the XML parser reports it)."""
        if self.cut_head is not None:
            head, size = self.cut_head, self.cut_size
            self.cut_head = None
            self.buf.clear()
            return [(CUT, (head, size))]
        rest = bytes(self.buf)
        self.buf.clear()
        return [(OTHER, rest)] if rest else []


def cut_page_fields(head: bytes, path: object) -> tuple[str, int, int, str | None]:
    """``(title, ns, page_id, redirect)`` read from the first bytes of a page that was cut."""
    title = _TITLE.search(head)
    page_id = _ID.search(head)
    if title is None or page_id is None:
        raise InputError(f"{path}: malformed <page> (no title or id in its first {len(head)} bytes)")
    ns = _NS.search(head)
    redirect = _REDIRECT.search(head)
    return (
        html.unescape(title.group(1).decode("utf-8", "replace")),
        int(ns.group(1)) if ns else 0,
        int(page_id.group(1)),
        html.unescape(redirect.group(1).decode("utf-8", "replace")) if redirect else None,
    )
