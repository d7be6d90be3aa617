"""Stage 2, describe: a grounded two-part description (background, preferences) per persona.

The LLM sees the article as numbered sentences carrying their Biography ids ("[2.4] text") and must
cite ids for every claim; preferences are inferences and must cite what they are inferred from.
This is what replaces the reference method's "persona = name only": the judge later
sees these claims, and the filters can check each one against the cited text. The stage itself only
checks structure (the cited ids exist); whether the text supports the claim is the filters' call.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from wikipersona_data.stages import bounds
from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.rows import Claim, ClaimKind, DescriptionRow, PersonaRow, RejectRow
from wikipersona_data.wiki.biography import Biography, Sentence

STAGE = "describe"
# Section titles worth showing before the rest: where preferences are usually written down.
PREFERENCE_SECTIONS = ("personal life", "views", "political", "religio", "diet", "philanthrop", "activism", "beliefs")


SentenceId = Annotated[str, Field(pattern=bounds.SENTENCE_ID_PATTERN)]


@functools.lru_cache(maxsize=512)
def description_schema(max_tokens: int, ids: tuple[str, ...] = ()) -> type[BaseModel]:
    """The reply schema for a describe call of at most ``max_tokens`` (see ``stages/bounds.py``).

    ``ids``: the sentence ids shown in the prompt. Evidence is then an ``enum`` of exactly those, so a
    server that enforces the schema (llama.cpp's grammar, vLLM, OpenAI strict) cannot cite a sentence that
    does not exist or was not shown: SmolLM2-135M cited made-up ids ("2.0", "202.02") in most claims before.
    Whether the cited text supports the claim stays the grounding filter's call.
    """
    b = bounds.describe(max_tokens)
    evidence_id = Literal[ids] if ids else SentenceId  # type: ignore[valid-type]

    class DraftClaim(BaseModel):
        kind: ClaimKind
        text: str = Field(min_length=1, max_length=b.item_chars)
        evidence: list[evidence_id] = Field(min_length=1, max_length=bounds.MAX_EVIDENCE_IDS)  # type: ignore[valid-type]

    class Description(BaseModel):
        claims: list[DraftClaim] = Field(min_length=b.min_items, max_length=b.max_items)

    return Description


def rank_sentences(bio: Biography, persona: PersonaRow) -> list[tuple[int, Sentence]]:
    """(article position, sentence), most worth showing first: the lead, then sentences relevant to the
    persona's categories, then those in preference sections, then the rest (article order within each)."""
    terms = {w.lower() for m in persona.axes for w in f"{m.axis} {m.category}".replace("-", " ").split() if len(w) > 3}

    def priority(s: Sentence) -> int:
        if s.section == "Lead" or s.id.startswith("0."):
            return 0
        text = s.text.lower()
        if any(t in text for t in terms):
            return 1
        if any(p in s.section.lower() for p in PREFERENCE_SECTIONS):
            return 2
        return 3

    return sorted(enumerate(bio.sentences), key=lambda item: (priority(item[1]), item[0]))


def shown(ranked: list[tuple[int, Sentence]], limit: int) -> list[Sentence]:
    """The ``limit`` best-ranked sentences in article order, so ids read naturally. A smaller ``limit``
    keeps a prefix of the same ranking: trimming drops the least relevant sentences first."""
    return [s for _, s in sorted(ranked[:limit], key=lambda item: item[0])]


def fit_sentences(
    ctx: BuildContext, persona: PersonaRow, bio: Biography, values: dict[str, Any]
) -> tuple[list[Sentence], int]:
    """The recipe's sentences, trimmed to the endpoint's context: (sentences shown, sentences left out).

    A small local server has a small context (llm-local: 2,048 tokens per slot) and a long article fills
    it; sending anyway gets ``prompt_too_long`` (or a server error) and no description at all. So the
    prompt is measured with the client's own estimate, padded by ``CONTEXT_SAFETY`` because a real
    tokenizer can count more tokens than the estimate, and the least relevant sentences go first.
    """
    ranked = rank_sentences(bio, persona)
    wanted = min(ctx.recipe.counts.description_max_sentences, len(ranked))
    budget = ctx.llm.prompt_budget(STAGE)

    def fits(n: int) -> bool:
        return ctx.llm.prompt_tokens("describe", {**values, "sentences": shown(ranked, n)}) * CONTEXT_SAFETY <= budget

    if budget is None or fits(wanted):
        return shown(ranked, wanted), 0
    lo, hi = 0, wanted  # fits(lo) assumed (an empty list is refused by describe_one, never sent)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return shown(ranked, lo), wanted - lo


CONTEXT_SAFETY = 1.25
"""Prompt estimate x this must fit the context budget (the estimate is chars/4; dense text tokenizes worse)."""


def _row(persona: PersonaRow, bio: Biography, draft: BaseModel, res_prov: object) -> DescriptionRow:
    sentences = bio.sentence_map()
    claims: list[Claim] = []
    cited: dict[str, str] = {}
    for k, c in enumerate(draft.claims):  # type: ignore[attr-defined]
        evidence = [e.strip().strip("[]") for e in c.evidence]
        exists = bool(evidence) and all(e in sentences for e in evidence)
        cited.update({e: sentences[e].text for e in evidence if e in sentences})
        claims.append(
            Claim(
                claim_id=f"{persona.persona_id}/c{k}",
                kind=c.kind,
                text=" ".join(c.text.split()),
                evidence=evidence,
                evidence_exists=exists,
            )
        )
    return DescriptionRow(
        persona_id=persona.persona_id,
        wiki_revision_id=bio.revision_id,
        bio=" ".join(c.text for c in claims if c.kind == "background"),
        preferences=" ".join(c.text for c in claims if c.kind == "preference"),
        claims=claims,
        cited_sentences=dict(sorted(cited.items())),
        provenance=res_prov,  # type: ignore[arg-type]
    )


async def describe_one(
    ctx: BuildContext, persona: PersonaRow, bio: Biography, sample_idx: int = 0
) -> tuple[list[DescriptionRow], list[RejectRow]]:
    max_tokens = ctx.recipe.stage(STAGE).max_tokens
    b = bounds.describe(max_tokens)
    values: dict[str, Any] = {
        "title": bio.title,
        "name": persona.name,
        "memberships": persona.axes,
        "min_claims": b.min_items,
        "max_claims": b.max_items,
        "claim_words": b.item_chars // 6,
    }
    values["sentences"], left_out = fit_sentences(ctx, persona, bio, values)
    if not values["sentences"]:
        budget = ctx.llm.prompt_budget(STAGE)
        detail = f"not one article sentence fits the endpoint's context ({budget} prompt tokens after max_tokens)"
        return [], [RejectRow(stage=STAGE, id=persona.persona_id, reason="prompt_too_long", detail=detail)]
    schema = description_schema(max_tokens, tuple(s.id for s in values["sentences"]))
    res = await ctx.llm.json(STAGE, "describe", values, schema, sample_idx=sample_idx)
    if not res.ok:
        reject = RejectRow(
            stage=STAGE,
            id=persona.persona_id,
            reason="llm_failure",
            detail=res.failure or "",
            call_keys=res.provenance.call_keys,
        )
        return [], [reject]
    row = _row(persona, bio, res.value, res.provenance)
    row.sentences_left_out = left_out
    kinds = {c.kind for c in row.claims}
    if kinds != {"background", "preference"}:
        missing = sorted({"background", "preference"} - kinds)
        reject = RejectRow(
            stage=STAGE,
            id=persona.persona_id,
            reason="incomplete_description",
            detail=f"no {missing[0]} claims",
            call_keys=res.provenance.call_keys,
        )
        return [], [reject]
    return [row], []


async def describe_grounded(
    ctx: BuildContext, persona: PersonaRow, bio: Biography
) -> tuple[list[DescriptionRow], list[RejectRow]]:
    """describe_one, asked again with a new ``sample_idx`` while the filters drop the result for a reason they
    mark as worth a new sample (weak grounding, ``verify/grounding.py``), at most ``filters.max_regenerations``
    times; earlier attempts stay as 'regenerated' rejects."""
    return await ctx.until_kept(
        STAGE,
        "persona_id",
        lambda sample_idx: describe_one(ctx, persona, bio, sample_idx),
        attempts=1 + int(ctx.recipe.filters.get("max_regenerations", 0) or 0),
        label="regenerated",
    )


async def run(ctx: BuildContext, personas: list[PersonaRow], biographies: dict[str, Biography]) -> list[DescriptionRow]:
    started = time.monotonic()
    store = ctx.store(STAGE, DescriptionRow, "persona_id")

    def unit(p: PersonaRow):
        return lambda: describe_grounded(ctx, p, biographies[p.persona_id])

    rows, rejects = await ctx.run_units(
        STAGE, store, [(f"{p.persona_id}@{biographies[p.persona_id].revision_id}", unit(p)) for p in personas]
    )
    rows, dropped = await ctx.apply_filters(STAGE, rows, "persona_id")
    rejects += dropped
    store.write_output(rows, rejects)
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.persona_id)
