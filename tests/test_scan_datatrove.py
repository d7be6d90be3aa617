"""The scan as a datatrove pipeline (local executor): same tables as the in-process scan, reruns skip finished
tasks, a logs folder is tied to its inputs, and the summary equals datatrove's per-task stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wiki_dump_fixtures import (
    SAMPLE_INDEX,
    SAMPLE_MULTI,
    KillOnRank,
    P,
    person_text,
    small_wiki,
    write_multistream,
    write_xml,
)

from wikipersona_data.cli import main
from wikipersona_data.errors import InputError
from wikipersona_data.wiki.scan import ScanOptions, scan_dump
from wikipersona_data.wiki.scan_run import plan_scan, run_local, summary_from_stats, task_errors
from wikipersona_data.wiki.table import write_table

needs_samples = pytest.mark.skipif(not SAMPLE_INDEX.is_file(), reason="shared wikipedia samples absent")


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_multistream(tmp_path_factory.mktemp("multi"), small_wiki(), per_stream=2)


def _in_process(dump: Path, index: Path | None, out: Path, **kw: object):
    """Today's scan (process pool in scan.py), the reference."""
    summary, rows, _ = scan_dump(dump, index, options=ScanOptions(**{"workers": 2, "progress": False, **kw}))
    write_table(out, rows)
    return summary


def _datatrove(dump: Path, index: Path | None, out: Path, logs: Path, tasks: int | None = None, workers: int = 2, **kw):
    options = ScanOptions(**{"workers": workers, "progress": False, **kw})
    plan = plan_scan(dump, index, logs, options, tasks, workers)
    return plan, run_local(plan, out, options, workers)


def _counts(summary) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    return (summary.pages, summary.articles, summary.redirects, summary.people, summary.living, summary.errors)


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_tables_are_byte_identical_to_the_in_process_scan(tmp_path: Path, multi: tuple[Path, Path], ext: str) -> None:
    reference = tmp_path / f"ref.{ext}"
    ref_summary = _in_process(*multi, reference)
    for tasks, workers in ((None, 2), (1, 1), (4, 2), (6, 1)):
        out = tmp_path / f"dt-{tasks}-{workers}.{ext}"
        plan, summary = _datatrove(*multi, out, tmp_path / f"logs-{tasks}-{workers}", tasks, workers)
        assert out.read_bytes() == reference.read_bytes(), (tasks, workers)
        assert _counts(summary) == _counts(ref_summary) == (12, 7, 4, 4, 3, 0)
    assert plan.tasks == 6


def test_without_an_index_one_task_reads_in_order(tmp_path: Path, multi: tuple[Path, Path]) -> None:
    reference = tmp_path / "ref.jsonl"
    _in_process(*multi, reference)
    plain = write_xml(tmp_path / "plain.xml.bz2", small_wiki())
    plan, summary = _datatrove(plain, None, tmp_path / "seq.jsonl", tmp_path / "logs")
    assert plan.tasks == 1 and _counts(summary) == (12, 7, 4, 4, 3, 0)
    assert (tmp_path / "seq.jsonl").read_bytes() == reference.read_bytes()
    with pytest.raises(InputError, match="without a multistream index"):
        plan_scan(plain, None, tmp_path / "logs2", ScanOptions(), 3, 2)


@needs_samples
def test_real_enwiki_sample_identical_and_stats_agree(tmp_path: Path) -> None:
    reference = tmp_path / "ref.parquet"
    ref_summary = _in_process(SAMPLE_MULTI, SAMPLE_INDEX, reference)
    plan, summary = _datatrove(SAMPLE_MULTI, SAMPLE_INDEX, tmp_path / "dt.parquet", tmp_path / "logs", tasks=3)
    assert (tmp_path / "dt.parquet").read_bytes() == reference.read_bytes()
    assert _counts(summary) == _counts(ref_summary)
    assert (summary.pages, summary.redirects, summary.articles) == (206, 100, 106)
    _, per_task = summary_from_stats(plan)
    assert len(per_task) == 3 and all(t["pages"] > 0 for t in per_task)  # the work really was split
    assert sum(t["compressed_bytes"] for t in per_task) == sum(plan.task_bytes)


def test_rerun_after_a_failed_task_redoes_only_the_unfinished(
    tmp_path: Path, multi: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Task 2 of 6 fails (workers=1: ranks run in order in this process); the rerun runs ranks 2..5 only."""
    from wikipersona_data.wiki import scan_steps

    reference = tmp_path / "ref.jsonl"
    _in_process(*multi, reference)
    out, logs = tmp_path / "t.jsonl", tmp_path / "logs"
    args = ["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(out), "--logs", str(logs)]
    args += ["--tasks", "6", "--workers", "1", "--no-progress"]
    original = scan_steps.ScanPartWriter.run

    def fails_on_rank_2(self, data, rank=0, world_size=1):  # type: ignore[no-untyped-def]
        if rank == 2:
            raise InputError("simulated failure of task 2")
        return original(self, data, rank, world_size)

    monkeypatch.setattr(scan_steps.ScanPartWriter, "run", fails_on_rank_2)
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: simulated failure of task 2"
    assert sorted(p.name for p in (logs / "stage1" / "completions").iterdir()) == ["00000", "00001"]
    assert not out.exists()  # no table from an incomplete scan

    monkeypatch.setattr(scan_steps.ScanPartWriter, "run", original)
    for log in (logs / "stage1" / "logs").iterdir():
        log.unlink()
    done_before = {p.name: p.stat().st_mtime_ns for p in (logs / "parts").glob("rows-0000[01].jsonl")}
    assert main(args) == 0
    ran = sorted(p.name for p in (logs / "stage1" / "logs").iterdir())
    assert ran == [f"task_{r:05d}.log" for r in range(2, 6)]  # ranks 0 and 1 were skipped, not rerun
    assert {p.name: p.stat().st_mtime_ns for p in (logs / "parts").glob("rows-0000[01].jsonl")} == done_before
    assert out.read_bytes() == reference.read_bytes()
    assert "pages=12 articles=7 redirects=4 people=4 living=3 errors=0" in capsys.readouterr().out


def test_a_worker_killed_from_outside_stops_the_scan_and_the_rerun_finishes_it(
    tmp_path: Path, multi: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The worker running task 2 gets SIGKILL (as from the OOM killer): the scan must not hang (datatrove's own
    Pool waits forever for the dead task), it stops with one line and exit 2; the rerun runs only the tasks
    without a completion mark and gives the same table as a clean scan."""
    from wikipersona_data.wiki import scan_run

    reference = tmp_path / "ref.jsonl"
    _in_process(*multi, reference)
    out, logs = tmp_path / "t.jsonl", tmp_path / "logs"
    args = ["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(out), "--logs", str(logs)]
    args += ["--tasks", "6", "--workers", "2", "--no-progress"]
    real_steps = scan_run.stage1_steps
    monkeypatch.setattr(scan_run, "stage1_steps", lambda *a: [*real_steps(*a), KillOnRank(2)])
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: scan: a worker process died (killed, or out of memory) with ")
    assert last.endswith("run the same command again to redo only those")
    done = {p.name for p in (logs / "stage1" / "completions").iterdir()}
    assert "00002" not in done and len(done) < 6
    assert not out.exists()

    monkeypatch.setattr(scan_run, "stage1_steps", real_steps)
    for log in (logs / "stage1" / "logs").iterdir():
        log.unlink()
    assert main(args) == 0
    ran = {p.name for p in (logs / "stage1" / "logs").iterdir()}
    assert ran == {f"task_{r:05d}.log" for r in range(6) if f"{r:05d}" not in done}
    assert out.read_bytes() == reference.read_bytes()
    captured = capsys.readouterr()
    assert "pages=12 articles=7 redirects=4 people=4 living=3 errors=0" in captured.out
    assert "tasks completed" not in captured.err and "Stats" not in captured.err  # no per-task chatter


def test_logs_folder_belongs_to_one_scan(tmp_path: Path, multi: tuple[Path, Path], capsys) -> None:
    logs = tmp_path / "logs"
    base = ["scan", str(multi[0]), "--index", str(multi[1]), "--logs", str(logs), "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a.jsonl")]) == 0
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b.jsonl"), "--max-page-bytes", "999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --logs {logs.resolve()}: holds a scan with other inputs or settings")
    assert "max_page_bytes" in err and not (tmp_path / "b.jsonl").exists()


def test_too_many_tasks_is_refused(tmp_path: Path, multi: tuple[Path, Path], capsys) -> None:
    args = ["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(tmp_path / "t.jsonl"), "--tasks", "99"]
    assert main(args) == 2
    assert "has only 6 page streams" in capsys.readouterr().err


def test_errors_are_counted_per_task_and_agree_with_the_summary(tmp_path: Path, capsys) -> None:
    pages = small_wiki()
    pages[0] = P("Jane Doe", 10, person_text("Jane Doe", extra="x" * 5000))  # first stream: rank 0 of 3
    pages[-1] = P(pages[-1].title, pages[-1].page_id, person_text(pages[-1].title, extra="y" * 5000))
    dump, index = write_multistream(tmp_path, pages, per_stream=2)
    reference = _in_process(dump, index, tmp_path / "ref.jsonl", max_page_bytes=3000)
    plan, summary = _datatrove(dump, index, tmp_path / "dt.jsonl", tmp_path / "logs", 3, max_page_bytes=3000)
    assert _counts(summary) == _counts(reference) and summary.errors == 2
    _, per_task = summary_from_stats(plan)
    assert [t["errors"] for t in per_task] == [1, 0, 1]  # first and last stream
    for key in ("pages", "articles", "redirects", "people", "living"):
        assert sum(t[key] for t in per_task) == getattr(summary, key)
    messages = task_errors(plan)
    assert len(messages) == 2 and messages[0].startswith("task 0: skipped page 'Jane Doe' (id 10)")
    assert messages[1].startswith("task 2: skipped page") and all("per-page cap of 3000" in m for m in messages)
    assert (tmp_path / "dt.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    # the CLI prints them once, after the scan, and its summary line is the stats' sum
    out = tmp_path / "cli.jsonl"
    args = ["scan", str(dump), "--index", str(index), "--out", str(out), "--tasks", "3", "--max-page-bytes", "3000"]
    assert main([*args, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: task ") == 2 and "errors=2 " in captured.out


def test_parse_timeouts_are_errors_not_failures(tmp_path: Path, multi: tuple[Path, Path]) -> None:
    plan, summary = _datatrove(*multi, tmp_path / "t.jsonl", tmp_path / "logs", 2, workers=1, page_timeout=1e-6)
    assert summary.errors == 4 and summary.people == 0 and summary.pages == 12
    assert (tmp_path / "t.jsonl").read_text() == ""
    assert all("parse exceeded" in m for m in task_errors(plan)) and len(task_errors(plan)) == 4
    assert json.loads((plan.logs / "scan.json").read_text())["tasks"] == 2
