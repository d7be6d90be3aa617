"""The preprocessing scans (tables, media links, closing tags) equal their simple line/character reference forms.

They were rewritten to skip from match to match instead of visiting every line or character (the scan runs
them on every candidate page); these simple reference implementations pin the behaviour, edge cases included
(unclosed tables and links running to the end, ``|}}`` that closes a template not a table, paragraph breaks).
"""

from __future__ import annotations

import random

import pytest

from wikipersona_data.wiki.clean import remove_media_links
from wikipersona_data.wiki.parse import _PAIRED_REF_RE, _remove_paired_refs, _remove_tables


def tables_reference(text: str) -> str:
    kept: list[str] = []
    depth = 0
    for line in text.split("\n"):
        stripped = line.lstrip(" \t:")
        if stripped.startswith("{|"):
            depth += 1
        elif depth and stripped.startswith("|}") and not stripped.startswith("|}}"):
            depth -= 1
            continue
        if depth == 0:
            kept.append(line)
    return "\n".join(kept)


def media_reference(text: str) -> str:
    import re

    out: list[str] = []
    position = 0
    for match in re.finditer(r"\[\[[ \t]*(?:file|image|media)[ \t]*:", text, re.IGNORECASE):
        start = match.start()
        if start < position:
            continue
        depth, i = 0, start
        while i < len(text) - 1:
            pair = text[i : i + 2]
            if pair == "[[":
                depth += 1
                i += 2
            elif pair == "]]":
                depth -= 1
                i += 2
                if depth == 0:
                    break
            elif pair == "\n\n":
                break
            else:
                i += 1
        out.append(text[position:start])
        position = i
    out.append(text[position:])
    return "".join(out)


@pytest.mark.parametrize("seed", range(4))
def test_tables_match_line_by_line_reference(seed):
    rng = random.Random(seed)
    alphabet = ["{|", "|}", "|}}", "\n", " ", ":", "x", "|-", "\t", "a|}", "{{", "}}"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert _remove_tables(text) == tables_reference(text), repr(text)


@pytest.mark.parametrize("seed", range(4))
def test_media_links_match_character_reference(seed):
    rng = random.Random(seed)
    alphabet = ["[[File:", "[[image :", "[[", "]]", "]", "[", "\n", "\n\n", "x", "|", "thumb", "[[Media:"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert remove_media_links(text) == media_reference(text), repr(text)


def test_real_table_and_caption():
    text = "A\n{| class=x\n|-\n| {{flag|US}} || 1\n|}\nB [[File:x.jpg|thumb|A [[cap]]]] C\n\nD"
    assert _remove_tables(text) == tables_reference(text) == "A\nB [[File:x.jpg|thumb|A [[cap]]]] C\n\nD"
    assert remove_media_links(text) == media_reference(text)
    assert "File:" not in remove_media_links(text) and "C\n\nD" in remove_media_links(text)


@pytest.mark.parametrize("seed", range(4))
def test_paired_refs_match_the_lazy_regex(seed):
    rng = random.Random(seed)
    alphabet = ["<ref>", "<REF name=a>", "<ref/>", "<ref name=x/>", "<ref name=/>", "</ref>", "</ref >", "</REF\n>"]
    alphabet += ["</refs>", "<ref", "</ref", ">", "/", " ", "x", "\n", "<refx>", "<ref\tgroup=n>"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert _remove_paired_refs(text) == _PAIRED_REF_RE.sub("", text), repr(text)
