"""Stage 5, judge: which kept candidate would this persona prefer? A seeded knockout, both orders.

Fixes to the WikiPersonas paper's judge: one item per call; the persona is given as its
grounded description (``persona_view``) rather than a bare name the judge must remember; every match
is judged twice with (a)/(b) swapped; ties are allowed; temperature 0. A match whose two orders each
prefer the answer in the same slot is *position-biased*: it is recorded and counts as a tie, and a
tie is resolved by a seeded coin (``decided_by = "tiebreak"``), never silently.

``judge_agreement`` = share of the votes cast in matches of the chosen candidate that pick it: 1.0
when the judge consistently preferred the winner in both orders, 0.5 when one order disagreed, lower
when the winner only advanced by tie-breaks. Filters can threshold it.

Divergent questions are judged separately for every persona on the axis, with the same candidates,
so personas of one axis can (and should) choose differently.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Literal

from pydantic import BaseModel, Field

from wikipersona_data.stages import bounds
from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.ids import content_id, judgment_id, rng_for, seeded_order
from wikipersona_data.stages.rows import (
    CandidateRow,
    DescriptionRow,
    JudgmentRow,
    Match,
    PersonaRow,
    Provenance,
    QuestionRow,
    RejectRow,
    Vote,
)

STAGE = "judge"


@functools.cache
def verdict_schema(max_tokens: int, allow_ties: bool) -> type[BaseModel]:
    """A short rationale, then the pick; bounded by ``max_tokens`` (see ``stages/bounds.py``)."""
    limit = bounds.rationale_chars(max_tokens)

    if allow_ties:

        class Verdict(BaseModel):
            rationale: str = Field(min_length=1, max_length=limit)
            preferred: Literal["a", "b", "tie"]

        return Verdict

    class VerdictNoTie(BaseModel):
        rationale: str = Field(min_length=1, max_length=limit)
        preferred: Literal["a", "b"]

    return VerdictNoTie


class JudgeFailure(Exception):
    def __init__(self, detail: str, call_keys: list[str]) -> None:
        super().__init__(detail)
        self.call_keys = call_keys


def persona_card(ctx: BuildContext, persona: PersonaRow, description: DescriptionRow | None) -> dict[str, object]:
    """What the judge is told about the persona, per ``judge.persona_view``; refuted claims are left out."""
    view = ctx.recipe.judge.persona_view
    claims = [c for c in description.claims if c.supported is not False] if description else []
    card: dict[str, object] = {"name": persona.name if view in ("name", "both") else ""}
    show = view in ("description", "both")
    card["background"] = [c.text for c in claims if c.kind == "background"] if show else []
    card["preferences"] = [c.text for c in claims if c.kind == "preference"] if show else []
    return card


class Judge:
    """Judges one (persona, question) with the given card; collects provenance across votes."""

    def __init__(
        self,
        ctx: BuildContext,
        persona: PersonaRow,
        question: QuestionRow,
        card: dict[str, object],
        sample_idx: int = 0,
    ) -> None:
        self.ctx = ctx
        self.sample_idx = sample_idx
        self.persona = persona
        self.question = question
        self.card = card
        self.provenance: Provenance | None = None
        self.failed_keys: list[str] = []

    async def vote(self, first: CandidateRow, second: CandidateRow, order: Literal["ab", "ba"]) -> Vote:
        allow_ties = self.ctx.recipe.judge.allow_ties
        values = {
            **self.card,
            "question": self.question.text,
            "answer_a": first.text,
            "answer_b": second.text,
            "allow_ties": allow_ties,
        }
        schema = verdict_schema(self.ctx.recipe.stage(STAGE).max_tokens, allow_ties)
        res = await self.ctx.llm.json(STAGE, "judge", values, schema, sample_idx=self.sample_idx)
        if not res.ok:
            self.failed_keys += res.provenance.call_keys
            raise JudgeFailure(res.failure or "judge call failed", res.provenance.call_keys)
        self.provenance = res.provenance  # all votes share endpoint, model, template: any one will do
        pick = res.value.preferred
        winner = first.candidate_id if pick == "a" else second.candidate_id if pick == "b" else "tie"
        return Vote(
            first=first.candidate_id,
            second=second.candidate_id,
            order=order,
            winner=winner,
            rationale=res.value.rationale.strip(),
            call_keys=res.provenance.call_keys,
        )

    async def match(self, rnd: int, a: CandidateRow, b: CandidateRow) -> Match:
        orders = [self.vote(a, b, "ab")]
        if self.ctx.recipe.judge.both_orders:
            orders.append(self.vote(b, a, "ba"))
        votes = list(await asyncio.gather(*orders))
        winners = {v.winner for v in votes}
        outcome = winners.pop() if len(winners) == 1 and "tie" not in winners else "tie"
        slots = {("a" if v.winner == v.first else "b") for v in votes if v.winner != "tie"}
        biased = len(votes) == 2 and all(v.winner != "tie" for v in votes) and len(slots) == 1
        if outcome != "tie":
            advanced, decided_by = outcome, "votes"
        else:
            coin = rng_for(
                self.ctx.recipe.seeds.judge, self.persona.persona_id, self.question.question_id, rnd, a.candidate_id
            )
            advanced, decided_by = coin.choice([a.candidate_id, b.candidate_id]), "tiebreak"
        return Match(
            round=rnd,
            a=a.candidate_id,
            b=b.candidate_id,
            votes=votes,
            outcome=outcome,
            position_biased=biased,
            advanced=advanced,
            decided_by=decided_by,
        )


def agreement(chosen: str, matches: list[Match]) -> float:
    votes = [v for m in matches if chosen in (m.a, m.b) for v in m.votes]
    return round(sum(v.winner == chosen for v in votes) / len(votes), 6) if votes else 0.0


def pick_rejected(ctx: BuildContext, key: tuple[str, str], chosen: str, ids: list[str], matches: list[Match]) -> str:
    others = sorted(i for i in ids if i != chosen)
    rng = rng_for(ctx.recipe.seeds.judge, *key, "rejected")
    if ctx.recipe.judge.rejected == "random" or len(others) == 1:
        return rng.choice(others)
    # worst: a first-round loser, the one with the most votes against it
    losers: dict[str, int] = {}
    for m in matches:
        if m.round == 0:
            loser = m.b if m.advanced == m.a else m.a
            losers[loser] = sum(v.winner not in (loser, "tie") for v in m.votes)
    most = max(losers.values())
    return rng.choice(sorted(i for i, n in losers.items() if n == most))


async def judge_one(
    ctx: BuildContext,
    persona: PersonaRow,
    question: QuestionRow,
    candidates: list[CandidateRow],
    description: DescriptionRow | None,
    sample_idx: int = 0,
) -> tuple[list[JudgmentRow], list[RejectRow]]:
    key = (persona.persona_id, question.question_id)
    jid = judgment_id(*key)
    judge = Judge(ctx, persona, question, persona_card(ctx, persona, description), sample_idx)
    by_id = {c.candidate_id: c for c in candidates}
    alive = seeded_order(ctx.recipe.seeds.judge, sorted(by_id), *key)
    matches: list[Match] = []
    try:
        rnd = 0
        while len(alive) > 1:
            pairs = [(alive[i], alive[i + 1]) for i in range(0, len(alive) - 1, 2)]
            played = await asyncio.gather(*(judge.match(rnd, by_id[a], by_id[b]) for a, b in pairs))
            matches += played
            alive = [m.advanced for m in played] + ([alive[-1]] if len(alive) % 2 else [])
            rnd += 1
    except JudgeFailure as err:
        keys = sorted(set(judge.failed_keys))
        return [], [RejectRow(stage=STAGE, id=jid, reason="llm_failure", detail=str(err), call_keys=keys)]
    chosen = alive[0]
    category = next((m.category for m in persona.axes if m.axis == question.axis), None) if question.axis else None
    assert judge.provenance is not None
    keys = [k for m in matches for v in m.votes for k in v.call_keys]  # match order, then ab before ba
    provenance = judge.provenance.model_copy(update={"call_keys": keys})
    row = JudgmentRow(
        judgment_id=jid,
        persona_id=persona.persona_id,
        question_id=question.question_id,
        question_type=question.question_type,
        axis=question.axis,
        category=category,
        persona_view=ctx.recipe.judge.persona_view,
        candidate_ids=sorted(by_id),
        matches=matches,
        chosen_id=chosen,
        rejected_id=pick_rejected(ctx, key, chosen, sorted(by_id), matches),
        rejected_strategy=ctx.recipe.judge.rejected,
        judge_agreement=agreement(chosen, matches),
        position_biased_matches=sum(m.position_biased for m in matches),
        provenance=provenance,
    )
    return [row], []


async def judge_agreed(
    ctx: BuildContext,
    persona: PersonaRow,
    question: QuestionRow,
    candidates: list[CandidateRow],
    description: DescriptionRow | None,
) -> tuple[list[JudgmentRow], list[RejectRow]]:
    """judge_one, judged again with a new ``sample_idx`` while the filters drop it for a reason they mark as
    worth a new sample (low agreement, ``verify/pairs.py``), at most ``filters.max_rejudges`` times; earlier
    attempts stay as 'rejudged' rejects."""
    return await ctx.until_kept(
        STAGE,
        "judgment_id",
        lambda sample_idx: judge_one(ctx, persona, question, candidates, description, sample_idx),
        attempts=1 + int(ctx.recipe.filters.get("max_rejudges", 0) or 0),
        label="rejudged",
    )


def assignments(personas: list[PersonaRow], questions: list[QuestionRow]) -> list[tuple[PersonaRow, QuestionRow]]:
    """(persona, question) pairs to judge: own personal questions, and every divergent one of each axis.

    Persona-major: a judge prompt begins with the persona's card (``judge.md``), so issuing one persona's
    judgments together lets the provider's prompt cache (or vLLM's prefix cache) serve the card to all but
    the first of them (docs/llm.md, "Prompt caching")."""
    out = []
    for p in sorted(personas, key=lambda p: p.persona_id):
        axes = {m.axis for m in p.axes}
        for q in questions:
            if (q.question_type == "personal" and q.persona_id == p.persona_id) or (
                q.question_type == "divergent" and q.axis in axes
            ):
                out.append((p, q))
    return out


async def run(
    ctx: BuildContext,
    personas: list[PersonaRow],
    descriptions: list[DescriptionRow],
    questions: list[QuestionRow],
    candidates: list[CandidateRow],
) -> list[JudgmentRow]:
    started = time.monotonic()
    store = ctx.store(STAGE, JudgmentRow, "judgment_id")
    described = {d.persona_id: d for d in descriptions}
    kept: dict[str, list[CandidateRow]] = {}
    for c in candidates:
        if c.kept:
            kept.setdefault(c.question_id, []).append(c)
    units = []
    for p, q in assignments(personas, questions):
        if len(kept.get(q.question_id, [])) < 2:
            continue

        def unit(p: PersonaRow = p, q: QuestionRow = q):
            return judge_agreed(ctx, p, q, kept[q.question_id], described.get(p.persona_id))

        card = persona_card(ctx, p, described.get(p.persona_id))
        fingerprint = content_id(sorted(c.candidate_id for c in kept[q.question_id]), sorted(card.items()))
        units.append((f"{judgment_id(p.persona_id, q.question_id)}@{fingerprint}", unit))
    rows, rejects = await ctx.run_units(STAGE, store, units)
    rows, dropped = await ctx.apply_filters(STAGE, rows, "judgment_id")
    rejects += dropped
    store.write_output(rows, rejects)
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.judgment_id)
