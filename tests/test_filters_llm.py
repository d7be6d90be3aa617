"""The filters' LLM uses over real HTTP against the simulator: entailment of claims, embedding dedupe."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filters_fixtures import claim, description, question, run_check

from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.llm.sim.responders import ResponderRequest, register_responder, unregister_responder
from wikipersona_data.stages.pipeline import open_context
from wikipersona_data.stages.recipe import load_recipe
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.grounding import GroundingFilter
from wikipersona_data.verify.questions import QuestionDuplicateFilter

DEMO = Path(__file__).resolve().parents[1] / "builders" / "demo.toml"
SENTENCES = {
    "0.0": "Adaeze Chinyere Okafor (born 14 June 1979) is a Nigerian actress, film producer and entrepreneur.",
    "0.2": "Okafor is the co-founder of Blue Kettle Foods, a plant-based food company based in Lagos.",
    "3.1": "She has followed a vegan diet since 2012 and campaigns against factory farming.",
}


@pytest.fixture
def entailment_responder() -> Iterator[list[str]]:
    """A server-side stand-in for a model's judgement: a claim 'secretly' done is not entailed."""
    seen: list[str] = []

    def respond(req: ResponderRequest) -> dict[str, Any]:
        found = re.search(r"^Claim \((?:background|preference)\): (.+)$", req.user_text, re.MULTILINE)
        text = found.group(1) if found else ""
        seen.append(text)
        return {"entailed": "secretly" not in text, "rationale": "The sentences do not say it was secret."}

    register_responder("entailment")(respond)
    yield seen
    unregister_responder("entailment")


async def _with_context(work: Path, run: Any) -> Any:
    recipe = load_recipe(DEMO)
    with SimServer(SimConfig(seed=0)) as sim:
        async with open_context(recipe, work, base_url=sim.base_url) as ctx:
            ctx.progress = False
            return await run(ctx), sim.stats()


def test_llm_entailment_checks_claims_that_pass_the_word_checks(tmp_path: Path, entailment_responder) -> None:
    claims = [
        claim("Okafor is a Nigerian actress, film producer and entrepreneur.", ["0.0"], k=0),
        claim("Okafor secretly co-founded Blue Kettle Foods, a plant-based company in Lagos.", ["0.2"], k=1),
        claim("Okafor was born in 1981.", ["0.0"], k=2),  # fails the number check: never sent to the LLM
        claim("Follows a vegan diet and campaigns against factory farming.", ["3.1"], "preference", k=3),
    ]
    row = description(claims, SENTENCES)
    cfg = FiltersConfig(llm_entailment=True, min_grounding_score=0.0)

    async def run(ctx: Any) -> Any:
        return await GroundingFilter(cfg).check(row, {"client": ctx.client, "recipe": ctx.recipe})

    result, _stats = asyncio.run(_with_context(tmp_path / "w", run))
    verdicts = [(c.supported, (c.support_reason or "").split(":")[0]) for c in result.row.claims]
    assert verdicts == [
        (True, "supported"),
        (False, "not_entailed"),
        (False, "number_not_in_evidence"),
        (True, "supported"),
    ]
    assert sorted(entailment_responder) == sorted(claims[i].text for i in (0, 1, 3))
    assert result.row.grounding_score == 0.5
    # off by default: no calls
    entailment_responder.clear()
    plain = asyncio.run(GroundingFilter(FiltersConfig(min_grounding_score=0.0)).check(row, {}))
    assert entailment_responder == [] and [c.supported for c in plain.row.claims] == [True, True, False, True]


def test_embedding_dedupe_catches_reordered_questions(tmp_path: Path) -> None:
    rows = [
        question("What is a good breakfast before a long run?", qid="a", position=0),
        question("Before a long run, what breakfast is good?", qid="b", position=1),  # same words, new order
        question("How do I learn to paint with watercolours?", qid="c", position=2),
    ]
    chars_only = {r.question_id: run_check(QuestionDuplicateFilter(FiltersConfig()), r, {}, rows).kept for r in rows}
    assert chars_only == {"a": True, "b": True, "c": True}  # too different for char n-grams
    cfg = FiltersConfig(question_embed_dedupe=True)

    async def run(ctx: Any) -> dict[str, str]:
        f = QuestionDuplicateFilter(cfg)
        await f.prepare(rows, {"llm": ctx.llm})
        return {r.question_id: f.check(r, {}).reason or "kept" for r in rows}

    verdicts, stats = asyncio.run(_with_context(tmp_path / "w", run))
    assert verdicts == {"a": "kept", "b": "embedding_duplicate", "c": "kept"}
    assert any("embeddings" in route for route in stats["requests_by_route"])  # really asked the server
