"""Date templates and plain-text dates (wikipedia.md section 7)."""

from __future__ import annotations

import mwparserfromhell
import pytest

from wikipersona_data.wiki.dates import date_from_value, dates_from_template, parse_plain_date, render_date_template


def _template(text: str):
    return mwparserfromhell.parse(text).filter_templates()[0]


@pytest.mark.parametrize(
    ("wikitext", "birth", "death", "living"),
    [
        ("{{Birth date and age|1961|8|4}}", "1961-08-04", None, True),
        ("{{birth date and age|df=yes|1961|8|4}}", "1961-08-04", None, True),
        ("{{Birth date and age|1961|8|4|mf=y}}", "1961-08-04", None, True),
        ("{{Birth date and age|year=1961|month=8|day=4}}", "1961-08-04", None, True),
        ("{{bda|1970|04|29}}", "1970-04-29", None, True),
        ("{{dob|1970|4|29}}", "1970-04-29", None, False),
        ("{{Birth date|1901|2|3}}", "1901-02-03", None, False),
        ("{{Birth_date_and_age <!-- c -->|1961|8|4}}", "1961-08-04", None, True),
        ("{{Birth-date and age|August 4, 1961}}", "1961-08-04", None, True),
        ("{{Birth year and age|1961}}", "1961", None, True),
        ("{{Birth year and age|1961|8}}", "1961", None, True),
        ("{{Death date and age|2016|4|21|1958|6|7}}", "1958-06-07", "2016-04-21", False),
        ("{{Death year and age|2016|1958}}", "1958", "2016", False),
        ("{{Death date|2016|4|21}}", None, "2016-04-21", False),
        ("{{Birth date and age|1961|13|4}}", "1961", None, True),
    ],
)
def test_date_templates(wikitext, birth, death, living):
    info = dates_from_template(_template(wikitext))
    assert info is not None
    assert (info.birth.iso() if info.birth else None) == birth
    assert (info.death.iso() if info.death else None) == death
    assert info.living_template is living


def test_non_date_template_is_none():
    assert dates_from_template(_template("{{Infobox person|name=X}}")) is None


@pytest.mark.parametrize(
    ("text", "iso", "circa"),
    [
        ("January 4, 1985", "1985-01-04", False),
        ("4 January 1985", "1985-01-04", False),
        ("4 Jan. 1985", "1985-01-04", False),
        ("1985-01-04", "1985-01-04", False),
        ("March 1985", "1985-03", False),
        ("c. 1900", "1900", True),
        ("circa 1900", "1900", True),
        ("born in 1961 in Honolulu", "1961", False),
        ("unknown", None, False),
    ],
)
def test_plain_dates(text, iso, circa):
    date = parse_plain_date(text)
    assert (date.iso() if date else None) == iso
    if date:
        assert date.circa is circa


def test_value_with_ref_uses_plain_text():
    date, info = date_from_value('January 4, 1985<ref name="facebook"/>')
    assert info is None
    assert date is not None and date.iso() == "1985-01-04"


def test_value_with_ref_body_containing_other_date():
    date, _ = date_from_value("January 4, 1985<ref>Retrieved March 3, 2010</ref>")
    assert date is not None and date.iso() == "1985-01-04"


def test_value_with_template_and_ref():
    _, info = date_from_value("{{birth date and age|1947|04|01|df=y}} <ref>x</ref>")
    assert info is not None and info.birth is not None and info.birth.iso() == "1947-04-01"


def test_render_prose_and_infobox():
    t = _template("{{birth date and age|1961|8|4}}")
    assert render_date_template(t, prose=True) == "born August 4, 1961"
    assert render_date_template(t, prose=False) == "August 4, 1961"
    assert render_date_template(_template("{{birth date and age|1961|8|4|df=y}}"), prose=False) == "4 August 1961"


def test_render_death_date_and_age_includes_fixed_age():
    t = _template("{{Death date and age|2016|4|21|1958|6|7}}")
    assert render_date_template(t, prose=True) == "April 21, 2016 (aged 57)"


def test_render_never_includes_current_age():
    text = render_date_template(_template("{{Birth year and age|1961}}"), prose=False)
    assert text == "1961"


@pytest.mark.parametrize("text", ["384 BC", "c. 384 BCE", "384 B.C."])
def test_bc_dates_are_not_years(text):
    assert parse_plain_date(text) is None
