"""MediaWiki title normalisation.

Users type titles the way URLs show them (``Andre_agassi``), index files store them XML-escaped
(``AT&amp;T``) and wikitext links write them in lower case (``[[tennis player]]``). MediaWiki treats
all of these as one page: underscores are spaces, runs of whitespace collapse, and the first letter
is upper-cased (on wikis with ``case=first-letter``, as all Wikipedias). Every lookup key and every
inbound-link key in this package goes through :func:`normalize_title`, so a link, a redirect
target, an index line and a user's argument meet on the same string.
"""

from __future__ import annotations

import html
import re

_SPACES = re.compile(r"[\s_\u00a0]+")


def normalize_title(raw: str) -> str:
    """The canonical form MediaWiki would store: entities decoded, ``_`` -> space, first letter upper."""
    title = html.unescape(raw) if "&" in raw else raw
    title = _SPACES.sub(" ", title).strip()
    if title.startswith(":"):  # [[:Foo]] is an inline link to Foo
        title = title[1:].lstrip()
    if not title:
        return ""
    first = title[0]
    upper = first.upper()
    # MediaWiki keeps a character whose upper case is longer (e.g. 'ß' -> 'SS') as it is.
    return (upper if len(upper) == 1 else first) + title[1:]


def fold_title(raw: str) -> str:
    """A case-insensitive key, used only to suggest or recover from case mistakes (``Andre agassi``)."""
    return normalize_title(raw).casefold()


def strip_fragment(target: str) -> str:
    """``Foo#Early life`` -> ``Foo``: redirects and links may point at a section of the page."""
    return target.split("#", 1)[0]
