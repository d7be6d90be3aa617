"""A non-editable install works: the wheel carries the demo recipe, dump and templates.

An editable install reads files from the source tree, so a file missing from the wheel only shows on a user's
machine (``pip install .`` then ``wikipersona demo`` once failed with "demo recipe not found"). Here the wheel is
built from this checkout without network (the test extra brings a setuptools that can build it), unpacked into a
folder, and run from another working directory with that folder first on ``sys.path``; the dependencies come from
the test environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    cmd.append(str(ROOT))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = wheels.glob("wikipersona_data-*.whl")
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def _run(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "wikipersona_data.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_wheel_ships_the_demo_recipe_dump_and_templates(installed: Path) -> None:
    package = installed / "wikipersona_data"
    assert (package / "demo" / "recipe.toml").is_file()
    assert (package / "demo" / "data").is_dir() and any((package / "demo" / "data").glob("*.xml.bz2"))
    assert any((package / "stages" / "templates").glob("*.md"))
    assert (package / "release" / "dataset_card.md").is_file()


def test_demo_runs_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import wikipersona_data; print(wikipersona_data.__file__)"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip().startswith(str(installed)), probe.stdout + probe.stderr  # the wheel, not the tree
    done = _run(installed, tmp_path, "demo", "--out", "demo-release")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "release OK" in done.stdout + done.stderr
    manifest = json.loads((tmp_path / "demo-release" / "manifest.json").read_text())
    assert manifest["data"]["recipe"]["name"] == "demo"
