"""Bounded decompression (wiki/bounded.py) against the previous unbounded reads, side by side in one run.

On the real samples of ``../shared/wikipedia_samples`` (the single-stream gensim enwiki sample and its
multistream re-encoding with index), each measurement is repeated ``--repeat`` times, old and new
interleaved; the best and the median ratio new/old are printed (> 1.00 = the bounded read is slower;
on a shared machine the best-of ratio is the one to trust):

  1. raw decompression of the single-stream file: ``BZ2File.read(1 MiB)`` (old) vs ``bz2_chunks``;
  2. the sequential reader (no index): ``BZ2File`` + ``XMLPullParser`` fed 1 MiB reads (old) vs
     ``SequentialReader.pages()`` (bounded chunks, page splitter, prolog check);
  3. the scan worker's read of each multistream stream: one ``BZ2Decompressor().decompress(stream)`` +
     one lxml parse (old) vs ``stream_pages`` (bounded chunks, page splitter, batched parse);
  4. ``show``'s ``find_page`` for every ``--every``-th title of the index: old loop (``decompress`` of
     256 KiB compressed input at a time, no output bound) vs the bounded one;
  5. peak Python memory (tracemalloc) reading a 1.2 KB stream that expands to 256 MiB: old whole-stream
     ``decompress`` vs ``stream_pages`` with the default ``--max-page-bytes``.

Run: ``.venv/bin/python benchmarks/bench_stream_read.py [--repeat 5] [--every 5]`` (~1 min).
"""

from __future__ import annotations

import argparse
import bz2
import os
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from wikipersona_data.wiki.bounded import DEFAULT_MAX_PAGE_BYTES, bz2_chunks, page_xml_cap
from wikipersona_data.wiki.dump import SequentialReader, local, page_from_element
from wikipersona_data.wiki.multistream import find_page, index_streams, iter_index, parse_stream_pages, stream_pages

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "wikipedia_samples"
SINGLE = SAMPLES / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
MULTI = SAMPLES / "gensim-enwiki-sample-multistream.xml.bz2"
INDEX = SAMPLES / "gensim-enwiki-sample-multistream-index.txt.bz2"
MIB = 1 << 20


# ------------------------------------------------------------------------- the previous (unbounded) readers


def old_raw(path: Path) -> int:
    total = 0
    with bz2.BZ2File(path) as f:
        while chunk := f.read(MIB):
            total += len(chunk)
    return total


def old_sequential(path: Path) -> int:
    parser = ET.XMLPullParser(events=("start", "end"))
    pages = 0
    ns = ""
    root = None
    with bz2.BZ2File(path) as f:
        while True:
            chunk = f.read(MIB)
            if chunk:
                parser.feed(chunk)
            else:
                parser.close()
            for event, elem in parser.read_events():
                if event == "start":
                    if root is None:
                        root = elem
                        ns = elem.tag[: -len(local(elem.tag))]
                    continue
                if local(elem.tag) == "page":
                    page_from_element(elem, ns, path)
                    pages += 1
                    elem.clear()
                    root.clear()
            if not chunk:
                return pages


def old_stream(f, path: Path, start: int, end: int) -> int:
    f.seek(start)
    dec = bz2.BZ2Decompressor()
    data = dec.decompress(f.read(end - start))
    return len(parse_stream_pages(data, path, start))


_PAGE_ID = re.compile(rb"<id>\s*(\d+)\s*</id>")


def old_find_page(f, path: Path, start: int, end: int, page_id: int) -> bool:
    f.seek(start)
    remaining = end - start
    comp = f.read(min(256 * 1024, remaining))
    remaining -= len(comp)
    dec = bz2.BZ2Decompressor()
    buf = bytearray()
    pos = 0
    while True:
        buf += dec.decompress(comp)
        while (close := buf.find(b"</page>", pos)) >= 0:
            close += len(b"</page>")
            match = _PAGE_ID.search(buf, pos, close)
            if match is not None and int(match.group(1)) == page_id:
                return bool(parse_stream_pages(bytes(buf[pos:close]), path, start))
            pos = close
        if dec.eof or remaining <= 0:
            return False
        comp = f.read(min(256 * 1024, remaining))
        remaining -= len(comp)


# ----------------------------------------------------------------------------------------------- the new ones


def new_raw(path: Path) -> int:
    size = path.stat().st_size
    with open(path, "rb") as f:
        return sum(len(c) for c in bz2_chunks(f, path, 0, size, size=size))


def new_sequential(path: Path) -> int:
    return sum(1 for _ in SequentialReader(path).pages())


def stream_ranges() -> list[tuple[int, int]]:
    offsets = sorted(index_streams(INDEX))
    size = MULTI.stat().st_size
    return list(zip(offsets, [*offsets[1:], size], strict=True))


def old_streams() -> int:
    with open(MULTI, "rb") as f:
        return sum(old_stream(f, MULTI, s, e) for s, e in stream_ranges())


def new_streams() -> int:
    size = MULTI.stat().st_size
    cap = page_xml_cap(DEFAULT_MAX_PAGE_BYTES)
    n = 0
    with open(MULTI, "rb") as f:
        for s, e in stream_ranges():
            n += sum(len(pages) for pages, _ in stream_pages(f, MULTI, s, e, size=size, cap=cap))
    return n


def lookups() -> list[tuple[int, int, int]]:
    offsets = sorted(index_streams(INDEX))
    size = MULTI.stat().st_size
    ends = dict(zip(offsets, [*offsets[1:], size], strict=True))
    return [(e.offset, ends[e.offset], e.page_id) for e in iter_index(INDEX)]


def old_show(todo: list[tuple[int, int, int]]) -> int:
    with open(MULTI, "rb") as f:
        return sum(old_find_page(f, MULTI, s, e, pid) for s, e, pid in todo)


def new_show(todo: list[tuple[int, int, int]]) -> int:
    with open(MULTI, "rb") as f:
        return sum(find_page(f, MULTI, s, e, pid) is not None for s, e, pid in todo)


# -------------------------------------------------------------------------------------------------- running


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def compare(name: str, old: Callable[[], int], new: Callable[[], int], repeat: int) -> None:
    olds, news = [], []
    r_old = r_new = None
    for _ in range(repeat):
        t, r_old = timed(old)
        olds.append(t)
        t, r_new = timed(new)
        news.append(t)
    if r_old != r_new:
        sys.exit(f"{name}: results differ (old {r_old}, new {r_new})")
    bo, bn = min(olds), min(news)  # best of: load from other processes only ever adds time
    mo, mn = statistics.median(olds), statistics.median(news)
    print(
        f"{name:<42} best old {bo * 1000:7.1f} ms new {bn * 1000:7.1f} ms new/old {bn / bo:5.2f}"
        f" | median new/old {mn / mo:5.2f}  (result {r_new})"
    )


def bomb_memory(tmp: Path) -> None:
    comp = bz2.BZ2Compressor(9)
    head = b"  <page>\n    <title>Bomb</title>\n    <ns>0</ns>\n    <id>1</id>\n    <revision><text>"
    parts = [comp.compress(head)]
    block = b"a" * (16 * MIB)
    parts += [comp.compress(block) for _ in range(16)]
    parts += [comp.compress(b"</text></revision>\n  </page>\n"), comp.flush()]
    blob = b"".join(parts)
    path = tmp / "bomb.bz2"
    path.write_bytes(blob)

    def peak(fn: Callable[[], object]) -> float:
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1] / MIB
        finally:
            tracemalloc.stop()

    def old() -> None:
        with open(path, "rb") as f:
            bz2.BZ2Decompressor().decompress(f.read())

    def new() -> None:
        with open(path, "rb") as f:
            cap = page_xml_cap(DEFAULT_MAX_PAGE_BYTES)
            for _ in stream_pages(f, path, 0, len(blob), size=len(blob), cap=cap):
                pass

    p_old, p_new = peak(old), peak(new)
    label = f"bomb {len(blob)} B -> 256 MiB: peak Python memory"
    print(f"{label:<42} old {p_old:8.1f} MiB new {p_new:8.1f} MiB new/old {p_new / p_old:5.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--every", type=int, default=5, help="find_page on every N-th title of the index")
    args = parser.parse_args()
    if not SINGLE.is_file() or not INDEX.is_file():
        sys.exit(f"samples absent: {SAMPLES}")
    print(f"samples: {SINGLE.name} ({SINGLE.stat().st_size / 1e6:.2f} MB), {MULTI.name} + index; cpu {os.cpu_count()}")
    compare("raw decompression (single-stream)", lambda: old_raw(SINGLE), lambda: new_raw(SINGLE), args.repeat)
    compare("sequential reader: pages", lambda: old_sequential(SINGLE), lambda: new_sequential(SINGLE), args.repeat)
    compare("multistream streams -> pages (scan worker)", old_streams, new_streams, args.repeat)
    todo = lookups()[:: args.every]
    compare(f"find_page x {len(todo)} titles (show)", lambda: old_show(todo), lambda: new_show(todo), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        bomb_memory(Path(tmp))


if __name__ == "__main__":
    main()
