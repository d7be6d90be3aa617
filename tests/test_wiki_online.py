"""Pages without the dump: ``Special:Export`` on a local server built from the demo dump's pages
(tests/wikimedia_server.py). The online Biography must equal the dump's for the same revision."""

from __future__ import annotations

import bz2
import json
import math
import re
from pathlib import Path

import pytest
from wikimedia_server import WikimediaServer

from wikipersona_data.cli import main
from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX
from wikipersona_data.errors import InputError
from wikipersona_data.wiki.http import Fetcher, user_agent
from wikipersona_data.wiki.lookup import DumpReader
from wikipersona_data.wiki.online import BATCH, OnlineReader, wiki_url
from wikipersona_data.wiki.titles import normalize_title

_PAGE = re.compile(rb"<page>.*?</page>", re.S)
_TITLE = re.compile(rb"<title>(.*?)</title>")


def demo_export() -> tuple[bytes, dict[str, bytes]]:
    """The demo dump as an export site: its header (<mediawiki> + <siteinfo>) and its pages by title."""
    xml = bz2.decompress(DEMO_DUMP.read_bytes())
    head = xml[: xml.index(b"<page>")]
    pages = {}
    for match in _PAGE.finditer(xml):
        title = _TITLE.search(match.group(0)).group(1).decode().replace("&amp;", "&").replace("&quot;", '"')
        pages[normalize_title(title)] = match.group(0)
    return head, pages


@pytest.fixture
def export(monkeypatch: pytest.MonkeyPatch):
    head, pages = demo_export()
    with WikimediaServer(export_pages=pages, export_head=head) as srv:
        monkeypatch.setenv("WIKIPERSONA_WIKI_URL", srv.url)
        yield srv


def _quiet() -> Fetcher:
    return Fetcher(rate=0, sleep=lambda s: None)


def _articles() -> list[str]:
    _, pages = demo_export()
    return sorted(k for k, xml in pages.items() if b"<redirect" not in xml and b"<ns>0</ns>" in xml)


def test_online_biography_equals_the_dump_biography(export: WikimediaServer) -> None:
    titles = _articles()
    assert len(titles) > 30
    with OnlineReader("enwiki", fetcher=_quiet()) as online, DumpReader(DEMO_DUMP, DEMO_INDEX) as dump:
        online.prefetch(titles)
        assert online.requests == math.ceil(len(titles) / BATCH)  # batches, not one request per title
        for title in titles:
            got, want = online.get(title), dump.get(title)
            assert got.model_dump() == want.model_dump(), title  # same fields, same sentence ids and texts
        assert online.requests == math.ceil(len(titles) / BATCH)  # nothing asked twice
    forms = [e.form for e in export.log]
    assert all(f["curonly"] == ["1"] and f["maxlag"] == ["5"] and f["title"] == ["Special:Export"] for f in forms)
    assert max(len(f["pages"][0].split("\n")) for f in forms) == BATCH
    assert {e.headers["user-agent"] for e in export.log} == {user_agent()}


def test_redirects_are_followed_and_unknown_titles_named(export: WikimediaServer) -> None:
    with OnlineReader("enwiki", fetcher=_quiet()) as online:
        page, chain = online.follow("Ada_Okafor")
        assert chain == ["Ada Okafor", "Adaeze Okafor"] and page.page_id == 1000
        assert online.requests == 2  # the redirect page, then its target
        with pytest.raises(InputError) as err:
            online.get("Nobody At All")
    assert str(err.value) == (
        f"unknown title 'Nobody At All': Special:Export of {export.url.removeprefix('http://')} "
        f"({export.url}/w/index.php) has no such page (titles are case-sensitive after the first letter)"
    )


def test_revisions_are_reported_for_the_manifest(export: WikimediaServer) -> None:
    with OnlineReader("enwiki", fetcher=_quiet()) as online:
        online.get("Ada Okafor")
        assert online.revisions() == [{"title": "Adaeze Okafor", "page_id": 1000, "revision_id": 1200001000}]


def test_maxlag_503_honours_retry_after_within_a_bound(export: WikimediaServer) -> None:
    export.faults.export_maxlag = 2
    waits: list[float] = []
    with OnlineReader("enwiki", fetcher=Fetcher(rate=0, sleep=waits.append)) as online:
        assert online.get("Adaeze Okafor").page_id == 1000
    assert waits == [5.0, 5.0] and len(export.log) == 3
    export.faults.unavailable, export.faults.retry_after = 1, "600"
    slow = OnlineReader("enwiki", fetcher=Fetcher(rate=0, sleep=waits.append))
    with slow, pytest.raises(InputError) as err:
        slow.get("Brett Halvorsen")
    assert "the server asks to wait 600 s, more than 120 s: try again later" in str(err.value)


def test_requests_are_paced(export: WikimediaServer) -> None:
    """The default fetcher starts at most 2 requests per second: checked on a clock that only sleeps move."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with OnlineReader("enwiki", fetcher=Fetcher(sleep=sleep, clock=lambda: now[0]), batch=1) as online:
        online.prefetch(_articles()[:3])
    assert len(export.log) == 3 and slept == [0.5, 0.5]


def test_a_hostile_export_is_refused_like_a_hostile_dump(export: WikimediaServer) -> None:
    export.export_head = b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa">]>' + export.export_head
    with OnlineReader("enwiki", fetcher=_quiet()) as online, pytest.raises(InputError, match="DOCTYPE/ENTITY"):
        online.get("Adaeze Okafor")


def test_pages_are_stored_for_a_resume(export: WikimediaServer, tmp_path: Path) -> None:
    with OnlineReader("enwiki", fetcher=_quiet(), store=tmp_path) as online:
        first = online.get("Ada Okafor")
    asked = len(export.log)
    with OnlineReader("enwiki", fetcher=_quiet(), store=tmp_path) as again:
        assert again.get("Ada Okafor") == first
    assert len(export.log) == asked  # read back from the work dir: the wiki is not asked again


def test_show_online_prints_what_show_prints_from_the_dump(export: WikimediaServer, capsys) -> None:
    assert main(["show", str(DEMO_DUMP), "Ada_Okafor", "--index", str(DEMO_INDEX), "--json"]) == 0
    from_dump = capsys.readouterr()
    assert main(["show", "--online", "Ada_Okafor", "--json"]) == 0
    online = capsys.readouterr()
    assert json.loads(online.out) == json.loads(from_dump.out)
    assert online.err == from_dump.err == "redirect: Ada Okafor -> Adaeze Okafor\n"
    assert main(["show", "--online", "Adaeze Okafor", "Extra"]) == 2
    assert "show --online takes TITLE only" in capsys.readouterr().err


def test_wiki_names_map_to_wikipedia_hosts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WIKIPERSONA_WIKI_URL", raising=False)
    assert wiki_url("enwiki") == "https://en.wikipedia.org"
    assert wiki_url("enwiki-20261101") == "https://en.wikipedia.org"
    assert wiki_url("zh_yuewiki") == "https://zh-yue.wikipedia.org"
    with pytest.raises(InputError, match="does not start with a Wikipedia database name"):
        wiki_url("evil.example.org")


def test_unasked_pages_are_ignored_and_replies_are_capped(export: WikimediaServer, monkeypatch) -> None:
    _, pages = demo_export()
    export.export_head += pages["Brett Halvorsen"]  # the server slips in a page nobody asked for
    with OnlineReader("enwiki", fetcher=_quiet()) as online:
        online.get("Adaeze Okafor")
        assert set(online.pages) == {"Adaeze Okafor"}
        online.get("Brett Halvorsen")  # asked for now: fetched, not taken from the earlier reply
        assert online.requests == 2
    monkeypatch.setattr("wikipersona_data.wiki.online.MAX_REPLY_BYTES", 4096)
    with OnlineReader("enwiki", fetcher=_quiet()) as online, pytest.raises(InputError) as err:
        online.get("Adaeze Okafor")
    assert "more than the 4096 allowed" in str(err.value) or "sent more than 4096 bytes" in str(err.value)
