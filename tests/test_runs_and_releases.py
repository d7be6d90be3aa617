"""Runs and releases under hostile conditions (issue 11 "Runs and releases", issue 17 "Recipe strictness").

Real processes, real locks, real FIFOs and real SIGKILLs; every refusal is one line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from release_fixtures import make_manifest, make_rows, write_synthetic_release

from wikipersona_data.cli import main
from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.release.files import NotRegularFile, open_regular, special_entries
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.verify import verify_release
from wikipersona_data.release.writer import WRITER_LOCK, clean_stale_partials, write_release
from wikipersona_data.stages.recipe import load_recipe
from wikipersona_data.stages.worklock import LOCK_NAME, work_lock

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "builders" / "demo.toml"
TRAIN = "data/pairs/train-00000-of-00001.parquet"

# A child that takes the work-dir lock, says so, and waits to be killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from wikipersona_data.stages.worklock import work_lock
    with work_lock(Path(sys.argv[1]), "test-holder"):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def _holder(work: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(work)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


# ------------------------------------------------------------------------------------------------- work lock


def test_second_run_on_a_work_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    work = tmp_path / "work"
    proc = _holder(work)
    try:
        with pytest.raises(InputError) as err, work_lock(work):
            pass
        message = str(err.value)
        assert f"work dir {work} is in use by another run (pid {proc.pid} on " in message
        assert " since 20" in message and "\n" not in message
    finally:
        proc.kill()
        proc.wait()
    with work_lock(work):  # SIGKILL released it: the kernel drops a dead process's flock
        info = json.loads((work / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid()
    assert (work / LOCK_NAME).read_text() == ""  # released on exit, holder info cleared


def test_build_on_a_locked_work_dir_stops_before_any_call(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    proc = _holder(work)
    try:
        code = main(["build", str(DEMO), "--work", str(work), "--out", str(tmp_path / "rel"), "--no-progress"])
    finally:
        proc.kill()
        proc.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err[-1].startswith("error: work dir ") and f"pid {proc.pid}" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (work / "cache").exists() and not (tmp_path / "rel").exists()


# ------------------------------------------------------------------------------------------- stale partials

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from release_fixtures import make_manifest, make_rows
    import wikipersona_data.release.writer as writer
    def stop(*a, **k):  # the card is written last: be killed while the folder is half-written
        print("writing", flush=True)
        time.sleep(120)
    writer.render_card = stop
    pairs, personas = make_rows()
    writer.write_release(Path(sys.argv[1]), pairs=pairs, personas=personas, manifest=make_manifest())
    """
)


def test_partial_left_by_a_sigkill_is_cleaned_by_the_next_write(tmp_path: Path) -> None:
    out = tmp_path / "release"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out), str(Path(__file__).parent)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    partials = list(tmp_path.glob(".release.partial-*"))
    assert len(partials) == 1 and (partials[0] / WRITER_LOCK).exists()
    assert clean_stale_partials(out) == []  # the writer is alive: its partial is left alone
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partials[0].is_dir()  # what a SIGKILL leaves behind
    pairs, personas = make_rows()
    write_release(out, pairs=pairs, personas=personas, manifest=make_manifest())
    assert not partials[0].exists() and not list(tmp_path.glob(".release.partial-*"))
    assert not (out / WRITER_LOCK).exists() and verify_release(out).ok


def test_partial_without_lock_file_is_cleaned_only_when_old(tmp_path: Path) -> None:
    out = tmp_path / "release"
    young = tmp_path / ".release.partial-young"
    old = tmp_path / ".release.partial-old"
    other = tmp_path / ".other.partial-old"
    for folder in (young, old, other):
        folder.mkdir()
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    assert clean_stale_partials(out) == [old]
    assert young.is_dir() and other.is_dir()


# ----------------------------------------------------------------------------------------- only regular files


@pytest.fixture
def fifo_release(tmp_path: Path) -> Path:
    release = write_synthetic_release(tmp_path / "release")
    (release / TRAIN).unlink()
    os.mkfifo(release / TRAIN)
    return release


def _run_cli_with_timeout(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """In a child, so a hang fails the test instead of blocking the suite."""
    code = "import sys; from wikipersona_data.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)


def test_verify_refuses_a_fifo_in_one_line(fifo_release: Path) -> None:
    done = _run_cli_with_timeout(["verify", str(fifo_release)])
    assert done.returncode != 0
    fails = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if "FIFO" in line]
    assert len(fails) == 1 and TRAIN in fails[0] and "not a regular file" in fails[0]
    assert "Traceback" not in done.stderr


def test_publish_dry_run_refuses_a_fifo(fifo_release: Path) -> None:
    done = _run_cli_with_timeout(["publish", str(fifo_release), "--repo-id", "org/name", "--dry-run"])
    assert done.returncode != 0 and "FIFO" in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_open_regular_refuses_fifo_symlink_and_directory(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = tmp_path / "real.txt"
    target.write_text("x")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    for path, kind in ((fifo, "a FIFO"), (link, "symbolic link"), (tmp_path, "a directory")):
        with pytest.raises(NotRegularFile, match=kind):
            open_regular(path)
    with open_regular(target) as fh:
        assert fh.read() == b"x"
    assert [k for _, k in special_entries(tmp_path)] == ["a symbolic link", "a FIFO"] or sorted(
        k for _, k in special_entries(tmp_path)
    ) == ["a FIFO", "a symbolic link"]


def test_symlinked_parquet_is_refused_by_verify(tmp_path: Path) -> None:
    release = write_synthetic_release(tmp_path / "release")
    real = tmp_path / "elsewhere.parquet"
    shutil.move(release / TRAIN, real)
    (release / TRAIN).symlink_to(real)
    report = verify_release(release)
    assert not report.ok and len(report.failures) == 1 and "symbolic link" in report.failures[0].detail


# -------------------------------------------------------------------------------------------- recipes up front


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DEMO.read_text()
    assert old in text, old
    path = tmp_path / "recipe.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('version = "0.1.0"', 'version = "00.1.0"', "version: must be a semantic version X.Y.Z without leading zeros"),
        ('version = "0.1.0"', 'version = "0.\u00b9.0"', "version: must be a semantic version"),
        ('name = "diet"', 'name = ""', "axes.0.name: String should have at least 1 character"),
        ('name = "vegan"', 'name = "   "', "axes.0.categories.0.name: String should match pattern"),
        ("temperature = 1.0", 'temperature = "1.0"', "temperature: Input should be a valid number (got '1.0')"),
        ("max_tokens = 400", "max_tokens = 400.0", "max_tokens: Input should be a valid integer"),
        ("max_tokens = 400", "max_tokens = true", "max_tokens: Input should be a valid integer"),
    ],
)
def test_recipe_values_are_strict_and_named(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = _variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value), str(err.value)


def test_unknown_license_is_refused_up_front(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'pretty_name = "', 'license = "mit"\npretty_name = "')
    with pytest.raises(ConfigError, match=r"license: unknown license 'mit': Wikipedia text needs a share-alike"):
        load_recipe(path)


def test_absolute_dump_path_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    dump = load_recipe(DEMO).dump_paths()[0]
    text = DEMO.read_text()
    start = text.index("[dump]")
    line = next(ln for ln in text[start:].splitlines() if ln.startswith("path"))
    path = _variant(tmp_path, line, f'path = "{dump}"')
    work = tmp_path / "work"
    code = main(["build", str(path), "--work", str(work), "--out", str(tmp_path / "rel"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "dump.path:" in err[-1] and "is absolute" in err[-1] and "Traceback" not in "\n".join(err)
    assert not work.exists()


def test_absolute_path_elsewhere_in_the_recipe_text_is_refused_up_front(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'description = "', 'description = "built on /home/alice/dumps. ')
    with pytest.raises(ConfigError, match=r"the release manifest would refuse this recipe .*absolute path"):
        load_recipe(path)


def test_axis_with_one_category_is_warned(tmp_path: Path, capsys) -> None:
    text = DEMO.read_text()
    start = text.index("[[axes]]")
    end = text.index("[[axes]]", start + 1)
    block = text[start:end]
    one = block[: block.index("[[axes.categories]]", block.index("[[axes.categories]]") + 1)]
    path = tmp_path / "recipe.toml"
    path.write_text(text[:start] + one + "\n" + text[end:])
    load_recipe(path)
    err = capsys.readouterr().err
    assert f"warning: {path}: axes.diet.categories: only one category" in err


def test_demo_recipe_still_loads() -> None:
    assert load_recipe(DEMO).version


# ------------------------------------------------------------------------------------------ manifest ranges


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"license": "wtfpl"}, "unknown license 'wtfpl'"),
        ({"divergence": {"diet": 42.0}}, "diet = 42.0 is outside [0, 1]"),
        ({"grounding": {"mean": -0.5}}, "mean = -0.5 is outside [0, 1]"),
        ({"counts": {"personas": -3}}, "negative count personas = -3"),
        ({"ledger": {"totals": {"calls": 10, "cost_usd": -122.53}}}, "negative cost or count ledger.totals.cost_usd"),
    ],
)
def test_verify_checks_manifest_ranges(tmp_path: Path, change: dict, expected: str) -> None:
    release = write_synthetic_release(tmp_path / "release")
    manifest = json.loads((release / "manifest.json").read_text())
    manifest["data"].update(change)
    (release / "manifest.json").write_text(json.dumps(manifest))
    report = verify_release(release)
    failures = {c.name: c.detail for c in report.failures}
    assert "manifest" in failures and expected in failures["manifest"], failures


def test_synthetic_manifest_is_in_range() -> None:
    assert isinstance(Manifest.model_validate(make_manifest().model_dump()), Manifest)
