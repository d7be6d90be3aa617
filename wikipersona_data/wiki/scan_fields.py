"""The scan's fast path: a candidate-table row's scalar fields without parsing the lead into a tree.

``parse_biography`` builds an mwparserfromhell tree of the whole lead and renders its prose, but a scan row
needs only is_person, is_living, birth_date/year, death_year, short_description, infobox_template and
categories. Building the tree is what costs: mwparserfromhell's C tokenizer is ~20x cheaper than its Python
tree builder. So here the lead is only *scanned*: ``{{``/``}}`` are matched with a stack (every template's
span, depth and name), and the tokenizer's token stream of the whole lead, read without a tree, says which
templates mwparserfromhell sees, in context, and which are top-level (nothing open around them). Small
interesting templates (date, circa, short description) are then parsed on their own; infoboxes, the big
ones, are never built: their parameters are split at ``|`` and the first ``=`` outside nested templates,
links and tags, and the split must equal the tokenizer's separators and equals signs for that template. The
decisions go through the same functions as ``parse_biography`` (``prepare``, ``categories_of``,
``short_description_of``, ``decide``), so both paths agree by construction once they see the same templates
and parameters (tests/test_wiki_scan_fields.py checks it on every sample, demo and fixture page and on
spliced real pages).

The fast path gives up (returns None and the scan runs ``parse_biography(full=False)``) exactly when:

* the lead has ``{{{`` (a parameter reference) or unbalanced ``{{``/``}}``, or a tag whose content
  mwparserfromhell does not parse as wikitext (``<nowiki>``, ``<math>``, ``<pre>``, ``<source>``, ...);
* a template name contains markup (``{{``, ``[[``, ``<``);
* the tokenizer's templates differ from the brace scan's (count or nesting depth; e.g. broken markup later
  in the lead made it treat a template as text), or a ``|``/``=`` belongs to something other than a template;
* a small interesting template does not parse on its own to one template of the same name, or an infobox's
  ``|``/``=`` split differs from the tokenizer's;
* no birth date comes from the infobox or lead templates and the lead contains "born", "b." or "&#": the
  "(born <date>)" rule reads the *rendered* lead, which only the full parser produces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mwparserfromhell.nodes import Template
from mwparserfromhell.parser import CTokenizer, tokens
from mwparserfromhell.parser.builder import Builder
from mwparserfromhell.wikicode import Wikicode

from wikipersona_data.wiki.dates import (
    CIRCA_TEMPLATES,
    DATE_TEMPLATES,
    PartialDate,
    TemplateDates,
    date_from_value,
    dates_from_template,
    template_name,
)
from wikipersona_data.wiki.parse import (
    NOT_FIELDS,
    article_url,
    categories_of,
    decide,
    prepare,
    short_description_of,
)
from wikipersona_data.wiki.person import PERSON_INFOBOXES, is_infobox_name, is_person_infobox

_BRACES_RE = re.compile(r"\{\{|\}\}")
_OPAQUE_TAG_RE = re.compile(
    r"<(?:nowiki|math|pre|source|syntaxhighlight|chem|ce|score|timeline|gallery|includeonly|noinclude|onlyinclude|"
    r"poem|hiero|graph|mapframe|maplink|templatedata|inputbox|imagemap)\b",
    re.IGNORECASE,
)
_NAME_END_RE = re.compile(r"\||\{\{|\}\}")
_BORN_HINTS = ("born", "b.", "&#")


class _Unsure(Exception):
    """The fast path cannot decide; the caller falls back to the mwparserfromhell path."""


Span = tuple[int, int, int, str]  # (start, end, depth, normalised name)

_TOKENIZER = CTokenizer()
_OPENERS = frozenset(
    {
        tokens.ArgumentOpen,
        tokens.WikilinkOpen,
        tokens.ExternalLinkOpen,
        tokens.HeadingStart,
        tokens.TagOpenOpen,
        tokens.CommentStart,
        tokens.HTMLEntityStart,
    }
)
_CLOSERS = frozenset(
    {
        tokens.TemplateClose,
        tokens.ArgumentClose,
        tokens.WikilinkClose,
        tokens.ExternalLinkClose,
        tokens.HeadingEnd,
        tokens.TagCloseSelfclose,
        tokens.TagCloseClose,
        tokens.CommentEnd,
        tokens.HTMLEntityEnd,
    }
)
_STRUCTURE = _OPENERS | _CLOSERS | {tokens.TemplateOpen, tokens.TemplateParamSeparator, tokens.TemplateParamEquals}
_SPLIT_RE = re.compile(r"\{\{|\[\[|\[(?:https?:)?//|<[A-Za-z/]|\||=")
_LINK_RE = re.compile(r"\[\[|\]\]")


@dataclass
class _Box:
    """An infobox-family template without a tree: its name and (key or None, raw value) parameters."""

    name: str
    params: list[tuple[str | None, str]] = field(default_factory=list)

    def background(self) -> str | None:
        """``template.get("background").value.strip_code()`` (the last such parameter, as MediaWiki reads it)."""
        values = [value for key, value in self.params if key == "background"]
        return _parse(values[-1]).strip_code() if values else None


def _normalise(name: str) -> str:
    name = " ".join(name.replace("_", " ").split()).lower()
    return name[len("template:") :].strip() if name.startswith("template:") else name


def _small(name: str) -> bool:
    return name in DATE_TEMPLATES or name in CIRCA_TEMPLATES or name == "short description"


def _spans(lead: str) -> list[Span]:
    """Every template, in order of start (mwparserfromhell's ``filter_templates(recursive=True)`` order)."""
    if "{{{" in lead or _OPAQUE_TAG_RE.search(lead):
        raise _Unsure
    stack: list[int] = []
    spans: list[Span] = []
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


def _structure(lead: str) -> list[tuple[bool, int, str]]:
    """mwparserfromhell's view of every template of the lead, in order: (top-level?, depth, "S"/"E" signature).

    From the C tokenizer's token stream, in context (broken markup later in the lead can make the tokenizer
    give up on an earlier template; seen on a truncated real article), without building the tree. A template
    is top-level when nothing (template, link, tag, heading, ...) is open around it; its signature is one "S"
    per ``|`` and one "E" per parameter ``=`` while it is the innermost open construct.
    """
    kinds = [kind for kind in map(type, _TOKENIZER.tokenize(lead, 0, False)) if kind in _STRUCTURE]
    templates: list[tuple[bool, int, list[str]]] = []
    stack: list[int] = []  # open constructs: a template's index, -1 for anything else
    depth = 0  # open templates
    for kind in kinds:
        if kind is tokens.TemplateOpen:
            templates.append((not stack, depth, []))
            stack.append(len(templates) - 1)
            depth += 1
        elif kind in _OPENERS:
            stack.append(-1)
        elif kind in _CLOSERS:
            if not stack:
                raise _Unsure
            depth -= stack.pop() >= 0
        else:  # a parameter separator or equals sign
            if not stack or stack[-1] < 0:
                raise _Unsure
            templates[stack[-1]][2].append("S" if kind is tokens.TemplateParamSeparator else "E")
    if stack:
        raise _Unsure
    return [(top, level, "".join(signature)) for top, level, signature in templates]


def _split_params(lead: str, start: int, end: int, ends: dict[int, int]) -> tuple[list[tuple[str | None, str]], str]:
    """A template's parameters split at ``|`` (and the first ``=``) outside nested templates, links and tags."""
    seps: list[int] = []
    equals: dict[int, int] = {}
    pos, stop = start + 2, end - 2
    while True:
        m = _SPLIT_RE.search(lead, pos, stop)
        if m is None:
            break
        token, pos = m.group(), m.end()
        if token == "{{":
            pos = ends[m.start()]
        elif token == "[[":
            pos = _link_end(lead, m.start(), stop)
        elif token.startswith("["):
            close = lead.find("]", pos, stop)
            pos = close + 1 if close >= 0 else pos
        elif token.startswith("<"):
            close = lead.find(">", pos, stop)
            pos = close + 1 if close >= 0 else pos
        elif token == "|":
            seps.append(m.start())
        elif seps and seps[-1] not in equals:
            equals[seps[-1]] = m.start()
    params: list[tuple[str | None, str]] = []
    signature: list[str] = []
    for i, sep in enumerate(seps):
        param_end = seps[i + 1] if i + 1 < len(seps) else stop
        signature.append("S")
        if sep in equals:
            signature.append("E")
            params.append((lead[sep + 1 : equals[sep]].strip(), lead[equals[sep] + 1 : param_end]))
        else:
            params.append((None, lead[sep + 1 : param_end]))
    return params, "".join(signature)


def _link_end(lead: str, start: int, stop: int) -> int:
    """End of the ``[[...]]`` starting at ``start`` (nested links counted); just past ``[[`` if unclosed."""
    depth = 0
    for m in _LINK_RE.finditer(lead, start, stop):
        depth += 1 if m.group() == "[[" else -1
        if depth == 0:
            return m.end()
    return start + 2


def _parse(text: str) -> Wikicode:
    """``mwparserfromhell.parse(text)`` (what ``Parser().parse`` does) without its per-call imports and a new
    C tokenizer for every small template: a third of a small template's parse time."""
    return Builder().build(_TOKENIZER.tokenize(text, 0, False))


def _parse_small(text: str, name: str) -> Template:
    code = _parse(text)
    if len(code.nodes) != 1 or not isinstance(code.nodes[0], Template) or template_name(code.nodes[0]) != name:
        raise _Unsure
    return code.nodes[0]


@dataclass
class _Lead:
    """What the lead's templates say, as parse.py reads it from the tree."""

    date_templates: list[Template] = field(default_factory=list)  # in lead order, any depth
    small: dict[str, Template] = field(default_factory=dict)  # source text -> its template (date, circa)
    boxes: list[tuple[int, int, _Box]] = field(default_factory=list)  # infobox family, any depth
    top_boxes: list[tuple[int, int, _Box]] = field(default_factory=list)  # top-level ones
    top_short: list[Template] = field(default_factory=list)  # top-level short descriptions


def _read_lead(lead: str, spans: list[Span]) -> _Lead:
    structure = _structure(lead)
    if [depth for _, _, depth, _ in spans] != [depth for _, depth, _ in structure]:
        raise _Unsure  # the tokenizer sees other templates than the brace scan
    facts = _Lead()
    ends = {start: end for start, end, _, _ in spans}
    for (start, end, _, name), (top, _, signature) in zip(spans, structure, strict=True):
        if is_infobox_name(name):
            params, mine = _split_params(lead, start, end, ends)
            if mine != signature:
                raise _Unsure
            box = (start, end, _Box(name, params))
            facts.boxes.append(box)
            if top:
                facts.top_boxes.append(box)
        elif _small(name):
            template = _parse_small(lead[start:end], name)
            if name != "short description":
                facts.date_templates.append(template)
                facts.small[lead[start:end]] = template
            elif top:
                facts.top_short.append(template)
    return facts


def _infobox(facts: _Lead) -> tuple[str | None, bool, dict[str, str]]:
    """parse.infobox_of without cleaning: primary template name, person?, raw fields (primary then embedded)."""
    is_person = any(
        is_person_infobox(box.name, box.background() if box.name in PERSON_INFOBOXES else None)
        for _, _, box in facts.boxes
    )
    if not facts.boxes:
        return None, is_person, {}
    start, end, primary = (facts.top_boxes or facts.boxes)[0]
    embedded = [box for s, _, box in facts.boxes if start < s < end]
    raw: dict[str, str] = {}
    for box in [primary, *embedded]:
        for key, value in box.params:
            if key is None or not key or key in raw or key in NOT_FIELDS:
                continue
            raw[key] = value
    return primary.name, is_person, raw


def _value_dates(small: dict[str, Template]) -> Callable[[str], tuple[PartialDate | None, TemplateDates | None]]:
    """``date_from_value`` that reuses the lead's already built date template when a value is just that template.

    Most infobox birth/death values are one date template between whitespace: ``date_from_value`` would build
    it again. Whitespace is plain text to mwparserfromhell, so the value's first template (what
    ``date_from_value`` reads first) is that same template, and it is answered the same way; any other value,
    or a template that gives no date, goes to ``date_from_value`` itself.
    """

    def read(value: str) -> tuple[PartialDate | None, TemplateDates | None]:
        template = small.get(value.strip())
        if template is not None:
            info = dates_from_template(template)
            if info is not None and (info.birth or info.death):
                return None, info
        return date_from_value(value)

    return read


def scan_fields(
    wikitext: str, *, title: str, page_id: int, revision_id: int | None, url_base: str
) -> dict[str, Any] | None:
    """The scalar row fields ``parse_biography`` would give, or None when the fast path cannot be sure."""
    prepared = prepare(wikitext, title=title, page_id=page_id, full=False, count_refs=False)
    lead = prepared.lead_src
    try:
        facts = _read_lead(lead, _spans(lead))
    except _Unsure:
        return None
    categories = categories_of(prepared.text)
    infobox_template, infobox_is_person, fields_raw = _infobox(facts)

    def no_born_line() -> str:
        if any(hint in lead for hint in _BORN_HINTS):
            raise _Unsure
        return ""

    try:
        decision = decide(
            categories, infobox_is_person, fields_raw, facts.date_templates, no_born_line, _value_dates(facts.small)
        )
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
        "short_description": short_description_of(facts.top_short),
        "infobox_template": infobox_template,
        "categories": categories,
    }
