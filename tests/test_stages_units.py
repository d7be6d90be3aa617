"""Stage pieces on their own: the journal store, ids, diversity selection, split, tournament helpers, and
two stages run alone through the simulator (automatic persona selection, question top-up)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.stages import judge, personas, questions, split
from wikipersona_data.stages.ids import question_id, seeded_order, slug
from wikipersona_data.stages.pipeline import open_context
from wikipersona_data.stages.recipe import load_recipe
from wikipersona_data.stages.respond import farthest_point
from wikipersona_data.stages.rows import (
    AxisMembership,
    Claim,
    DescriptionRow,
    Match,
    PersonaRow,
    Provenance,
    QuestionRow,
    RejectRow,
    Vote,
)
from wikipersona_data.stages.store import StageStore
from wikipersona_data.stages.templates import TEMPLATE_DIR, load_template

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "builders" / "demo.toml"
PROV = Provenance(endpoint="sim", model="m", template="t.md", template_sha256="0" * 64)


def question(qid: str, persona: str | None = None, axis: str | None = None) -> QuestionRow:
    kind = "personal" if persona else "divergent"
    return QuestionRow(
        question_id=qid,
        question_type=kind,
        persona_id=persona,
        axis=axis,
        text=qid,
        batch=0,
        position=0,
        provenance=PROV,
    )


# ---------------------------------------------------------------- store and ids


def test_store_skips_a_torn_line_and_retries_llm_failures(tmp_path: Path) -> None:
    store = StageStore(tmp_path, "questions", QuestionRow, "question_id")
    store.record_unit("u1", [question("q-b", "p"), question("q-a", "p")], [])
    store.record_unit("u2", [], [RejectRow(stage="questions", id="u2", reason="llm_failure")])
    store.record_unit("u3", [], [RejectRow(stage="questions", id="u3", reason="short", detail="1 of 2")])
    store.close()
    with store.journal_path.open("a") as handle:
        handle.write('{"unit": "u4", "rows": [')  # what a SIGKILL mid-write leaves
    units = store.load_units()
    assert sorted(units) == ["u1", "u3"]  # u2 failed: redo it; u4 never finished
    rows = [r for rs, _ in units.values() for r in rs]
    store.write_output(rows, [r for _, rj in units.values() for r in rj])
    lines = store.rows_path.read_text().splitlines()
    assert [json.loads(line)["question_id"] for line in lines] == ["q-a", "q-b"]  # sorted by id
    assert lines[0] == json.dumps(json.loads(lines[0]), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert not list(tmp_path.glob("questions/*.tmp"))


def test_ids_are_content_derived() -> None:
    assert slug("Arjun Valsaraj (cricketer)") == "arjun-valsaraj-cricketer"
    assert slug("Beyoncé") == "beyonce"
    assert question_id("personal", "p", "What  is this?") == question_id("personal", "p", "what is this?")
    assert question_id("personal", "p", "What is this?") != question_id("personal", "q", "What is this?")
    order = seeded_order(7, ["a", "b", "c", "d"], "scope")
    assert seeded_order(7, ["d", "c", "b", "a"], "scope") == order  # input order does not matter
    assert sorted(order) == ["a", "b", "c", "d"]
    # adding an item keeps the relative order of the others
    grown = seeded_order(7, ["a", "b", "c", "d", "e"], "scope")
    assert [x for x in grown if x != "e"] == order


def test_templates_hashes_match_the_files() -> None:
    for path in TEMPLATE_DIR.glob("*.md"):
        template = load_template(path.stem)
        assert template.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert "<<<user>>>" in template.text


# ---------------------------------------------------------------- selection, split, tournament


def test_farthest_point_picks_spread_candidates() -> None:
    vectors = [[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [-1.0, 0.0], [-0.99, -0.1]]
    picks = farthest_point(vectors, 3, start=0)
    assert [i for i, _ in picks] == [0, 3, 2]  # opposite first, then the orthogonal one
    assert picks[1][1] == pytest.approx(2.0)
    assert farthest_point(vectors, 3, start=0) == picks  # deterministic
    assert farthest_point(vectors, 2, start=2)[0][0] == 2  # the seeded start is honoured


class _Ctx:
    """Just enough of a BuildContext for the pure split and judge helpers."""

    def __init__(self) -> None:
        self.recipe = load_recipe(DEMO)


def persona(pid: str, axis: str, category: str) -> PersonaRow:
    return PersonaRow(
        persona_id=pid,
        name=pid,
        wiki_title=pid,
        requested_titles=[pid],
        wiki_page_id=1,
        wiki_url="https://en.wikipedia.org/wiki/x",
        axes=[AxisMembership(axis=axis, category=category, source="recipe")],
    )


def test_split_fractions_and_stratified_folds() -> None:
    ctx = _Ctx()
    qs = {f"q{i}": question(f"q{i}", persona="p1") for i in range(10)}
    qs |= {f"d{i}": question(f"d{i}", axis="diet") for i in range(6)}

    class J:
        def __init__(self, qid: str) -> None:
            self.question_id = qid

    test = split.test_questions(ctx, [J(q) for q in qs], qs)  # type: ignore[arg-type]
    assert len([q for q in test if q.startswith("q")]) == 5 and len([q for q in test if q.startswith("d")]) == 3
    people = [persona(f"{axis}{i}", axis, "c") for axis in ("diet", "religion", "politics") for i in range(4)]
    folds = split.persona_folds(ctx, people)  # demo recipe: 4 folds
    for axis in ("diet", "religion", "politics"):
        assert sorted(folds[p.persona_id] for p in people if p.axes[0].axis == axis) == [0, 1, 2, 3]


def vote(first: str, second: str, order: str, winner: str) -> Vote:
    return Vote(first=first, second=second, order=order, winner=winner, rationale="r")


def test_agreement_and_worst_rejected() -> None:
    consistent = Match(
        round=0, a="A", b="B", votes=[vote("A", "B", "ab", "A"), vote("B", "A", "ba", "A")],
        outcome="A", position_biased=False, advanced="A", decided_by="votes",
    )  # fmt: skip
    biased = Match(
        round=0, a="C", b="D", votes=[vote("C", "D", "ab", "C"), vote("D", "C", "ba", "D")],
        outcome="tie", position_biased=True, advanced="C", decided_by="tiebreak",
    )  # fmt: skip
    final = Match(
        round=1, a="A", b="C", votes=[vote("A", "C", "ab", "A"), vote("C", "A", "ba", "C")],
        outcome="tie", position_biased=True, advanced="A", decided_by="tiebreak",
    )  # fmt: skip
    assert judge.agreement("A", [consistent, biased, final]) == 0.75  # 3 of A's 4 votes pick A
    ctx = _Ctx()
    ctx.recipe.judge.rejected = "worst"
    # B lost both its votes, D only one: B is the worst
    assert judge.pick_rejected(ctx, ("p", "q"), "A", ["A", "B", "C", "D"], [consistent, biased, final]) == "B"  # type: ignore[arg-type]


# ---------------------------------------------------------------- stages alone, through the simulator


AUTO_AXIS = """
[[axes]]
name = "seafood"
auto_select = { candidates = 5, keep = 1 }
[[axes.categories]]
name = "pescatarian"
"""


def test_auto_selection_keeps_only_evidenced_living_people(tmp_path: Path) -> None:
    text = DEMO.read_text().replace("[counts]", AUTO_AXIS + "\n[counts]", 1)
    text = text.replace(
        "[stages.describe]", '[stages.personas]\nendpoint = "sim"\nmodel = "sim-large"\n\n[stages.describe]', 1
    )
    path = tmp_path / "auto.toml"
    path.write_text(text)
    recipe = load_recipe(path)

    async def run() -> list[PersonaRow]:
        with SimServer(SimConfig(seed=0)) as sim:
            async with open_context(recipe, tmp_path / "w", base_url=sim.base_url) as ctx:
                ctx.progress = False
                return await personas.run(ctx)

    rows = asyncio.run(run())
    auto = [p for p in rows if any(m.source == "auto" for m in p.axes)]
    assert [p.wiki_title for p in auto] == ["Mariana Teixeira Lopes"]
    membership = auto[0].axes[0]
    assert membership.axis == "seafood" and membership.evidence
    bio_text = {s.id: s.text for s in ctx_bio(recipe, "Mariana Teixeira Lopes").sentences}
    assert all("pescatarian" in bio_text[i].lower() for i in membership.evidence)
    rejects = [json.loads(line) for line in (tmp_path / "w/personas/rejects.jsonl").read_text().splitlines()]
    reasons = {r["reason"] for r in rejects}
    assert "not_in_dump" in reasons  # the name the simulated model made up
    assert "category_unsupported" in reasons  # a real person whose article says nothing about it
    assert len(rows) == 9  # the 8 listed personas + the selected one


def test_auto_selection_uses_the_scan_tables_fame(tmp_path: Path) -> None:
    """With a scan table, fame comes from it: a person below ``min_fame`` is rejected, not kept."""
    (tmp_path / "scan.jsonl").write_text(json.dumps({"title": "Mariana Teixeira Lopes", "fame_score": 1.5}) + "\n")
    text = DEMO.read_text().replace(
        "[counts]", AUTO_AXIS.replace("keep = 1", "keep = 1, min_fame = 2.0") + "\n[counts]", 1
    )
    text = text.replace(
        "[stages.describe]", '[stages.personas]\nendpoint = "sim"\nmodel = "sim-large"\n\n[stages.describe]', 1
    )
    text = text.replace('date = "2026-11-01"', 'date = "2026-11-01"\nscan = "scan.jsonl"', 1)
    path = tmp_path / "auto.toml"
    path.write_text(text)
    recipe = load_recipe(path)

    async def run() -> list[PersonaRow]:
        with SimServer(SimConfig(seed=0)) as sim:
            async with open_context(recipe, tmp_path / "w", base_url=sim.base_url) as ctx:
                ctx.progress = False
                return await personas.run(ctx)

    rows = asyncio.run(run())
    assert not any(m.source == "auto" for p in rows for m in p.axes)
    rejects = [json.loads(line) for line in (tmp_path / "w/personas/rejects.jsonl").read_text().splitlines()]
    below = [r for r in rejects if r["reason"] == "below_fame"]
    assert [r["detail"] for r in below if "Mariana" in r["id"]] == ["1.500 < 2.0"]


def ctx_bio(recipe, title: str):
    from wikipersona_data.wiki.lookup import DumpReader

    dump, index = recipe.dump_paths()
    with DumpReader(dump, index) as reader:
        return reader.get(title)


FACTS = (
    "Follows a vegan diet and cooks for the family at home.",
    "Co-founded a plant-based food company in Lagos.",
    "Spent holidays on the cassava farm of a grandmother near Nsukka.",
    "Starred in the Nollywood drama Harmattan Road.",
    "Campaigned for a meat-free day in the public schools of Lagos State.",
    "Described egusi soup with smoked tofu as the favourite meal.",
)


def description(pid: str) -> DescriptionRow:
    claims = [
        Claim(claim_id=f"{pid}/c{k}", kind="preference", text=t, evidence=["0.1"], evidence_exists=True)
        for k, t in enumerate(FACTS)
    ]
    text = " ".join(FACTS)
    return DescriptionRow(
        persona_id=pid, bio="", preferences=text, claims=claims, cited_sentences={"0.1": "x"}, provenance=PROV
    )


def test_questions_top_up_until_the_filters_let_enough_through(tmp_path: Path) -> None:
    """A hook that drops every third question forces extra batches; the target is still met, drops recorded."""
    recipe = load_recipe(DEMO)
    calls: list[int] = []

    def hook(stage: str, rows: list, context: dict):
        calls.append(len(rows))
        kept = [r for r in rows if r.position % 3 != 2]
        drops = [{"id": r.question_id, "reason": "every_third", "detail": "test"} for r in rows if r.position % 3 == 2]
        return kept, drops

    person = persona("adaeze-okafor", "diet", "vegan")

    async def run() -> list[QuestionRow]:
        with SimServer(SimConfig(seed=0)) as sim:
            async with open_context(recipe, tmp_path / "w", base_url=sim.base_url, filter_hook=hook) as ctx:
                ctx.progress = False
                return await questions.run(ctx, [person], [description(person.persona_id)])

    rows = asyncio.run(run())
    assert len(rows) == 12 and all(r.persona_id == "adaeze-okafor" for r in rows)
    assert max(r.batch for r in rows) >= 2  # 2 batches of 6 would give only 8 survivors
    assert all(r.position % 3 != 2 for r in rows)
    rejects = [json.loads(line) for line in (tmp_path / "w/questions/rejects.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in rejects} >= {"every_third", "axis_too_small"}
    assert len(calls) >= 3  # called after each batch, then once more on the whole stage
