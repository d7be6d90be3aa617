"""The reward band (issue 14, item 4): the demo recipe with ``[stages.reward]`` built against the simulator.

The variant is the demo recipe with fewer questions, more candidates and a band (10 -> 6 -> 4), so the band
really cuts; it checks the counts, that the band is the window the recipe asked for (recomputed here from the
scores), that the scores reach the stage rows, the release's pairs and the card's reward gap, that respond
leaves the selection to the band, that a replay from the cache gives the same bytes, and that recipe mistakes
are one line naming the key. The demo recipe itself does not enable the band (its golden pins:
tests/test_build_demo.py).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from wikipersona_data.cli import main
from wikipersona_data.errors import ConfigError, LLMError
from wikipersona_data.stages.estimate import plan
from wikipersona_data.stages.pipeline import build_recipe
from wikipersona_data.stages.recipe import load_recipe, parse_recipe
from wikipersona_data.stages.reward import band_window
from wikipersona_data.stages.rows import CandidateRow, JudgmentRow, PairRow
from wikipersona_data.stages.store import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "builders" / "demo.toml"
GENERATED, BAND, KEPT = 10, 6, 4
REWARD = """
[prices.sim-reward]
input = 0.01
output = 0.0

[stages.reward]
endpoint = "sim"
model = "sim-reward"
route = "{route}"
band = {band}
band_position = "{position}"
"""


def variant_text(route: str = "pooling", band: int = BAND, position: str = "tightest") -> str:
    text = DEMO.read_text(encoding="utf-8")
    for old, new in [
        ('name = "demo"', 'name = "demo-reward"'),
        ("personal_questions = 12", "personal_questions = 3"),
        ("divergent_questions = 12", "divergent_questions = 3"),
        ("question_batch = 6", "question_batch = 3"),
        ("candidates_generated = 6", f"candidates_generated = {GENERATED}"),
        ("\n[[axes]]", REWARD.format(route=route, band=band, position=position) + "\n[[axes]]"),
    ]:
        assert old in text
        text = text.replace(old, new, 1)
    return text


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("reward-build")
    recipe = root / "reward.toml"
    recipe.write_text(variant_text(), encoding="utf-8")
    work = root / "work"
    reported: list[str] = []
    release = build_recipe(recipe, work_dir=work, progress=False, echo=lambda _m: None, report=reported.append)
    return {
        "recipe": recipe,
        "work": work,
        "release": release,
        "reported": "\n".join(reported),
        "respond": read_jsonl(work / "respond" / "rows.jsonl", CandidateRow),
        "reward": read_jsonl(work / "reward" / "rows.jsonl", CandidateRow),
        "judge": read_jsonl(work / "judge" / "rows.jsonl", JudgmentRow),
        "pairs": read_jsonl(work / "split" / "rows.jsonl", PairRow),
        "manifest": json.loads((release / "manifest.json").read_text(encoding="utf-8"))["data"],
    }


def test_the_band_then_the_selection(built: dict) -> None:
    by_q: dict[str, list[CandidateRow]] = defaultdict(list)
    for c in built["reward"]:
        by_q[c.question_id].append(c)
    respond_by_q: dict[str, set[str]] = defaultdict(set)
    for c in built["respond"]:
        respond_by_q[c.question_id].add(c.candidate_id)
    assert by_q and set(by_q) == set(respond_by_q)
    cut = 0
    for qid, group in by_q.items():
        assert {c.candidate_id for c in group} == respond_by_q[qid]  # every survivor scored, none invented
        band = [c for c in group if c.in_band]
        kept = [c for c in group if c.kept]
        assert len(band) == min(BAND, len(group)) and len(kept) == min(KEPT, len(band))
        assert all(c.in_band for c in kept)  # the diversity step picks inside the band only
        assert sorted(c.selection_rank for c in kept) == list(range(len(kept)))
        cut += len(group) > BAND
        # the band is the window of BAND ranked scores with the smallest spread, recomputed here
        scores = sorted(c.reward_score for c in group)
        spreads = [scores[i + BAND - 1] - scores[i] for i in range(len(scores) - BAND + 1)]
        band_scores = sorted(c.reward_score for c in band)
        assert band_scores == scores[scores.index(band_scores[0]) :][:BAND]  # consecutive in rank
        assert band_scores[-1] - band_scores[0] == pytest.approx(min(spreads))
        assert sorted(c.reward_rank for c in group) == list(range(len(group)))
        best = max(group, key=lambda c: (c.reward_score, -c.k))
        assert best.reward_rank == 0
        for c in group:
            if not c.in_band:
                assert not c.kept and c.selection_reason.startswith("outside the reward band")
    assert cut > 0  # the band really removed candidates
    assert len({c.reward_score for c in built["reward"]}) > len(by_q)  # scores read the text: not a constant


def test_respond_leaves_the_selection_to_the_band(built: dict) -> None:
    assert built["respond"] and not any(c.kept for c in built["respond"])
    assert all(c.reward_score is None for c in built["respond"])
    line = (built["work"] / "respond" / "rows.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert "reward_score" not in line and "in_band" not in line  # no empty columns without the band


def test_judge_and_pairs_use_the_banded_candidates_and_keep_the_scores(built: dict) -> None:
    by_id = {c.candidate_id: c for c in built["reward"]}
    for j in built["judge"]:
        assert all(by_id[c].kept for c in j.candidate_ids)
    for p in built["pairs"]:
        assert p.chosen_reward == by_id[p.chosen_id].reward_score
        assert p.rejected_reward == by_id[p.rejected_id].reward_score
    table = pq.read_table(next((built["release"] / "data" / "pairs").glob("train-*.parquet")))
    assert table.column_names[-2:] == ["chosen_reward", "rejected_reward"]
    released = {r["pair_id"]: r for r in table.to_pylist()}
    for p in built["pairs"]:
        if p.pair_id in released:
            assert released[p.pair_id]["chosen_reward"] == p.chosen_reward


def test_manifest_and_card_report_the_reward_gap(built: dict) -> None:
    band = built["manifest"]["ledger"]["build"]["reward_band"]
    gaps = [p.chosen_reward - p.rejected_reward for p in built["pairs"]]
    assert band["pairs"] == len(gaps) and band["band"] == BAND and band["band_position"] == "tightest"
    assert band["mean_gap"] == pytest.approx(sum(gaps) / len(gaps), abs=1e-6)
    assert band["mean_spread_band"] < band["mean_spread_all"]  # the band is narrower than all candidates
    card = (built["release"] / "README.md").read_text(encoding="utf-8")
    assert "#### Reward band" in card
    assert f"over {len(gaps):,} pairs: mean {band['mean_gap']:+.4f}" in card
    assert "chosen_reward" in card  # the card's dataset_info lists the two columns
    models = {(r["stage"], r["model"]): r["calls"] for r in built["manifest"]["ledger"]["by_stage_model"]}
    assert models[("reward", "sim-reward")] == len(built["reward"])  # one reward call per candidate
    assert models[("reward", "sim-embed")] == len({c.question_id for c in built["reward"]})
    assert ("respond", "sim-embed") not in models  # the selection's embeddings moved to the band
    assert re.search(r"^reward\s+\d+", built["reported"], re.M)
    assert main(["verify", str(built["release"])]) == 0


def test_replay_from_the_cache_gives_the_same_bytes(built: dict, tmp_path: Path) -> None:
    shutil.copytree(built["work"] / "cache", tmp_path / "cache")
    build_recipe(
        built["recipe"],
        work_dir=tmp_path,
        base_url="http://127.0.0.1:9/v1",
        cache_mode="only",
        progress=False,
        echo=lambda _m: None,
    )
    for name in ("respond/rows.jsonl", "reward/rows.jsonl", "split/rows.jsonl"):
        assert (tmp_path / name).read_bytes() == (built["work"] / name).read_bytes(), name
    for path in sorted((built["release"] / "data").rglob("*.parquet")):
        assert (tmp_path / "release" / path.relative_to(built["release"])).read_bytes() == path.read_bytes()


def test_estimate_counts_the_reward_calls() -> None:
    recipe = parse_recipe(variant_text(), DEMO)
    questions = 8 * 3 + 4 * 3  # personal per persona + divergent per axis
    groups = [(g[1], g[4]) for g in plan(recipe) if g[0] == "reward"]  # (stage, model, tokens, max out, calls, ...)
    assert groups == [("sim-reward", questions * GENERATED), ("sim-embed", questions)]
    respond_models = {g[1] for g in plan(recipe) if g[0] == "respond"}
    assert respond_models == {"sim-small"}  # no embedding call left in respond


def test_band_window() -> None:
    scores = [0.0, 0.1, 0.2, 1.0, 1.05, 1.1, 1.12, 3.0]
    assert band_window(scores, 4, "tightest") == (3, 7)  # spread 0.12, the smallest
    assert band_window(scores, 4, "median") == (2, 6)
    assert band_window(scores, 8, "tightest") == (0, 8) and band_window(scores[:3], 5, "median") == (0, 3)
    assert band_window([1.0] * 6, 2, "tightest") == (2, 4)  # equal spreads: the window nearest the middle


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (variant_text(band=11), "stages.reward.band: 11 is more than counts.candidates_generated (10)"),
        (variant_text(band=3), "stages.reward.band: 3 is less than counts.candidates_kept (4)"),
        (variant_text(route="score"), "stages.reward.route: Input should be 'classify', 'pooling' or 'rerank'"),
        (variant_text(position="mean"), "stages.reward.band_position: Input should be 'tightest' or 'median'"),
        (
            variant_text().replace('profile = "sim"', 'profile = "openai"', 1),
            "stages.reward.route: endpoint 'sim' has profile 'openai', which serves no /pooling reward route",
        ),
    ],
)
def test_recipe_mistakes_are_one_line_naming_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe(text, DEMO)
    message = str(err.value)
    assert "\n" not in message and expected in message, message


def test_the_demo_recipe_does_not_enable_the_band() -> None:
    assert load_recipe(DEMO).stages.reward is None


def test_extend_scores_only_the_added_personas_candidates(built: dict, tmp_path: Path) -> None:
    """An extend of a release with the band: the added persona's new candidates are scored and banded, the
    release's divergent candidates are reused as they were, and the card's reward gap covers every pair."""
    before = {c.candidate_id: c for c in built["reward"]}
    out = tmp_path / "extended"
    argv = ["extend", str(built["release"]), "--persona", "Mariana Teixeira Lopes", "--axis", "diet:pescatarian"]
    assert main([*argv, "--work", str(built["work"]), "--out", str(out), "--no-progress"]) == 0
    (ext_dir,) = (built["work"] / "extend").iterdir()
    added = read_jsonl(ext_dir / "reward" / "rows.jsonl", CandidateRow)
    assert added and all(c.reward_score is not None for c in added)
    assert not any(c.candidate_id in before for c in added)  # nothing of the release is scored again
    rows = [r for f in sorted((out / "data" / "pairs").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert all(r["chosen_reward"] is not None and r["rejected_reward"] is not None for r in rows)
    mine = [r for r in rows if r["persona_id"] == "mariana-teixeira-lopes"]
    divergent = [r for r in mine if r["question_type"] == "divergent"]
    assert divergent and all(r["chosen_id"] in before for r in divergent)  # the release's banded candidates
    for r in divergent:
        assert r["chosen_reward"] == before[r["chosen_id"]].reward_score
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"Reward gap between chosen and rejected over {len(rows):,} pairs" in card
    # the band's spreads are figures of every scored candidate behind the release, the added ones included
    from wikipersona_data.stages.assemble import band_spreads

    band = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["data"]["ledger"]["build"]["reward_band"]
    expected = band_spreads([*built["reward"], *added])
    assert {k: band[k] for k in expected} == expected
    assert (
        band["questions"]
        == len({c.question_id for c in [*built["reward"], *added]})
        > len({c.question_id for c in built["reward"]})
    )


def test_a_reward_server_checked_at_first_use_need_not_run_when_its_calls_are_cached(tmp_path: Path) -> None:
    """``preflight = "first_use"`` on the reward model's endpoint (v1's ``rm``, a GPU): the server is checked
    just before the first request sent to it, so a run whose reward calls are all cached (v1's judge rounds)
    builds with it switched off, and a run that needs it and finds it down stops at the reward stage with one
    line, the stages before it done and kept."""
    rm = '[endpoints.rm]\nprofile = "sim"\nbase_url = ""\npreflight = "first_use"\n\n'
    text = variant_text().replace("[prices.sim-reward]", rm + "[prices.sim-reward]", 1)
    text = text.replace('[stages.reward]\nendpoint = "sim"', '[stages.reward]\nendpoint = "rm"', 1)
    recipe = tmp_path / "reward-rm.toml"
    recipe.write_text(text, encoding="utf-8")
    quiet = {"progress": False, "echo": lambda _m: None, "report": lambda _m: None}
    first = build_recipe(recipe, work_dir=tmp_path / "w", out_dir=tmp_path / "r1", **quiet)
    down = {"rm": "http://127.0.0.1:9/v1"}  # nothing listens there
    again = build_recipe(recipe, work_dir=tmp_path / "w", out_dir=tmp_path / "r2", endpoint_urls=down, **quiet)
    data = sorted(p.relative_to(first) for p in (first / "data").rglob("*.parquet"))
    assert data and all((first / p).read_bytes() == (again / p).read_bytes() for p in data)
    with pytest.raises(LLMError) as err:
        build_recipe(recipe, work_dir=tmp_path / "fresh", endpoint_urls=down, **quiet)
    line = str(err.value)
    assert "\n" not in line and "'rm'" in line and "127.0.0.1:9" in line
    assert (tmp_path / "fresh" / "respond" / "rows.jsonl").stat().st_size > 0  # the stages before it ran
    assert not (tmp_path / "fresh" / "reward" / "rows.jsonl").exists() or not read_jsonl(
        tmp_path / "fresh" / "reward" / "rows.jsonl", CandidateRow
    )
