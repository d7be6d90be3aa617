"""parse_biography on synthetic fixtures: modes, living precedence, sections, sentences, links, failures."""

from __future__ import annotations

import mwparserfromhell
import pytest

from wikipersona_data.wiki.biography import Biography
from wikipersona_data.wiki.parse import MAX_WIKITEXT_CHARS, ParseFailure, article_url, parse_biography

ARTICLE = """{{Short description|American writer (born 1961)}}
{{Use mdy dates|date=May 2020}}
{{Infobox writer <!-- see doc -->
| name = Jane Roe
| birth_date = {{Birth date and age|1961|8|4}}
| birth_place = [[Honolulu]], [[Hawaii]], U.S.
| spouse = {{marriage|John Roe|1992}}
| occupation = {{hlist|Novelist|[[Essayist]]}}
}}
'''Jane Roe''' ({{IPA-en|dʒeɪn|lang}}; {{birth date and age|1961|8|4}}) is an American [[novelist]].<ref>{{cite web|url=http://x|title=T}}</ref> She lives in [[St. Louis, Missouri|St. Louis]].

== Early life ==
Roe was born in [[Honolulu]]. Dr. Smith taught her at No. 1 school.

=== Education ===
She studied at [[Harvard University|Harvard]].<ref name="h"/>

== Career ==
She wrote {{convert|5|km}} of text. [[File:Roe.jpg|thumb|Roe in 2000]]
{| class="wikitable"
|-
| 2000 || Book
|}

== See also ==
* [[Other writer]]

== References ==
{{Reflist}}

[[Category:1961 births]]
[[Category:Living people]]
[[Category:American novelists|Roe, Jane]]
[[fr:Jane Roe]]
"""  # noqa: E501


def parse(text: str = ARTICLE, **kw) -> Biography:
    return parse_biography(text, title="Jane Roe", page_id=42, revision_id=7, **kw)


def test_full_parse_fields():
    b = parse()
    assert b.page_id == 42 and b.revision_id == 7
    assert b.url == "https://en.wikipedia.org/wiki/Jane_Roe"
    assert b.is_person and b.is_living
    assert b.birth_date == "1961-08-04" and b.birth_year == 1961 and b.death_year is None
    assert b.short_description == "American writer (born 1961)"
    assert b.infobox is not None and b.infobox.template == "infobox writer"
    assert b.infobox.fields["birth_date"] == "August 4, 1961"
    assert b.infobox.fields["birth_place"] == "Honolulu, Hawaii, U.S."
    assert b.infobox.fields["spouse"] == "John Roe (m. 1992)"
    assert b.infobox.fields["occupation"] == "Novelist; Essayist"
    assert b.categories == ["1961 births", "Living people", "American novelists"]
    assert b.lead == "Jane Roe (born August 4, 1961) is an American novelist. She lives in St. Louis."
    assert [s.title for s in b.sections] == ["Early life", "Career"]
    assert "Harvard" in b.sections[0].text and "Education" not in b.sections[0].text
    assert b.sections[1].text == "She wrote 5 km of text."
    assert b.ref_count == 2
    assert b.wikitext_length == len(ARTICLE)
    assert b.living_evidence["category_living"] is True
    assert b.living_evidence["birth_date_and_age"] is True
    assert b.living_evidence["death_date"] is False
    assert b.date_conflict is False


def test_sentence_ids_and_sections():
    b = parse()
    ids = {s.id: (s.section, s.text) for s in b.sentences}
    assert ids["0.0"] == ("Lead", "Jane Roe (born August 4, 1961) is an American novelist.")
    assert ids["0.1"] == ("Lead", "She lives in St. Louis.")
    assert ids["1.0"] == ("Early life", "Roe was born in Honolulu.")
    assert ids["1.1"] == ("Early life", "Dr. Smith taught her at No. 1 school.")
    assert ids["1.2"] == ("Early life", "She studied at Harvard.")
    assert ids["2.0"] == ("Career", "She wrote 5 km of text.")
    assert len(ids) == 6
    assert b.sentence_map()["1.2"].text == "She studied at Harvard."


def test_reproducible():
    assert parse().model_dump_json() == parse().model_dump_json()


def test_links_sorted_dedup_no_namespaces():
    b = parse()
    assert b.links == sorted(set(b.links))
    assert set(b.links) == {"Honolulu", "Hawaii", "Essayist", "Novelist", "St. Louis, Missouri", "Harvard University"}


def test_cheap_mode_matches_full_on_shared_fields():
    full, cheap = parse(), parse(full=False)
    for field in (
        "is_person",
        "is_living",
        "birth_date",
        "birth_year",
        "death_year",
        "short_description",
        "infobox",
        "categories",
        "lead",
        "living_evidence",
        "ref_count",
        "sort_key",
    ):
        assert getattr(full, field) == getattr(cheap, field), field
    assert cheap.sections == [] and cheap.sentences == [] and cheap.links == []


def test_commented_heading_does_not_split_lead():
    b = parse(
        "'''X''' is a writer.\n<!--\n== Hidden ==\n-->\nMore lead.\n== Life ==\nText.\n[[Category:Living people]]"
    )
    assert b.lead == "X is a writer.\nMore lead."
    assert [s.title for s in b.sections] == ["Life"]


@pytest.mark.parametrize(
    ("text", "living", "birth", "death"),
    [
        # death date wins over a stale Living people category
        (
            "{{Infobox person|death_date={{Death date and age|2016|4|21|1958|6|7}}}}\n[[Category:Living people]]",
            False,
            "1958-06-07",
            2016,
        ),
        (
            "'''X''' (born 1950).\n[[Category:1950 births]]\n[[Category:2001 deaths]]\n[[Category:Living people]]",
            False,
            "1950",
            2001,
        ),
        (
            "{{Infobox person|birth_date={{Birth date and age|1950|1|2}}}}\n[[Category:Possibly living people]]",
            False,
            "1950-01-02",
            None,
        ),
        ("{{Infobox person|birth_date={{Birth date and age|1950|1|2}}}}\nX.", True, "1950-01-02", None),
        ("{{Infobox person|birth_date={{Birth date|1950|1|2}}}}\nX.", False, "1950-01-02", None),
        ("{{Infobox person|birth_date=1950}}\n[[Category:Living people]]", True, "1950", None),
        ("'''X''' ({{birth year and age|1961}}) is a [[writer]].\n[[Category:1961 births]]", True, "1961", None),
        ("'''X''' (born c. 1961) is.\n[[Category:Living people]]", True, "1961", None),
        ("'''X''' is.\n[[Category:Year of death missing]]\n[[Category:1900 births]]", False, "1900", None),
    ],
)
def test_living_precedence(text, living, birth, death):
    b = parse(text)
    assert b.is_person
    assert (b.is_living, b.birth_date, b.death_year) == (living, birth, death)


def test_birth_date_conflict_recorded():
    text = "{{Infobox person|birth_date=January 4, 1985<ref name=a/>}}\nX.\n[[Category:1975 births]]"
    b = parse(text)
    assert b.birth_date == "1985-01-04" and b.birth_year == 1985
    assert b.birth_year_infobox == 1985 and b.birth_year_category == 1975
    assert b.date_conflict is True
    assert b.birth_date_source == "infobox"


def test_category_only_birth_year():
    b = parse("'''X''' is a runner.\n[[Category:1980 births]]")
    assert b.birth_date == "1980" and b.birth_date_source == "category" and not b.is_living


def test_lead_born_text_fallback():
    b = parse("'''X''' (born 5 March 1980 in [[Puławy]]) is a runner.\n[[Category:Living people]]")
    assert b.birth_date == "1980-03-05" and b.birth_date_source == "lead"


def test_parser_error_becomes_parse_failure(monkeypatch):
    def boom(_text):
        raise mwparserfromhell.parser.ParserError("C tokenizer exited with non-empty token stack")

    monkeypatch.setattr(mwparserfromhell, "parse", boom)
    with pytest.raises(ParseFailure, match="Jane Roe") as info:
        parse()
    assert "\n" not in str(info.value)


def test_oversize_is_parse_failure():
    text = "x" * (MAX_WIKITEXT_CHARS + 1)
    with pytest.raises(ParseFailure, match="2,000,001 characters"):
        parse(text)


def test_garbage_never_raises_anything_but_parse_failure():
    import random

    rng = random.Random(3)
    alphabet = [
        "{{",
        "}}",
        "[[",
        "]]",
        "|",
        "=",
        "==",
        "\n",
        "<ref>",
        "</ref>",
        "<!--",
        "-->",
        "{|",
        "|}",
        "'''",
        "x",
        " ",
        "<br>",
        "Category:",
        "File:",
        "&nbsp;",
        "{{Infobox person",
        "{{birth date and age|",
        "1961",
        "<",
        ">",
    ]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        try:
            b = parse(text)
        except ParseFailure:
            continue
        assert isinstance(b, Biography)
        parse(text, full=False)


def test_empty_text():
    b = parse("")
    assert not b.is_person and b.lead == "" and b.sentences == [] and b.infobox is None


def test_article_url_escapes_only_breaking_characters():
    assert article_url("Who? (band) 100%", "https://en.wikipedia.org/wiki/") == (
        "https://en.wikipedia.org/wiki/Who%3F_(band)_100%25"
    )
    assert article_url("Ewelina Sętowska-Dryk", "https://x/wiki/") == "https://x/wiki/Ewelina_Sętowska-Dryk"


def test_place_of_birth_missing_living_category():
    b = parse("'''X''' is a saxophonist.\n[[Category:Place of birth missing (living people)]]")
    assert b.is_person and b.is_living


def test_unclosed_ref_tags_are_dropped_not_parsed():
    b = parse(
        "'''X''' is a writer.<ref>unclosed note\n\nMore text.</ref>\n\nLast.<ref name=a>\n[[Category:Living people]]"
    )
    assert b.lead == "X is a writer.\nLast."
    many = parse("'''X''' is." + "<ref>x " * 2000 + "\n[[Category:Living people]]")
    assert many.is_living and "<ref" not in many.lead and many.ref_count == 2000
