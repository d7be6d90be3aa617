"""Small real dumps for the wiki tests: bz2 files written with Python's bz2, like Wikimedia's writers.

Not a test module (no ``test_`` prefix); the wiki test modules import it.
"""

from __future__ import annotations

import bz2
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from datatrove.pipeline.base import PipelineStep

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "wikipedia_samples"
SAMPLE_SINGLE = SAMPLES / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
SAMPLE_MULTI = SAMPLES / "gensim-enwiki-sample-multistream.xml.bz2"
SAMPLE_INDEX = SAMPLES / "gensim-enwiki-sample-multistream-index.txt.bz2"


def xml_escape(text: str) -> str:
    """MediaWiki's dump escaping: &, <, > and " become entities (the index copies <title> verbatim)."""
    return escape(text, {'"': "&quot;"})


NAMESPACES = ((0, ""), (1, "Talk"), (4, "Wikipedia"), (6, "File"), (10, "Template"), (14, "Category"))


@dataclass
class P:
    title: str
    page_id: int
    text: str = ""
    ns: int = 0
    redirect: str | None = None


def person_text(name: str, year: int = 1970, living: bool = True, extra: str = "") -> str:
    cats = "[[Category:Living people]]" if living else f"[[Category:{year + 70} deaths]]"
    return (
        "{{Short description|Test person}}\n"
        f"{{{{Infobox person\n| name = {name}\n| birth_date = {{{{Birth date and age|{year}|4|29}}}}\n}}}}\n"
        f"'''{name}''' (born April 29, {year}) is a fictional test person.<ref>A source</ref> {extra}\n\n"
        "== Career ==\nThey did things.<ref name=a>Another</ref>\n\n== Personal life ==\nPrivate.\n\n"
        f"[[Category:{year} births]]\n{cats}\n"
    )


def header(schema: str = "0.11") -> str:
    ns_xml = "".join(
        f'<namespace key="{k}" case="first-letter">{name}</namespace>' if name else f'<namespace key="{k}" />'
        for k, name in NAMESPACES
    )
    return (
        f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-{schema}/" version="{schema}" xml:lang="en">\n'
        "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <dbname>enwiki</dbname>\n"
        "    <base>https://en.wikipedia.org/wiki/Main_Page</base>\n    <generator>MediaWiki 1.45</generator>\n"
        f"    <case>first-letter</case>\n    <namespaces>{ns_xml}</namespaces>\n  </siteinfo>\n"
    )


def page_xml(page: P, schema: str = "0.11") -> str:
    redirect = f"    <redirect title={quoteattr(page.redirect)} />\n" if page.redirect else ""
    origin = f"      <origin>{page.page_id * 10}</origin>\n" if schema == "0.11" else ""
    size = len(page.text.encode("utf-8"))
    return (
        f"  <page>\n    <title>{xml_escape(page.title)}</title>\n    <ns>{page.ns}</ns>\n    <id>{page.page_id}</id>\n"
        f"{redirect}    <revision>\n      <id>{page.page_id * 10}</id>\n"
        "      <timestamp>2026-01-01T00:00:00Z</timestamp>\n"
        "      <contributor><username>Tester</username><id>1</id></contributor>\n"
        f"{origin}      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
        f'      <text bytes="{size}" xml:space="preserve">{xml_escape(page.text)}</text>\n'
        "      <sha1>x</sha1>\n    </revision>\n  </page>\n"
    )


def write_xml(path: Path, pages: list[P], schema: str = "0.11") -> Path:
    """A single-stream dump (``.bz2`` names are bz2-compressed, others plain XML)."""
    xml = (header(schema) + "".join(page_xml(p, schema) for p in pages) + "</mediawiki>\n").encode("utf-8")
    path.write_bytes(bz2.compress(xml) if path.name.endswith(".bz2") else xml)
    return path


def write_multistream(
    folder: Path, pages: list[P], *, per_stream: int = 2, schema: str = "0.11", index_bz2: bool = True
) -> tuple[Path, Path]:
    """A multistream dump + index the way recompressxml writes them (header, N pages per stream, footer)."""
    folder.mkdir(parents=True, exist_ok=True)
    dump = folder / "test-pages-articles-multistream.xml.bz2"
    index = folder / ("test-multistream-index.txt" + (".bz2" if index_bz2 else ""))
    blob = bytearray(bz2.compress(header(schema).encode("utf-8")))
    lines = []
    for i in range(0, len(pages), per_stream):
        offset = len(blob)
        group = pages[i : i + per_stream]
        blob += bz2.compress("".join(page_xml(p, schema) for p in group).encode("utf-8"))
        lines += [f"{offset}:{p.page_id}:{xml_escape(p.title)}\n" for p in group]
    blob += bz2.compress(b"</mediawiki>\n")
    dump.write_bytes(bytes(blob))
    text = "".join(lines).encode("utf-8")
    index.write_bytes(bz2.compress(text) if index_bz2 else text)
    return dump, index


def small_wiki() -> list[P]:
    """People, articles linking to them, redirects, a non-article namespace and an entity-escaped title."""
    return [
        P("Jane Doe", 10, person_text("Jane Doe", 1970, extra="See [[Acme Corp]].")),
        P("Acme Corp", 11, "'''Acme''' is a company founded by [[Jane Doe]] and [[John Roe|Roe]]. [[File:Logo.png]]"),
        P("John Roe", 12, person_text("John Roe", 1901, living=False)),
        P("Widgets", 13, "Widgets are made by [[jane_Doe|her]] and [[Jane Doe#Career]] and [[Acme Corp]]."),
        P("Jane", 14, redirect="Jane Doe", text="#REDIRECT [[Jane Doe]]"),
        P("J. Doe", 15, redirect="Jane Doe", text="#REDIRECT [[Jane Doe]]"),
        P("Talk:Jane Doe", 16, "[[Jane Doe]] is discussed here. [[Category:Living people]]", ns=1),
        P("AT&T Person", 17, person_text("AT&T Person", 1985, extra="Linked from [[Widgets]].")),
        P("Loop A", 18, redirect="Loop B", text="#REDIRECT [[Loop B]]"),
        P("Loop B", 19, redirect="Loop A", text="#REDIRECT [[Loop A]]"),
        P("Gadgets: a history", 20, "Gadgets and [[Jane Doe]]. Also [[Category:Gadgets]]."),
        P("Mary Major", 21, person_text("Mary Major", 1990, extra="Sister of [[Jane Doe]].")),
    ]


class KillOnRank(PipelineStep):
    """A scan step that SIGKILLs the process running task ``victim``, as the OOM killer would (module level, so
    the scan's worker processes can unpickle it)."""

    name = "kill -9"

    def __init__(self, victim: int) -> None:
        super().__init__()
        self.victim = victim

    def run(self, data, rank: int = 0, world_size: int = 1):  # type: ignore[no-untyped-def]
        if rank == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)
        yield from data
