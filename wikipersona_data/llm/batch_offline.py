"""Offline batch files for open models: ``wikipersona batch export`` and ``wikipersona batch import``.

With an endpoint in ``mode = "offline"``, ``wikipersona build`` runs until its stages need replies that are not
in the call cache, writes those requests to ``<work>/batch/pending.jsonl`` and stops (exit 3). Then:

* ``export`` writes the pending requests as N JSONL files in the OpenAI batch input format, one per GPU node,
  for ``vllm run-batch -i FILE -o RESULTS --model M``;
* ``import`` reads the result files (same format as OpenAI's batch output), checks every line, and files each
  reply through the same envelope check as an online reply into the call cache (priced ``offline``: what the
  recipe's price says);
* ``wikipersona build`` again continues, and stops again at the next round's requests (re-asks, top-ups, the
  next knockout round) until the release is written.

Import is all or nothing for the files' *shape*: a line that is not JSON, lacks a ``custom_id``, names a request
that is not pending, or has neither a response nor an error is one error line naming the file and line, and
nothing is imported. A line that reports a failure (an error, a non-200 status) or whose reply fails the
envelope check is a failed request: it stays pending for the next export. The same ``custom_id`` twice: the
first usable reply is kept, the others are counted as duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wikipersona_data.errors import InputError
from wikipersona_data.fileio import write_atomic
from wikipersona_data.llm import batch_files

PENDING = "pending.jsonl"


def pending_path(work: Path) -> Path:
    return Path(work) / "batch" / PENDING


def _pending(work: Path) -> dict[str, batch_files.PendingCall]:
    path = pending_path(work)
    if not path.is_file():
        raise InputError(
            f'{path}: no pending requests; run `wikipersona build` with an endpoint in mode "offline" first'
        )
    return batch_files.read_pending(path)


def export(work: Path, shards: int, out: Path | None = None) -> list[Path]:
    """The pending requests as ``shards`` files ``requests-0000K-of-0000N.jsonl`` (contiguous, balanced, in
    key order) in ``out`` (default ``<work>/batch/export``); returns their paths. Earlier exports there are
    replaced (a file of another shard count is removed, so no stale shard is answered twice)."""
    if shards < 1:
        raise InputError(f"--shards {shards}: must be at least 1")
    calls = sorted(_pending(work).values(), key=lambda c: c.key)
    if not calls:
        raise InputError(f"{pending_path(work)}: no pending requests")
    shards = min(shards, len(calls))
    folder = Path(out) if out is not None else Path(work) / "batch" / "export"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("requests-*-of-*.jsonl"):
        old.unlink()
    paths = []
    per, extra = divmod(len(calls), shards)
    start = 0
    for index in range(shards):
        size = per + (1 if index < extra else 0)
        path = folder / f"requests-{index:05d}-of-{shards:05d}.jsonl"
        write_atomic(path, b"".join(batch_files.request_line(c) for c in calls[start : start + size]))
        paths.append(path)
        start += size
    return paths


@dataclass
class ImportReport:
    imported: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0
    pending_left: int = 0

    def line(self) -> str:
        parts = [f"{self.imported} replies imported into the call cache"]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate lines ignored")
        if self.failed:
            first = next(iter(sorted(self.failed.items())))
            parts.append(f"{len(self.failed)} failed and stay pending (e.g. {first[0][:12]}: {first[1]})")
        parts.append(f"{self.pending_left} requests still pending; run the build again to continue")
        return ", ".join(parts)


def import_results(work: Path, files: list[Path]) -> ImportReport:
    """Check every line of ``files`` (all of them first: a bad line imports nothing), then file the replies
    into ``<work>/cache``; ``pending.jsonl`` keeps only what is still unanswered."""
    from wikipersona_data.llm.cache import CallCache
    from wikipersona_data.llm.client import file_reply
    from wikipersona_data.stages.worklock import work_lock

    if not files:
        raise InputError("batch import: give at least one results file")
    work = Path(work)
    with work_lock(work, "batch import"):
        calls = _pending(work)
        results: list[batch_files.Result] = []
        for path in files:
            if not Path(path).is_file():
                raise InputError(f"{path}: no such results file")
            for number, raw in batch_files.read_lines(Path(path)):
                result = batch_files.parse_result(raw, f"{path} line {number}")
                if result.custom_id not in calls:
                    raise InputError(
                        f"{path} line {number}: custom_id {result.custom_id[:64]!r} is not a pending request of "
                        f"{work} (results of another work dir or an older export?); nothing imported"
                    )
                results.append(result)
        report = ImportReport()
        answered: set[str] = set()
        cache = CallCache(work / "cache", mode="use")
        try:
            for result in results:
                if result.custom_id in answered:
                    report.duplicates += 1
                    continue
                call = calls[result.custom_id]
                reason = result.failure
                if reason is None:
                    assert result.body is not None
                    reason = file_reply(cache, call, result.body, mode="offline", request_id=result.request_id)
                if reason is None:
                    answered.add(call.key)
                    report.imported += 1
                    report.failed.pop(call.key, None)
                else:
                    report.failed.setdefault(call.key, reason)
        finally:
            cache.close()
        left = [c for key, c in sorted(calls.items()) if key not in answered]
        batch_files.write_pending(pending_path(work), left)
        report.pending_left = len(left)
        return report
