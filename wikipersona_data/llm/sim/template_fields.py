"""Read a template's variables back out of a rendered prompt, by the request's declared schema name.

The simulator picks its responder by the schema name a request declares (``response_format.json_schema.name``
or the ``Respond with JSON for schema "<name>"`` line); that name is also the name of the prompt template
(``stages/templates/<name>.md``, ``verify/templates/<name>.md``). Instead of scraping phrases such as
``"They asked:"`` that are copied into the simulator (and silently stop matching when a template is edited),
a responder asks for a *variable*: ``field(text, "judge", "question")``. Where that variable sits is read from
the template file itself: the literal text the template puts before and after ``{{ question }}`` marks it in
the rendered prompt. Rewording a template moves the markers with it; only renaming a variable needs the
simulator to change, and ``tests/test_sim_templates.py`` renders every real template to catch that.

Markers: *before* is the last non-blank line of the nearest literal text preceding the variable (or the block
``{% for %}`` / ``{% if %}`` enclosing it); *after* is the following literal text up to the end of its first
non-blank line. Rendering copies literal text verbatim, so both occur in the prompt exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = (PACKAGE / "stages" / "templates", PACKAGE / "verify" / "templates", PACKAGE / "evaluate" / "templates")
_TAG = re.compile(r"({{.*?}}|{%.*?%}|{#.*?#})", re.S)
_OPEN = re.compile(r"{%-?\s*(for|if)\b")
_CLOSE = re.compile(r"{%-?\s*end(for|if)\b")


@dataclass(frozen=True)
class Markers:
    before: str
    after: str | None  # None: the value runs to the end of its line


def _expr(piece: str) -> str | None:
    if piece.startswith("{{"):
        return " ".join(piece[2:-2].strip(" -").split())
    return None


@cache
def _pieces(template: str) -> tuple[str, ...]:
    """The user part of the template split into literal text and tags (literals at even positions)."""
    for folder in TEMPLATE_DIRS:
        path = folder / f"{template}.md"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            user = text.partition("<<<user>>>")[2] or text
            return tuple(_TAG.split(user.replace("<<<user>>>", "")))  # several user messages read as one text
    raise KeyError(f"no template named {template!r}")


def _last_line(literal: str) -> str:
    """The literal from the start of its last non-blank line (a trailing newline kept)."""
    body = literal.rstrip()
    start = body.rfind("\n") + 1
    return literal[start:]


def _first_line(literal: str) -> str:
    """The literal up to the end of its first non-blank line (its newline kept)."""
    lead = len(literal) - len(literal.lstrip())
    end = literal.find("\n", lead)
    return literal if end < 0 else literal[: end + 1]


def _enclosing_start(pieces: tuple[str, ...], i: int) -> int:
    """Index of the innermost ``{% for %}`` / ``{% if %}`` enclosing piece ``i`` (``i`` itself if none)."""
    depth = 0
    for j in range(i - 1, -1, -1):
        if _CLOSE.match(pieces[j]):
            depth += 1
        elif _OPEN.match(pieces[j]):
            if depth == 0:
                return j
            depth -= 1
    return i


@cache
def markers(template: str, expr: str, occurrence: int = 0) -> Markers:
    pieces = _pieces(template)
    hits = [i for i, p in enumerate(pieces) if _expr(p) == expr]
    if len(hits) <= occurrence:
        raise KeyError(f"template {template!r} has no {{{{ {expr} }}}} (occurrence {occurrence})")
    i = hits[occurrence]
    j = _enclosing_start(pieces, i)
    before = next((p for p in reversed(pieces[:j]) if not p.startswith(("{{", "{%", "{#")) and p.strip()), "")
    after = next((p for p in pieces[i + 1 :] if not p.startswith(("{{", "{%", "{#")) and p.strip()), None)
    if after is not None and pieces[i + 1].startswith(("{{", "{%", "{#")):
        after = None  # another tag follows at once: the value ends with its line
    return Markers(_last_line(before), _first_line(after) if after is not None else None)


def field(text: str, template: str, expr: str) -> str:
    """The value rendered for the first ``{{ expr }}`` in ``text`` ("" when it cannot be found).

    A value on a line with text of its own is read with that line's shape (every literal part of it); a
    value alone on its lines (an answer, possibly of several lines) lies between the markers around it."""
    line = _line(template, expr)
    if line.anchored:
        match = line.pattern.search(text)
        return match.group(line.group + 1) if match else ""
    m = markers(template, expr)
    start = text.find(m.before)
    if start < 0:
        return ""
    start += len(m.before)
    stop = text.find(m.after, start) if m.after else text.find("\n", start)
    return text[start:] if stop < 0 else text[start:stop]


def rest_of_line(text: str, template: str, expr: str) -> str:
    """From where ``{{ expr }}`` (or the loop holding it) starts to the end of that line."""
    m = markers(template, expr)
    start = text.find(m.before)
    if start < 0:
        return ""
    start += len(m.before)
    stop = text.find("\n", start)
    return text[start:] if stop < 0 else text[start:stop]


def region(text: str, template: str, first: str, stop_at: str) -> str:
    """The text from where ``{{ first }}`` (or the block holding it) starts to where ``{{ stop_at }}``'s marker is."""
    start_marker = markers(template, first).before
    start = text.find(start_marker)
    if start < 0:
        return ""
    start += len(start_marker)
    stop = text.find(markers(template, stop_at).before, start)
    return text[start:] if stop < 0 else text[start:stop]


@dataclass(frozen=True)
class _Line:
    pattern: re.Pattern[str]
    group: int  # which group holds the expression asked for
    anchored: bool  # the line has literal text of its own (a bare "{{ x }}" line would match any line)


@cache
def _line(template: str, expr: str) -> _Line:
    """The first template line holding ``{{ expr }}`` as a regex: literal text escaped, each ``{{ }}`` a group,
    ``{% %}`` tags dropped."""
    source = "".join(_pieces(template))
    line = next((ln for ln in source.splitlines() if any(_expr(p) == expr for p in _TAG.split(ln))), None)
    if line is None:
        raise KeyError(f"template {template!r} has no {{{{ {expr} }}}}")
    parts, exprs, literal = [], [], ""
    for p in _TAG.split(line):
        if p.startswith("{{"):
            parts.append("(.+?)")
            exprs.append(_expr(p))
        elif not p.startswith(("{%", "{#")):
            parts.append(re.escape(p))
            literal += p
    pattern = "^" + "".join(parts) + "$"
    if pattern.endswith("(.+?)$"):
        pattern = pattern[: -len("(.+?)$")] + "(.+)$"
    return _Line(re.compile(pattern, re.MULTILINE), exprs.index(expr), bool(literal.strip()))


def line_values(text: str, template: str, expr: str) -> list[tuple[str, ...]]:
    """For a template line holding ``{{ expr }}`` (e.g. ``[{{ s.id }}] {{ s.text }}`` in a loop), the values of
    every variable on it, for each rendered line of that shape."""
    return _line(template, expr).pattern.findall(text)


def shown(text: str, template: str, condition: str) -> bool:
    """Whether the literal text inside ``{% if condition %}`` was rendered (e.g. ``allow_ties``)."""
    pieces = _pieces(template)
    for k, p in enumerate(pieces):
        if re.fullmatch(r"{%-?\s*if\s+" + re.escape(condition) + r"\s*-?%}", p):
            inside = pieces[k + 1]
            return bool(inside.strip()) and inside in text
    raise KeyError(f"template {template!r} has no {{% if {condition} %}}")
