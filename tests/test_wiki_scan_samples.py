"""The scan on the real enwiki samples (skipped when ../shared/wikipedia_samples is absent) and the demo dump."""

from __future__ import annotations

from pathlib import Path

import pytest
from wiki_dump_fixtures import SAMPLE_INDEX, SAMPLE_MULTI, SAMPLE_SINGLE

from wikipersona_data.wiki.scan import ScanOptions, scan_dump

OPTS = ScanOptions(workers=2, progress=False)
needs_samples = pytest.mark.skipif(not SAMPLE_INDEX.is_file(), reason="shared wikipedia samples absent")


@needs_samples
def test_sample_multistream_and_single_stream_agree() -> None:
    summary, rows, _ = scan_dump(SAMPLE_MULTI, SAMPLE_INDEX, options=OPTS)
    rows = list(rows)
    assert (summary.pages, summary.redirects, summary.articles, summary.errors) == (206, 100, 106, 0)
    assert {r["title"] for r in rows if r["is_living"]} == {"Andre Agassi", "Alain Connes"}
    assert summary.living == 2
    dead = {r["title"] for r in rows if not r["is_living"]}
    assert {"Abraham Lincoln", "Aristotle", "Albert Einstein", "Ayn Rand"} <= dead
    agassi = next(r for r in rows if r["title"] == "Andre Agassi")
    assert agassi["page_id"] == 595 and agassi["birth_year"] == 1970 and agassi["ref_count"] > 100
    assert agassi["infobox_template"] == "infobox tennis biography"
    ayn = next(r for r in rows if r["title"] == "Ayn Rand")
    assert ayn["redirects_in"] >= 1  # the sample's 'AynRand' redirect
    single_summary, single_rows, _ = scan_dump(SAMPLE_SINGLE, options=OPTS)
    assert list(single_rows) == rows
    assert (single_summary.pages, single_summary.people) == (summary.pages, summary.people)


def test_demo_dump_scans() -> None:
    from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX

    if not (Path(DEMO_DUMP).is_file() and Path(DEMO_INDEX).is_file()):
        pytest.skip("demo dump not built yet")
    summary, rows, _ = scan_dump(DEMO_DUMP, DEMO_INDEX, options=OPTS)
    rows = list(rows)
    assert summary.errors == 0 and summary.people == len(rows) > 0 and summary.living > 0
    assert [r["page_id"] for r in rows] == sorted(r["page_id"] for r in rows)
    assert max(r["inbound_links"] for r in rows) > 0
