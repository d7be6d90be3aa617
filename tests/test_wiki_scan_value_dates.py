"""The scan's infobox date reader (scan_fields._value_dates) answers exactly as dates.date_from_value."""

from __future__ import annotations

import itertools

from wikipersona_data.wiki.dates import date_from_value
from wikipersona_data.wiki.scan_fields import _parse_small, _value_dates

TEMPLATES = [
    "{{birth date and age|1947|04|01|df=y}}",
    "{{Birth date and age|mf=yes|1985|1|4}}",
    "{{death date and age|2001|1|2|1930|4|5}}",
    "{{birth year and age|1970}}",
    "{{circa|1900}}",
    "{{birth date|1900|13|40}}",  # no valid date: the reader must fall through to date_from_value
    "{{birth date and age|{{CURRENTYEAR}}|1|1}}",
]
AROUND = ["", " ", "\n", " \n", "\t", "\xa0", "\n\n "]


def test_value_dates_equals_date_from_value_on_whitespace_wrapped_templates() -> None:
    small = {text: _parse_small(text, _name(text)) for text in TEMPLATES}
    read = _value_dates(small)
    checked = 0
    for text, (before, after) in itertools.product(TEMPLATES, itertools.product(AROUND, AROUND)):
        value = before + text + after
        assert read(value) == date_from_value(value), repr(value)
        checked += 1
    assert checked == len(TEMPLATES) * len(AROUND) ** 2


def test_value_dates_falls_through_for_other_values() -> None:
    read = _value_dates({TEMPLATES[0]: _parse_small(TEMPLATES[0], _name(TEMPLATES[0]))})
    for value in ["January 4, 1985", TEMPLATES[0] + " in [[Paris]]", "c. " + TEMPLATES[0], TEMPLATES[2], ""]:
        assert read(value) == date_from_value(value), repr(value)


def _name(text: str) -> str:
    return " ".join(text[2:].split("|", 1)[0].split()).lower()
