"""The scan's fast path: a candidate-table row's scalar fields without parsing the lead into a tree.

``parse_biography`` builds an mwparserfromhell tree of the whole lead and renders its prose, but a scan row
needs only is_person, is_living, birth_date/year, death_year, short_description, infobox_template and
categories. Here the lead is only *scanned*: ``{{``/``}}`` are matched with a stack to find every template's
span, depth and name, and only the top-level templates that contain an interesting one (infobox family,
short description, date and circa templates) are parsed, each on its own. The decisions then go through the
same functions as ``parse_biography`` (``prepare``, ``categories_of``, ``infobox_of``,
``short_description_of``, ``decide``), so both paths agree by construction once they see the same templates.

The fast path gives up (returns None and the caller runs ``parse_biography(full=False)``) exactly when it
cannot be sure it sees what mwparserfromhell would:

* the lead has ``{{{`` (a parameter reference) or unbalanced ``{{``/``}}``, or a tag whose content
  mwparserfromhell does not parse as wikitext (``<nowiki>``, ``<math>``, ``<pre>``, ``<source>``, ...);
* a template name contains markup (``{{``, ``[[``, ``<``), or an interesting template's span does not parse
  to exactly one template with the same interesting templates inside;
* a short description or the first infobox at depth 0 is preceded by markup that could enclose it
  (``[``, ``<``, ``'``), or there are infoboxes but none at depth 0 (which one is "top-level" is then
  mwparserfromhell's call);
* no birth date comes from the infobox or lead templates and the lead contains "born", "b." or "&#": the
  "(born <date>)" rule reads the *rendered* lead, which only the full parser produces.
"""

from __future__ import annotations

import re
from typing import Any

import mwparserfromhell
from mwparserfromhell.nodes import Template

from wikipersona_data.wiki.dates import CIRCA_TEMPLATES, DATE_TEMPLATES, template_name
from wikipersona_data.wiki.parse import (
    article_url,
    categories_of,
    decide,
    infobox_of,
    prepare,
    short_description_of,
)
from wikipersona_data.wiki.person import is_infobox_name

_BRACES_RE = re.compile(r"\{\{|\}\}")
_OPAQUE_TAG_RE = re.compile(
    r"<(?:nowiki|math|pre|source|syntaxhighlight|chem|ce|score|timeline|gallery|includeonly|noinclude|onlyinclude|"
    r"poem|hiero|graph|mapframe|maplink|templatedata|inputbox|imagemap)\b",
    re.IGNORECASE,
)
_NAME_END_RE = re.compile(r"\||\{\{|\}\}")
_ENCLOSING_MARKUP_RE = re.compile(r"[\[<']")
_BORN_HINTS = ("born", "b.", "&#")


class _Unsure(Exception):
    """The fast path cannot decide; the caller falls back to the mwparserfromhell path."""


def _normalise(name: str) -> str:
    name = " ".join(name.replace("_", " ").split()).lower()
    return name[len("template:") :].strip() if name.startswith("template:") else name


def _interesting(name: str) -> bool:
    return name in DATE_TEMPLATES or name in CIRCA_TEMPLATES or name == "short description" or is_infobox_name(name)


def _spans(lead: str) -> list[tuple[int, int, int, str]]:
    """Every template as (start, end, depth, normalised name), in order of start (mwparserfromhell's order)."""
    if "{{{" in lead or _OPAQUE_TAG_RE.search(lead):
        raise _Unsure
    stack: list[int] = []
    spans: list[tuple[int, int, int, str]] = []
    for m in _BRACES_RE.finditer(lead):
        if m.group() == "{{":
            stack.append(m.start())
            continue
        if not stack:
            raise _Unsure
        start = stack.pop()
        end = m.end()
        stop = _NAME_END_RE.search(lead, start + 2, end)
        raw_name = lead[start + 2 : stop.start() if stop else end - 2]
        if (stop is not None and stop.group() == "{{") or "[[" in raw_name or "<" in raw_name:
            raise _Unsure
        spans.append((start, end, len(stack), _normalise(raw_name)))
    if stack:
        raise _Unsure
    spans.sort()
    return spans


def _parsed_templates(lead: str, spans: list[tuple[int, int, int, str]]) -> tuple[list[Template], list[Template]]:
    """mwparserfromhell Templates of the depth-0 spans holding an interesting template: (all in order, top-level)."""
    every: list[Template] = []
    top: list[Template] = []
    i = 0
    while i < len(spans):
        start, end, _, _ = spans[i]
        j = i + 1
        while j < len(spans) and spans[j][0] < end:
            j += 1
        group = spans[i:j]  # this depth-0 template and everything nested in it
        i = j
        wanted = [name for _, _, _, name in group if _interesting(name)]
        if not wanted:
            continue
        code = mwparserfromhell.parse(lead[start:end])
        if len(code.nodes) != 1 or not isinstance(code.nodes[0], Template):
            raise _Unsure
        templates = code.filter_templates(recursive=True)
        if [n for t in templates if _interesting(n := template_name(t))] != wanted:
            raise _Unsure
        every.extend(templates)  # the lead's templates at any depth, as filter_templates(recursive=True)
        if _ENCLOSING_MARKUP_RE.search(_outside(lead, spans, start)):
            if is_infobox_name(group[0][3]) or group[0][3] == "short description":
                raise _Unsure  # top-level or inside a link/tag/bold: only the full tree knows
            continue  # a date template in prose: whether it is top-level does not matter
        top.append(code.nodes[0])
    return every, top


def _outside(lead: str, spans: list[tuple[int, int, int, str]], before: int) -> str:
    """The lead text before ``before`` that is outside every template (what could enclose a template there)."""
    parts: list[str] = []
    pos = 0
    for start, end, depth, _ in spans:
        if start >= before:
            break
        if depth == 0:
            parts.append(lead[pos:start])
            pos = end
    parts.append(lead[pos:before])
    return "".join(parts)


def scan_fields(
    wikitext: str, *, title: str, page_id: int, revision_id: int | None, url_base: str
) -> dict[str, Any] | None:
    """The scalar row fields ``parse_biography`` would give, or None when the fast path cannot be sure."""
    prepared = prepare(wikitext, title=title, page_id=page_id, full=False)
    lead = prepared.lead_src
    try:
        spans = _spans(lead)
        every, top = _parsed_templates(lead, spans)
    except _Unsure:
        return None
    candidates = [t for t in every if is_infobox_name(template_name(t))]
    top_infoboxes = [t for t in top if is_infobox_name(template_name(t))]
    if candidates and not top_infoboxes:
        return None
    categories = categories_of(prepared.text)
    infobox, infobox_is_person, fields_raw = infobox_of(candidates, top_infoboxes, clean=False)

    def no_born_line() -> str:
        if any(hint in lead for hint in _BORN_HINTS):
            raise _Unsure
        return ""

    try:
        decision = decide(categories, infobox_is_person, fields_raw, every, no_born_line)
    except _Unsure:
        return None
    return {
        "page_id": page_id,
        "title": title,
        "revision_id": revision_id,
        "url": article_url(title, url_base),
        "is_person": decision.is_person,
        "is_living": decision.is_living,
        "birth_date": decision.birth_date,
        "birth_year": decision.birth_year,
        "death_year": decision.death_year,
        "short_description": short_description_of(top),
        "infobox_template": infobox.template if infobox is not None else None,
        "categories": categories,
    }
