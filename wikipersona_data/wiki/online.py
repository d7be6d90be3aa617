"""Pages by title without the dump: ``Special:Export`` of the live wiki (``show --online``, recipe
``[dump] source = "online"``, ``extend --source online``).

``Special:Export`` returns any set of pages, current revision only (``curonly``), in the very XML format of
the dump, with the same ``<siteinfo>``. So an online page goes through exactly the code a dump page goes
through: :func:`dump.read_export` (the plain-XML dump reader: prolog check, page cap) builds the
:class:`Page`, and :func:`lookup.page_biography` parses it, with the same size and time guards. The same
revision therefore gives the same Biography and the same sentence ids as in a dump that holds it.

How it asks (https://www.mediawiki.org/wiki/API:Etiquette): one POST per batch of at most :data:`BATCH`
titles, one request at a time at most 2 per second, ``maxlag=5`` (a lagged wiki answers 503 with
``Retry-After``, which is honoured up to a bound), a descriptive User-Agent (``http.py``). Redirects are
followed as ``DumpReader.follow`` does (targets fetched in the next batch; loops and long chains refused).
Titles the wiki does not have are simply absent from the export: they are reported by name.

The wiki is named like a dump (``enwiki``); its host is always ``<lang>.wikipedia.org`` (a release's recipe
is data, so it cannot point the reader elsewhere). ``WIKIPERSONA_WIKI_URL`` (the user's environment, e.g. a
mirror or the tests' local server) replaces it.

A build keeps every page it fetched in ``<work>/sources/online-pages.jsonl`` and reads it back on a resume,
so a page edited on the wiki meanwhile does not change a build halfway (nor cost its LLM calls twice); the
revision ids used are recorded in the manifest.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wikipersona_data.errors import InputError
from wikipersona_data.wiki.biography import Biography
from wikipersona_data.wiki.bounded import DEFAULT_MAX_PAGE_BYTES, DEFAULT_PAGE_TIMEOUT
from wikipersona_data.wiki.dump import Page, read_export
from wikipersona_data.wiki.http import Fetcher, check_url, shown
from wikipersona_data.wiki.lookup import MAX_REDIRECTS, follow_redirects, page_biography
from wikipersona_data.wiki.titles import normalize_title, strip_fragment

WIKI_URL_ENV = "WIKIPERSONA_WIKI_URL"
BATCH = 20  # titles per Special:Export request
MAX_REPLY_BYTES = 64 << 20  # one export reply (20 long articles are a few MB)
MAXLAG = "5"
STORE_NAME = "online-pages.jsonl"
_WIKI = re.compile(r"(?P<lang>[a-z][a-z0-9_]{0,30})wiki")


def wiki_of(name: str) -> str:
    """``enwiki`` from a dump name such as ``enwiki``, ``enwiki-20261101`` or ``enwiki-online``."""
    head = name.split("-", 1)[0]
    if _WIKI.fullmatch(head) is None:
        raise InputError(f"{name!r} does not start with a Wikipedia database name such as enwiki or dewiki")
    return head


def wiki_url(wiki: str) -> str:
    """``https://en.wikipedia.org`` for ``enwiki`` (``WIKIPERSONA_WIKI_URL`` replaces it)."""
    override = os.environ.get(WIKI_URL_ENV, "").strip()
    if override:
        return check_url(override, WIKI_URL_ENV)
    match = _WIKI.fullmatch(wiki_of(wiki))
    assert match is not None
    return f"https://{match['lang'].replace('_', '-')}.wikipedia.org"


class OnlineReader:
    """Pages and Biographies by title from ``Special:Export``: the interface of ``DumpReader`` (``get``,
    ``follow``, ``biography``, ``close``), plus :meth:`prefetch` to ask for many titles in few requests."""

    def __init__(
        self,
        wiki: str = "enwiki",
        *,
        fetcher: Fetcher | None = None,
        store: Path | None = None,
        max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
        page_timeout: float = DEFAULT_PAGE_TIMEOUT,
        batch: int = BATCH,
    ) -> None:
        self.wiki = wiki_of(wiki)
        self.base = wiki_url(self.wiki)
        self.endpoint = f"{self.base}/w/index.php"
        self.label = f"Special:Export of {urllib.parse.urlsplit(self.base).netloc}"
        self.fetcher = fetcher or Fetcher()
        self._own_fetcher = fetcher is None
        self.max_page_bytes = max_page_bytes
        self.page_timeout = page_timeout
        self.batch = max(1, batch)
        self.pages: dict[str, Page] = {}  # normalised title -> page as exported
        self.missing: set[str] = set()
        self.url_bases: dict[str, str] = {}  # normalised title -> the wiki's URL base from <siteinfo>
        self.requests = 0
        self.store = store / STORE_NAME if store is not None else None
        if self.store is not None:
            self._load_store()

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._own_fetcher:
            self.fetcher.close()

    def __enter__(self) -> OnlineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the page store of a build
    def _load_store(self) -> None:
        assert self.store is not None
        if not self.store.is_file():
            return
        with self.store.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    page = Page(**record["page"])
                    key, base = record["key"], record["url_base"]
                except (ValueError, KeyError, TypeError):
                    if not line.endswith("\n"):  # a torn last line (killed while writing): asked again
                        break
                    raise InputError(f"{self.store} line {line_no}: not a stored page record") from None
                self.pages[key] = page
                self.url_bases[key] = base

    def _keep(self, key: str, page: Page, url_base: str) -> None:
        self.pages[key] = page
        self.url_bases[key] = url_base
        if self.store is not None:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            record = {"key": key, "url_base": url_base, "page": asdict(page)}
            with self.store.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")

    def keep_in(self, store: Path) -> None:
        """Add the pages read so far to the store in ``store`` (``extend``: the pages its checks read are the
        ones its stages use, not fetched a second time)."""
        other = OnlineReader.__new__(OnlineReader)
        other.store, other.pages, other.url_bases = store / STORE_NAME, {}, {}
        other._load_store()
        for key, page in self.pages.items():
            if key not in other.pages:
                other._keep(key, page, self.url_bases[key])

    # ------------------------------------------------------------------ fetching
    def prefetch(self, titles: list[str]) -> None:
        """Ask for every title not known yet, ``batch`` per request; redirect targets in further rounds."""
        todo = [k for k in dict.fromkeys(normalize_title(t) for t in titles) if k]
        for _ in range(MAX_REDIRECTS + 1):
            wanted = [k for k in todo if k not in self.pages and k not in self.missing]
            if not wanted:
                return
            for i in range(0, len(wanted), self.batch):
                self._export(wanted[i : i + self.batch])
            todo = [
                normalize_title(strip_fragment(self.pages[k].redirect or ""))
                for k in wanted
                if k in self.pages and self.pages[k].redirect
            ]

    def _export(self, keys: list[str]) -> None:
        form = {"title": "Special:Export", "pages": "\n".join(keys), "curonly": "1", "action": "submit"}
        form["maxlag"] = MAXLAG
        self.requests += 1
        body = self.fetcher.fetch(self.endpoint, what=self.label, max_bytes=MAX_REPLY_BYTES, method="POST", data=form)
        site, pages = read_export(body, self.label, max_page_bytes=self.max_page_bytes)
        url_base = site.url_base()
        for page in pages:
            key = normalize_title(page.title)
            if key in keys:
                self._keep(key, page, url_base)
        self.missing.update(k for k in keys if k not in self.pages)

    def _page(self, title: str) -> Page:
        key = normalize_title(title)
        if key not in self.pages and key not in self.missing:
            self.prefetch([key])
        page = self.pages.get(key)
        if page is None:
            raise InputError(
                f"unknown title {title!r}: {self.label} ({shown(self.endpoint)}) has no such page "
                "(titles are case-sensitive after the first letter)"
            )
        return page

    # ------------------------------------------------------------------ DumpReader's interface
    def follow(self, title: str) -> tuple[Page, list[str]]:
        """The final page and the chain of titles visited (``[title]`` when there was no redirect)."""

        def target_page(target: str, chain: list[str]) -> Page:
            try:
                return self._page(target)
            except InputError:
                raise InputError(
                    f"redirect target {target!r} (from {' -> '.join(chain)}) is not on {self.label}"
                ) from None

        return follow_redirects(self._page(title), target_page)

    def biography(self, page: Page) -> Biography:
        key = normalize_title(page.title)
        where = f"{self.label}: page {page.title!r} (id {page.page_id}, revision {page.revision_id})"
        return page_biography(
            page,
            where=where,
            url_base=self.url_bases.get(key, "https://en.wikipedia.org/wiki/"),
            max_page_bytes=self.max_page_bytes,
            page_timeout=self.page_timeout,
        )

    def get(self, title: str) -> Biography:
        return self.biography(self.follow(title)[0])

    def resolve(self, title: str) -> tuple[str, int]:
        page, _ = self.follow(title)
        return page.title, page.page_id

    def revisions(self) -> list[dict[str, Any]]:
        """``[{title, page_id, revision_id}]`` of the articles read (redirect pages left out), sorted by title."""
        seen = {(p.title, p.page_id, p.revision_id) for p in self.pages.values() if p.redirect is None}
        return [{"title": t, "page_id": i, "revision_id": r} for t, i, r in sorted(seen, key=lambda x: (x[0], x[1]))]
