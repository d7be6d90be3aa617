"""The scan as datatrove pipeline steps: our parsing code, scheduled by datatrove's executors.

Stage 1 (one task per rank, ``tasks`` ranks in all) is::

    MultistreamReader -> FameCounter -> PersonPrefilter -> BiographyRowExtractor -> ScanPartWriter

* ``MultistreamReader``: rank K of N reads the K-th of N contiguous runs of bz2 streams (balanced by
  compressed bytes, from the plan written once by the driver, see scan_run.py), checks every stream against
  the index, and yields one ``Document`` per page (the ``Page`` in its metadata). Without an index there is
  one task that reads the whole dump in order.
* ``FameCounter``: counts every page (pages/articles/redirects), feeds the dump-wide inbound-link and
  redirect counters, forwards only ns-0 articles; at the end of the task writes its exact counts.
* ``PersonPrefilter``: the cheap ``looks_like_person`` substring test (a datatrove filter step).
* ``BiographyRowExtractor``: the row fields (``scan.person_row``), errors counted per task.
* ``ScanPartWriter``: the task's rows as JSON lines (sorted and given fame in stage 2).

Stage 2 (one task, ``depends=`` stage 1) is ``ScanReducer``: it adds the per-task counts into the
count-min sketches (fame.py), sorts all rows by page id through the same spill as the in-process scan,
fills the fame columns and writes the table. Rows and counts equal the in-process scan's, so the tables
are byte-identical (tests/test_scan_datatrove.py).

Every part file is written to ``NAME.tmp`` and renamed, and a rank is marked complete by datatrove only
after its last step finished, so a killed task leaves no file that looks complete and is simply rerun.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.executor import base as datatrove_base
from datatrove.pipeline.base import PipelineStep
from datatrove.utils import logging as datatrove_logging
from datatrove.utils.logging import logger

try:
    from datatrove.executor import ray as datatrove_ray
except ImportError:  # pragma: no cover - the module imports ray lazily; kept safe anyway
    datatrove_ray = None  # type: ignore[assignment]

from wikipersona_data.errors import InputError
from wikipersona_data.fileio import atomic_path, write_atomic
from wikipersona_data.wiki import fame
from wikipersona_data.wiki.bounded import page_xml_cap
from wikipersona_data.wiki.dump import SequentialReader
from wikipersona_data.wiki.multistream import checked_stream_pages
from wikipersona_data.wiki.scan import ScanOptions, SiteContext, person_row, truncated_message

STDERR_LEVEL = os.environ.get("WIKIPERSONA_SCAN_LOG_LEVEL", "WARNING")


def _quiet_task_logger(logging_dir: Any, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
    """datatrove's per-task logger, with stderr at ``STDERR_LEVEL`` (default WARNING) instead of INFO.

    datatrove prints a pipeline banner and a stats table per task on stderr; over a thousand tasks that
    buries the warnings. The task's log file (``LOGS/stageN/logs/task_RANK.log``) still gets everything.
    """
    logfile = _datatrove_add_task_logger(logging_dir, rank, local_rank, node_rank=node_rank)
    logger.remove()
    prefix = f"[NODE {node_rank}] " if node_rank != -1 else ""
    fmt = f"{prefix}{{time:YYYY-MM-DD HH:mm:ss.SSS}} | {{level: <8}} | {{name}} - {{message}}"
    level = STDERR_LEVEL if local_rank == 0 else "ERROR"
    # A failed task's traceback goes to its log file only: the driver reports the error in one line.
    logger.add(sys.stderr, level=level, format=fmt, colorize=False, filter=lambda record: not record["exception"])
    logger.add(logfile, level="DEBUG", format=fmt, colorize=False)
    return logfile


# The executors look the function up in their own modules at call time; patched once per process, on import of
# this module (which every task process does, to unpickle the steps).
_datatrove_add_task_logger = datatrove_logging.add_task_logger
for _module in (datatrove_base, datatrove_ray):
    if _module is not None and getattr(_module, "add_task_logger", None) is _datatrove_add_task_logger:
        _module.add_task_logger = _quiet_task_logger

PLAN_FILE = "plan.npy"  # int64 rows (start, end, expected page count, expected sum of page ids), one per stream
ROWS = "rows-{rank:05d}.jsonl"
COUNTS = "counts-{rank:05d}.npz"
ERRORS = "errors-{rank:05d}-{step}.txt"


def rank_streams(plan: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """The K-th of N contiguous runs of streams, balanced by compressed bytes (by where each stream's middle falls)."""
    if len(plan) == 0:
        return plan
    base, total = plan[0, 0], plan[-1, 1] - plan[0, 0]
    middle = (plan[:, 0] + plan[:, 1]) / 2 - base
    lo, hi = total * rank / world_size, total * (rank + 1) / world_size
    return plan[(middle >= lo) & (middle < hi)]


class _Errors:
    """Pages a step skipped as errors: counted in the step's stats, logged, and kept per task for the summary."""

    def __init__(self, step: PipelineStep, parts: Path, name: str) -> None:
        self.step, self.parts, self.name = step, parts, name
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.step.stat_update("errors")
        self.messages.append(message)
        logger.info(message)  # the task's log file; the driver prints them all once the scan is done

    def save(self, rank: int) -> None:
        path = self.parts / ERRORS.format(rank=rank, step=self.name)
        write_atomic(path, "".join(m + "\n" for m in self.messages).encode("utf-8"))


class MultistreamReader(PipelineStep):
    """MediaWiki multistream ``.xml.bz2`` (or, without an index, any dump read in order) -> one Document per page."""

    type = "📖 - READER"
    name = "🗜️ MediaWiki dump"

    def __init__(self, dump: str, index: str | None, plan_dir: str, max_page_bytes: int) -> None:
        super().__init__()
        self.dump, self.index, self.plan_dir, self.max_page_bytes = dump, index, plan_dir, max_page_bytes

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self.index is None:
            if world_size != 1:
                raise InputError(f"{self.dump}: without a multistream index the scan is one task, not {world_size}")
            yield from self._sequential()
            return
        streams = rank_streams(np.load(Path(self.plan_dir) / PLAN_FILE), rank, world_size)
        path, index = Path(self.dump), Path(self.index)
        cap = page_xml_cap(self.max_page_bytes)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            for stream in streams.tolist():
                for pages, produced in checked_stream_pages(f, path, index, stream, size=size, cap=cap):
                    self.stat_update("xml_bytes", value=produced, unit="task")
                    for page in pages:
                        yield Document(text=page.text, id=str(page.page_id), metadata={"page": page})
                self.stat_update("compressed_bytes", value=stream[1] - stream[0], unit="task")
                self.stat_update("streams")

    def _sequential(self) -> Iterator[Document]:
        reader = SequentialReader(Path(self.dump), max_page_bytes=self.max_page_bytes)
        for page in reader.pages(lambda n: self.stat_update("compressed_bytes", value=n, unit="task")):
            self.stat_update("xml_bytes", value=page.text_bytes, unit="task")
            yield Document(text=page.text, id=str(page.page_id), metadata={"page": page})


class FameCounter(PipelineStep):
    """Counts pages, articles and redirects; inbound links and redirects per target; forwards ns-0 articles."""

    type = "📊 - STATS"
    name = "🔗 fame counts"

    def __init__(self, parts: str, site: SiteContext, options: ScanOptions) -> None:
        super().__init__()
        self.parts, self.site, self.options = parts, site, options

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        links = fame.TargetCounter(self.site.prefixes)
        redirects = fame.TargetCounter(self.site.prefixes)
        errors = _Errors(self, Path(self.parts), "read")
        pages = 0
        for doc in data or ():
            page = doc.metadata["page"]
            self.stat_update("pages")
            pages += 1
            if page.truncated:  # cut while decompressing: its text was never kept
                errors.add(truncated_message(page, self.options))
                continue
            if page.redirect is not None:
                self.stat_update("redirects")
                if page.ns == 0:
                    redirects.add_target(page.redirect)
                continue
            if page.ns != 0:
                continue
            self.stat_update("articles")
            links.add_page_links(page.text)
            yield doc
        errors.save(rank)
        buffer = _counts_npz(links.counts, redirects.counts, pages)
        write_atomic(Path(self.parts) / COUNTS.format(rank=rank), buffer)


def _counts_npz(links: dict[int, int], redirects: dict[int, int], pages: int) -> bytes:
    import io

    arrays = {"pages": np.array(pages, dtype=np.int64)}
    for name, counts in (("links", links), ("redirects", redirects)):
        arrays[f"{name}_keys"] = np.fromiter(counts.keys(), dtype=np.uint64, count=len(counts))
        arrays[f"{name}_counts"] = np.fromiter(counts.values(), dtype=np.uint32, count=len(counts))
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_counts(path: Path) -> tuple[dict[int, int], dict[int, int]]:
    """(inbound links per target, redirects per target) of one task."""
    with np.load(path) as data:
        return tuple(  # type: ignore[return-value]
            dict(zip(data[f"{name}_keys"].tolist(), data[f"{name}_counts"].tolist(), strict=True))
            for name in ("links", "redirects")
        )


def load_pages(path: Path) -> int:
    """How many pages one task read (an npz member is loaded on access: the counts stay on disk)."""
    with np.load(path) as data:
        return int(data["pages"])


class PersonPrefilter(PipelineStep):
    """The cheap substring prefilter (person.looks_like_person): most articles stop here.

    A filter in datatrove's sense (it counts ``forwarded`` and ``dropped``); not a ``BaseFilter`` subclass,
    because importing datatrove's filters package pulls in its text-processing extras (``regex``, ...).
    """

    type = "🔻 - FILTER"
    name = "🧑 looks like a person"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from wikipersona_data.wiki.person import looks_like_person

        for doc in data or ():
            if looks_like_person(doc.text):
                self.stat_update("forwarded")
                yield doc
            else:
                self.stat_update("dropped")


class BiographyRowExtractor(PipelineStep):
    """Row fields of each candidate (scan_fields, else parse_biography); non-people dropped, errors counted."""

    type = "🔻 - EXTRACT"
    name = "🧾 biography row"

    def __init__(self, parts: str, site: SiteContext, options: ScanOptions) -> None:
        super().__init__()
        self.parts, self.site, self.options = parts, site, options

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        errors = _Errors(self, Path(self.parts), "extract")
        for doc in data or ():
            with self.track_time():
                row, error = person_row(doc.metadata["page"], self.site, self.options)
            if error is not None:
                errors.add(error)
                continue
            if row is None:
                continue
            self.stat_update("people")
            if row["is_living"]:
                self.stat_update("living")
            doc.metadata["row"] = row
            yield doc
        errors.save(rank)


class ScanPartWriter(PipelineStep):
    """The task's rows as JSON lines (``rows-RANK.jsonl``), renamed into place when the task ends."""

    type = "💽 - WRITER"
    name = "🗂️ scan rows"

    def __init__(self, parts: str) -> None:
        super().__init__()
        self.parts = parts

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with (
            atomic_path(Path(self.parts) / ROWS.format(rank=rank)) as tmp,
            open(tmp, "w", encoding="utf-8", newline="\n") as f,
        ):
            for doc in data or ():
                f.write(json.dumps(doc.metadata["row"], ensure_ascii=False) + "\n")
                self.stat_update("rows")
        return
        yield  # a generator, as the executors expect


def stage1_steps(
    dump: Path, index: Path | None, parts: Path, site: SiteContext, options: ScanOptions
) -> list[PipelineStep]:
    return [
        MultistreamReader(str(dump), str(index) if index else None, str(parts), options.max_page_bytes),
        FameCounter(str(parts), site, options),
        PersonPrefilter(),
        BiographyRowExtractor(str(parts), site, options),
        ScanPartWriter(str(parts)),
    ]


class ScanReducer(PipelineStep):
    """Stage 2: sketches from every task's counts, rows sorted by page id with fame filled, the table written."""

    type = "🔢 - REDUCE"
    name = "📑 scan table"

    def __init__(self, dump: str, parts: str, tasks: int, out: str, options: ScanOptions) -> None:
        super().__init__()
        self.dump, self.parts, self.tasks, self.out, self.options = dump, parts, tasks, out, options

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from wikipersona_data.wiki.table import write_table

        rows = reduce_parts(Path(self.parts), self.tasks, self.options, self.dump)
        self.stat_update("rows", value=write_table(Path(self.out), rows), unit="task")
        return
        yield


def reduce_parts(parts: Path, tasks: int, options: ScanOptions, dump: str) -> Iterator[dict[str, Any]]:
    """Every task's rows, sorted by page id, with dump-wide fame filled in; refuses a missing task, and a dump
    without pages (the local and Ray drivers check that first; on Slurm nothing waits, so this is the check)."""
    from wikipersona_data.wiki.scan import _finalise, _RowSpill

    missing = [r for r in range(tasks) if not (parts / ROWS.format(rank=r)).is_file()]
    missing += [r for r in range(tasks) if not (parts / COUNTS.format(rank=r)).is_file() and r not in missing]
    if missing:
        raise InputError(f"{parts}: {len(missing)} of {tasks} scan tasks have no output (ranks {sorted(missing)[:10]})")
    sketches = fame.FameSketches(options.sketch_width, options.sketch_depth)
    if sum(load_pages(parts / COUNTS.format(rank=rank)) for rank in range(tasks)) == 0:
        raise InputError(f"empty dump: {dump} contains no pages")
    spill = _RowSpill(parts)
    for rank in range(tasks):
        links, redirects = load_counts(parts / COUNTS.format(rank=rank))
        sketches.links.add(links)
        sketches.redirects.add(redirects)
        with open(parts / ROWS.format(rank=rank), encoding="utf-8") as f:
            for line in f:
                spill.add(json.loads(line))
    return _finalise(spill, sketches)
