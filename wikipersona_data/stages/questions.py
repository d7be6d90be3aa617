"""Stage 3, questions: personal questions per persona and divergent questions per axis.

Personal questions are asked for in batches of ``question_batch`` and topped up with
further batches (each a new ``sample_idx`` and a rotated focus, so a real model and the simulator both
give new questions) until ``personal_questions`` survive the question filters, within a bounded
number of batches. Divergent questions (A6) are made the same way once per axis from the axis members'
names and categories; the prompt forbids revealing either, and the leakage filter checks it.

The filters hook is called on the whole collection after each batch (it must be a pure function of
the rows it gets), and once more on all questions at the end of the stage, where cross-persona
checks (near-duplicates between personas) can act.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Annotated

from pydantic import BaseModel, Field

from wikipersona_data.stages import bounds
from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.ids import content_id, question_id
from wikipersona_data.stages.rows import DescriptionRow, PersonaRow, QuestionRow, QuestionType, RejectRow

STAGE = "questions"
FOCUSES = (
    "everyday practical matters",
    "their tastes, hobbies and free time",
    "opinions and advice on contested topics",
    "their work and current projects",
    "family, friends and relationships",
    "food, travel and leisure",
    "learning something new",
    "health, habits and wellbeing",
)


@functools.cache
def question_schema(max_tokens: int, n: int) -> type[BaseModel]:
    """1 to ``n`` questions whose largest form fits ``max_tokens`` (see ``stages/bounds.py``)."""
    b = bounds.questions(max_tokens, n)

    class QuestionList(BaseModel):
        questions: list[Annotated[str, Field(min_length=1, max_length=b.item_chars)]] = Field(
            min_length=b.min_items, max_length=b.max_items
        )

    return QuestionList


def max_batches(ctx: BuildContext, target: int) -> int:
    counts = ctx.recipe.counts
    return counts.max_question_batches or 2 * math.ceil(target / counts.question_batch)


def focus(scope: str, batch: int) -> str:
    return FOCUSES[(batch + int(content_id(scope, length=4), 16)) % len(FOCUSES)]


async def _collect(
    ctx: BuildContext,
    *,
    question_type: QuestionType,
    scope: str,
    template: str,
    values: dict[str, object],
    target: int,
) -> tuple[list[QuestionRow], list[RejectRow]]:
    """Ask batch after batch until ``target`` questions pass the filters or the batch budget is spent."""
    collected: dict[str, QuestionRow] = {}
    rejects: list[RejectRow] = []
    kept: list[QuestionRow] = []
    filter_rejects: list[RejectRow] = []
    max_tokens = ctx.recipe.stage(STAGE).max_tokens
    b = bounds.questions(max_tokens, ctx.recipe.counts.question_batch)
    n = b.max_items
    schema = question_schema(max_tokens, ctx.recipe.counts.question_batch)
    for batch in range(max_batches(ctx, target)):
        res = await ctx.llm.json(
            STAGE,
            template,
            {**values, "n": n, "batch": batch, "focus": focus(scope, batch), "question_words": b.item_chars // 6},
            schema,
            sample_idx=batch,
        )
        if not res.ok:
            detail = f"batch {batch}: {res.failure}"
            rejects.append(
                RejectRow(
                    stage=STAGE,
                    id=f"{scope}#{batch}",
                    reason="batch_failed",
                    detail=detail,
                    call_keys=res.provenance.call_keys,
                )
            )
            continue
        for position, text in enumerate(res.value.questions[: n * 2]):
            text = " ".join(text.split()).strip().strip('"').strip()
            if not text:
                continue
            qid = question_id(question_type, scope, text)
            if qid in collected:
                continue  # exact duplicate (after normalisation) of an earlier question of this scope
            collected[qid] = QuestionRow(
                question_id=qid,
                question_type=question_type,
                persona_id=scope if question_type == "personal" else None,
                axis=scope if question_type == "divergent" else None,
                text=text,
                batch=batch,
                position=position,
                provenance=res.provenance,
            )
        ordered = sorted(collected.values(), key=lambda q: (q.batch, q.position))
        kept, filter_rejects = await ctx.apply_filters(STAGE, ordered, "question_id")
        if len(kept) >= target:
            break
    kept = sorted(kept, key=lambda q: (q.batch, q.position))[:target]
    if len(kept) < target:
        rejects.append(
            RejectRow(
                stage=STAGE,
                id=scope,
                reason="short",
                detail=f"{len(kept)} of {target} questions after {batch + 1} batches",
            )
        )
    return kept, rejects + filter_rejects


def personal_values(persona: PersonaRow, description: DescriptionRow) -> dict[str, object]:
    claims = [c.text for c in description.claims if c.supported is not False]
    return {"name": persona.name, "claims": claims, "memberships": persona.axes}


def divergent_values(ctx: BuildContext, axis: str, personas: list[PersonaRow]) -> dict[str, object]:
    members = []
    for p in personas:
        for m in p.axes:
            if m.axis == axis:
                members.append({"name": p.name, "category": m.category})
    categories = [c.name for c in ctx.recipe.axis(axis).categories]
    return {"axis": axis, "members": members, "categories": categories}


def axis_members(personas: list[PersonaRow]) -> dict[str, list[PersonaRow]]:
    members: dict[str, list[PersonaRow]] = {}
    for p in personas:
        for m in p.axes:
            members.setdefault(m.axis, []).append(p)
    return members


async def run(
    ctx: BuildContext, personas: list[PersonaRow], descriptions: list[DescriptionRow], *, divergent: bool = True
) -> list[QuestionRow]:
    """``divergent=False`` (``wikipersona extend``) makes personal questions only: an added
    persona reuses its axes' divergent questions from the release."""
    started = time.monotonic()
    store = ctx.store(STAGE, QuestionRow, "question_id")
    counts = ctx.recipe.counts
    described = {d.persona_id: d for d in descriptions}
    units = []
    for p in personas:
        if p.persona_id not in described:
            continue  # no grounded description, no questions (its reject is in describe/)

        def personal(p: PersonaRow = p):
            return _collect(
                ctx,
                question_type="personal",
                scope=p.persona_id,
                template="questions_personal",
                values=personal_values(p, described[p.persona_id]),
                target=counts.personal_questions,
            )

        fingerprint = content_id(personal_values(p, described[p.persona_id]), counts.personal_questions)
        units.append((f"personal/{p.persona_id}@{fingerprint}", personal))
    members = axis_members([p for p in personas if p.persona_id in described])
    rejects: list[RejectRow] = []
    for axis in ctx.recipe.axes if divergent else []:
        group = members.get(axis.name, [])
        if len(group) < 2:
            rejects.append(
                RejectRow(stage=STAGE, id=axis.name, reason="axis_too_small", detail=f"{len(group)} member(s)")
            )
            continue

        def divergent(axis_name: str = axis.name, group: list[PersonaRow] = group):
            return _collect(
                ctx,
                question_type="divergent",
                scope=axis_name,
                template="questions_divergent",
                values=divergent_values(ctx, axis_name, group),
                target=counts.divergent_questions,
            )

        fingerprint = content_id(divergent_values(ctx, axis.name, group), counts.divergent_questions)
        units.append((f"divergent/{axis.name}@{fingerprint}", divergent))
    rows, unit_rejects = await ctx.run_units(STAGE, store, units)
    rows, dropped = await ctx.apply_filters(STAGE, rows, "question_id")
    rejects += unit_rejects + dropped
    store.write_output(rows, _dedupe(rejects))
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.question_id)


def _dedupe(rejects: list[RejectRow]) -> list[RejectRow]:
    """The hook runs on growing collections, so one question can be rejected several times."""
    seen: dict[tuple[str, str, str], RejectRow] = {}
    for r in rejects:
        seen.setdefault((r.id, r.reason, r.detail), r)
    return list(seen.values())
