"""The public API of ``wikipersona_data`` (issue 12, item 7): what a script imports, on the bundled demo dump."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import wikipersona_data
from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX, DEMO_RECIPE
from wikipersona_data.errors import ConfigError


def test_exports_resolve_and_import_stays_light() -> None:
    for name in wikipersona_data.__all__:
        assert getattr(wikipersona_data, name) is not None, name
    with pytest.raises(AttributeError):
        wikipersona_data.no_such_thing  # noqa: B018
    code = "import sys, wikipersona_data; print(sorted(m for m in sys.modules if m.startswith('wikipersona_data')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "wikipersona_data.api" not in loaded and "wikipersona_data.stages" not in loaded


def test_reader_recipe_and_scan_on_the_demo_dump(tmp_path: Path) -> None:
    recipe = wikipersona_data.load_recipe(DEMO_RECIPE)
    title = recipe.axes[0].categories[0].personas[0]
    with wikipersona_data.DumpReader(DEMO_DUMP, DEMO_INDEX) as reader:
        bio = reader.get(title)
    assert bio.is_person and bio.sentences

    out = tmp_path / "people.jsonl"
    summary = wikipersona_data.scan(DEMO_DUMP, DEMO_INDEX, out=out, workers=1)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert summary.people == len(rows) > 0
    assert bio.page_id in {r["page_id"] for r in rows}
    assert [r["page_id"] for r in rows] == sorted(r["page_id"] for r in rows)


def test_scan_refuses_a_bad_table_name_before_the_pass(tmp_path: Path) -> None:
    from wikipersona_data.errors import InputError

    with pytest.raises(InputError, match="unknown table format"):
        wikipersona_data.scan(DEMO_DUMP, DEMO_INDEX, out=tmp_path / "people.csv")


def test_extend_reads_axes_like_the_cli(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected AXIS:CATEGORY"):
        wikipersona_data.extend(tmp_path, {"Someone": ["diet"]})


def test_verify_release_reports_instead_of_raising(tmp_path: Path) -> None:
    report = wikipersona_data.verify_release(tmp_path / "missing")
    assert not report.ok and "not a directory" in report.failures[0].detail


def test_cli_build_is_the_api_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI is a thin layer: `wikipersona build` hands its options to ``wikipersona_data.api.build``."""
    from wikipersona_data import api
    from wikipersona_data.cli import cli

    seen: dict = {}

    def fake_build(recipe, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs, recipe=recipe)
        kwargs["report"]("release written to nowhere")
        return tmp_path

    monkeypatch.setattr(api, "build", fake_build)
    result = CliRunner().invoke(cli, ["build", str(DEMO_RECIPE), "--work", str(tmp_path / "w"), "--max-usd", "1"])
    assert result.exit_code == 0, result.output
    assert seen["recipe"] == DEMO_RECIPE and seen["work"] == tmp_path / "w" and seen["max_usd"] == 1.0
    assert "release written to nowhere" in result.output
