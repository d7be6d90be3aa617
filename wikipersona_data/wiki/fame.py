"""The fame signal: how prominent a page is, computed from the dump itself in the same pass as the scan.

pages-articles carries no page views, so prominence is estimated from what the dump does contain
(wikipedia.md section 1). Per person page the scan reports:

* ``inbound_links``: number of ns-0 article pages that link to the page's title (each linking page
  counted once, whatever the number of links it holds; links through a redirect count for the
  redirect's title, not the target's);
* ``redirects_in``: number of ns-0 redirect pages whose target is the page;
* ``wikitext_bytes``: length of the wikitext (``<text bytes=...>``);
* ``ref_count``: number of ``<ref`` tags (citations);
* ``section_count``: number of ``==headings==``.

They are combined as::

    fame_score = 1.0 * log1p(inbound_links) + 0.5 * log1p(redirects_in)
               + 0.25 * log1p(wikitext_bytes / 1000) + 0.25 * log1p(ref_count) + 0.1 * log1p(section_count)

rounded to 4 decimals. Log scales because all five are heavy-tailed; inbound links dominate because
they measure how much of the encyclopedia points at a person, which tracks fame better than how much
was written about them; the page-local terms separate people with equally few links.

Bounded memory. Counting links to every title of a 7-million-article dump in a dict would cost GBs,
so link targets (and redirect targets) are counted in a count-min sketch: ``depth`` rows of ``width``
uint32 counters, indexed by ``depth`` hashes of the normalised title (BLAKE2b-64, double hashing).
Memory is fixed (default 4 x 2^22 x 4 B = 64 MiB per sketch) whatever the dump size. Sketches are
added cell by cell, so workers, and shards, merge exactly. A count-min sketch never underestimates;
with total count N it overestimates any key by more than ``e / width * N`` with probability at most
``exp(-depth)``: for enwiki (~6.8 M articles, each linking page counted once per target, N ~ 2e8) the
default gives an over-count above ~130 with probability < 2 %. Small counts (obscure pages) are the
noisiest; famous people have tens of thousands of inbound links, far above the noise.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from wikipersona_data.fileio import atomic_path
from wikipersona_data.wiki.titles import normalize_title, strip_fragment

DEFAULT_WIDTH = 1 << 22
DEFAULT_DEPTH = 4

# [[Target]], [[Target|label]], [[Target#Section]]: capture the target up to | # ] (bounded length).
LINK_RE = re.compile(r"\[\[([^\[\]\|#{}<>\n]{1,255})")
REF_RE = re.compile(r"<ref[\s>/]", re.IGNORECASE)
SECTION_RE = re.compile(r"^==+[^=\n].*?==+\s*$", re.MULTILINE)
# The same matches with the line start written as a literal "\n" (the text gets one prepended): a pattern
# starting with ``^`` is tried at every character, one starting with a literal uses CPython's fast literal
# search (~4x faster). Equal because a match never consumes the newline before the next line start
# (``\s*$`` gives the last one back), so each later heading still finds its "\n".
_SECTION_NL_RE = re.compile(r"\n==+[^=\n].*?==+\s*$", re.MULTILINE)


def title_hash(key: str) -> int:
    """A 64-bit hash of a normalised title that is the same in every process (``hash()`` is salted)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


_MEMO_LIMIT = 500_000  # raw target -> hash entries kept per worker process (~60 MB at most)
_memos: dict[frozenset[str], dict[str, int | None]] = {}  # per namespace set: what is skipped depends on it


class TargetCounter:
    """Counts, per normalised target title, the pages linking to it (or the redirects pointing at it).

    A page's targets are deduplicated after normalisation, so ``[[jane_Doe]]`` and ``[[Jane Doe#Career]]``
    on one page count once. Normalising and hashing is the costly part, so each distinct raw target is
    normalised once per worker process (a bounded memo: popular targets such as countries repeat across
    the whole dump).
    """

    def __init__(self, skip_prefixes: frozenset[str]) -> None:
        self.skip_prefixes = skip_prefixes
        self.counts: Counter[int] = Counter()
        self.memo = _memos.setdefault(skip_prefixes, {})
        if len(self.memo) > _MEMO_LIMIT:
            self.memo.clear()

    def _key_hash(self, raw: str) -> int | None:
        key = normalize_title(strip_fragment(raw))
        if not key:
            return None
        if ":" in key and key.split(":", 1)[0].strip().lower() in self.skip_prefixes:
            return None  # File:, Category:, Template:, ... are not articles
        return title_hash(key)

    def _hashes(self, raws: set[str]) -> set[int | None]:
        memo = self.memo
        for raw in raws.difference(memo):
            memo[raw] = self._key_hash(raw)
        return set(map(memo.__getitem__, raws))  # C-level loops: this runs once per link of every article

    def add_page_links(self, text: str) -> None:
        hashes = self._hashes(set(LINK_RE.findall(text)))
        hashes.discard(None)
        self.counts.update(hashes)  # type: ignore[arg-type]

    def add_target(self, raw: str) -> None:
        (h,) = self._hashes({raw})
        if h is not None:
            self.counts[h] += 1


class CountMinSketch:
    """Fixed-size approximate counter keyed by 64-bit title hashes; see the module docstring for the bound."""

    def __init__(self, width: int = DEFAULT_WIDTH, depth: int = DEFAULT_DEPTH) -> None:
        self.width = width
        self.depth = depth
        self.table = np.zeros((depth, width), dtype=np.uint32)
        self.total = 0

    def _cells(self, hashes: np.ndarray) -> np.ndarray:
        h1 = hashes & np.uint64(0xFFFFFFFF)
        h2 = (hashes >> np.uint64(32)) | np.uint64(1)
        rows = np.arange(self.depth, dtype=np.uint64)[:, None]
        return ((h1[None, :] + rows * h2[None, :]) % np.uint64(self.width)).astype(np.int64)

    def add(self, counts: dict[int, int]) -> None:
        if not counts:
            return
        hashes = np.fromiter(counts.keys(), dtype=np.uint64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.uint32, count=len(counts))
        # One flat cell index per (row, key), summed per distinct cell by sorting: ``np.add.at`` (which would
        # handle the repeated cells too) is ~10x slower, and this runs in the main process beside the workers.
        cells = (self._cells(hashes) + np.arange(self.depth, dtype=np.int64)[:, None] * self.width).ravel()
        order = np.argsort(cells)  # not stable: equal cells are summed, in any order (integers)
        cells, summed = cells[order], np.tile(values, self.depth)[order]
        starts = np.flatnonzero(np.concatenate(([True], cells[1:] != cells[:-1])))
        self.table.reshape(-1)[cells[starts]] += np.add.reduceat(summed, starts)
        self.total += int(values.sum(dtype=np.uint64))

    def query(self, hashes: Iterable[int]) -> list[int]:
        arr = np.fromiter(hashes, dtype=np.uint64)
        if arr.size == 0:
            return []
        cells = self._cells(arr)
        est = np.min(np.stack([self.table[row][cells[row]] for row in range(self.depth)]), axis=0)
        return [int(v) for v in est]

    def merge(self, other: CountMinSketch) -> None:
        if (other.width, other.depth) != (self.width, self.depth):
            raise ValueError("cannot merge count-min sketches of different shapes")
        self.table += other.table
        self.total += other.total


def section_count(text: str) -> int:
    """``len(SECTION_RE.findall(text))``, faster (see ``_SECTION_NL_RE``)."""
    return len(_SECTION_NL_RE.findall("\n" + text))


def page_features(text: str, text_bytes: int) -> dict[str, int]:
    """The page-local fame inputs."""
    return {
        "wikitext_bytes": text_bytes,
        "ref_count": len(REF_RE.findall(text)),
        "section_count": section_count(text),
    }


def fame_score(inbound_links: int, redirects_in: int, wikitext_bytes: int, ref_count: int, section_count: int) -> float:
    """The documented combination (module docstring)."""
    score = (
        1.0 * math.log1p(inbound_links)
        + 0.5 * math.log1p(redirects_in)
        + 0.25 * math.log1p(wikitext_bytes / 1000)
        + 0.25 * math.log1p(ref_count)
        + 0.1 * math.log1p(section_count)
    )
    return round(score, 4)


class FameSketches:
    """The two dump-wide counters (inbound links, redirects), saved next to a shard's table for ``--combine``."""

    def __init__(self, width: int = DEFAULT_WIDTH, depth: int = DEFAULT_DEPTH) -> None:
        self.links = CountMinSketch(width, depth)
        self.redirects = CountMinSketch(width, depth)
        self.shard: tuple[int, int] | None = None
        """(K, N) of the ``scan --shard K/N`` that wrote it, so ``--combine`` can refuse an incomplete set."""

    def merge(self, other: FameSketches) -> None:
        self.links.merge(other.links)
        self.redirects.merge(other.redirects)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                links=self.links.table,
                redirects=self.redirects.table,
                totals=np.array([self.links.total, self.redirects.total], dtype=np.uint64),
                **({"shard": np.array(self.shard, dtype=np.int64)} if self.shard else {}),
            )

    @classmethod
    def load(cls, path: Path) -> FameSketches:
        with np.load(path) as data:
            links, redirects, totals = data["links"], data["redirects"], data["totals"]
            shard = tuple(int(x) for x in data["shard"]) if "shard" in data.files else None
        sketches = cls(width=links.shape[1], depth=links.shape[0])
        sketches.shard = shard  # type: ignore[assignment]
        sketches.links.table = links.astype(np.uint32)
        sketches.redirects.table = redirects.astype(np.uint32)
        sketches.links.total, sketches.redirects.total = int(totals[0]), int(totals[1])
        return sketches

    def fill(self, row: dict) -> dict:  # type: ignore[type-arg]
        """Set the dump-wide fame fields of one table row."""
        key = title_hash(normalize_title(row["title"]))
        row["inbound_links"] = self.links.query([key])[0]
        row["redirects_in"] = self.redirects.query([key])[0]
        row["fame_score"] = fame_score(
            row["inbound_links"], row["redirects_in"], row["wikitext_bytes"], row["ref_count"], row["section_count"]
        )
        return row
