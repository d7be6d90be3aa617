"""Wikicode -> clean visible text (wikipedia.md section 9).

``Wikicode.strip_code()`` drops every template (losing ``{{convert|5|km}}``, ``{{lang|fr|bonjour}}``, list
templates, dates), keeps ``<ref>`` text, File-link captions, category links and table cells, and glues ``<br>``
items together. So instead of stripping and patching we walk mwparserfromhell's node tree once and decide per node:

* dropped: refs and other invisible tags, tables, comments, File/Image/Media links, categories, interlanguage
  and interwiki links, unknown templates (no template expansion exists offline);
* kept as text: plain text, link labels, bold/italic/span/small contents, external link titles, HTML entities
  (decoded), an allow-list of templates whose visible text is known (convert, lang, nowrap, list templates,
  marriage, ``{{\\}}``, date templates, ...);
* ``<br>`` becomes "; " (a list separator in infobox values, a line break in prose).

Afterwards the text is NFC-normalised, ``\\xa0`` becomes a space, whitespace collapses inside lines and the
punctuation debris of removed templates ("()", "(; )", " ,", "( ;") is tidied.
"""

from __future__ import annotations

import html
import re
import unicodedata

from mwparserfromhell.nodes import Argument, Comment, ExternalLink, Heading, HTMLEntity, Tag, Template, Text, Wikilink
from mwparserfromhell.wikicode import Wikicode

from wikipersona_data.wiki.dates import render_date_template, template_name

#: Tags whose contents are never visible text (or are citations / markup we do not want in prose).
DROPPED_TAGS = frozenset(
    {
        "ref",
        "references",
        "table",
        "gallery",
        "math",
        "chem",
        "timeline",
        "imagemap",
        "categorytree",
        "graph",
        "inputbox",
        "score",
        "section",
        "templatedata",
        "syntaxhighlight",
        "source",
        "mapframe",
        "maplink",
        "noinclude",
        "style",
        "script",
        "hiero",
        "ce",
    }
)
#: Namespace prefixes of links that are not article links (lower case; aliases included).
NON_ARTICLE_NAMESPACES = frozenset(
    {
        "file",
        "image",
        "media",
        "category",
        "template",
        "wikipedia",
        "wp",
        "project",
        "help",
        "portal",
        "user",
        "talk",
        "user talk",
        "wikipedia talk",
        "template talk",
        "category talk",
        "file talk",
        "help talk",
        "portal talk",
        "special",
        "draft",
        "module",
        "mediawiki",
        "timedtext",
        "book",
        "education program",
        "gadget",
        "topic",
        "wiktionary",
        "wikt",
        "wikisource",
        "s",
        "wikiquote",
        "q",
        "wikinews",
        "n",
        "wikibooks",
        "b",
        "wikiversity",
        "v",
        "wikivoyage",
        "voy",
        "wikispecies",
        "species",
        "commons",
        "c",
        "meta",
        "m",
        "mw",
        "d",
        "wikidata",
        "foundation",
        "wmf",
        "phab",
        "w",
        "simple",
        "doi",
        "google",
        "imdbname",
        "imdbtitle",
    }
)
# Interlanguage link: a language-code-like prefix glued to the title ("fr:Paris"). Article titles with a short
# prefix have a space after the colon ("Ys: The Vanished Omens"), so they are not mistaken for one.
_INTERLANGUAGE_RE = re.compile(r"\s*([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3})\s*:(?!\s)")


def _is_interlanguage(target: str) -> bool:
    return _INTERLANGUAGE_RE.match(target) is not None


REFERENCE_TEMPLATES = ("reflist", "references", "notelist", "refbegin", "refend", "efn", "sfn", "harvnb", "rp")
_LIST_TEMPLATES = frozenset(
    {
        "hlist",
        "flatlist",
        "plainlist",
        "plain list",
        "ubl",
        "ublist",
        "unbulleted list",
        "bulleted list",
        "bullet list",
        "blist",
        "endflatlist",
        "startflatlist",
        "cslist",
        "comma separated entries",
        "enum",
        "ordered list",
    }
)
_FIRST_PARAM_TEMPLATES = frozenset(
    {
        "nowrap",
        "nobr",
        "nobreak",
        "small",
        "smaller",
        "big",
        "larger",
        "resize",
        "nobold",
        "noitalic",
        "longitem",
        "abbr",
        "sic",
        "flag",
        "flagu",
        "flagcountry",
        "flag country",
        "flagathlete",
        "nowiki",
        "baseball year",
        "by",
        "nfl year",
        "nfly",
        "afl year",
        "mlby",
        "nba year",
        "nhl year",
        "cfl year",
        "ill",
        "interlanguage link",
        "interlanguage link multi",
        "lang-x",
        "keypress",
        "em",
        "strong",
        "var",
        "mvar",
        "tooltip",
        "visible anchor",
        "anchored",
        "title case",
        "uc",
        "lc",
        "ucfirst",
        "lcfirst",
        "smallcaps",
        "sc",
        "highlight",
        "hilite",
        "center",
        "centre",
        "quote",
        "blockquote",
        "cquote",
        "quotation",
        "text",
        "plainlink",
        "ship",
    }
)
_SECOND_PARAM_TEMPLATES = frozenset({"lang", "transl", "transliteration", "script", "sortname"})
_LITERAL_TEMPLATES = {
    "\\": "/",
    "·": " · ",
    "dot": " · ",
    "middot": " · ",
    "•": " • ",
    "bull": " • ",
    "ndash": "–",
    "snd": " – ",
    "spaced ndash": " – ",
    "spnd": " – ",
    "mdash": "—",
    "spaced mdash": " — ",
    "nbsp": " ",
    "-": "",
    "'": "'",
    '"': '"',
    "'s": "'s",
    "en dash": "–",
    "em dash": "—",
    "=": "=",
    "!": "|",
    "pipe": "|",
    "colon": ":",
    "thinsp": " ",
    "zwsp": "",
    "sp": " ",
    "break": "; ",
    "clear": "",
    '-"': "",
}


def normalise_link_title(raw: str) -> str | None:
    """Article title of a link target, or None when it is not an article link (namespace, interwiki, self-link).

    "first letter upper, '_' -> ' ', no fragment": ``[[barack_Obama#Early life|x]]`` -> "Barack Obama".
    """
    if _is_interlanguage(html.unescape(raw).strip().removeprefix(":")):
        return None
    title = html.unescape(raw).replace("_", " ")
    title = " ".join(title.split())
    if title.startswith(":"):
        title = title[1:].strip()
    title = title.split("#", 1)[0].strip()
    if not title or "{" in title or "<" in title or "[" in title:
        return None
    if ":" in title:
        prefix = title.split(":", 1)[0].strip().lower()
        if prefix in NON_ARTICLE_NAMESPACES:
            return None
    return title[0].upper() + title[1:]


def _link_kind(title: str) -> str:
    """'drop' for File/Category/interlanguage/interwiki links, 'text' for inline links (incl. [[:Category:X]])."""
    t = title.strip()
    if t.startswith(":"):
        return "text"
    if ":" in t:
        prefix = t.split(":", 1)[0].strip().replace("_", " ").lower()
        if prefix in ("file", "image", "media", "category") or _is_interlanguage(t):
            return "drop"
    return "text"


class Renderer:
    """One walk over the node tree. ``prose`` selects how birth-date templates read ("born ..." vs a bare date)."""

    def __init__(self, *, prose: bool) -> None:
        self.prose = prose

    def render(self, code: Wikicode | None) -> str:
        if code is None:
            return ""
        out: list[str] = []
        for node in code.nodes:
            piece = self.node(node, out)
            if piece:
                out.append(piece)
        return "".join(out)

    def node(self, node, previous: list[str]) -> str:
        if isinstance(node, Text):
            return node.value
        if isinstance(node, Wikilink):
            if _link_kind(str(node.title)) == "drop":
                return ""
            if node.text is not None:
                return self.render(node.text)
            return self.render(node.title).lstrip(":")
        if isinstance(node, Template):
            return self.template(node, previous)
        if isinstance(node, Tag):
            return self.tag(node)
        if isinstance(node, HTMLEntity):
            return node.normalize()
        if isinstance(node, ExternalLink):
            return self.render(node.title) if node.title is not None else ""
        if isinstance(node, Heading):
            return "\n" + self.render(node.title).strip() + "\n"
        if isinstance(node, (Comment, Argument)):
            return ""
        return ""

    def tag(self, node: Tag) -> str:
        name = str(node.tag).strip().lower()
        if name in DROPPED_TAGS:
            return ""
        if name == "br":
            return "; "
        if name in ("li", "dt", "dd") and node.wiki_markup:
            return ""  # list markers: the item text follows as plain nodes
        if name in ("hr",):
            return "\n"
        if node.self_closing or node.contents is None:
            return ""
        inner = self.render(node.contents)
        if name in ("p", "div", "blockquote", "poem", "center"):
            return "\n" + inner + "\n"
        return inner

    def template(self, node: Template, previous: list[str]) -> str:
        name = template_name(node)
        if name in _LITERAL_TEMPLATES:
            return _LITERAL_TEMPLATES[name]
        date_text = render_date_template(node, prose=self.prose)
        if date_text is not None:
            if date_text.startswith("born ") and re.search(r"\b(?:born|b\.)\s*$", "".join(previous[-3:]), re.I):
                return date_text[len("born ") :]
            return date_text
        positional = [p for p in node.params if not p.showkey]
        named = {str(p.name).strip().lower(): p for p in node.params if p.showkey}
        if name in _LIST_TEMPLATES:
            items = [self.list_items(p.value) for p in positional]
            return "; ".join(i for i in items if i)
        if name in _FIRST_PARAM_TEMPLATES or name.startswith("lang-"):
            return self.render(positional[0].value) if positional else ""
        if name in _SECOND_PARAM_TEMPLATES:
            if name == "sortname" and len(positional) >= 2:
                return f"{self.render(positional[0].value).strip()} {self.render(positional[1].value).strip()}"
            return self.render(positional[1].value) if len(positional) > 1 else ""
        if name in ("convert", "cvt"):
            return self.convert(positional)
        if name == "marriage":
            return self.marriage(positional, named)
        if name == "url":
            target = positional[1] if len(positional) > 1 else (positional[0] if positional else None)
            return self.render(target.value).strip() if target is not None else ""
        if name == "height":
            return self.height(named)
        if name in ("circa",):
            return "c. " + (self.render(positional[0].value).strip() if positional else "")
        if name == "oldstyledate" and len(positional) >= 2:
            # {{OldStyleDate|February 2|1905|January 20}}: the New Style date is what readers see first.
            return f"{self.render(positional[0].value).strip()}, {self.render(positional[1].value).strip()}"
        return ""

    def list_items(self, value: Wikicode) -> str:
        """A list-template parameter: either one item, or a "* a\\n* b" bulleted block (flatlist/plainlist)."""
        text = self.render(value)
        lines = [line.strip().lstrip("*#:;").strip() for line in text.split("\n")]
        return "; ".join(line for line in lines if line)

    def convert(self, positional) -> str:
        values = [self.render(p.value).strip() for p in positional]
        if len(values) >= 4 and values[1] in ("-", "–", "to", "and", "or", "x", "×", "by", "+/-", "±", "to(-)"):
            return f"{values[0]} {values[1]} {values[2]} {values[3]}"
        if len(values) >= 2:
            return f"{values[0]} {values[1]}"
        return values[0] if values else ""

    def marriage(self, positional, named) -> str:
        values = [self.render(p.value).strip() for p in positional]
        if not values:
            return ""
        spouse, years = values[0], [v for v in values[1:3] if v]
        if not years:
            return spouse
        end_reason = self.render(named["end"].value).strip() if "end" in named else ""
        if len(years) == 2:
            span = f"m. {years[0]}; {end_reason} {years[1]}" if end_reason else f"m. {years[0]}–{years[1]}"
        else:
            span = f"m. {years[0]}"
        return f"{spouse} ({span})"

    def height(self, named) -> str:
        parts = []
        for unit in ("m", "meter", "meters", "cm", "ft", "in"):
            if unit in named:
                parts.append(f"{self.render(named[unit].value).strip()} {'m' if unit.startswith('meter') else unit}")
        return " ".join(parts)


# --- text normalisation ------------------------------------------------------------------------------------

_SPACES_RE = re.compile(r"[^\S\n]+")
_EMPTY_PARENS_RE = re.compile(r"\(\s*[;,:]?\s*\)")
_OPEN_DEBRIS_RE = re.compile(r"\(\s*[;,]\s*")
_CLOSE_DEBRIS_RE = re.compile(r"\s*[;,]\s*\)")
_SPACE_BEFORE_PUNCT_RE = re.compile(r" +([,.;:!?])")
_DOUBLE_SEP_RE = re.compile(r";\s*;")
_SPACE_IN_PARENS_RE = re.compile(r"\(\s+|\s+\)")
_PAREN_ITEM_RE = re.compile(r";\s*\(")
_COMMA_SEP_RE = re.compile(r",\s*;\s*")


_MEDIA_LINK_START_RE = re.compile(r"\[\[[ \t]*(?:file|image|media)[ \t]*:", re.IGNORECASE)


def remove_media_links(text: str) -> str:
    """Drop ``[[File:...]]``/``[[Image:...]]`` spans (nested links counted) from raw wikitext before parsing.

    A caption with unbalanced quotes (real "Ambiguity" article: ``\'\'\'Pepe ...\'\'``) makes mwparserfromhell
    degrade the whole File link to text, leaking "thumb|..." into prose; images are never text we keep.
    """
    out: list[str] = []
    position = 0
    for match in _MEDIA_LINK_START_RE.finditer(text):
        start = match.start()
        if start < position:
            continue  # nested inside a span already removed
        out.append(text[position:start])
        position = _media_link_end(text, start)
    out.append(text[position:])
    return "".join(out)


_MEDIA_SCAN_RE = re.compile(r"\[\[|\]\]|\n\n")


def _media_link_end(text: str, start: int) -> int:
    """Where the link opened at ``start`` ends: after its closing ``]]``, or at a paragraph break if unclosed.

    An unclosed link with no paragraph break runs to the text's last character (kept, as the character-by-
    character scan this replaces did).
    """
    depth = 0
    end = start
    for m in _MEDIA_SCAN_RE.finditer(text, start):
        token = m.group()
        if token == "\n\n":
            return m.start()  # an unclosed File link never spans a paragraph break
        depth += 1 if token == "[[" else -1
        end = m.end()
        if depth == 0:
            return end
    return end if end >= len(text) else max(len(text) - 1, start)


# Safety net for constructs the parser degraded to text (crossing/unbalanced markup): visible text only.
_LEFTOVER_LINK_RE = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]")
_LEFTOVER_TEMPLATE_RE = re.compile(r"\{\{[^{}]*\}\}")
_LEFTOVER_QUOTES_RE = re.compile(r"'{2,}")
_LEFTOVER_TAG_RE = re.compile(r"</?(?:ref|span|small|big|sup|sub|div|center|font|b|i|u|s|abbr|nowiki)\b[^>]*>", re.I)


def scrub_leftovers(line: str) -> str:
    if "[[" in line or "{{" in line:
        for _ in range(3):
            line = _LEFTOVER_TEMPLATE_RE.sub("", _LEFTOVER_LINK_RE.sub(r"\1", line))
        line = line.replace("[[", "").replace("]]", "").replace("{{", "").replace("}}", "")
    if "''" in line:
        line = _LEFTOVER_QUOTES_RE.sub("", line)
    if "<" in line:
        line = _LEFTOVER_TAG_RE.sub("", line)
    return line


def tidy(text: str, *, keep_lines: bool = True) -> str:
    """NFC, \\xa0 -> space, whitespace collapsed per line, debris of removed templates cleaned."""
    text = unicodedata.normalize("NFC", text).replace("\xa0", " ").replace("\u200b", "")
    text = text.replace("\t", " ").replace("\r", "")
    lines = []
    for line in text.split("\n"):
        line = _SPACES_RE.sub(" ", scrub_leftovers(line))
        for _ in range(2):
            line = _DOUBLE_SEP_RE.sub(";", line)
            line = _EMPTY_PARENS_RE.sub("", line)
            line = _OPEN_DEBRIS_RE.sub("(", line)
            line = _CLOSE_DEBRIS_RE.sub(")", line)
            line = _SPACE_IN_PARENS_RE.sub(lambda m: m.group(0).strip(), line)
            line = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", line)
            line = _SPACES_RE.sub(" ", line)
        line = line.strip().strip(";").strip()
        lines.append(line)
    if not keep_lines:
        return " ".join(line for line in lines if line)
    paragraphs: list[str] = []
    for line in lines:
        if line:
            paragraphs.append(line)
    return "\n".join(paragraphs)


def clean_prose(code: Wikicode) -> str:
    """Article prose as paragraphs separated by "\\n" (list items and headings become their own lines)."""
    return tidy(Renderer(prose=True).render(code))


def clean_value(code: Wikicode) -> str:
    """An infobox value on one line: lists and <br> become "; "."""
    text = Renderer(prose=False).render(code)
    lines = [line.strip().lstrip("*#:;").strip() for line in text.split("\n")]
    text = tidy("; ".join(line for line in lines if line), keep_lines=False)
    # "Michael Cooper<br />(1994–2002)" is one item with its dates, not two items; "A,<br>B" has one separator.
    return _COMMA_SEP_RE.sub("; ", _PAREN_ITEM_RE.sub(" (", text))
