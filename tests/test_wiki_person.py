"""Person detection and the byte-level prefilter (wikipedia.md section 6)."""

from __future__ import annotations

import bz2
import html
import random
from pathlib import Path

import pytest

from wikipersona_data.wiki.parse import parse_biography
from wikipersona_data.wiki.person import PERSON_INFOBOXES, category_signals, is_person_infobox, looks_like_person

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "wikipedia_samples"


def bio(text: str, **kw):
    return parse_biography(text, title="T", page_id=1, revision_id=None, **kw)


def test_infobox_family_contains_required_names():
    for name in (
        "infobox person",
        "infobox officeholder",
        "infobox musical artist",
        "infobox sportsperson",
        "infobox football biography",
        "infobox baseball biography",
        "infobox nfl biography",
        "infobox basketball biography",
        "infobox ice hockey biography",
        "infobox tennis biography",
        "infobox cricketer",
        "infobox writer",
        "infobox scientist",
        "infobox philosopher",
        "infobox judge",
        "infobox chef",
        "infobox military person",
        "infobox royalty",
        "infobox model",
        "infobox presenter",
        "infobox youtube personality",
        "infobox actor",
        "infobox bio",
        "infobox celebrity",
        "personbox",
    ):
        assert name in PERSON_INFOBOXES
    assert all(n == n.lower() and "_" not in n for n in PERSON_INFOBOXES)


def test_band_is_not_a_person():
    assert is_person_infobox("infobox musical artist", "solo_singer")
    assert not is_person_infobox("infobox musical artist", "group_or_band")
    b = bio("{{Infobox musical artist\n| name = The Band\n| background = group_or_band\n}}\n'''The Band''' is a band.")
    assert not b.is_person
    assert b.infobox is not None and b.infobox.template == "infobox musical artist"


def test_band_with_living_people_category_is_still_person_by_category():
    b = bio("{{Infobox musical artist|background=group_or_band}}\nX.\n[[Category:Living people]]")
    assert b.is_person and b.is_living


@pytest.mark.parametrize(
    "infobox",
    [
        "{{Infobox_writer <!-- comment -->\n| name = X\n}}",
        "{{infobox  Writer\n| name = X\n}}",
        "{{Template:Infobox person|name=X}}",
        "{{Short description|Writer}}\n{{Use mdy dates|date=May 2020}}\n{{pp-semi}}\n{{Infobox writer|name=X}}",
        "{{Infobox officeholder|name=X\n| module = {{Infobox musical artist|embed=yes|background=solo_singer}}}}",
        "{{Infobox company|name=X\n| module = {{Infobox person|embed=yes}}}}",
        "{{Personbox|name=X}}",
    ],
)
def test_person_infobox_variants(infobox):
    text = infobox + "\n'''X''' is someone."
    assert bio(text).is_person
    assert bio(text, full=False).is_person
    assert looks_like_person(text)


def test_embedded_infobox_fields_are_merged():
    b = bio("{{Infobox officeholder|name=X\n| module = {{Infobox musical artist|embed=yes|genre=[[Jazz]]}}}}\nX.")
    assert b.infobox is not None
    assert b.infobox.template == "infobox officeholder"
    assert b.infobox.fields["genre"] == "Jazz"
    assert "module" not in b.infobox.fields


def test_non_person_page():
    text = "{{Infobox settlement|name=Paris}}\n'''Paris''' is a city.\n[[Category:Capitals in Europe]]"
    b = bio(text)
    assert not b.is_person and not b.is_living
    assert not looks_like_person(text)


def test_categories_sort_keys_and_inline_links():
    text = (
        "'''Barack''' is a person. See [[:Category:1961 births]].\n"
        "{{DEFAULTSORT:Obama, Barack}}\n[[Category:1961 births|Obama, Barack]]\n[[category:living_people]]\n"
        "[[Category:Living people]]\n<!-- [[Category:1900 deaths]] -->"
    )
    b = bio(text)
    assert b.categories == ["1961 births", "Living people"]
    assert b.sort_key == "Obama, Barack"
    assert b.birth_year == 1961 and b.is_living and b.death_year is None


def test_inline_category_link_is_not_membership():
    b = bio("'''X''' studies [[:Category:Living people]].")
    assert b.categories == []
    assert not b.is_person


@pytest.mark.parametrize(
    ("cats", "person", "living", "birth", "death"),
    [
        (["Living people"], True, True, None, None),
        (["1961 births"], True, False, 1961, None),
        (["1960s births"], True, False, None, None),
        (["1961 births", "2016 deaths"], True, False, 1961, 2016),
        (["Year of birth missing (living people)"], True, True, None, None),
        (["Possibly living people"], True, False, None, None),
        (["French writers"], False, False, None, None),
    ],
)
def test_category_signals(cats, person, living, birth, death):
    s = category_signals(cats)
    assert (s["person"], s["living"], s["birth_year"], s["death_year"]) == (person, living, birth, death)


def test_prefilter_is_superset_on_real_dump_pages():
    dump = SAMPLES / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    if not dump.exists():
        pytest.skip("shared Wikipedia samples absent")
    with bz2.open(dump, "rt", encoding="utf-8") as f:
        xml = f.read()
    pages = [p for p in xml.split("<page>")[1:] if "<ns>0</ns>" in p and "<redirect" not in p]
    assert len(pages) > 90
    persons = 0
    for page in pages:
        text = page.split("<text", 1)[1].split(">", 1)[1].split("</text>", 1)[0]
        text = html.unescape(text)
        b = parse_biography(text, title="t", page_id=1, revision_id=None, full=False)
        if b.is_person:
            persons += 1
            assert looks_like_person(text)
    assert persons >= 11  # 2 living + 9 dead biographies per PROVENANCE.md


def test_prefilter_superset_on_generated_pages():
    """Random mixes of person signals and noise: whenever the parser says person, the prefilter agrees."""
    rng = random.Random(7)
    signals = [
        "[[Category:Living people]]",
        "[[Category: 1961_births|X]]",
        "[[category:Year of birth missing (living people)]]",
        "[[Category:Possibly living people]]",
        "[[Category:Year_of_death  unknown]]",
        "{{Infobox_Tennis biography\n|name=X}}",
        "{{ infobox\nscientist|name=X}}",
        "{{Template:Infobox person|x=1}}",
        "{{Infobox<!-- c --> person|x=1}}",
        "{{Celebrity|x=1}}",
        "{{Infobox musical artist|background=group_or_band}}",
        "{{Infobox settlement|name=X}}",
        "[[:Category:Living people]]",
        "Some prose about people and births of stars.",
    ]
    for _ in range(300):
        parts = rng.sample(signals, rng.randint(0, 3))
        text = "\n".join([*parts[:1], "'''X''' is a thing.", *parts[1:]])
        if bio(text, full=False).is_person:
            assert looks_like_person(text), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[Category:Year of birth missing]]", True),
        ("[[Category:Year_of__birth uncertain]]", True),
        ("[[Category:Date of \t death unknown]]", True),
        ("[[Category:Living_people]]", True),
        ("[[Category:1961 births]]", True),
        ("The birth of a nation; death and taxes.", False),
        ("{{Infobox settlement|name=X}} professor of obstetrics", False),
    ],
)
def test_prefilter_category_words(text, expected):
    assert looks_like_person(text) is expected
    if not expected:
        assert not bio(text).is_person


def test_prefilter_equals_its_plain_form_on_random_texts() -> None:
    from wikipersona_data.wiki import person

    def plain(text: str) -> bool:  # each test on its own, no shared searches
        return bool(
            "births" in text
            or "deaths" in text
            or ("people" in text and person._LIVING_RE.search(text))
            or person._after_of(text, "birth")
            or person._after_of(text, "death")
            or person._INFOBOX_RE.search(text)
        )

    rng = random.Random(5)
    words = ["birth", "births", "death", "of", " ", "_", "\n", "people", "Living people", "x", "{{Infobox person"]
    texts = ["".join(rng.choice(words) for _ in range(rng.randint(0, 8))) for _ in range(20_000)]
    assert sum(map(plain, texts)) not in (0, len(texts))  # both outcomes occur
    for text in texts:
        assert person.looks_like_person(text) == plain(text), repr(text)
