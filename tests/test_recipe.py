"""Recipes: the shipped ones validate, and every mistake is ONE line naming the file and the key path,
with exit code 2 from the CLI (no traceback)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wikipersona_data.cli import main
from wikipersona_data.errors import ConfigError
from wikipersona_data.stages.estimate import estimate, plan
from wikipersona_data.stages.recipe import load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "builders" / "demo.toml"
V1 = ROOT / "builders" / "wikipersona-v1.toml"


def write_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DEMO.read_text()
    assert old in text
    path = tmp_path / "recipe.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_demo_recipe_validates_and_resolves_the_bundled_dump() -> None:
    recipe = load_recipe(DEMO)
    dump, index = recipe.dump_paths()
    assert dump.name.endswith(".xml.bz2") and index.is_file()
    assert len(recipe.sha256) == 64 and recipe.text == DEMO.read_text()
    assert sum(len(c.personas) for a in recipe.axes for c in a.categories) == 8
    assert recipe.counts.candidates_generated == 6 and recipe.counts.candidates_kept == 4


def test_v1_recipe_has_the_papers_shape() -> None:
    text = V1.read_text()
    recipe = load_recipe(V1, check_dump=False)  # the full dump is not shipped
    assert len(recipe.axes) == 11
    titles = [t for a in recipe.axes for c in a.categories for t in c.personas]
    assert len(set(titles)) == 50 and len(titles) == 54  # 3 people on several axes, as in the paper
    assert "Elizabeth II" not in titles
    assert recipe.counts.personal_questions == 100 and recipe.counts.divergent_questions == 100
    assert recipe.counts.candidates_kept == 4 and recipe.split.persona_folds == 5
    assert {n: e.profile for n, e in recipe.endpoints.items()} == {"openai": "openai", "gen": "vllm", "rm": "vllm"}
    # the paper's generator answers, offline on vLLM; the OpenAI calls go through its Batch API
    assert recipe.stage("respond").model == "HuggingFaceH4/zephyr-7b-beta" and recipe.stage("respond").endpoint == "gen"
    assert (recipe.endpoints["gen"].mode, recipe.endpoints["openai"].mode) == ("offline", "batch")
    reward = recipe.stages.reward  # the paper's 50 -> 20 -> 4: reward band, then diversity
    assert reward is not None and reward.endpoint == "rm" and reward.band_position == "tightest"
    assert (recipe.counts.candidates_generated, reward.band, recipe.counts.candidates_kept) == (50, 20, 4)
    assert re.search(r"#.*Elizabeth II.*died", text)  # the replacement is explained in the recipe


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("personal_questions = 12", "personal_question = 12", "counts.personal_question: unknown key"),
        (
            'model = "sim-large"\ntemperature = 0.0\nmax_tokens = 200',
            "temperature = 0.0",
            "stages.judge.model: field required",
        ),
        ("temperature = 0.0\nmax_tokens = 200", "temperature = 5\nmax_tokens = 200", "stages.judge.temperature:"),
        (
            '[stages.prefixes]\nendpoint = "sim"',
            '[stages.prefixes]\nendpoint = "nowhere"',
            "stages.prefixes.endpoint: unknown",
        ),
        ('path = "package:demo"', 'path = "missing.xml.bz2"', "dump.path: file not found"),
        ('persona_view = "description"', 'persona_view = "face"', "judge.persona_view:"),
        ("candidates_kept = 4", "candidates_kept = 9", "candidates_kept must be <= candidates_generated"),
        ("min_grounding_score = 0.85", "min_grounding = 0.85", "filters.min_grounding: unknown key"),
        (
            "candidates_generated = 6",
            "candidates_generated = 1000000000",
            "counts.candidates_generated: Input should be less than or equal to 256 (got 1000000000)",
        ),
        ('version = "0.1.0"', 'version = "one"', "version:"),
        ('name = "demo"', 'name = "demo" "x"', "invalid TOML"),
        (
            'profile = "sim"\nbase_url = ""',
            'profile = "vllm"\nmode = "batch"\nbase_url = "http://127.0.0.1:9/v1"',
            "endpoints.sim: mode 'batch' needs a server with the OpenAI Batch API (/v1/batches); profile 'vllm'",
        ),
    ],
)
def test_recipe_errors_are_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    path = write_variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message
    code, line = run_cli(["build", str(path), "--work", str(tmp_path / "w")], capsys)
    assert code == 2 and line == f"error: {message}"
    assert not (tmp_path / "w").exists()  # nothing started


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Nobody Atall", "'Nobody Atall': not found in the dump"),
        ("Blue Kettle Foods", "is not about a person"),
        ("Harold Vinter", "is not a living person (death year 2015)"),
    ],
)
def test_bad_persona_title_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], title: str, expected: str
) -> None:
    path = write_variant(tmp_path, 'personas = ["Brett Halvorsen"]', f'personas = ["{title}"]')
    code, line = run_cli(["build", str(path), "--work", str(tmp_path / "w"), "--no-progress"], capsys)
    assert code == 2 and line.startswith(f"error: {path}: axes.diet.ketogenic:") and expected in line
    assert not (tmp_path / "w" / "release").exists()


def test_estimate_counts_calls_from_the_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    recipe = load_recipe(DEMO)
    calls = count_by_stage(plan(recipe))
    # 8 personas x ceil(12/6) batches + 4 axes x 2 batches
    assert calls["questions"] == 8 * 2 + 4 * 2
    # 96 personal + 48 divergent questions, 6 candidates each, + one categories call per personal question
    assert calls["respond"] == 144 * 6 + 96 + 144  # + one embedding call per question
    # judgments: 96 personal + 48 divergent x 2 members; 3 matches x 2 orders each
    assert calls["judge"] == (96 + 96) * 3 * 2
    table = estimate(recipe)
    assert table["totals"]["cost_usd"] > 0
    assert main(["estimate", str(DEMO)]) == 0
    assert "judge" in capsys.readouterr().out


def count_by_stage(calls: list[tuple]) -> dict[str, int]:
    out: dict[str, int] = {}
    for group in calls:  # (stage, model, tokens, max_out, n[, cache levels])
        out[group[0]] = out.get(group[0], 0) + group[4]
    return out


def test_estimate_of_the_largest_counts_is_arithmetic() -> None:
    """The largest counts a recipe may ask (10^4 questions x 256 candidates per persona): priced at once, no
    tuple per call (10^9 questions was a MemoryError before counts were bounded and the estimate arithmetic)."""
    import time

    text = DEMO.read_text().replace("personal_questions = 12", "personal_questions = 10000", 1)
    text = text.replace("candidates_generated = 6", "candidates_generated = 256", 1)
    recipe = parse_recipe(text, DEMO)
    started = time.monotonic()
    table = estimate(recipe)
    assert time.monotonic() - started < 5
    respond = sum(r["calls"] for r in table["by_stage_model"] if r["stage"] == "respond")
    assert respond >= 8 * 10_000 * 256


def test_max_usd_stops_the_build_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run_cli(["build", str(DEMO), "--work", str(tmp_path), "--max-usd", "0.05", "--no-progress"], capsys)
    assert code == 2 and line.startswith("error: spending cap $0.0500 reached")
    assert not (tmp_path / "release").exists()
    assert (tmp_path / "describe" / "journal.jsonl").is_file()  # what was paid for is kept for the next run


def test_demo_recipe_matches_the_demo_roster() -> None:
    """builders/demo.toml lists exactly the roster's 'demo' people, in their roster categories."""
    import tomllib

    roster = tomllib.loads((ROOT / "wikipersona_data" / "demo" / "axes.toml").read_text())
    recipe = load_recipe(DEMO)
    listed = {(a.name, c.name, t) for a in recipe.axes for c in a.categories for t in c.personas}
    redirects = {"Ada Okafor": "Adaeze Okafor"}
    listed = {(axis, cat, redirects.get(t, t)) for axis, cat, t in listed}
    demo = {
        (axis, entry["name"], person)
        for axis, cats in roster.items()
        for entry in cats.values()
        if entry["role"] == "demo" and axis in {a.name for a in recipe.axes}
        for person in entry["people"]
    }
    assert listed == demo
