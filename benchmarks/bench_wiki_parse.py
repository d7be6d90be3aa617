"""Parse rate of parse_biography, full=True vs full=False, the scan's scan_fields, and the prefilter.

Measured side by side in one run on the shared real wikitext files (../shared/wikipedia_samples/wikitext) and
the non-redirect article pages of the gensim enwiki sample (real, long articles). Prints MB/s of wikitext
(characters / 1e6 per second) for each mode and the cheap/full speed ratio (target: >= 5x), the scan row fast
path (scan_fields, on every page, fallbacks to full=False included, as the scan runs it), the time spent in
sentence splitting (sentencex) within full parses, and the prefilter's MB/s.

    .venv/bin/python benchmarks/bench_wiki_parse.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import html
import re
import sys
import time
from pathlib import Path

from wikipersona_data.wiki.parse import ParseFailure, parse_biography
from wikipersona_data.wiki.person import looks_like_person
from wikipersona_data.wiki.scan_fields import scan_fields
from wikipersona_data.wiki.sentences import split_sentences

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "wikipedia_samples"
_PAGE_RE = re.compile(r"<page>.*?</page>", re.DOTALL)


def dump_articles() -> list[tuple[str, str]]:
    path = SAMPLES / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as f:
        xml = f.read()
    out = []
    for page in _PAGE_RE.findall(xml):
        if "<ns>0</ns>" not in page or "<redirect" in page:
            continue
        title = html.unescape(page.split("<title>", 1)[1].split("</title>", 1)[0])
        text = html.unescape(page.split("<text", 1)[1].split(">", 1)[1].split("</text>", 1)[0])
        out.append((title, text))
    return out


def sample_files() -> list[tuple[str, str]]:
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted((SAMPLES / "wikitext").glob("*.wikitext"))]


def rate(pages: list[tuple[str, str]], *, full: bool, repeat: int) -> tuple[float, int]:
    chars = sum(len(t) for _, t in pages)
    best = float("inf")
    failures = 0
    for _ in range(repeat):
        failures = 0
        start = time.perf_counter()
        for title, text in pages:
            try:
                parse_biography(text, title=title, page_id=0, revision_id=None, full=full)
            except ParseFailure:
                failures += 1
        best = min(best, time.perf_counter() - start)
    return chars / 1e6 / best, failures


def scan_rate(pages: list[tuple[str, str]], *, repeat: int) -> tuple[float, int]:
    """scan_fields with the scan's fallback to full=False; returns MB/s and how many pages fell back."""
    chars = sum(len(t) for _, t in pages)
    best = float("inf")
    fallbacks = 0
    for _ in range(repeat):
        fallbacks = 0
        start = time.perf_counter()
        for title, text in pages:
            args = {"title": title, "page_id": 0, "revision_id": None}
            if scan_fields(text, url_base="https://en.wikipedia.org/wiki/", **args) is None:
                fallbacks += 1
                with contextlib.suppress(ParseFailure):
                    parse_biography(text, full=False, **args)
        best = min(best, time.perf_counter() - start)
    return chars / 1e6 / best, fallbacks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not SAMPLES.is_dir():
        print(f"samples not found at {SAMPLES}", file=sys.stderr)
        return 2
    sets = {"shared wikitext (15 living people)": sample_files(), "gensim dump articles (106)": dump_articles()}
    for name, pages in sets.items():
        mb = sum(len(t) for _, t in pages) / 1e6
        full, full_fail = rate(pages, full=True, repeat=args.repeat)
        cheap, cheap_fail = rate(pages, full=False, repeat=args.repeat)
        fast, fallbacks = scan_rate(pages, repeat=args.repeat)
        # Share of sentence splitting: re-split the clean texts a full parse produced, timed on their own.
        bios = [parse_biography(text, title=t, page_id=0, revision_id=None) for t, text in pages]
        split_time = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for b in bios:
                for text in [b.lead, *(s.text for s in b.sections)]:
                    split_sentences(text)
            split_time = min(split_time, time.perf_counter() - start)
        full_time = mb / full
        start = time.perf_counter()
        for _ in range(20):
            for _, text in pages:
                looks_like_person(text)
        prefilter = 20 * mb / (time.perf_counter() - start)
        print(f"{name}: {len(pages)} pages, {mb:.2f} MB wikitext")
        print(f"  full=True : {full:6.2f} MB/s  ({full_fail} ParseFailure)")
        print(f"  full=False: {cheap:6.2f} MB/s  ({cheap_fail} ParseFailure)")
        print(f"  cheap/full ratio: {cheap / full:.1f}x (target >= 5x)")
        print(f"  scan_fields (+ fallback): {fast:6.2f} MB/s  ({fallbacks} pages fell back to full=False)")
        print(f"  scan_fields/cheap ratio: {fast / cheap:.1f}x, scan_fields/full ratio: {fast / full:.1f}x")
        print(f"  sentence splitting (sentencex) share of a full parse: {split_time / full_time:.0%}")
        print(f"  looks_like_person prefilter: {prefilter:,.0f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
