"""The one-pass scan: every person page of a dump -> a candidate table with a fame signal.

How the work is split (wikipedia.md sections 5.3 and 12): with a multistream index, the stream offsets
are grouped into runs of consecutive streams and each run is one task for a worker process, which
seeks, decompresses and parses its own streams; the main process only merges small results (rows,
counters of hashed link targets), so throughput scales with cores. Without an index (single-stream
``.xml.bz2`` or plain ``.xml``), one reader (the main process) must decompress everything in order and
hands batches of pages to the workers; that caps the scan at one core's bz2 speed (~30 MB/s of XML).

Per page, in the worker: every ns-0 article feeds the inbound-link counter and every ns-0 redirect the
redirect counter (fame.py); an article passing the cheap ``looks_like_person`` prefilter gets its row
fields from ``scan_fields`` (falling back to ``parse_biography(full=False)``); a person becomes a row.

Robustness: never trust one page. Pages above ``max_page_bytes`` are not parsed (and a page whose XML
grows past that cap while decompressing is not even kept in memory: bounded.py), a parse is cut after
``page_timeout`` seconds (``setitimer`` in the worker), any exception is caught; each such page is
counted in ``errors=`` and logged with its title. Workers are recycled every ``TASKS_PER_WORKER`` tasks
(memory a parser leaks is returned), and a worker that dies (OOM kill, crash) breaks only its task:
in-flight tasks are retried one at a time and a task that kills a worker again is logged and counted
as an error instead of killing the scan. Bad input (truncated bz2, malformed XML, an index that does not
match the dump) still stops the scan with one clear ``InputError``.

Memory is bounded whatever the dump size: a bounded number of tasks in flight, streamed XML, fixed-size
count-min sketches, and rows spilled to a temporary file (then sorted by page id through an index of
offsets) rather than kept in memory. Output is written to ``FILE.tmp`` and renamed at the end.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
import zlib
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wikipersona_data.errors import InputError
from wikipersona_data.wiki import fame
from wikipersona_data.wiki.bounded import DEFAULT_MAX_PAGE_BYTES, DEFAULT_PAGE_TIMEOUT, page_xml_cap
from wikipersona_data.wiki.dump import DEFAULT_URL_BASE, Page, SequentialReader, SiteInfo, open_binary
from wikipersona_data.wiki.multistream import (
    checked_stream_pages,
    index_streams,
    read_header,
    stream_bounds,
)
from wikipersona_data.wiki.timelimit import PageTimeout, time_limit

log = logging.getLogger(__name__)

TASK_BYTES = 2 << 20  # compressed bytes per task (~8 MB of XML, ~0.3 s of work)
PAGES_PER_TASK = 200  # sequential path
TASKS_PER_WORKER = 200  # tasks per worker process before the pool is replaced

# Column order of the candidate table (Biography scalar fields, then the fame fields).
BIO_COLUMNS = (
    "page_id",
    "title",
    "revision_id",
    "url",
    "is_person",
    "is_living",
    "birth_date",
    "birth_year",
    "death_year",
    "short_description",
    "infobox_template",
    "categories",
)
FAME_COLUMNS = ("inbound_links", "redirects_in", "wikitext_bytes", "ref_count", "section_count", "fame_score")
COLUMNS = BIO_COLUMNS + FAME_COLUMNS
DUMP_WIDE_COLUMNS = ("inbound_links", "redirects_in", "fame_score")  # need every page of the dump


@dataclass(frozen=True)
class ScanOptions:
    workers: int = 2
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
    page_timeout: float = DEFAULT_PAGE_TIMEOUT
    sketch_width: int = fame.DEFAULT_WIDTH
    sketch_depth: int = fame.DEFAULT_DEPTH
    progress: bool = True


@dataclass
class ChunkResult:
    """What a worker sends back for one task: small, whatever the size of the pages it read."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    links: dict[int, int] = field(default_factory=dict)
    redirects: dict[int, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(frozen=True)
class SiteContext:
    """What workers need from ``<siteinfo>``: namespace names (to skip ``File:`` links) and the URL base."""

    prefixes: frozenset[str] = frozenset()
    url_base: str = DEFAULT_URL_BASE

    @classmethod
    def of(cls, site: SiteInfo) -> SiteContext:
        return cls(site.namespace_prefixes(), site.url_base())


@dataclass(frozen=True)
class StreamTask:
    dump: str
    index: str
    streams: tuple[tuple[int, int, int, int], ...]  # (start, end, expected page count, expected sum of page ids)
    site: SiteContext
    options: ScanOptions

    @property
    def label(self) -> str:
        return f"streams at compressed offsets {self.streams[0][0]}..{self.streams[-1][1]}"


@dataclass(frozen=True)
class PagesTask:
    dump: str
    pages: tuple[Page, ...]
    site: SiteContext
    options: ScanOptions
    bytes_in: int

    @property
    def label(self) -> str:
        titles = [getattr(page, "title", "?") for page in (self.pages[0], self.pages[-1])]
        return f"{len(self.pages)} pages {titles[0]!r}..{titles[1]!r}"


@dataclass
class ScanSummary:
    pages: int = 0
    articles: int = 0
    redirects: int = 0
    people: int = 0
    living: int = 0
    errors: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"pages={self.pages} articles={self.articles} redirects={self.redirects} people={self.people} "
            f"living={self.living} errors={self.errors} seconds={self.seconds:.1f}"
        )


# ---------------------------------------------------------------------------------------------- worker side


def _parse_person(page: Page, options: ScanOptions, url_base: str) -> dict[str, Any]:
    """The row's scalar fields under the per-page time limit (a SIGALRM in this worker).

    ``scan_fields`` (no tree of the lead) decides most pages; when it cannot be sure (scan_fields.py lists
    when), ``parse_biography(full=False)`` does, so rows never depend on which path ran.
    """
    from wikipersona_data.wiki.parse import parse_biography
    from wikipersona_data.wiki.scan_fields import scan_fields

    with time_limit(options.page_timeout):
        args = {"title": page.title, "page_id": page.page_id, "revision_id": page.revision_id, "url_base": url_base}
        fields = scan_fields(page.text, **args)
        if fields is None:
            fields = bio_fields(parse_biography(page.text, full=False, **args))
        return fields


def bio_fields(bio: Any) -> dict[str, Any]:
    """A Biography's row fields (BIO_COLUMNS)."""
    row = {name: getattr(bio, name) for name in BIO_COLUMNS if name not in ("infobox_template", "categories")}
    row["infobox_template"] = bio.infobox.template if bio.infobox is not None else None
    row["categories"] = list(bio.categories)
    return row


def _row(fields: dict[str, Any], page: Page) -> dict[str, Any]:
    row = dict(fields)
    row.update(fame.page_features(page.text, page.text_bytes))
    row.update(inbound_links=0, redirects_in=0, fame_score=0.0)  # filled in once every page was counted
    return {name: row[name] for name in COLUMNS}


def truncated_message(page: Page, options: ScanOptions) -> str:
    return (
        f"skipped page {page.title!r} (id {page.page_id}): more than {page.text_bytes} bytes of XML, "
        f"over the per-page cap of {options.max_page_bytes} bytes of wikitext (cut while decompressing)"
    )


def person_row(page: Page, site: SiteContext, options: ScanOptions) -> tuple[dict[str, Any] | None, str | None]:
    """One ns-0 article that passed the prefilter -> ``(row, None)`` for a person, ``(None, None)`` for
    anything else, ``(None, message)`` for a page skipped as an error (too big, too slow, parser crash).

    Shared by the in-process scan below and the datatrove steps (scan_steps.py), so both count alike.
    """
    if page.text_bytes > options.max_page_bytes:
        return None, (
            f"skipped page {page.title!r} (id {page.page_id}): {page.text_bytes} bytes of wikitext "
            f"exceed the per-page cap of {options.max_page_bytes}"
        )
    try:
        fields = _parse_person(page, options, site.url_base)
    except PageTimeout:
        return None, f"skipped page {page.title!r} (id {page.page_id}): parse exceeded {options.page_timeout:g} s"
    except (Exception, RecursionError) as err:  # never trust one page
        return None, f"skipped page {page.title!r} (id {page.page_id}): {type(err).__name__}: {str(err)[:200]}"
    if not fields["is_person"]:
        return None, None
    return _row(fields, page), None


def process_pages(pages: list[Page], site: SiteContext, options: ScanOptions, result: ChunkResult) -> None:
    """Count, prefilter and parse one batch of pages into ``result``."""
    from wikipersona_data.wiki.person import looks_like_person

    links = fame.TargetCounter(site.prefixes)
    redirects = fame.TargetCounter(site.prefixes)
    stats = result.stats
    for page in pages:
        stats["pages"] += 1
        if page.truncated:  # cut while decompressing: its text was never kept
            stats["errors"] += 1
            result.errors.append(truncated_message(page, options))
            continue
        if page.redirect is not None:
            stats["redirects"] += 1
            if page.ns == 0:
                redirects.add_target(page.redirect)
            continue
        if page.ns != 0:
            continue
        stats["articles"] += 1
        links.add_page_links(page.text)
        if not looks_like_person(page.text):
            continue
        row, error = person_row(page, site, options)
        if error is not None:
            stats["errors"] += 1
            result.errors.append(error)
            continue
        if row is None:
            continue
        stats["people"] += 1
        stats["living"] += int(bool(row["is_living"]))
        result.rows.append(row)
    for target, count in links.counts.items():
        result.links[target] = result.links.get(target, 0) + count
    for target, count in redirects.counts.items():
        result.redirects[target] = result.redirects.get(target, 0) + count


def run_stream_task(task: StreamTask) -> ChunkResult:
    """Worker: seek to each stream of the run, decompress (bounded), parse, process page batches."""
    result = ChunkResult()
    path = Path(task.dump)
    index = Path(task.index)
    cap = page_xml_cap(task.options.max_page_bytes)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for stream in task.streams:
            for pages, produced in checked_stream_pages(f, path, index, stream, size=size, cap=cap):
                result.bytes_out += produced
                process_pages(pages, task.site, task.options, result)
            result.bytes_in += stream[1] - stream[0]  # compressed bytes of the stream
    return result


def run_pages_task(task: PagesTask) -> ChunkResult:
    result = ChunkResult(bytes_in=task.bytes_in, bytes_out=sum(p.text_bytes for p in task.pages))
    process_pages(list(task.pages), task.site, task.options, result)
    return result


def _run_task(task: StreamTask | PagesTask) -> ChunkResult:
    return run_stream_task(task) if isinstance(task, StreamTask) else run_pages_task(task)


# ------------------------------------------------------------------------------------------------ planning


def plan_stream_tasks(
    dump: Path,
    index: Path,
    bounds: list[tuple[int, int]],
    counts: dict[int, tuple[int, int]],
    site: SiteContext,
    options: ScanOptions,
) -> list[StreamTask]:
    """Runs of consecutive streams of about ``TASK_BYTES`` (smaller for small dumps, to keep all workers busy)."""
    total = sum(e - s for s, e in bounds)
    target = max(1, min(TASK_BYTES, total // max(1, 8 * options.workers)))
    tasks: list[StreamTask] = []
    run: list[tuple[int, int, int, int]] = []
    size = 0
    for start, end in bounds:
        expected, id_sum = counts[start]
        run.append((start, end, expected, id_sum))
        size += end - start
        if size >= target:
            tasks.append(StreamTask(str(dump), str(index), tuple(run), site, options))
            run, size = [], 0
    if run:
        tasks.append(StreamTask(str(dump), str(index), tuple(run), site, options))
    return tasks


def _sequential_tasks(dump: Path, options: ScanOptions, on_bytes: Callable[[int], None]) -> Iterator[PagesTask]:
    reader = SequentialReader(dump, max_page_bytes=options.max_page_bytes)
    batch: list[Page] = []
    consumed = [0]

    def _progress(n: int) -> None:
        consumed[0] += n
        on_bytes(n)

    size = 0
    for page in reader.pages(_progress):
        batch.append(page)
        size += page.text_bytes
        if len(batch) >= PAGES_PER_TASK or size >= TASK_BYTES * 4:
            yield PagesTask(str(dump), tuple(batch), SiteContext.of(reader.site), options, consumed[0])
            batch, size, consumed[0] = [], 0, 0
    if batch:
        yield PagesTask(str(dump), tuple(batch), SiteContext.of(reader.site), options, consumed[0])


# ------------------------------------------------------------------------------------------------ main side


class _RowSpill:
    """Rows as JSON lines in a temporary file; only 4 int64 per row (page id, tie-break, offset, length) in memory."""

    def __init__(self, directory: Path) -> None:
        self.file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()
        self.keys = array("q")

    def add(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False).encode("utf-8")
        offset = self.file.tell()
        self.file.write(line + b"\n")
        self.keys.extend((row["page_id"], zlib.crc32(line), offset, len(line)))

    def sorted_rows(self) -> Iterator[dict[str, Any]]:
        if not self.keys:
            return
        keys = np.frombuffer(self.keys, dtype=np.int64).reshape(-1, 4)
        order = np.lexsort((keys[:, 1], keys[:, 0]))
        self.file.flush()
        for i in order:
            self.file.seek(int(keys[i, 2]))
            yield json.loads(self.file.read(int(keys[i, 3])))

    def close(self) -> None:
        self.file.close()


class _Collector:
    """Merges worker results: stats, logged errors, sketches, spilled rows, progress."""

    def __init__(self, options: ScanOptions, spill_dir: Path, total_bytes: int | None) -> None:
        from tqdm import tqdm  # main side only: spawned workers import this module and need neither tqdm nor pyarrow

        self.summary = ScanSummary()
        self.sketches = fame.FameSketches(options.sketch_width, options.sketch_depth)
        self.spill = _RowSpill(spill_dir)
        self.bytes_out = 0
        self.start = time.perf_counter()
        self.bar = tqdm(
            total=total_bytes,
            unit="B",
            unit_scale=True,
            desc="scan (compressed)",
            file=sys.stderr,
            disable=not options.progress,
            dynamic_ncols=True,
        )

    def bytes_read(self, n: int) -> None:
        self.bar.update(n)

    def add(self, result: ChunkResult, *, count_bytes: bool) -> None:
        for key in ("pages", "articles", "redirects", "people", "living", "errors"):
            setattr(self.summary, key, getattr(self.summary, key) + result.stats.get(key, 0))
        for message in result.errors:
            self.bar.write(f"warning: {message}", file=sys.stderr)
            log.warning(message)
        self.sketches.links.add(result.links)
        self.sketches.redirects.add(result.redirects)
        for row in result.rows:
            self.spill.add(row)
        self.bytes_out += result.bytes_out
        if count_bytes:
            self.bar.update(result.bytes_in)
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(
            f"{self.summary.pages / elapsed:,.0f} pages/s, {self.bytes_out / elapsed / 1e6:.1f} MB/s XML", refresh=False
        )

    def task_died(self, label: str) -> None:
        self.summary.errors += 1
        message = f"skipped {label}: the worker died twice while scanning them"
        self.bar.write(f"warning: {message}", file=sys.stderr)
        log.warning(message)

    def finish(self) -> None:
        self.bar.close()
        self.summary.seconds = time.perf_counter() - self.start


def _executor(workers: int) -> ProcessPoolExecutor:
    # spawn: the main process has threads (executor manager, tqdm), which fork must not copy.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _run_tasks(
    tasks: Iterator[StreamTask | PagesTask],
    collector: _Collector,
    workers: int,
    *,
    stream_bytes: bool,
    tasks_per_worker: int = TASKS_PER_WORKER,
) -> None:
    """Run tasks with at most ``2 * workers`` in flight; recycle workers; survive dead ones (module docstring).

    Recycling replaces the whole pool after ``tasks_per_worker * workers`` tasks instead of using
    ``max_tasks_per_child``, which deadlocks on Python 3.11-3.13 when a backlog is queued (cpython#115634).
    """
    limit = 2 * workers
    per_pool = max(1, tasks_per_worker * workers)
    executor = _executor(workers)
    submitted = 0
    inflight: dict[Future[ChunkResult], StreamTask | PagesTask] = {}
    suspects: deque[StreamTask | PagesTask] = deque()
    try:
        exhausted = False
        while True:
            isolate = bool(suspects)
            while len(inflight) < (1 if isolate else limit) and submitted < per_pool:
                if suspects:
                    if inflight:
                        break
                    task = suspects.popleft()
                elif not exhausted:
                    try:
                        task = next(tasks)
                    except StopIteration:
                        exhausted = True
                        break
                else:
                    break
                inflight[executor.submit(_run_task, task)] = task
                submitted += 1
            if not inflight:
                if submitted >= per_pool and (suspects or not exhausted):
                    executor.shutdown(wait=True)  # recycle: fresh workers return what the parser leaked
                    executor, submitted = _executor(workers), 0
                    continue
                break
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken: list[StreamTask | PagesTask] = []
            for future in done:
                task = inflight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken.append(task)
                    continue
                collector.add(result, count_bytes=stream_bytes)
            if broken:
                was_isolated = isolate and len(broken) == 1 and not inflight
                broken.extend(inflight.values())
                inflight.clear()
                executor.shutdown(wait=True, cancel_futures=True)
                executor, submitted = _executor(workers), 0
                if was_isolated:
                    collector.task_died(broken[0].label)
                else:
                    suspects.extend(broken)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def scan_dump(
    dump: str | Path,
    index: str | Path | None = None,
    *,
    options: ScanOptions | None = None,
    spill_dir: Path | None = None,
) -> tuple[ScanSummary, Iterator[dict[str, Any]], fame.FameSketches]:
    """Scan a dump. Returns the summary, the rows (sorted by page id, fame filled in) and the sketches.

    The row iterator reads a temporary spill file; consume it before the next scan.
    """
    options = options or ScanOptions()
    dump = Path(dump)
    raw, _ = open_binary(dump)  # missing / empty / not-bz2 -> InputError before any worker starts
    spill_root = spill_dir or Path(tempfile.gettempdir())
    with raw:
        size = os.fstat(raw.fileno()).st_size
        site = SiteInfo()
        bounds: list[tuple[int, int]] = []
        counts: dict[int, tuple[int, int]] = {}
        if index is not None:
            index = Path(index)
            counts = index_streams(index)
            bounds = stream_bounds(sorted(counts), size, dump, index, raw)
            site = read_header(raw, dump, min(counts), index)
    if index is not None:
        total = sum(e - s for s, e in bounds)
        collector = _Collector(options, spill_root, total)
        tasks: Iterator[StreamTask | PagesTask] = iter(
            plan_stream_tasks(dump, Path(index), bounds, counts, SiteContext.of(site), options)
        )
        _run_tasks(tasks, collector, options.workers, stream_bytes=True)
    else:
        collector = _Collector(options, spill_root, size)
        tasks = _sequential_tasks(dump, options, collector.bytes_read)
        _run_tasks(tasks, collector, options.workers, stream_bytes=False)
    collector.finish()
    if collector.summary.pages == 0:
        collector.spill.close()
        raise InputError(f"empty dump: {dump} contains no pages")
    return collector.summary, _finalise(collector.spill, collector.sketches), collector.sketches


def _finalise(spill: _RowSpill, sketches: fame.FameSketches) -> Iterator[dict[str, Any]]:
    try:
        for row in spill.sorted_rows():
            yield sketches.fill(row)
    finally:
        spill.close()
