"""`wikipersona demo`: simulator up during the build, then verify + offline load_dataset + printed sample.

The build itself belongs to the stages (build_recipe); here it is replaced by a builder that writes the synthetic
release, so these tests pin down the demo's own duties: wiring, the self-test, and what it prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from release_fixtures import make_rows, write_synthetic_release

from wikipersona_data.cli import main
from wikipersona_data.errors import ConfigError, WikipersonaError
from wikipersona_data.release.demo import DEMO_RECIPE, run_demo


def test_demo_builds_with_the_simulator_verifies_loads_and_prints(tmp_path: Path) -> None:
    seen: dict = {}

    def build(recipe, *, work_dir, out_dir, base_url, max_usd):
        parts = urlsplit(base_url)
        seen.update(recipe=recipe, work_dir=work_dir, out_dir=out_dir, host=parts.hostname, max_usd=max_usd)
        stats_url = f"{parts.scheme}://{parts.netloc}/sim/stats"
        seen["stats"] = json.loads(urlopen(stats_url, timeout=5).read())  # the simulator answers during the build
        return write_synthetic_release(out_dir)

    lines: list[str] = []
    out = tmp_path / "demo-release"
    result = run_demo(out=out, work=tmp_path / "work", echo=lines.append, recipe=DEMO_RECIPE, build=build)
    assert result == out
    assert seen["host"] == "127.0.0.1" and seen["work_dir"] == tmp_path / "work" and seen["max_usd"] is None
    assert seen["recipe"] == DEMO_RECIPE and "requests" in seen["stats"]
    text = "\n".join(lines)
    pairs, personas = make_rows()
    assert "release OK" in text
    assert f"release: {out} (WikiPersona v1.0.0)" in text
    assert (
        f"load_dataset offline: pairs train {len(pairs['train'])}, test {len(pairs['test'])}; personas {len(personas)}"
    ) in text
    shown = [line for line in lines if line.startswith("[")]
    assert len(shown) == 3
    assert any("(personal)" in line for line in shown) and any("(divergent, " in line for line in shown)
    assert sum(line.startswith("  chosen:   ") for line in lines) == 3


def test_demo_refuses_a_release_that_fails_verify(tmp_path: Path) -> None:
    def build(recipe, *, out_dir, **_):
        release = write_synthetic_release(out_dir)
        (release / "data/pairs/test-00000-of-00001.parquet").write_bytes(b"broken")
        return release

    with pytest.raises(WikipersonaError, match="the demo release fails verify"):
        run_demo(out=tmp_path / "o", work=tmp_path / "w", echo=lambda _: None, recipe=DEMO_RECIPE, build=build)


def test_demo_errors_are_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match="demo recipe not found"):
        run_demo(out=tmp_path / "o", work=tmp_path / "w", recipe=tmp_path / "missing.toml", build=lambda *a, **k: a)
    assert main(["demo", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--out" in help_text and "demo-release" in help_text and "work/demo" in help_text
