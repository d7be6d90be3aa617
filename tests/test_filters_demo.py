"""The filters inside a real demo build (simulator over HTTP, demo dump): the simulator's deliberately
unsupported claims and position-biased votes are caught, and the report in the manifest and card says so."""

from __future__ import annotations

import ast
import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.stages import describe, personas
from wikipersona_data.stages.pipeline import build_recipe, open_context
from wikipersona_data.stages.recipe import load_recipe
from wikipersona_data.stages.rows import DescriptionRow, JudgmentRow, PairRow, PersonaRow, PrefixRow, RejectRow
from wikipersona_data.stages.store import read_jsonl
from wikipersona_data.verify.config import filters_config
from wikipersona_data.verify.pairs import non_divergent_questions
from wikipersona_data.verify.report import divergence_stats, length_bias

DEMO = Path(__file__).resolve().parents[1] / "builders" / "demo.toml"
SIM = {"seed": 0, "unsupported_claim_rate": 0.1, "position_bias_rate": 0.1}  # as in builders/demo.toml
STAGES = ("personas", "describe", "questions", "respond", "judge", "split", "prefixes")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("filters-demo")
    with SimServer(SimConfig(**SIM)) as sim:
        release = build_recipe(DEMO, work_dir=work, base_url=sim.base_url, progress=False, echo=lambda _m: None)
    manifest = json.loads((release / "manifest.json").read_text())["data"]
    return {
        "work": work,
        "release": release,
        "manifest": manifest,
        "report": manifest["filter_report"],
        "extras": manifest["ledger"]["build"]["filters"],
        "recipe": load_recipe(DEMO),
        "rejects": {s: read_jsonl(work / s / "rejects.jsonl", RejectRow) for s in STAGES},
        "descriptions": read_jsonl(work / "describe/rows.jsonl", DescriptionRow),
        "personas": read_jsonl(work / "personas/rows.jsonl", PersonaRow),
        "judgments": read_jsonl(work / "judge/rows.jsonl", JudgmentRow),
        "pairs": read_jsonl(work / "split/rows.jsonl", PairRow),
        "prefixes": read_jsonl(work / "prefixes/rows.jsonl", PrefixRow),
    }


def unsupported_in_details(rejects: list[RejectRow]) -> Counter:
    """Claim reasons listed in grounding drop details: "...; unsupported: ['c3 no_shared_topic', ...]"."""
    found: Counter = Counter()
    for r in rejects:
        if "unsupported: [" in r.detail:
            listed = ast.literal_eval(r.detail.split("unsupported: ", 1)[1].split("]")[0] + "]")
            found.update(item.split(" ", 1)[1] for item in listed)
    return found


def test_unsupported_claims_are_caught_removed_and_counted(build: dict) -> None:
    claims = build["report"]["describe"]["grounding_claims"]
    caught = Counter(claims["dropped"])
    assert sum(caught.values()) > 0  # the simulator's invented / mis-cited claims
    # every caught claim is accounted for: flagged in a kept description or listed in a drop/regeneration
    flagged = Counter(
        c.support_reason.split(":")[0] for d in build["descriptions"] for c in d.claims if not c.supported
    )
    assert flagged + unsupported_in_details(build["rejects"]["describe"]) == caught
    # supported claims counted over every attempt: at least those of the released descriptions
    assert claims["kept"] >= sum(c.supported for d in build["descriptions"] for c in d.claims) > 0
    threshold = filters_config(build["recipe"]).min_grounding_score
    for d in build["descriptions"]:
        assert d.grounding_score is not None and d.grounding_score >= threshold
        for c in d.claims:
            assert c.supported is not None and c.support_reason
            if not c.supported:
                assert c.text not in d.bio and c.text not in d.preferences  # removed from the text
    # regenerations (if this simulator run needed any) are reported
    regenerated = [r for r in build["rejects"]["describe"] if r.reason == "regenerated"]
    assert "regenerated" not in build["report"]["describe"]["stage"]["dropped"]  # redone, not dropped
    assert build["extras"]["retried_rows"].get("describe", 0) == len({r.id.split("#")[0] for r in regenerated})


def test_no_false_alarms_on_faithful_descriptions(build: dict, tmp_path: Path) -> None:
    """The same describe stage against a simulator that never invents: every claim passes the filter."""
    recipe = load_recipe(DEMO)

    async def run(rate: float) -> tuple[list[DescriptionRow], list[RejectRow]]:
        with SimServer(SimConfig(seed=0, unsupported_claim_rate=rate)) as sim:
            async with open_context(recipe, tmp_path / f"rate-{rate}", base_url=sim.base_url) as ctx:
                ctx.progress = False
                rows = build["personas"]
                bios = {p.persona_id: personas.get_biography(ctx, p.wiki_title) for p in rows}
                ctx.shared.update(personas={p.persona_id: p for p in rows}, biographies=bios)
                kept = await describe.run(ctx, rows, bios)
                return kept, read_jsonl(ctx.work_dir / "describe" / "rejects.jsonl", RejectRow)

    faithful, none = asyncio.run(run(0.0))
    assert none == []
    assert len(faithful) == len(build["personas"])
    assert all(c.supported for d in faithful for c in d.claims), [
        (c.text, c.support_reason) for d in faithful for c in d.claims if not c.supported
    ]
    assert all(d.grounding_score == 1.0 for d in faithful)


def test_low_grounding_is_regenerated_then_dropped(build: dict, tmp_path: Path) -> None:
    """Half the claims invented: descriptions are asked for again (new sample_idx), a bounded number of times."""
    recipe = load_recipe(DEMO)
    cfg = filters_config(recipe)

    async def run() -> tuple[list[DescriptionRow], list[RejectRow]]:
        with SimServer(SimConfig(seed=0, unsupported_claim_rate=0.5)) as sim:
            async with open_context(recipe, tmp_path / "noisy", base_url=sim.base_url) as ctx:
                ctx.progress = False
                rows = build["personas"]
                bios = {p.persona_id: personas.get_biography(ctx, p.wiki_title) for p in rows}
                ctx.shared.update(personas={p.persona_id: p for p in rows}, biographies=bios)
                kept = await describe.run(ctx, rows, bios)
                return kept, read_jsonl(ctx.work_dir / "describe" / "rejects.jsonl", RejectRow)

    kept, rejects = asyncio.run(run())
    tries = Counter(r.id.split("#")[0] for r in rejects if r.reason == "regenerated")
    assert sum(tries.values()) > 0
    assert max(tries.values()) <= cfg.max_regenerations
    for d in kept:  # kept on the attempt after its regenerations, with the sample index to prove it
        assert d.provenance.sample_idx == tries.get(d.persona_id, 0)
        assert d.grounding_score >= cfg.min_grounding_score
    final = {r.id: r.reason for r in rejects if "#" not in r.id}
    for pid, reason in final.items():  # dropped only after every regeneration was spent
        assert reason in ("low_grounding", "no_supported_background", "no_supported_preference")
        assert tries[pid] == cfg.max_regenerations
    assert len(kept) + len(final) == len(build["personas"])


def test_position_biased_votes_are_caught_and_reported(build: dict) -> None:
    cfg = filters_config(build["recipe"])
    judge_stats = build["manifest"]["ledger"]["build"]["judge"]
    assert judge_stats["position_biased_matches"] > 0  # the simulator's (a)-always votes are seen...
    rejudged = [r for r in build["rejects"]["judge"] if r.reason == "rejudged"]
    dropped = [r for r in build["rejects"]["judge"] if r.reason == "low_judge_agreement"]
    assert rejudged or dropped  # ...and judgments they made unreliable were re-judged or dropped
    assert any("position-biased" in r.detail and " 0 position-biased" not in r.detail for r in rejudged + dropped)
    report = build["report"]["judge"]
    assert report["judge_agreement"]["dropped"].get("low_judge_agreement", 0) == len(dropped)
    assert report["judge_agreement"]["kept"] == len(build["judgments"])
    assert "rejudged" not in report["stage"]["dropped"]  # redone, not dropped: counted as retried rows
    assert build["extras"]["retried_rows"].get("judge", 0) == len({r.id.split("#")[0] for r in rejudged})
    assert all(j.judge_agreement >= cfg.min_judge_agreement for j in build["judgments"])
    assert all(p.judge_agreement >= cfg.min_judge_agreement for p in build["pairs"])


def test_report_counts_match_the_rejects_files(build: dict) -> None:
    for stage, entry in build["report"].items():
        final = Counter(r.reason for r in build["rejects"][stage])
        for name, counts in entry.items():
            if name in ("stage", "grounding_claims"):
                continue
            for reason, n in counts["dropped"].items():
                assert final[reason] == n, (stage, name, reason)
    rows = {"describe": build["descriptions"], "judge": build["judgments"], "split": build["pairs"]}
    for stage, kept in rows.items():
        last = [k for k in build["report"][stage] if k not in ("stage", "grounding_claims")][-1]
        assert build["report"][stage][last]["kept"] == len(kept), stage


def test_cascade_nothing_downstream_of_a_dropped_persona(build: dict) -> None:
    described = {d.persona_id for d in build["descriptions"]}
    assert {j.persona_id for j in build["judgments"]} <= described
    assert {p.persona_id for p in build["pairs"]} <= described
    assert {p.persona_id for p in build["prefixes"]} <= described


def test_length_bias_and_divergence_reported(build: dict) -> None:
    extras = build["extras"]
    assert extras["length_bias"] == length_bias(build["pairs"])
    assert extras["length_bias"]["pairs"] == len(build["pairs"]) > 0
    assert 0 <= extras["length_bias"]["chosen_longer_share"] <= 1
    assert extras["divergence"] == divergence_stats(build["pairs"])
    same = non_divergent_questions(build["pairs"])
    assert sum(a["non_divergent"] for a in extras["divergence"].values()) == len(same)
    flagged = sum(p.question_id in same for p in build["pairs"])  # kept but flagged (drop_non_divergent off)
    assert extras["flags"].get("split", {}).get("non_divergent", 0) == flagged


def test_card_shows_a_row_per_filter(build: dict) -> None:
    card = (build["release"] / "README.md").read_text()
    for stage, name in (("describe", "grounding"), ("describe", "grounding_claims"), ("questions", "identity_leak"),
                        ("respond", "refusal"), ("judge", "judge_agreement"), ("split", "divergence")):  # fmt: skip
        assert f"| {stage} | {name} |" in card


def test_resumed_build_reports_the_same(build: dict) -> None:
    """A rerun on the finished work dir (journal replay, the hook not called per unit) with a fresh build
    context (its filter logs start from the files) reports exactly what the first build did: the verdicts live
    in the stage folders."""
    with SimServer(SimConfig(**SIM)) as sim:
        release = build_recipe(
            DEMO, work_dir=build["work"], base_url=sim.base_url, progress=False, echo=lambda _m: None
        )
        assert sim.stats()["requests"] == 0  # everything came from the journal and the cache
    again = json.loads((release / "manifest.json").read_text())["data"]
    assert again["filter_report"] == build["report"]
    assert again["ledger"]["build"]["filters"] == build["extras"]
