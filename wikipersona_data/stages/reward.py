"""Optional stage between respond and the diversity selection: the reward band (the paper's S4, step 1).

Why: the judge should decide on personalisation, not on generic quality. So every surviving candidate of a
question is scored by a reward model (recipe ``[stages.reward]``: a vLLM ``/classify`` or ``/pooling``
endpoint, one cached call per candidate, ``llm/reward.py``), and only ``band`` candidates of comparable
score go on to the diversity selection (``respond.select``), which keeps ``counts.candidates_kept``. The
paper's setting is 50 -> 20 -> 4.

Which window of the ranked scores is the band (``band_position``):

* ``tightest`` (default, as the reference code ``filter_generic_reward`` does): the ``band`` consecutive
  ranked scores with the smallest max - min spread; ties go to the window nearest the middle, then the lower;
* ``median``: the ``band`` consecutive ranked scores centred on the median.

Ranking is by score, ties by the candidate's index ``k``, so the band is deterministic. Every scored candidate
is written (``reward_score``, ``reward_rank``, ``in_band``), with ``selection_reason`` saying why it is out
when it is; a candidate whose reward call failed is a reject (``llm_failure``), never a default score.
"""

from __future__ import annotations

import asyncio
import time

from wikipersona_data.stages import respond
from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.ids import content_id
from wikipersona_data.stages.rows import CandidateRow, QuestionRow, RejectRow

STAGE = "reward"


def band_window(scores: list[float], size: int, position: str) -> tuple[int, int]:
    """[start, end) of the band in ``scores`` sorted ascending (all of them if there are no more than ``size``)."""
    n = len(scores)
    if n <= size:
        return 0, n
    if position == "median":
        start = (n - size) // 2
        return start, start + size
    middle = (n - size) / 2
    start = min(range(n - size + 1), key=lambda i: (scores[i + size - 1] - scores[i], abs(i - middle), i))
    return start, start + size


async def _score(ctx: BuildContext, question: QuestionRow, candidates: list[CandidateRow]):
    """One unit: every candidate of one question scored (rows with ``reward_score``; failures as rejects)."""

    async def one(c: CandidateRow) -> CandidateRow | RejectRow:
        result = await ctx.llm.reward(question.text, c.text)
        if not result.ok:
            detail = result.failure or ""
            return RejectRow(
                stage=STAGE, id=c.candidate_id, reason="llm_failure", detail=detail, call_keys=[*result.call_keys]
            )
        assert c.provenance is not None
        keys = [*c.provenance.call_keys, *(k for k in result.call_keys if k not in c.provenance.call_keys)]
        provenance = c.provenance.model_copy(update={"call_keys": keys})
        return c.model_copy(update={"reward_score": round(result.score, 6), "provenance": provenance})

    results = await asyncio.gather(*(one(c) for c in sorted(candidates, key=lambda c: c.k)))
    return [r for r in results if isinstance(r, CandidateRow)], [r for r in results if isinstance(r, RejectRow)]


async def band_and_select(ctx: BuildContext, question_id: str, scored: list[CandidateRow]) -> list[CandidateRow]:
    """Rank by score, mark the band, and run the diversity selection on the band only."""
    spec = ctx.recipe.stages.reward
    assert spec is not None
    ranked = sorted(scored, key=lambda c: (c.reward_score, c.k))
    start, end = band_window([c.reward_score or 0.0 for c in ranked], spec.band, spec.band_position)
    lo, hi = ranked[start].reward_score, ranked[end - 1].reward_score
    rank = {c.candidate_id: len(ranked) - 1 - i for i, c in enumerate(ranked)}  # 0 = highest score
    inside = [c.model_copy(update={"in_band": True, "reward_rank": rank[c.candidate_id]}) for c in ranked[start:end]]
    picked = await respond.select(ctx, question_id, inside, ledger_stage=STAGE)
    outside = [
        c.model_copy(
            update={
                "in_band": False,
                "reward_rank": rank[c.candidate_id],
                "kept": False,
                "selection_rank": None,
                "selection_reason": f"outside the reward band: score {c.reward_score:.4f}, band [{lo:.4f}, {hi:.4f}]",
            }
        )
        for c in ranked[:start] + ranked[end:]
    ]
    return picked + outside


async def run(ctx: BuildContext, questions: list[QuestionRow], candidates: list[CandidateRow]) -> list[CandidateRow]:
    """Score respond's survivors of every question, then band and select (see the module docstring)."""
    started = time.monotonic()
    store = ctx.store(STAGE, CandidateRow, "candidate_id")
    by_question: dict[str, list[CandidateRow]] = {}
    for c in candidates:
        by_question.setdefault(c.question_id, []).append(c)
    by_id = {q.question_id: q for q in questions}

    def unit(qid: str):
        return lambda: _score(ctx, by_id[qid], by_question[qid])

    units = [
        (f"{qid}@{content_id(*sorted(c.candidate_id for c in by_question[qid]))}", unit(qid))
        for qid in sorted(by_question)
        if qid in by_id
    ]
    scored, rejects = await ctx.run_units(STAGE, store, units)
    grouped: dict[str, list[CandidateRow]] = {}
    for c in scored:
        grouped.setdefault(c.question_id, []).append(c)
    ready = []
    for qid in sorted(grouped):
        if len(grouped[qid]) < 2:
            detail = f"{len(grouped[qid])} scored"
            rejects.append(RejectRow(stage=STAGE, id=qid, reason="too_few_candidates", detail=detail))
        else:
            ready.append(qid)
    selected = await asyncio.gather(*(band_and_select(ctx, qid, grouped[qid]) for qid in ready))
    rows = [c for group in selected for c in group]
    store.write_output(rows, rejects)
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.candidate_id)
