"""Wikitext -> Biography (``wiki/biography.py``): the parsing half of the Wikipedia layer.

Two modes share one code path for everything they both produce, so a scan row (``full=False``) and a ``show``
(``full=True``) never disagree on person/living/dates/infobox/categories/lead:

* ``full=False`` parses only the part before the first heading (infobox, short description, lead) with
  mwparserfromhell and reads categories, DEFAULTSORT and ``<ref`` counts with regexes over the whole text.
* ``full=True`` additionally parses the body: level-2 sections (boilerplate such as References dropped, nested
  ``===`` kept inside their section), sentences with stable ids, and outgoing article links.

The scan reads its rows' scalar fields through a third, tree-free path (scan_fields.py) that shares
``prepare``, ``categories_of``, ``short_description_of`` and ``decide`` with this module and falls back to
``full=False`` when unsure; tests/test_wiki_scan_fields.py checks that all three agree.

Comments, ``<ref>`` citations, tables and File/Image links are removed before anything else: they are invisible
text; a commented-out ``== Heading ==`` must not split the lead; and mwparserfromhell degrades malformed refs,
tables and captions to raw text (seen on real articles, see ``_parse``). ``ref_count`` counts ``<ref`` opening
tags (citations and named re-uses) before removal. The lead is the text before the first heading line.

Precedence rules
----------------
birth date: the infobox value (``birth_date``/``born``/... date template, else plain text such as
"January 4, 1985<ref/>") > a birth-date template in the lead prose > "born <date>" in the cleaned lead > the
"YYYY births" category (year only). The infobox/lead date is more specific and categories are often stale, so it
wins; when its year differs from the category year both are kept (``birth_year_infobox``,
``birth_year_category``) and ``date_conflict`` is true.

death year: a death date in the infobox/lead templates > the "YYYY deaths" category.

is_living (only ever true for a person):
1. any death evidence (death date template or value, "YYYY deaths", "Year/Date of death missing/unknown")
   -> False, even if "Living people" is also present (stale category);
2. "Possibly living people" -> False (Wikipedia cannot confirm the person is alive);
3. "Living people" or "Year of birth missing (living people)" -> True;
4. a living-only date template ({{Birth date and age}}, {{Birth year and age}}, ...) -> True;
5. otherwise False.
Every signal is recorded in ``living_evidence``: ``category_living``, ``category_possibly_living``,
``category_birth_year``, ``category_death``, ``person_infobox``, ``birth_date_and_age`` (a living-only
template was seen), ``death_date`` (a death date/template was seen).

Links: ns-0 targets from the lead (infobox included) and the kept sections, not from boilerplate sections
(See also / References); deduplicated and sorted (not in order of appearance) so they are byte-stable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import mwparserfromhell
from mwparserfromhell.nodes import Template
from mwparserfromhell.parser import ParserError
from mwparserfromhell.wikicode import Wikicode

from wikipersona_data.wiki.biography import Biography, Infobox, Section, Sentence
from wikipersona_data.wiki.clean import (
    REFERENCE_TEMPLATES,
    clean_prose,
    clean_value,
    normalise_link_title,
    remove_media_links,
)
from wikipersona_data.wiki.dates import (
    LIVING_AGE_TEMPLATES,
    PartialDate,
    TemplateDates,
    date_from_value,
    dates_from_template,
    parse_plain_date,
    template_name,
)
from wikipersona_data.wiki.person import category_signals, is_infobox_name, is_person_infobox
from wikipersona_data.wiki.sentences import split_sentences

#: Longest wikitext (characters) we parse; the largest real articles are ~1.5 MB, and mwparserfromhell's memory
#: can blow up on pathological input (mwparserfromhell#286). Longer text -> ParseFailure naming the size.
MAX_WIKITEXT_CHARS = 2_000_000

#: Level-2 sections that are apparatus, not content (compared lower-case).
BOILERPLATE_SECTIONS = frozenset(
    {
        "references",
        "notes",
        "external links",
        "see also",
        "further reading",
        "bibliography",
        "sources",
        "citations",
        "footnotes",
        "notes and references",
        "references and notes",
        "works cited",
        "cited works",
        "general references",
        "external sources",
        "other websites",
        "explanatory notes",
        "reference",
        "note",
        "external link",
        "literature",
    }
)
#: Infobox parameters that hold embedded infoboxes or flags, not fields.
NOT_FIELDS = frozenset({"embed", "module", "module2", "module3", "child"})
BIRTH_FIELDS = ("birth_date", "born", "date_of_birth", "birthdate", "birth date", "dateofbirth", "birth_year")
DEATH_FIELDS = ("death_date", "died", "date_of_death", "deathdate", "death date", "dateofdeath", "death_year")

_COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_HEADING_RE = re.compile(r"^=[^\n]*=[ \t]*$", re.MULTILINE)
# The same heading line after its preceding newline: a literal first character lets the search skip ahead
# (a pattern starting with ``^`` is tried at every character; ~7x slower on real articles).
_NEWLINE_HEADING_RE = re.compile(r"\n=[^\n]*=[ \t]*$", re.MULTILINE)
_CATEGORY_RE = re.compile(r"\[\[[ \t]*[Cc]ategory[ \t]*:([^\[\]|{}\n]*)(?:\|[^\[\]]*)?\]\]")
_DEFAULTSORT_RE = re.compile(r"\{\{\s*(?:DEFAULTSORT|DEFAULTSORTKEY|DEFAULTCATEGORYSORT)\s*:([^{}\n]*)\}\}")
_REF_TAG_RE = re.compile(r"<ref(?:\s[^>]*)?/?>", re.IGNORECASE)
_PAIRED_REF_RE = re.compile(r"<ref(?:\s[^>]*)?(?<!/)>.*?</ref\s*>", re.IGNORECASE | re.DOTALL)
# Self-closing refs, and any ref tag left over after paired removal (unclosed openings, stray closings): an
# unclosed <ref> is broken markup, and thousands of them make mwparserfromhell's tokenizer backtrack for seconds.
_REF_OPEN_RE = re.compile(r"<ref(?:\s[^>]*)?(?<!/)>", re.IGNORECASE)  # the two halves of _PAIRED_REF_RE
_REF_CLOSE_RE = re.compile(r"</ref\s*>", re.IGNORECASE)
_SINGLE_REF_RE = re.compile(r"<ref(?:\s[^>]*)?/?>|</ref\s*>|<references(?:\s[^>]*)?/?>|</references\s*>", re.I)
_REFERENCES_RE = re.compile(r"<references(?:\s[^>]*)?/>|<references(?:\s[^>]*)?>.*?</references\s*>", re.I | re.DOTALL)
_BORN_RE = re.compile(r"\(\s*(?:born|b\.)\s+([^()]{4,40})")


class ParseFailure(Exception):
    """mwparserfromhell could not parse a page (or it is too large); the message is one line naming the title."""


def parse_biography(
    wikitext: str,
    *,
    title: str,
    page_id: int,
    revision_id: int | None,
    full: bool = True,
    url_base: str = "https://en.wikipedia.org/wiki/",
) -> Biography:
    """Parse one article's wikitext into a :class:`Biography` (see module docstring for modes and precedence)."""
    try:
        return _parse(wikitext, title=title, page_id=page_id, revision_id=revision_id, full=full, url_base=url_base)
    except ParseFailure:
        raise
    except (ParserError, ValueError, RecursionError, MemoryError) as exc:
        message = " ".join(str(exc).split())[:200]
        raise ParseFailure(f"{title!r} (page {page_id}): wikitext could not be parsed: {message}") from exc


@dataclass(frozen=True)
class Prepared:
    """Wikitext with invisible markup removed (comments, refs, tables, media links), split at the first heading."""

    text: str
    lead_src: str
    body_src: str
    ref_count: int | None  # None when not counted (``count_refs=False``)


def prepare(wikitext: str, *, title: str, page_id: int, full: bool, count_refs: bool = True) -> Prepared:
    """The preprocessing both parse modes and the scan's fast path share (so they see the same lead/categories).

    ``count_refs=False`` skips the ``<ref`` count, a whole-text regex pass: the scan's fast path has no use for
    it (its rows take ``ref_count`` from fame.page_features).
    """
    text = _COMMENT_RE.sub("", wikitext)
    ref_count = len(_REF_TAG_RE.findall(text)) if count_refs else None
    # Citations are removed before parsing: they are invisible in prose, their unbalanced markup (an unclosed
    # '' inside a cite template) made mwparserfromhell degrade whole later refs to text on real articles, and
    # they are a large share of the bytes the parser would otherwise build trees for.
    text = _SINGLE_REF_RE.sub("", _remove_paired_refs(_remove_paired(_REFERENCES_RE, "</references", text)))
    text = remove_media_links(_remove_tables(text))
    heading = _first_heading(text)
    lead_src = text[:heading] if heading is not None else text
    body_src = text[heading:] if heading is not None else ""
    checked = text if full else lead_src
    if len(checked) > MAX_WIKITEXT_CHARS:
        part = "wikitext" if full else "lead"
        raise ParseFailure(
            f"{title!r} (page {page_id}): {part} is {len(checked):,} characters, over the {MAX_WIKITEXT_CHARS:,} limit"
        )
    return Prepared(text, lead_src, body_src, ref_count)


def _first_heading(text: str) -> int | None:
    """Where ``_HEADING_RE.search(text)`` matches: a heading on the first line, else after the first newline."""
    if _HEADING_RE.match(text):
        return 0
    m = _NEWLINE_HEADING_RE.search(text)
    return m.start() + 1 if m else None


@dataclass(frozen=True)
class Decision:
    """Person/living/date fields decided from categories, infobox fields and lead templates (module docstring)."""

    is_person: bool
    is_living: bool
    birth_date: str | None
    birth_year: int | None
    death_year: int | None
    birth_year_infobox: int | None
    birth_year_category: int | None
    date_conflict: bool
    birth_date_source: str | None
    evidence: dict[str, bool]


def decide(
    categories: list[str],
    infobox_is_person: bool,
    fields_raw: dict[str, str],
    lead_templates: list[Template],
    first_lead_line: Callable[[], str],
    value_dates: Callable[[str], tuple[PartialDate | None, TemplateDates | None]] = date_from_value,
) -> Decision:
    """The precedence rules of the module docstring; ``first_lead_line`` is only called when they need it.

    ``value_dates`` reads an infobox date value (``date_from_value``, or an equal reader that reuses templates
    the caller already built: the scan's fast path).
    """
    cat = category_signals(categories)
    birth_infobox: PartialDate | None = None
    death_infobox: PartialDate | None = None
    living_template = False
    death_template = False
    for key in BIRTH_FIELDS:
        if fields_raw.get(key):
            date, info = value_dates(fields_raw[key])
            if info is not None:
                birth_infobox = info.birth
                living_template |= info.living_template
                if info.death:
                    death_infobox, death_template = info.death, True
            else:
                birth_infobox = date
            if birth_infobox:
                break
    for key in DEATH_FIELDS:
        if fields_raw.get(key) and death_infobox is None:
            date, info = value_dates(fields_raw[key])
            death_infobox = (info.death or info.birth) if info is not None else date
            if info is not None and info.birth and birth_infobox is None:
                birth_infobox = info.birth

    birth_lead: PartialDate | None = None
    death_lead: PartialDate | None = None
    for template in lead_templates:
        info = dates_from_template(template)
        if info is None:
            continue
        living_template |= info.living_template and template_name(template) in LIVING_AGE_TEMPLATES
        if info.death is not None:
            death_template = True
            death_lead = death_lead or info.death
        if info.birth is not None and birth_lead is None and template_name(template) != "circa":
            birth_lead = info.birth
    if birth_infobox is None and birth_lead is None:
        born = _BORN_RE.search(first_lead_line())
        birth_lead = parse_plain_date(born.group(1)) if born else None

    birth = birth_infobox or birth_lead
    death = death_infobox or death_lead
    birth_year_infobox = birth.year if birth else None
    birth_year_category = cat["birth_year"]
    is_person = bool(cat["person"] or infobox_is_person)
    death_evidence = bool(death is not None or death_template or cat["death"])
    if not is_person or death_evidence or cat["possibly_living"]:
        is_living = False
    else:
        is_living = bool(cat["living"] or living_template)
    return Decision(
        is_person=is_person,
        is_living=is_living,
        birth_date=birth.iso() if birth else (f"{birth_year_category:04d}" if birth_year_category else None),
        birth_year=birth.year if birth else birth_year_category,
        death_year=death.year if death else cat["death_year"],
        birth_year_infobox=birth_year_infobox,
        birth_year_category=birth_year_category,
        date_conflict=bool(birth_year_infobox and birth_year_category and birth_year_infobox != birth_year_category),
        birth_date_source=(
            "infobox" if birth_infobox else "lead" if birth_lead else "category" if birth_year_category else None
        ),
        evidence={
            "category_living": cat["living"],
            "category_possibly_living": cat["possibly_living"],
            "category_birth_year": birth_year_category is not None,
            "category_death": cat["death"],
            "person_infobox": infobox_is_person,
            "birth_date_and_age": living_template,
            "death_date": death is not None or death_template,
        },
    )


def _parse(wikitext: str, *, title: str, page_id: int, revision_id: int | None, full: bool, url_base: str):
    prepared = prepare(wikitext, title=title, page_id=page_id, full=full)
    text, lead_src, body_src = prepared.text, prepared.lead_src, prepared.body_src
    categories = categories_of(text)
    lead_code = mwparserfromhell.parse(lead_src)
    lead_templates = lead_code.filter_templates(recursive=True)
    top_templates = lead_code.filter_templates(recursive=False)

    infobox, infobox_is_person, fields_raw = infobox_of(
        [t for t in lead_templates if is_infobox_name(template_name(t))],
        [t for t in top_templates if is_infobox_name(template_name(t))],
    )
    short_description = short_description_of(top_templates)
    lead_links = _links(lead_code) if full else []
    _drop_reference_templates(lead_code)
    lead = clean_prose(lead_code)
    decision = decide(categories, infobox_is_person, fields_raw, lead_templates, lambda: lead.split("\n", 1)[0])

    bio = Biography(
        page_id=page_id,
        title=title,
        revision_id=revision_id,
        url=article_url(title, url_base),
        is_person=decision.is_person,
        is_living=decision.is_living,
        birth_date=decision.birth_date,
        birth_year=decision.birth_year,
        death_year=decision.death_year,
        short_description=short_description,
        infobox=infobox,
        categories=categories,
        lead=lead,
        living_evidence=decision.evidence,
        birth_year_infobox=decision.birth_year_infobox,
        birth_year_category=decision.birth_year_category,
        date_conflict=decision.date_conflict,
        birth_date_source=decision.birth_date_source,
        sort_key=_defaultsort(text),
        ref_count=prepared.ref_count,
        wikitext_length=len(wikitext),
        parse_mode="full" if full else "cheap",
    )
    if full:
        body_code = mwparserfromhell.parse(body_src)
        sections, section_links = _sections(body_code)
        bio.sections = sections
        bio.sentences = _sentences(lead, sections)
        bio.links = sorted(set(lead_links) | set(section_links))
    return bio


def _remove_paired(pattern: re.Pattern[str], closing: str, text: str) -> str:
    """``pattern.sub("", text)`` limited to the text before the last closing tag.

    An opening tag with no closing tag after it would make the lazy ``.*?`` scan to the end of the text for
    every such tag (measured: 20,000 unclosed ``<ref>`` in 140 KB took 29 s); before the last closing tag
    every opening tag finds its match and the scan resumes after it, so the substitution stays linear.
    """
    last = None
    for last in _closing_re(closing).finditer(text):  # noqa: B007 - only the last one is wanted
        pass
    if last is None:
        return text
    end = text.find(">", last.start()) + 1 or len(text)
    return pattern.sub("", text[:end]) + text[end:]


def _remove_paired_refs(text: str) -> str:
    """``_PAIRED_REF_RE.sub("", text)``, ~2x faster: each opening tag's closing tag is found by a literal search.

    The regex's lazy ``.*?`` tests every character of every citation for ``</ref``; citations are a large
    share of an article's bytes. An opening tag with no closing tag after it ends the removal: no later
    opening tag can have one either (it ends at the same ``>`` or later), which keeps this linear.
    """
    out: list[str] = []
    position = 0
    while (opening := _REF_OPEN_RE.search(text, position)) is not None:
        closing = _REF_CLOSE_RE.search(text, opening.end())
        if closing is None:
            break
        out.append(text[position : opening.start()])
        position = closing.end()
    out.append(text[position:])
    return "".join(out)


@lru_cache(maxsize=4)
def _closing_re(closing: str) -> re.Pattern[str]:
    """``</`` + the tag name in any case: the literal ``</`` prefix keeps the scan fast (no lower-cased copy)."""
    return re.compile(re.escape(closing[:2]) + "(?i:" + re.escape(closing[2:]) + ")")


# A line opening or closing a table, its line start written as the "\n" before it (the text gets one prepended):
# a pattern starting with ``^`` is tried at every character, one starting with a literal uses CPython's fast
# literal search (~4x faster). A match never holds a newline, so each line start keeps its "\n" to match.
_TABLE_LINE_RE = re.compile(r"\n[ \t:]*(?:(\{\|)|\|\}(?!\}))")


def _remove_tables(text: str) -> str:
    """Drop ``{| ... |}`` tables, whole lines from the opening to the closing one (nesting counted), before parsing.

    mwparserfromhell degrades a malformed table to plain text (a real Andre Agassi statistics table leaked
    "| bgcolor=lime | [[...]]" into the section text), and table cells are never prose we want. Only the lines
    opening or closing a table are visited (a regex), not every line of the article; an unclosed table runs to
    the end of the text.
    """
    out: list[str] = []
    depth = 0
    position = 0  # start of the text not yet copied or dropped
    cut = 0  # start of the line opening the outermost table
    to_end = False  # the dropped lines include the text's last line
    for m in _TABLE_LINE_RE.finditer("\n" + text):  # match offsets - 1 = offsets in text; start = the line's start
        if m.group(1):
            if depth == 0:
                cut = m.start()
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                out.append(text[position:cut])
                line_end = text.find("\n", m.end() - 1)
                position = line_end + 1 if line_end >= 0 else len(text)
                to_end = line_end < 0
    if depth:
        out.append(text[position:cut])
        position, to_end = len(text), True
    out.append(text[position:])
    result = "".join(out)
    if to_end and 0 < cut and result.endswith("\n"):
        result = result[:-1]  # the dropped lines ran to the end: no line follows the last kept one
    return result


_URL_UNSAFE = {c: f"%{ord(c):02X}" for c in '%?#"<>[]{}|^`\\'}


def article_url(title: str, url_base: str) -> str:
    """Readable article URL: spaces -> "_", only characters that would break a URL percent-encoded."""
    return url_base + "".join(_URL_UNSAFE.get(c, c) for c in title.replace(" ", "_"))


def categories_of(text: str) -> list[str]:
    """Category memberships in order of first appearance, deduplicated; ``[[:Category:X]]`` is a link, not one."""
    seen: dict[str, None] = {}
    for m in _CATEGORY_RE.finditer(text):
        name = " ".join(m.group(1).replace("_", " ").split())
        if name:
            seen.setdefault(name[0].upper() + name[1:], None)
    return list(seen)


def _defaultsort(text: str) -> str | None:
    m = _DEFAULTSORT_RE.search(text)
    return m.group(1).strip() or None if m else None


def short_description_of(top_templates: list[Template]) -> str | None:
    """The first top-level {{Short description|...}} with a value; "none" means none."""
    for template in top_templates:
        if template_name(template) == "short description" and template.has("1"):
            value = clean_value(template.get("1").value)
            return None if value.lower() == "none" or not value else value
    return None


def infobox_of(
    candidates: list[Template], top: list[Template], *, clean: bool = True
) -> tuple[Infobox | None, bool, dict[str, str]]:
    """The article's infobox (first top-level infobox-family template; embedded ones merged in).

    ``candidates`` are the lead's infobox-family templates at any depth, ``top`` the top-level ones. Returns
    the Infobox, whether any infobox in the lead marks a person (bands excluded), and the raw (uncleaned) field
    values used for date parsing. ``clean=False`` leaves ``Infobox.fields`` empty (the scan needs only the
    template name and the raw date fields; cleaning every value is most of the infobox's cost).
    """
    is_person = False
    for template in candidates:
        background = template.get("background").value.strip_code() if template.has("background") else None
        if is_person_infobox(template_name(template), background):
            is_person = True
    primary = top[0] if top else (candidates[0] if candidates else None)
    if primary is None:
        return None, is_person, {}
    embedded = [
        t
        for param in primary.params
        for t in param.value.filter_templates(recursive=True)
        if is_infobox_name(template_name(t))
    ]
    fields: dict[str, str] = {}
    raw: dict[str, str] = {}
    for template in [primary, *embedded]:
        for param in template.params:
            if not param.showkey:
                continue
            key = _COMMENT_RE.sub("", str(param.name)).strip()
            if not key or key in raw or key in NOT_FIELDS:
                continue
            raw[key] = str(param.value)
            value = clean_value(param.value) if clean else ""
            if value:
                fields[key] = value
    return Infobox(template=template_name(primary), fields=fields), is_person, raw


def _drop_reference_templates(code: Wikicode) -> None:
    """Remove infoboxes and reference apparatus from the lead before rendering prose."""
    for template in code.filter_templates(recursive=False):
        name = template_name(template)
        if name.startswith(REFERENCE_TEMPLATES) or is_infobox_name(name):
            try:
                code.remove(template)
            except ValueError:
                continue


def _sections(body: Wikicode) -> tuple[list[Section], list[str]]:
    """Kept level-2 sections and the article links inside them (boilerplate sections contribute neither)."""
    sections: list[Section] = []
    links: list[str] = []
    for section in body.get_sections(levels=[2]):
        heading = section.filter_headings(recursive=False)[0]
        title = clean_value(heading.title)
        if title.lower().strip(" :") in BOILERPLATE_SECTIONS:
            continue
        section.remove(heading)
        links.extend(_links(section))
        for sub in section.filter_headings(recursive=False):
            section.replace(sub, "\n")
        _drop_reference_templates(section)
        sections.append(Section(title=title, text=clean_prose(section)))
    return sections, links


def _sentences(lead: str, sections: list[Section]) -> list[Sentence]:
    out: list[Sentence] = []
    for index, (name, text) in enumerate([("Lead", lead), *[(s.title, s.text) for s in sections]]):
        for j, sentence in enumerate(split_sentences(text)):
            out.append(Sentence(id=f"{index}.{j}", section=name, text=sentence))
    return out


def _links(*codes: Wikicode) -> list[str]:
    titles = set()
    for code in codes:
        for link in code.filter_wikilinks(recursive=True):
            title = normalise_link_title(str(link.title))
            if title:
                titles.add(title)
    return sorted(titles)
