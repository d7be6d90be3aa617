"""The scan on small real bz2 dumps written by the tests: counts, rows, fame, determinism, tasks, robustness."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from wiki_dump_fixtures import P, person_text, small_wiki, write_multistream, write_xml

from wikipersona_data.cli import main
from wikipersona_data.wiki.dump import Page
from wikipersona_data.wiki.scan import (
    PagesTask,
    ScanOptions,
    SiteContext,
    _Collector,
    _run_tasks,
    scan_dump,
)


def _scan(dump: Path, index: Path | None = None, **kw: object):
    summary, rows, _ = scan_dump(dump, index, options=ScanOptions(**{"workers": 2, "progress": False, **kw}))
    return summary, list(rows)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_multistream(tmp_path_factory.mktemp("multi"), small_wiki(), per_stream=2)


@pytest.fixture(scope="module")
def multi_rows(multi: tuple[Path, Path]):
    return _scan(*multi)


def test_multistream_scan_counts_and_rows(multi_rows) -> None:
    summary, rows = multi_rows
    assert (summary.pages, summary.articles, summary.redirects) == (12, 7, 4)
    assert (summary.people, summary.living, summary.errors) == (4, 3, 0)
    assert [r["title"] for r in rows] == ["Jane Doe", "John Roe", "AT&T Person", "Mary Major"]
    assert [r["page_id"] for r in rows] == sorted(r["page_id"] for r in rows)
    jane = rows[0]
    assert jane["is_living"] is True and jane["birth_year"] == 1970 and jane["birth_date"] == "1970-04-29"
    assert jane["revision_id"] == 100 and jane["url"] == "https://en.wikipedia.org/wiki/Jane_Doe"
    assert "Living people" in jane["categories"] and jane["infobox_template"] == "infobox person"
    assert rows[1]["is_living"] is False


def test_fame_counts_links_once_per_page_and_redirects(multi_rows) -> None:
    _, rows = multi_rows
    by_title = {r["title"]: r for r in rows}
    jane = by_title["Jane Doe"]
    # Acme Corp, Widgets (two spellings + a section link = one page), Gadgets, Mary Major; not the Talk page
    assert jane["inbound_links"] == 4
    assert jane["redirects_in"] == 2
    assert by_title["John Roe"]["inbound_links"] == 1  # piped link from Acme Corp
    assert by_title["AT&T Person"]["inbound_links"] == 0
    assert jane["ref_count"] == 2 and jane["section_count"] == 2
    assert jane["wikitext_bytes"] == len(small_wiki()[0].text.encode())
    assert jane["fame_score"] > by_title["Mary Major"]["fame_score"] > 0


def test_sequential_paths_match_the_indexed_scan(tmp_path: Path, multi_rows) -> None:
    summary_idx, rows_idx = multi_rows
    for name in ("single.xml.bz2", "plain.xml"):
        summary, rows = _scan(write_xml(tmp_path / name, small_wiki()))
        assert rows == rows_idx
        assert summary.line().split(" seconds")[0] == summary_idx.line().split(" seconds")[0]


def test_multistream_read_without_index_is_sequential(multi: tuple[Path, Path], multi_rows) -> None:
    assert _scan(multi[0])[1] == multi_rows[1]


def test_schema_010_and_plain_index(tmp_path: Path, multi_rows) -> None:
    dump, index = write_multistream(tmp_path, small_wiki(), per_stream=3, schema="0.10", index_bz2=False)
    assert index.suffix == ".txt"
    assert _scan(dump, index)[1] == multi_rows[1]


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_one_and_two_workers_give_identical_bytes(tmp_path: Path, multi: tuple[Path, Path], ext: str) -> None:
    dump, index = multi
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.{ext}"
        code = main(
            ["scan", str(dump), "--index", str(index), "--out", str(out), "--workers", str(workers), "--no-progress"]
        )
        assert code == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    if ext == "parquet":
        table = pq.read_table(tmp_path / "w1.parquet")
        assert table.column("title").to_pylist() == ["Jane Doe", "John Roe", "AT&T Person", "Mary Major"]
    else:
        assert [json.loads(line)["page_id"] for line in outs[0].decode().splitlines()] == [10, 12, 17, 21]


def test_tasks_union_equals_full_scan(tmp_path: Path, multi: tuple[Path, Path]) -> None:
    """What --shard K/N + --combine did, datatrove's ranks do in one command: any task count, same bytes."""
    dump, index = multi
    tables = []
    for tasks in (1, 3, 6):
        out = tmp_path / f"t{tasks}.jsonl"
        args = ["scan", str(dump), "--index", str(index), "--out", str(out), "--tasks", str(tasks), "--no-progress"]
        assert main(args) == 0
        assert len(list((tmp_path / f"t{tasks}.jsonl.scan-logs" / "stage1" / "completions").iterdir())) == tasks
        tables.append(out.read_bytes())
    assert tables[0] == tables[1] == tables[2]
    assert [json.loads(line)["page_id"] for line in tables[0].decode().splitlines()] == [10, 12, 17, 21]


@pytest.mark.parametrize("option", [["--shard", "1/2"], ["--combine", "part.jsonl"]])
def test_shard_and_combine_are_gone_with_a_pointer(tmp_path: Path, capsys, option: list[str]) -> None:
    assert main(["scan", "unused.xml.bz2", "--out", str(tmp_path / "t.jsonl"), *option]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --shard/--combine were removed") and "docs/scan.md" in err


def test_summary_line_and_table_on_stdout(multi: tuple[Path, Path], capsys) -> None:
    dump, index = multi
    assert main(["scan", str(dump), "--index", str(index), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("pages=12 articles=7 redirects=4 people=4 living=3 errors=0 seconds=")
    assert any("Jane Doe" in line and "1970-04-29" in line for line in out)


def test_progress_bar_on_stderr(multi: tuple[Path, Path], capsys) -> None:
    dump, index = multi
    assert main(["scan", str(dump), "--index", str(index), "--workers", "1", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "pages/s" in err and "MB/s" in err
    # by default bars only on a terminal: captured stderr is not one, so a redirected log stays clean
    assert main(["scan", str(dump), "--index", str(index), "--workers", "1"]) == 0
    assert "pages/s" not in capsys.readouterr().err


def test_oversized_page_is_skipped_counted_and_logged(tmp_path: Path, multi: tuple[Path, Path], capsys) -> None:
    pages = small_wiki()
    pages[0] = P("Jane Doe", 10, person_text("Jane Doe", extra="x" * 5000))
    dump, index = write_multistream(tmp_path, pages)
    out = tmp_path / "t.jsonl"
    assert (
        main(["scan", str(dump), "--index", str(index), "--out", str(out), "--max-page-bytes", "3000", "--no-progress"])
        == 0
    )
    captured = capsys.readouterr()
    assert "errors=1" in captured.out and "people=3" in captured.out
    assert "'Jane Doe'" in captured.err and "per-page cap" in captured.err
    assert "Jane Doe" not in [json.loads(line)["title"] for line in out.read_text().splitlines()]


def test_parse_timeout_is_skipped_not_fatal(multi: tuple[Path, Path], capsys) -> None:
    summary, rows = _scan(*multi, page_timeout=1e-6)
    assert summary.errors == 4 and rows == []  # every candidate hit the limit; the scan still finished
    assert summary.pages == 12
    assert "parse exceeded" in capsys.readouterr().err


class _KillsTheWorker:
    """Unpickling this in a worker process ends it at once, as an OOM kill or a crash in C would."""

    def __reduce__(self):
        return (os._exit, (3,))


def test_a_worker_that_dies_costs_only_its_task(tmp_path: Path, capsys) -> None:
    texts = {i: person_text(f"Person {i}") for i in (1, 2, 3)}
    good = [Page(f"Person {i}", 0, i, None, None, text, len(text)) for i, text in texts.items()]
    site, options = SiteContext(), ScanOptions(workers=2, progress=False)
    tasks = [PagesTask("d", (good[0],), site, options, 0), PagesTask("d", (_KillsTheWorker(),), site, options, 0)]  # type: ignore[arg-type]
    tasks += [PagesTask("d", (page,), site, options, 0) for page in good[1:]]
    collector = _Collector(options, tmp_path, None)
    _run_tasks(iter(tasks), collector, workers=2, stream_bytes=False)
    collector.finish()
    assert collector.summary.people == 3 and collector.summary.errors == 1
    assert sorted(row["title"] for row in collector.spill.sorted_rows()) == ["Person 1", "Person 2", "Person 3"]
    assert "the worker died twice" in capsys.readouterr().err


def test_workers_are_recycled_without_losing_work(tmp_path: Path, multi: tuple[Path, Path], multi_rows) -> None:
    from wikipersona_data.wiki.scan import SequentialReader

    pages = list(SequentialReader(write_xml(tmp_path / "d.xml", small_wiki())).pages())
    options = ScanOptions(workers=2, progress=False)
    tasks = [PagesTask("d", (page,), SiteContext(), options, 0) for page in pages]
    collector = _Collector(options, tmp_path, None)
    _run_tasks(iter(tasks), collector, workers=2, stream_bytes=False, tasks_per_worker=2)  # 3 pools of 4 tasks
    collector.finish()
    assert collector.summary.pages == 12 and collector.summary.people == 4 and collector.summary.errors == 0
    assert [row["page_id"] for row in collector.spill.sorted_rows()] == [r["page_id"] for r in multi_rows[1]]


def test_section_count_equals_the_line_anchored_regex() -> None:
    import random

    from wikipersona_data.wiki.fame import SECTION_RE, section_count

    rng = random.Random(7)
    pieces = ["==", "=", "===", " ", "\n", "\n\n", "a", "Early life", "\t", "\r\n", " \n", "<!-- x -->"]
    texts = ["", "== A ==", "\n== A ==\n\n== B ==", "== A ==\n== B ==\n", "==A==  \n\n\n==B=="]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40))) for _ in range(20_000)]
    for text in texts:
        assert section_count(text) == len(SECTION_RE.findall(text)), repr(text)


def test_sketch_add_sums_repeated_cells_like_add_at() -> None:
    import numpy as np

    from wikipersona_data.wiki.fame import CountMinSketch

    rng = np.random.default_rng(3)
    sketch = CountMinSketch(width=64, depth=3)  # narrow: many keys share cells, within and across rows
    expected = np.zeros((3, 64), dtype=np.uint32)
    for _ in range(5):
        keys = rng.integers(0, 2**63, 200, dtype=np.uint64)
        counts = {int(k): int(v) for k, v in zip(keys, rng.integers(1, 9, 200), strict=True)}
        cells = sketch._cells(np.fromiter(counts, dtype=np.uint64))
        for row in range(3):
            np.add.at(expected[row], cells[row], np.fromiter(counts.values(), dtype=np.uint32))
        sketch.add(counts)
    assert np.array_equal(sketch.table, expected) and sketch.total == int(expected[0].sum())
