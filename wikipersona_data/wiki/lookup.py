"""Random access by title: a compact on-disk title lookup and :class:`DumpReader`.

The enwiki index has ~23 M lines; a Python dict of it costs GBs and minutes to load on every call. The
lookup is instead built once into SQLite (one row per index line: normalised title, case-folded
title, stream offset, page id; B-tree indexes on both titles) and then opened in milliseconds. It is
stored next to the index (``<index>.lookup.sqlite``) or, if that folder is read-only, in
``$WIKIPERSONA_CACHE`` (default ``~/.cache/wikipersona/lookup``); it is rebuilt when the index file's
size or mtime changes. Building writes a temporary file and renames it, so a crash or a concurrent
build never leaves a half-built lookup behind.

Titles are normalised the MediaWiki way (titles.py), so ``Andre_agassi``-style input finds
``Andre agassi``; if no page has that exact normalised title but exactly one has it up to letter
case (``Andre Agassi``), that page is used. Otherwise the error suggests close titles, chosen with
``difflib`` among a bounded candidate set (titles sharing the first letters, case-insensitively).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wikipersona_data.errors import InputError
from wikipersona_data.fileio import atomic_path
from wikipersona_data.paths import cache_home
from wikipersona_data.wiki.biography import Biography
from wikipersona_data.wiki.bounded import DEFAULT_MAX_PAGE_BYTES, DEFAULT_PAGE_TIMEOUT, page_xml_cap
from wikipersona_data.wiki.dump import Page, open_binary
from wikipersona_data.wiki.multistream import find_page, iter_index, past_end, read_header
from wikipersona_data.wiki.timelimit import PageTimeout, time_limit
from wikipersona_data.wiki.titles import fold_title, normalize_title, strip_fragment

SCHEMA_VERSION = "1"
BATCH = 50_000
MAX_REDIRECTS = 10
SUGGESTION_POOL = 2000


def follow_redirects(page: Page, target_page: Callable[[str, list[str]], Page]) -> tuple[Page, list[str]]:
    """Follow ``page``'s redirects to the final page: (page, chain of titles visited).

    One loop for every page source (dump, Special:Export): loops and over-long chains are refused here;
    ``target_page(target, chain)`` fetches a redirect target or raises ``InputError`` naming its source."""
    chain = [page.title]
    seen = {normalize_title(page.title)}
    while page.redirect is not None:
        target = strip_fragment(page.redirect)
        key = normalize_title(target)
        if key in seen or len(chain) > MAX_REDIRECTS:
            raise InputError(f"redirect loop: {' -> '.join([*chain, target])}")
        seen.add(key)
        page = target_page(target, chain)
        chain.append(page.title)
    return page, chain


def cache_root() -> Path:
    env = os.environ.get("WIKIPERSONA_CACHE")
    if env:
        return Path(env) / "lookup"
    return cache_home() / "wikipersona" / "lookup"


def _writable(folder: Path) -> bool:
    """Honour the folder's permission bits even as root (who may write anywhere): r-x means "leave it alone"."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IWUSR) and os.access(folder, os.W_OK)


def _candidate_paths(index: Path) -> list[Path]:
    """Where a lookup may live: next to the index if that folder is writable, else in the cache dir."""
    digest = hashlib.sha256(str(index.resolve()).encode()).hexdigest()[:16]
    cached = cache_root() / f"{index.name}-{digest}.sqlite"
    if _writable(index.parent):
        return [index.with_name(index.name + ".lookup.sqlite"), cached]
    return [cached]


def _stamp(index: Path) -> dict[str, str]:
    st = index.stat()
    return {"version": SCHEMA_VERSION, "size": str(st.st_size), "mtime_ns": str(st.st_mtime_ns)}


def _read_meta(db: Path) -> dict[str, str] | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return None
    finally:
        con.close()


def _build(index: Path, db: Path, stamp: dict[str, str]) -> None:
    with atomic_path(db, fsync=False) as tmp:  # an index cache: rebuilt if lost, so no fsync
        _fill(index, tmp, stamp)


def _fill(index: Path, tmp: Path, stamp: dict[str, str]) -> None:
    con = sqlite3.connect(tmp)
    try:
        con.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE pages (key TEXT NOT NULL, fold TEXT NOT NULL, offset INTEGER NOT NULL, page_id INTEGER);
            CREATE TABLE streams (offset INTEGER PRIMARY KEY);
            """
        )
        batch: list[tuple[str, str, int, int]] = []
        offsets: set[int] = set()
        for entry in iter_index(index):
            key = normalize_title(entry.title)
            batch.append((key, key.casefold(), entry.offset, entry.page_id))
            offsets.add(entry.offset)
            if len(batch) >= BATCH:
                con.executemany("INSERT INTO pages VALUES (?, ?, ?, ?)", batch)
                batch.clear()
        con.executemany("INSERT INTO pages VALUES (?, ?, ?, ?)", batch)
        if not offsets:
            raise InputError(f"empty index: {index} lists no pages")
        con.executemany("INSERT INTO streams VALUES (?)", ((o,) for o in sorted(offsets)))
        con.execute("CREATE INDEX pages_key ON pages (key)")
        con.execute("CREATE INDEX pages_fold ON pages (fold)")
        con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(stamp.items()))
        con.commit()
    finally:
        con.close()


def open_lookup(index: str | Path) -> TitleLookup:
    """Open the lookup for ``index``, building (or rebuilding a stale one) first if needed."""
    index = Path(index)
    if not index.is_file():
        raise InputError(f"{index}: no such index file")
    stamp = _stamp(index)
    candidates = _candidate_paths(index)
    for db in candidates:
        if db.is_file() and _read_meta(db) == stamp:
            return TitleLookup(db, index)
    last_error: OSError | None = None
    for db in candidates:
        try:
            _build(index, db, stamp)
            return TitleLookup(db, index)
        except (OSError, sqlite3.OperationalError) as err:  # read-only folder: try the cache dir
            last_error = err if isinstance(err, OSError) else OSError(str(err))
    raise InputError(f"cannot write a title lookup for {index} next to it or in {cache_root()}: {last_error}")


class TitleLookup:
    """Read-only queries on a built lookup."""

    def __init__(self, db: Path, index: Path) -> None:
        self.path = db
        self.index = index
        self.con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)

    def close(self) -> None:
        self.con.close()

    def find(self, title: str) -> tuple[str, int, int] | None:
        """``(normalised title, stream offset, page id)``: exact match, else a unique case-insensitive one."""
        key = normalize_title(title)
        row = self.con.execute("SELECT key, offset, page_id FROM pages WHERE key = ? LIMIT 1", (key,)).fetchone()
        if row is None:
            rows = self.con.execute(
                "SELECT key, offset, page_id FROM pages WHERE fold = ? LIMIT 2", (key.casefold(),)
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return (row[0], row[1], row[2]) if row else None

    def stream_end(self, offset: int) -> int | None:
        row = self.con.execute("SELECT MIN(offset) FROM streams WHERE offset > ?", (offset,)).fetchone()
        return row[0] if row and row[0] is not None else None

    def last_offset_below(self, size: int) -> int | None:
        row = self.con.execute("SELECT MAX(offset) FROM streams WHERE offset < ?", (size,)).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def first_offset(self) -> int:
        row = self.con.execute("SELECT MIN(offset) FROM streams").fetchone()
        return int(row[0])

    def suggestions(self, title: str, n: int = 5) -> list[str]:
        """Close titles among at most ``SUGGESTION_POOL`` sharing the first letters (case-insensitive)."""
        fold = fold_title(title)
        pool: list[str] = []
        for width in (3, 2, 1):
            prefix = fold[:width]
            if not prefix:
                break
            pool = [
                r[0]
                for r in self.con.execute(
                    "SELECT key FROM pages WHERE fold >= ? AND fold < ? LIMIT ?",
                    (prefix, prefix + "\U0010ffff", SUGGESTION_POOL),
                )
            ]
            if pool:
                break
        by_fold = {p.casefold(): p for p in pool}
        close = difflib.get_close_matches(fold, list(by_fold), n=n, cutoff=0.6)
        return [by_fold[c] for c in close]


class DumpReader:
    """Pages and Biographies of a multistream dump by title, for ``show`` and later stages.

    Opening is cheap (one SQLite connection; the dump is opened on first read), so it can be created
    per call. A lookup decompresses its stream only up to the wanted page. The parse of a page has the
    same guards as in ``scan``: at most ``max_page_bytes`` of wikitext (bigger pages are cut while
    decompressing) and ``page_timeout`` seconds.
    """

    def __init__(
        self,
        dump_path: str | Path,
        index_path: str | Path,
        *,
        max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
        page_timeout: float = DEFAULT_PAGE_TIMEOUT,
    ) -> None:
        self.dump = Path(dump_path)
        raw, is_bz2 = open_binary(self.dump)
        raw.close()
        if not is_bz2:
            raise InputError(f"{self.dump}: random access needs a multistream .xml.bz2 dump")
        self.index = Path(index_path)
        self.lookup = open_lookup(self.index)
        self._file: Any = None
        self._url_base: str | None = None
        self.max_page_bytes = max_page_bytes
        self.page_timeout = page_timeout

    def close(self) -> None:
        self.lookup.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> DumpReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Any:
        if self._file is None:
            self._file = open(self.dump, "rb")  # noqa: SIM115 - closed by close()
        return self._file

    def url_base(self) -> str:
        """From the dump's ``<siteinfo>`` (read once), so URLs point at the wiki the dump came from."""
        if self._url_base is None:
            self._url_base = read_header(self._open(), self.dump, self.lookup.first_offset(), self.index).url_base()
        return self._url_base

    def _locate(self, title: str) -> tuple[str, int, int]:
        found = self.lookup.find(title)
        if found is None:
            close = self.lookup.suggestions(title)
            hint = f"; did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
            raise InputError(f"unknown title {title!r} in index {self.index}{hint}")
        return found

    def _page(self, title: str) -> Page:
        key, offset, page_id = self._locate(title)
        f = self._open()
        size = os.fstat(f.fileno()).st_size
        if offset >= size:
            err = past_end(f, self.dump, self.index, offset, size, self.lookup.last_offset_below(size))
            raise InputError(f"cannot read {key!r}: {err}")
        end = self.lookup.stream_end(offset)
        if end is None or end > size:
            end = size
        page = find_page(f, self.dump, offset, end, page_id, self.index, cap=page_xml_cap(self.max_page_bytes))
        if page is not None:
            return page
        raise InputError(
            f"index {self.index} does not match dump {self.dump}: page id {page_id} ({key!r}) "
            f"is not in the stream at offset {offset}"
        )

    def follow(self, title: str) -> tuple[Page, list[str]]:
        """The final page and the chain of titles visited (``[title]`` when there was no redirect)."""

        def target_page(target: str, chain: list[str]) -> Page:
            if self.lookup.find(target) is None:
                raise InputError(f"redirect target {target!r} (from {' -> '.join(chain)}) is not in index {self.index}")
            return self._page(target)

        return follow_redirects(self._page(title), target_page)

    def resolve(self, title: str) -> tuple[str, int]:
        page, _ = self.follow(title)
        return page.title, page.page_id

    def get_wikitext(self, title: str) -> str:
        return self.follow(title)[0].text

    def biography(self, page: Page) -> Biography:
        """Full parse of one page read from this dump."""
        where = f"{self.dump}: page {page.title!r} (id {page.page_id})"
        return page_biography(
            page,
            where=where,
            url_base=self.url_base(),
            max_page_bytes=self.max_page_bytes,
            page_timeout=self.page_timeout,
        )

    def get(self, title: str) -> Biography:
        """The full-parse Biography of ``title`` (redirects followed)."""
        return self.biography(self.follow(title)[0])


def page_biography(page: Page, *, where: str, url_base: str, max_page_bytes: int, page_timeout: float) -> Biography:
    """The Biography of one page, whatever its source (a dump, or ``Special:Export``: ``online.py``), with the
    same guards: at most ``max_page_bytes`` of wikitext, ``page_timeout`` seconds of parsing."""
    from wikipersona_data.wiki.parse import ParseFailure, parse_biography

    if page.truncated or page.text_bytes > max_page_bytes:
        size = f"more than {page.text_bytes} bytes of XML" if page.truncated else f"{page.text_bytes} bytes"
        raise InputError(f"{where} has {size}, over the per-page cap of {max_page_bytes} (--max-page-bytes)")
    try:
        with time_limit(page_timeout):
            return parse_biography(
                page.text, title=page.title, page_id=page.page_id, revision_id=page.revision_id, url_base=url_base
            )
    except PageTimeout:
        raise InputError(f"{where}: parse exceeded {page_timeout:g} s (--page-timeout)") from None
    except ParseFailure as err:
        raise InputError(f"{where} cannot be parsed: {err}") from None
