"""Stage 4, respond: persona-blind candidate answers, then a seeded diversity selection.

Cold start (as in the WikiPersonas paper): the generator never sees the persona. For each question it writes K
candidates, each for one category of asker on a relevant axis (divergent questions: the axis's
categories; personal questions: the axis and categories the LLM proposes for the question alone),
without disclosing the category. The candidates that pass the answer filters are embedded and a
seeded greedy farthest-point (k-center) walk keeps ``candidates_kept`` of them: the first pick is a
seeded random candidate, each next one the candidate farthest (cosine) from those already picked.
Unlike the reference's unseeded KMeans this is deterministic and every choice is explained in the row.

With a reward band (recipe ``[stages.reward]``), the selection waits: respond writes every survivor unselected
and the reward stage (``stages/reward.py``) runs :func:`select` on the candidates inside its band.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import Annotated

from pydantic import BaseModel, Field

from wikipersona_data.stages import bounds
from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.ids import candidate_id, rng_for
from wikipersona_data.stages.rows import CandidateRow, QuestionRow, RejectRow

STAGE = "respond"
PENDING = "pending: the reward band selects"
STYLES = (
    "short and direct",
    "detailed, with concrete steps",
    "warm and conversational",
    "opinionated, taking a clear stance",
    "structured as a short list",
    "reflective, weighing trade-offs",
)


Name = Annotated[str, Field(min_length=1, max_length=bounds.NAME_CHARS)]


@functools.cache
def categories_schema(n_min: int, n_max: int) -> type[BaseModel]:
    b = bounds.respond_categories(n_min, n_max)

    class AnswerCategories(BaseModel):
        axis: Name
        categories: list[Name] = Field(min_length=b.min_items, max_length=b.max_items)

    return AnswerCategories


@functools.cache
def answer_schema(max_tokens: int) -> type[BaseModel]:
    """One answer that fits ``max_tokens`` (see ``stages/bounds.py``)."""

    class Answer(BaseModel):
        answer: str = Field(min_length=1, max_length=bounds.answer_chars(max_tokens))

    return Answer


def cosine_distance(u: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    nu = math.sqrt(sum(a * a for a in u))
    nv = math.sqrt(sum(b * b for b in v))
    if nu == 0 or nv == 0:
        return 1.0
    return 1.0 - dot / (nu * nv)


def farthest_point(vectors: list[list[float]], keep: int, start: int) -> list[tuple[int, float]]:
    """Greedy k-center from ``start``: [(index, min distance to earlier picks)], ties to the lower index."""
    picked = [(start, 0.0)]
    nearest = [cosine_distance(v, vectors[start]) for v in vectors]
    while len(picked) < min(keep, len(vectors)):
        chosen = {i for i, _ in picked}
        best = max((i for i in range(len(vectors)) if i not in chosen), key=lambda i: (nearest[i], -i))
        picked.append((best, nearest[best]))
        nearest = [min(d, cosine_distance(v, vectors[best])) for d, v in zip(nearest, vectors, strict=True)]
    return picked


async def _categories(ctx: BuildContext, question: QuestionRow) -> tuple[str, list[str], list[str]] | RejectRow:
    """(axis, categories, call keys of the categories call) for the question's candidates."""
    if question.question_type == "divergent":
        assert question.axis is not None
        return question.axis, [c.name for c in ctx.recipe.axis(question.axis).categories], []
    k = ctx.recipe.counts.candidates_generated
    values = {
        "question": question.text,
        "axes": [{"name": a.name, "categories": [c.name for c in a.categories]} for a in ctx.recipe.axes],
        "n_min": 2,
        "n_max": max(2, min(8, k)),
    }
    res = await ctx.llm.json(STAGE, "respond_categories", values, categories_schema(2, int(values["n_max"])))
    if not res.ok:
        return RejectRow(
            stage=STAGE,
            id=question.question_id,
            reason="llm_failure",
            detail=f"categories: {res.failure}",
            call_keys=res.provenance.call_keys,
        )
    cats = list(dict.fromkeys(c.strip() for c in res.value.categories if c.strip()))
    return res.value.axis.strip(), cats or [res.value.axis.strip()], res.provenance.call_keys


async def generate(ctx: BuildContext, question: QuestionRow) -> tuple[list[CandidateRow], list[RejectRow]]:
    """The K raw candidates of one question (not yet selected)."""
    got = await _categories(ctx, question)
    if isinstance(got, RejectRow):
        return [], [got]
    axis, cats, category_keys = got
    k_total = ctx.recipe.counts.candidates_generated
    schema = answer_schema(ctx.recipe.stage(STAGE).max_tokens)

    async def one(k: int) -> CandidateRow | RejectRow:
        category = cats[k % len(cats)]
        values = {
            "question": question.text,
            "axis": axis,
            "category": category,
            "variant": k // len(cats) + 1,
            "style": STYLES[k % len(STYLES)],
        }
        res = await ctx.llm.json(STAGE, "respond", values, schema, sample_idx=k)
        if not res.ok:
            return RejectRow(
                stage=STAGE,
                id=f"{question.question_id}#{k}",
                reason="llm_failure",
                detail=res.failure or "",
                call_keys=res.provenance.call_keys,
            )
        text = res.value.answer.strip()
        return CandidateRow(
            candidate_id=candidate_id(question.question_id, k, text),
            question_id=question.question_id,
            k=k,
            axis=axis,
            category=category,
            text=text,
            kept=False,
            selection_rank=None,
            selection_reason="pending",
            provenance=res.provenance.model_copy(update={"call_keys": category_keys + res.provenance.call_keys}),
        )

    results = await asyncio.gather(*(one(k) for k in range(k_total)))
    rows = [r for r in results if isinstance(r, CandidateRow)]
    rejects = [r for r in results if isinstance(r, RejectRow)]
    return rows, rejects


async def select(
    ctx: BuildContext, question_id: str, survivors: list[CandidateRow], ledger_stage: str = STAGE
) -> list[CandidateRow]:
    """Mark which survivors are kept (seeded farthest-point on embeddings) and why.

    Run here, or by the reward stage on the candidates inside its band when the recipe has one."""
    survivors = sorted(survivors, key=lambda c: c.k)
    keep = ctx.recipe.counts.candidates_kept
    texts = [c.text for c in survivors]
    vectors = await ctx.llm.embed(texts, ledger_stage=ledger_stage)
    embed_key = ctx.llm.embed_key(texts)  # every survivor cites the call that placed it
    survivors = [
        c.model_copy(
            update={"provenance": c.provenance.model_copy(update={"call_keys": [*c.provenance.call_keys, embed_key]})}
        )
        if c.provenance is not None and embed_key not in c.provenance.call_keys
        else c
        for c in survivors
    ]
    start = rng_for(ctx.recipe.seeds.select, question_id).randrange(len(survivors))
    picks = farthest_point(vectors, keep, start)
    rank = {i: (r, d) for r, (i, d) in enumerate(picks)}
    out = []
    for i, c in enumerate(survivors):
        if i in rank:
            r, d = rank[i]
            reason = (
                f"seed (seeded start, seed {ctx.recipe.seeds.select})"
                if r == 0
                else f"farthest: cosine distance {d:.4f}"
            )
            out.append(c.model_copy(update={"kept": True, "selection_rank": r, "selection_reason": reason}))
        else:
            d = min(cosine_distance(vectors[i], vectors[j]) for j, _ in picks)
            out.append(
                c.model_copy(update={"selection_reason": f"not selected: cosine distance {d:.4f} to a kept one"})
            )
    return out


async def run(ctx: BuildContext, questions: list[QuestionRow]) -> list[CandidateRow]:
    started = time.monotonic()
    store = ctx.store(STAGE, CandidateRow, "candidate_id")

    def unit(q: QuestionRow):
        return lambda: generate(ctx, q)

    k = ctx.recipe.counts.candidates_generated
    raw, rejects = await ctx.run_units(STAGE, store, [(f"{q.question_id}@{k}", unit(q)) for q in questions])
    survivors, dropped = await ctx.apply_filters(STAGE, raw, "candidate_id")
    rejects += dropped
    by_question: dict[str, list[CandidateRow]] = {}
    for c in survivors:
        by_question.setdefault(c.question_id, []).append(c)
    ready: list[str] = []
    for qid in sorted(by_question):
        if len(by_question[qid]) < 2:
            detail = f"{len(by_question[qid])} survived"
            rejects.append(RejectRow(stage=STAGE, id=qid, reason="too_few_candidates", detail=detail))
        else:
            ready.append(qid)
    if ctx.recipe.stages.reward is not None:  # the reward stage selects, inside its band
        rows = [c.model_copy(update={"selection_reason": PENDING}) for qid in ready for c in by_question[qid]]
    else:
        selected = await asyncio.gather(*(select(ctx, qid, by_question[qid]) for qid in ready))
        rows = [c for group in selected for c in group]
    store.write_output(rows, rejects)
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.candidate_id)
