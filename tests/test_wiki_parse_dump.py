"""Integration: every article of the real gensim enwiki sample (106 non-redirect pages), skipped when absent.

Checks person/living decisions against PROVENANCE.md (2 living, 9 dead biographies), cheap/full agreement,
and that no wiki markup leaks into the clean text of the biographies.
"""

from __future__ import annotations

import bz2
import html
import re
from pathlib import Path

import pytest

from wikipersona_data.wiki.parse import parse_biography
from wikipersona_data.wiki.person import looks_like_person

DUMP = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "wikipedia_samples"
    / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
)
pytestmark = pytest.mark.skipif(not DUMP.exists(), reason="shared Wikipedia samples absent")

LIVING = {"Andre Agassi", "Alain Connes"}
DEAD = {
    "Abraham Lincoln",
    "Aristotle",
    "Ayn Rand",
    "Allan Dwan",
    "Aldous Huxley",
    "Andrei Tarkovsky",
    "Arthur Schopenhauer",
    "Albert Sidney Johnston",
    "Albert Einstein",
}


@pytest.fixture(scope="module")
def articles() -> dict[str, str]:
    with bz2.open(DUMP, "rt", encoding="utf-8") as f:
        xml = f.read()
    out = {}
    for page in re.findall(r"<page>.*?</page>", xml, re.DOTALL):
        if "<ns>0</ns>" in page and "<redirect" not in page:
            title = html.unescape(page.split("<title>", 1)[1].split("</title>", 1)[0])
            out[title] = html.unescape(page.split("<text", 1)[1].split(">", 1)[1].split("</text>", 1)[0])
    return out


def test_person_and_living_decisions(articles):
    assert len(articles) == 106
    cheap = {t: parse_biography(x, title=t, page_id=0, revision_id=None, full=False) for t, x in articles.items()}
    assert {t for t, b in cheap.items() if b.is_living} == LIVING
    persons = {t for t, b in cheap.items() if b.is_person}
    assert LIVING | DEAD <= persons
    assert all(looks_like_person(articles[t]) for t in persons)
    for title in DEAD:
        assert cheap[title].death_year is not None or title == "Aristotle", title
    assert cheap["Abraham Lincoln"].birth_date == "1809-02-12" and cheap["Abraham Lincoln"].death_year == 1865
    assert cheap["Aristotle"].birth_date is None  # 384 BC is not a "YYYY" date
    assert cheap["Ayn Rand"].lead.startswith("Ayn Rand (born Alisa Zinov'yevna Rosenbaum,")
    assert "February 2, 1905 – March 6, 1982" in cheap["Ayn Rand"].lead


@pytest.mark.parametrize("title", sorted(LIVING | {"Ayn Rand", "Allan Dwan", "Aristotle"}))
def test_full_parse_is_clean_and_agrees_with_cheap(articles, title):
    full = parse_biography(articles[title], title=title, page_id=0, revision_id=None)
    cheap = parse_biography(articles[title], title=title, page_id=0, revision_id=None, full=False)
    for field in ("is_person", "is_living", "birth_date", "death_year", "infobox", "categories", "lead"):
        assert getattr(full, field) == getattr(cheap, field), field
    texts = [full.lead, *(s.text for s in full.sections), *(s.text for s in full.sentences)]
    for bad in ("{{", "}}", "[[", "]]", "<ref", "thumb|", "()", "(;", "''"):
        assert not any(bad in t for t in texts), bad
    assert full.sentences and full.links


def test_media_caption_with_broken_quotes_does_not_leak(articles):
    b = parse_biography(articles["Ambiguity"], title="Ambiguity", page_id=0, revision_id=None)
    assert not b.is_person
    assert all("thumb|" not in s.text and "[[" not in s.text for s in b.sections)
