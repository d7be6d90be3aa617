"""Integration: real Wikipedia wikitext from ../shared/wikipedia_samples/wikitext (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wikipersona_data.wiki.parse import parse_biography

WIKITEXT = Path(__file__).resolve().parents[2] / "shared" / "wikipedia_samples" / "wikitext"

pytestmark = pytest.mark.skipif(not WIKITEXT.is_dir(), reason="shared Wikipedia samples absent")

_CACHE: dict[tuple[str, bool], object] = {}


def load(name: str, full: bool = True):
    key = (name, full)
    if key not in _CACHE:
        text = (WIKITEXT / f"{name}.wikitext").read_text(encoding="utf-8")
        _CACHE[key] = parse_biography(text, title=name, page_id=1, revision_id=None, full=full)
    return _CACHE[key]


ALL = sorted(p.stem for p in WIKITEXT.glob("*.wikitext")) if WIKITEXT.is_dir() else []


@pytest.mark.parametrize("name", ALL)
def test_every_sample_is_a_living_person_in_both_modes(name):
    full, cheap = load(name), load(name, full=False)
    assert full.is_person and full.is_living
    for field in ("is_person", "is_living", "birth_date", "infobox", "categories", "lead", "living_evidence"):
        assert getattr(full, field) == getattr(cheap, field), field
    assert full.sentences, "a full parse yields sentences"
    assert len({s.id for s in full.sentences}) == len(full.sentences)
    assert all(s.text.strip() == s.text and s.text for s in full.sentences)
    for bad in ("<ref", "{{", "}}", "[[", "]]", "thumb|", "Category:", "()", "(;"):
        assert bad not in full.lead, (bad, full.lead[:200])
        assert all(bad not in s.text for s in full.sections), bad


def test_andre_agassi():
    b = load("gensim_Andre_Agassi")
    assert b.infobox.template == "infobox tennis biography"
    assert b.birth_date == "1970-04-29" and b.birth_year == 1970
    assert b.living_evidence["birth_date_and_age"] and b.living_evidence["category_living"]
    assert b.lead.startswith(
        "Andre Kirk Agassi (born April 29, 1970) is an American retired professional tennis player"
    )
    assert b.sentences[0].id == "0.0" and b.sentences[0].section == "Lead"
    assert "World No. 1" in b.sentences[0].text  # "No." does not end the sentence
    assert b.infobox.fields["coach"].startswith("Emmanuel Agassi (1970–83); Nick Bollettieri (1983–93); Brad Gilbert")
    assert "References" not in [s.title for s in b.sections]
    assert b.ref_count > 100
    assert "Steffi Graf" in b.links


def test_alain_connes():
    b = load("gensim_Alain_Connes")
    assert b.infobox.template == "infobox scientist"
    assert b.birth_date == "1947-04-01"
    assert b.lead.startswith("Alain Connes (born 1 April 1947) is a French mathematician")
    assert b.infobox.fields["known_for"] == "Baum–Connes conjecture; Noncommutative geometry; Operator algebras"


def test_jodie_emery_conflict():
    b = load("wtf_jodie_emery")
    assert b.birth_date == "1985-01-04"
    assert b.birth_year_infobox == 1985 and b.birth_year_category == 1975 and b.date_conflict is True
    assert b.infobox.fields["birth_date"] == "January 4, 1985"


def test_julia_kristeva():
    b = load("wtf_julia_kristeva")
    assert b.infobox.template == "infobox philosopher"
    assert b.infobox.fields["nationality"] == "French/Bulgarian"
    assert b.birth_date == "1941-06-24"
    assert b.lead.startswith("Julia Kristeva (Юлия Кръстева; born 24 June 1941) is a Bulgarian-French philosopher")
    assert b.infobox.fields["school_tradition"] == "Psychoanalysis; Structuralism; Poststructuralism"


def test_elizabeth_gilbert():
    b = load("wtf_Elizabeth-Gilbert")
    assert b.infobox.template == "infobox writer"
    assert b.infobox.fields["spouse"] == "Michael Cooper (1994–2002); Jose Nunes (2007–2016)"
    assert b.birth_date == "1969-07-18"


@pytest.mark.parametrize(
    ("name", "template", "birth"),
    [
        ("wtf_Altimont-Butler", "infobox football biography", "1968-07-21"),
        ("wtf_Irina-Saratovtseva", "infobox football biography", "1989-07-23"),
        ("wtf_Charlie-Milstead", "infobox nfl biography", "1937-11-21"),
        ("wtf_Terrence-Murphy-(American-football)", "infobox nfl player", "1982-12-15"),
        ("wtf_Jerry-Mumphrey", "infobox baseball biography", "1952-09-09"),
        ("wtf_K.-Nicole-Mitchell", "infobox judge", None),
        ("wtf_Allen-R.-Morris", "infobox person", "1954"),
    ],
)
def test_infobox_families(name, template, birth):
    b = load(name)
    assert b.infobox.template == template
    assert b.living_evidence["person_infobox"]
    assert b.birth_date == birth


@pytest.mark.parametrize(
    ("name", "birth"),
    [
        ("wtf_Ewelina-Setowska-Dryk", "1980-03-05"),
        ("wtf_Gregory-Serper", "1969-09-14"),
        ("wtf_Neil-McLean-(saxophonist)", None),
    ],
)
def test_no_infobox_detected_by_categories(name, birth):
    b = load(name)
    assert b.infobox is None and not b.living_evidence["person_infobox"]
    assert b.living_evidence["category_living"]
    assert b.birth_date == birth


def test_neil_mclean_duplicate_categories_deduplicated():
    b = load("wtf_Neil-McLean-(saxophonist)")
    assert b.categories.count("Living people") == 1
    assert "Year of birth missing (living people)" in b.categories
    assert [s.title for s in b.sections] == ["Selected discography"]
