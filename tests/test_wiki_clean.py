"""Clean visible text from wikicode (wikipedia.md section 9 pitfalls)."""

from __future__ import annotations

import mwparserfromhell
import pytest

from wikipersona_data.wiki.clean import (
    clean_prose,
    clean_value,
    normalise_link_title,
    remove_media_links,
    scrub_leftovers,
    tidy,
)


def prose(text: str) -> str:
    return clean_prose(mwparserfromhell.parse(text))


def value(text: str) -> str:
    return clean_value(mwparserfromhell.parse(text))


@pytest.mark.parametrize(
    ("wikitext", "expected"),
    [
        ("He won.<ref>Smith 2003, p. 4.</ref> Then", "He won. Then"),
        ('He won.<ref name="a"/> Then', "He won. Then"),
        ("A [[File:X.jpg|thumb|A caption [[Link]]]] B", "A B"),
        ("A [[Image:X.jpg|thumb|cap]]B", "A B"),
        ("A [[Category:Foo|Bar]] B", "A B"),
        ("See [[:Category:Foo]] now", "See Category:Foo now"),
        ("A [[fr:Bonjour]] B", "A B"),
        ("Play [[Ys: The Vanished Omens|Ys]] now", "Play Ys now"),
        ("It is {{convert|5|km|mi}} long", "It is 5 km long"),
        ("{{convert|5|to|10|km}}", "5 to 10 km"),
        ("He said {{lang|fr|bonjour}}.", "He said bonjour."),
        ("{{nowrap|New York}}", "New York"),
        ("a&nbsp;b", "a b"),
        ("[[Barack Obama|Obama]] and [[Paris]]", "Obama and Paris"),
        ("'''Bold''' and ''italic''", "Bold and italic"),
        ("[http://example.com Example site] and [http://bare.com]", "Example site and"),
        ("x {{cite web|url=http://a|title=T}} y", "x y"),
        ("French{{\\}}[[Bulgaria]]n", "French/Bulgarian"),
        ("A<br />B", "A; B"),
        ("café", "café"),
        ("{{lang-ru|Григорий}}", "Григорий"),
        ("{{marriage|Jane Doe|1992}}", "Jane Doe (m. 1992)"),
        ("{{marriage|Jane Doe|1992|2000|end=div.}}", "Jane Doe (m. 1992; div. 2000)"),
        ("{{circa|1900}}", "c. 1900"),
    ],
)
def test_prose(wikitext, expected):
    assert prose(wikitext) == expected


def test_table_is_removed():
    text = "Before.\n{| class=wikitable\n|-\n| cell one || cell two\n|}\nAfter."
    assert prose(text) == "Before.\nAfter."


def test_empty_parentheses_left_by_removed_templates():
    text = "'''X''' ({{IPA-fr|abc|lang}}; {{lang-bg|Юлия}}; born 24 June 1941) is a writer."
    assert prose(text) == "X (Юлия; born 24 June 1941) is a writer."
    assert prose("'''X''' ({{IPA-en|x}}) is , here") == "X is, here"


def test_birth_date_template_in_prose_reads_born():
    assert prose("'''X''' ({{birth date and age|1961|8|4}}) is") == "X (born August 4, 1961) is"
    assert prose("'''X''' (born {{birth date and age|1961|8|4}}) is") == "X (born August 4, 1961) is"
    assert prose("'''X''' ({{Death date and age|2016|4|21|1958|6|7}})") == "X (April 21, 2016 (aged 57))"


def test_list_templates_in_values():
    assert value("{{hlist|[[A]]|B|C}}") == "A; B; C"
    assert value("{{ubl|A|{{hlist|B|C}}|D}}") == "A; B; C; D"
    assert value("{{flatlist|\n* A\n* [[B]]\n}}") == "A; B"
    assert value("{{plainlist|\n* A\n* B\n}}") == "A; B"
    assert value("{{unbulleted list|A|B}}") == "A; B"


def test_br_lists_in_values():
    assert value("Michael Cooper<br />(1994–2002)<br />Jose Nunes<br />(2007–2016)") == (
        "Michael Cooper (1994–2002); Jose Nunes (2007–2016)"
    )
    assert value("[[A]], <br>[[B]],<br>  [[C]]") == "A; B; C"
    assert value("* [[A]] (1)\n* [[B]] (2)") == "A (1); B (2)"


def test_value_date_template_has_no_born():
    assert value("{{Birth date and age|1969|7|18|mf=y}}") == "July 18, 1969"


def test_tidy_nfc_and_spaces():
    assert tidy("Cafe\u0301  \xa0 x") == "Café x"
    assert tidy("a\n\n\nb") == "a\nb"


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("barack_Obama#Early life", "Barack Obama"),
        ("Paris", "Paris"),
        ("File:X.jpg", None),
        ("Category:Foo", None),
        (":Category:Foo", None),
        ("fr:Paris", None),
        ("wikt:word", None),
        ("#Section", None),
        ("Star Wars: A New Hope", "Star Wars: A New Hope"),
        ("AT&amp;T", "AT&T"),
        ("Ys: The Vanished Omens", "Ys: The Vanished Omens"),
        ("zh-yue:X", None),
        (":fr:Paris", None),
    ],
)
def test_link_titles(raw, title):
    assert normalise_link_title(raw) == title


def test_media_links_removed_before_parsing_even_with_broken_caption():
    text = "A [[File:X.svg|thumb|Caption:<br /> '''Pepe vio'' [[Link]] more]]\n\nThe [[Polysemy|lexical]] part."
    assert remove_media_links(text) == "A \n\nThe [[Polysemy|lexical]] part."
    assert remove_media_links("x [[image: a.png|[[b]] [[c|d]]]] y [[File:z.png]]") == "x  y "
    assert remove_media_links("no media [[Paris]]") == "no media [[Paris]]"


def test_unclosed_media_link_stops_at_paragraph_break():
    assert remove_media_links("a [[File:x.png|thumb|cap\n\nNext paragraph.") == "a \n\nNext paragraph."


def test_leftover_markup_is_scrubbed():
    assert scrub_leftovers("see [[Paris|the city]] and [[Rome]] {{cite|x}} ''it''") == "see the city and Rome  it"


def test_old_style_date():
    assert prose("({{OldStyleDate|February 2|1905|January 20}}&nbsp;– March 6, 1982)") == (
        "(February 2, 1905 – March 6, 1982)"
    )
