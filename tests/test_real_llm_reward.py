"""The reward band on a real model: llama.cpp's ``/rerank`` (SmolLM2-135M, rank pooling) scores the candidates.

llama.cpp has no ``/classify`` or ``/pooling``; started with embeddings on and ``rank`` pooling it serves
``/rerank`` (``wikipersona llm-local --rerank``). SmolLM2 has no reranker head, so its scores mean nothing:
what this shows is that the band's calls go through a real server and its replies (finite, one result each)
are parsed, cached and banded. The stage runs alone on two questions of six candidates (a real call costs about
a second on a busy 2-core machine); the diversity step's embeddings come from the simulator.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_build_reward import variant_text

from wikipersona_data.stages import reward
from wikipersona_data.stages.ids import candidate_id, question_id
from wikipersona_data.stages.pipeline import open_context
from wikipersona_data.stages.recipe import parse_recipe
from wikipersona_data.stages.rows import CandidateRow, Provenance, QuestionRow

BAND, N = 5, 6
QUESTIONS = ("How should I plan my meals for a busy week?", "What is a good way to start running again?")
ANSWERS = (
    "Plan three dinners on Sunday, cook a big batch of grains and beans, and keep quick vegetables ready.",
    "It depends on many things.",
    "Start with two short runs a week, walk when you need to, and add five minutes each week.",
    "Eat food.",
    "Write a shopping list from the week's plan, prepare lunches the night before and keep fruit nearby.",
    "I cannot say what you should do; maybe ask someone else about running or meals.",
)


def _rows() -> tuple[list[QuestionRow], list[CandidateRow]]:
    prov = Provenance(endpoint="sim", model="sim-small", template="respond.md", template_sha256="0" * 64)
    questions, candidates = [], []
    for i, text in enumerate(QUESTIONS):
        qid = question_id("personal", f"p{i}", text)
        questions.append(
            QuestionRow(
                question_id=qid, question_type="personal", persona_id=f"p{i}", axis=None, text=text,
                batch=0, position=i, provenance=prov,
            )
        )  # fmt: skip
        for k, answer in enumerate(ANSWERS[:N]):
            candidates.append(
                CandidateRow(
                    candidate_id=candidate_id(qid, k, answer), question_id=qid, k=k, axis="diet", category="x",
                    text=answer, kept=False, selection_rank=None, selection_reason="pending", provenance=prov,
                )
            )  # fmt: skip
    return questions, candidates


@pytest.mark.real_llm
@pytest.mark.slow
def test_reward_band_through_llama_cpp_rerank(real_llm, tmp_path: Path) -> None:
    text = variant_text(route="rerank", band=BAND).replace("candidates_generated = 10", f"candidates_generated = {N}")
    text = text.replace("\n[prices.sim-large]", '\n[endpoints.rm]\nprofile = "llamacpp"\n\n[prices.sim-large]', 1)
    head, tail = text.split("[stages.reward]", 1)
    tail = tail.replace('endpoint = "sim"', 'endpoint = "rm"', 1).replace("sim-reward", real_llm.model, 1)
    recipe = parse_recipe(head + "[stages.reward]" + tail, tmp_path / "real-reward.toml")
    questions, candidates = _rows()

    async def run() -> list[CandidateRow]:
        urls = {"rm": real_llm.rerank_url}
        async with open_context(recipe, tmp_path / "work", endpoint_urls=urls) as ctx:
            ctx.progress = False
            return await reward.run(ctx, questions, candidates)

    rows = asyncio.run(run())
    calls = []
    for part in sorted((tmp_path / "work" / "cache" / "calls").glob("*.jsonl")):
        calls += [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
    reranks = [c for c in calls if c["spec"].get("api") == "reward"]
    assert len(reranks) == len(rows) == len(candidates)  # one real call per candidate
    assert all(c["spec"]["route"] == "rerank" and c["served_model"] == real_llm.model for c in reranks)
    scores = [c.reward_score for c in rows]
    assert all(isinstance(s, float) for s in scores) and len(set(scores)) > 1  # finite, and not all the same
    for qid in {c.question_id for c in rows}:
        group = [c for c in rows if c.question_id == qid]
        assert sum(bool(c.in_band) for c in group) == BAND
        assert sum(c.kept for c in group) == recipe.counts.candidates_kept
        assert all(c.in_band for c in group if c.kept)
    again = asyncio.run(run())  # the journal and the cache: nothing is asked twice
    assert [c.model_dump() for c in again] == [c.model_dump() for c in rows]
