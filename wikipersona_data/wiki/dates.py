"""Birth/death dates from Wikipedia date templates and plain-text dates.

Wikipedia writes dates in many shapes (wikipedia.md section 7): ``{{Birth date and age|1961|8|4}}`` with
``df``/``mf`` flags before or after the numbers, named ``year=/month=/day=``, aliases (``bda``, ``dob``),
free-text variants (``{{Birth-date and age|August 4, 1961}}``), ``{{Death date and age|D...|B...}}`` with the
death date FIRST, and plain text such as ``January 4, 1985<ref name="x"/>``. Everything is reduced to a
:class:`PartialDate` (year, optional month/day) so callers can emit "YYYY-MM-DD" | "YYYY-MM" | "YYYY".

Rendering (:func:`render_date_template`) turns a date template into the visible text a reader would see, minus
the age: "(age 65)" depends on today's date and would make the cleaned text (and therefore sentence ids/texts)
change with the clock, so ages of living people are never rendered. Ages at death are fixed and are rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import mwparserfromhell
from mwparserfromhell.nodes import Template

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_LOOKUP = {m.lower(): i + 1 for i, m in enumerate(MONTHS)} | {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)}
_MONTH_LOOKUP["sept"] = 9


@dataclass(frozen=True)
class PartialDate:
    """A date known to year, month or day precision; ``circa`` marks approximate dates ("c. 1900")."""

    year: int
    month: int | None = None
    day: int | None = None
    circa: bool = False

    def iso(self) -> str:
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"

    def text(self, day_first: bool = False) -> str:
        """Visible form: mdy by default ("August 4, 1961"), dmy with df=y ("4 August 1961")."""
        prefix = "c. " if self.circa else ""
        if self.month is None:
            return f"{prefix}{self.year}"
        month = MONTHS[self.month - 1]
        if self.day is None:
            return f"{prefix}{month} {self.year}"
        return f"{prefix}{self.day} {month} {self.year}" if day_first else f"{prefix}{month} {self.day}, {self.year}"


def _valid(year: int, month: int | None, day: int | None) -> bool:
    if not 1 <= year <= 2100:
        return False
    if month is not None and not 1 <= month <= 12:
        return False
    return day is None or (month is not None and 1 <= day <= 31)


def make_date(year: int | None, month: int | None = None, day: int | None = None, circa: bool = False):
    """A PartialDate, or None when the parts are impossible (month 13, day without month, year 0)."""
    if year is None or not _valid(year, month, day):
        return None
    return PartialDate(year, month, day, circa)


# --- template names (normalised: lower case, "_" -> " ", single spaces) -------------------------------------

BIRTH_DATE_TEMPLATES = frozenset(
    {
        "birth date and age",
        "birth date and age2",
        "bda",
        "dob",
        "birth date",
        "birthdate",
        "birthdateandage",
        "birth date and age (as of)",
        "birthdate and age",
        "b-da",
    }
)
#: Templates meant only for living people (Template:Birth_date_and_age/doc): evidence for is_living.
LIVING_AGE_TEMPLATES = frozenset(
    {
        "birth date and age",
        "birth date and age2",
        "bda",
        "birthdateandage",
        "birthdate and age",
        "b-da",
        "birth-date and age",
        "birth year and age",
        "birth based on age as of date",
        "birth date and age (as of)",
    }
)
BIRTH_FREE_TEXT_TEMPLATES = frozenset({"birth-date and age", "birth-date"})
BIRTH_YEAR_TEMPLATES = frozenset({"birth year and age", "birth year"})
BIRTH_FROM_AGE_TEMPLATES = frozenset({"birth based on age as of date"})
DEATH_DATE_AND_AGE_TEMPLATES = frozenset({"death date and age", "dda", "death date and given age"})
DEATH_DATE_TEMPLATES = frozenset({"death date", "deathdate", "death-date"})
DEATH_YEAR_AND_AGE_TEMPLATES = frozenset({"death year and age"})
CIRCA_TEMPLATES = frozenset({"circa", "c.", "ca."})

DATE_TEMPLATES = (
    BIRTH_DATE_TEMPLATES
    | LIVING_AGE_TEMPLATES
    | BIRTH_FREE_TEXT_TEMPLATES
    | BIRTH_YEAR_TEMPLATES
    | BIRTH_FROM_AGE_TEMPLATES
    | DEATH_DATE_AND_AGE_TEMPLATES
    | DEATH_DATE_TEMPLATES
    | DEATH_YEAR_AND_AGE_TEMPLATES
)
BIRTH_TEMPLATES = BIRTH_DATE_TEMPLATES | LIVING_AGE_TEMPLATES | BIRTH_FREE_TEXT_TEMPLATES | BIRTH_YEAR_TEMPLATES
DEATH_TEMPLATES = DEATH_DATE_AND_AGE_TEMPLATES | DEATH_DATE_TEMPLATES | DEATH_YEAR_AND_AGE_TEMPLATES

_COMMENT_RE = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)


def template_name(template: Template) -> str:
    """Normalised template name: comments dropped, "_" -> " ", whitespace collapsed, lower case, no "Template:"."""
    name = _COMMENT_RE.sub("", str(template.name))
    name = " ".join(name.replace("_", " ").split()).lower()
    if name.startswith("template:"):
        name = name[len("template:") :].strip()
    return name


_FLAG_NAMES = frozenset({"df", "mf", "format", "nbsp", "paren", "p", "br", "hidden", "ref"})


def _params(template: Template) -> tuple[list[str], dict[str, str]]:
    """Positional values (display flags such as a stray "df=y" removed) and named values, as stripped text."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for p in template.params:
        value = _COMMENT_RE.sub("", str(p.value)).strip()
        if p.showkey:
            named[_COMMENT_RE.sub("", str(p.name)).strip().lower()] = value
        else:
            positional.append(value)
    return positional, named


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    m = re.fullmatch(r"0*(\d{1,4})", value)
    return int(m.group(1)) if m else None


def _month(value: str | None) -> int | None:
    if value is None:
        return None
    number = _int(value)
    if number is not None:
        return number
    return _MONTH_LOOKUP.get(value.strip().rstrip(".").lower())


def _ymd(parts: list[str | None]) -> PartialDate | None:
    year = _int(parts[0] if parts else None)
    month = _month(parts[1] if len(parts) > 1 and parts[1] else None)
    day = _int(parts[2] if len(parts) > 2 and parts[2] else None) if month is not None else None
    # An impossible day or month degrades to the coarser date rather than losing the year.
    return make_date(year, month, day) or make_date(year, month) or make_date(year)


def day_first(template: Template) -> bool:
    _, named = _params(template)
    return named.get("df", "").lower() in {"y", "yes", "1", "true"}


@dataclass(frozen=True)
class TemplateDates:
    """What one date template says: a birth date, a death date, or both (Death date and age)."""

    birth: PartialDate | None = None
    death: PartialDate | None = None
    living_template: bool = False  # a template documented for living people only (Birth date and age, ...)


def dates_from_template(template: Template) -> TemplateDates | None:
    """Interpret a date template; None if it is not one. Handles positional/named params and flag placement."""
    name = template_name(template)
    if name in CIRCA_TEMPLATES:
        positional, _ = _params(template)
        d = parse_plain_date(positional[0]) if positional else None
        return TemplateDates(birth=PartialDate(d.year, d.month, d.day, circa=True) if d else None)
    if name not in DATE_TEMPLATES:
        return None
    positional, named = _params(template)
    # Named flags that ended up positional (e.g. "df=y" written without key) are not numbers; drop non-date junk.
    positional = [p for p in positional if p and "=" not in p]
    living = name in LIVING_AGE_TEMPLATES
    if name in BIRTH_FREE_TEXT_TEMPLATES:
        return TemplateDates(birth=parse_plain_date(positional[0]) if positional else None, living_template=living)
    if name in BIRTH_FROM_AGE_TEMPLATES:
        # {{Birth based on age as of date|age|year|month|day}}: born in (year - age) or the year before.
        age, year = (
            (_int(positional[0]) if positional else None),
            (_int(positional[1]) if len(positional) > 1 else None),
        )
        birth = make_date(year - age - 1, circa=True) if age is not None and year is not None else None
        return TemplateDates(birth=birth, living_template=living)
    if name in BIRTH_YEAR_TEMPLATES:
        year = _int(named.get("year") or (positional[0] if positional else None))
        return TemplateDates(birth=make_date(year), living_template=living)
    if name in DEATH_YEAR_AND_AGE_TEMPLATES:
        death = make_date(_int(positional[0] if positional else None))
        birth = make_date(_int(positional[1] if len(positional) > 1 else None))
        return TemplateDates(birth=birth, death=death)
    if name in DEATH_DATE_AND_AGE_TEMPLATES:
        return TemplateDates(death=_ymd(list(positional[0:3])), birth=_ymd(list(positional[3:6])))
    if name in ("birth date", "dob", "birthdate") and positional and not _int(positional[0]):
        # {{Birth date|August 4, 1961}} occasionally carries free text.
        return TemplateDates(birth=parse_plain_date(positional[0]))
    parts: list[str | None] = (
        [named.get("year"), named.get("month"), named.get("day")] if "year" in named else list(positional[:3])
    )
    date = _ymd(parts)
    if name in DEATH_DATE_TEMPLATES:
        return TemplateDates(death=date)
    return TemplateDates(birth=date, living_template=living)


def render_date_template(template: Template, *, prose: bool) -> str | None:
    """Visible text for a date template, or None if it is not one.

    In prose a birth template reads "born August 4, 1961" (the caller avoids "born born"); in infobox fields
    just the date. Ages of living people are omitted (clock dependent); ages at death are kept.
    """
    name = template_name(template)
    info = dates_from_template(template)
    if info is None:
        return None
    dmy = day_first(template)
    if name in CIRCA_TEMPLATES:
        return info.birth.text(dmy) if info.birth else "c."
    if info.death is not None:
        text = info.death.text(dmy)
        if info.birth is not None and name in DEATH_DATE_AND_AGE_TEMPLATES | DEATH_YEAR_AND_AGE_TEMPLATES:
            text += f" (aged {_age(info.birth, info.death)})"
        return text
    if info.birth is None:
        return ""
    text = info.birth.text(dmy)
    return f"born {text}" if prose else text


def _age(birth: PartialDate, death: PartialDate) -> str:
    age = death.year - birth.year
    if None in (birth.month, death.month):
        return f"{age - 1}–{age}"
    if (death.month, death.day or 0) < (birth.month, birth.day or 0):
        age -= 1
    return str(age)


# --- plain text dates -------------------------------------------------------------------------------------

_MONTH_RE = (
    r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_CIRCA_RE = r"(?P<circa>(?:c\.|ca\.|circa|approx\.|about)\s*)?"
_PLAIN_PATTERNS = (
    re.compile(_CIRCA_RE + _MONTH_RE + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{3,4})\b", re.I),
    re.compile(_CIRCA_RE + r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH_RE + r",?\s+(?P<year>\d{3,4})\b", re.I),
    re.compile(_CIRCA_RE + r"(?P<year>\d{4})-(?P<mnum>\d{1,2})-(?P<day>\d{1,2})\b", re.I),
    re.compile(_CIRCA_RE + _MONTH_RE + r",?\s+(?P<year>\d{3,4})\b", re.I),
    re.compile(_CIRCA_RE + r"(?P<year>\d{3,4})\b(?!\s*(?:BCE?|B\.C\.))", re.I),
)
_BC_RE = re.compile(r"\b\d{1,4}\s*(?:BCE?|B\.C\.)", re.I)


def parse_plain_date(text: str) -> PartialDate | None:
    """First date found in free text ("January 4, 1985", "4 Jan 1985", "1985-01-04", "c. 1900", "1985")."""
    text = text.replace("\xa0", " ")
    if _BC_RE.search(text):
        return None  # BC dates are not representable as "YYYY" (and never concern living people)
    # Patterns are ordered by specificity: the first one that yields a valid date wins.
    for pattern in _PLAIN_PATTERNS:
        for m in pattern.finditer(text):
            groups = m.groupdict()
            month = (
                _MONTH_LOOKUP.get(groups["mon"].lower().rstrip(".")) if groups.get("mon") else _int(groups.get("mnum"))
            )
            date = make_date(int(groups["year"]), month, _int(groups.get("day")), circa=bool(groups.get("circa")))
            if date:
                return date
    return None


def date_from_value(value: str) -> tuple[PartialDate | None, TemplateDates | None]:
    """A date from an infobox value: the first date template inside, else plain text (refs/comments removed).

    Returns (date, template info); the template info says whether a living-only template was used and
    carries the death date when the value is ``{{Death date and age}}``.
    """
    code = mwparserfromhell.parse(value)
    for template in code.filter_templates(recursive=True):
        info = dates_from_template(template)
        if info is not None and (info.birth or info.death):
            return None, info
    plain = _strip_for_plain(code)
    return parse_plain_date(plain), None


_REF_RE = re.compile(r"<ref[^>]*?/>|<ref[^>]*>.*?</ref>", re.DOTALL | re.I)


def _strip_for_plain(code) -> str:
    """Plain text of a value without refs and comments; parsed again only when there were some to remove.

    ``str(code)`` round-trips the parsed value, so when nothing is removed the tree at hand is the tree a second
    parse would build (values reach here with refs and comments already gone when parse.prepare ran first).
    """
    original = str(code)
    text = _COMMENT_RE.sub("", _REF_RE.sub("", original))
    return (code if text == original else mwparserfromhell.parse(text)).strip_code()
