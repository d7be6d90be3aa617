"""Row factories for the filter tests: valid stage rows with only the fields a test cares about given."""

from __future__ import annotations

import asyncio
from typing import Any

from wikipersona_data.stages.rows import (
    AxisMembership,
    CandidateRow,
    Claim,
    DescriptionRow,
    JudgmentRow,
    PairRow,
    PersonaRow,
    PrefixRow,
    Provenance,
    QuestionRow,
)
from wikipersona_data.verify.base import Filter, FilterResult

PROV = Provenance(endpoint="sim", model="sim-large", template="t.md", template_sha256="0" * 64)


def prov(sample_idx: int = 0) -> Provenance:
    return PROV.model_copy(update={"sample_idx": sample_idx})


def persona(pid: str = "ada-okafor", name: str = "Ada Okafor", axes: tuple[tuple[str, str], ...] = ()) -> PersonaRow:
    return PersonaRow(
        persona_id=pid,
        name=name,
        wiki_title=name,
        requested_titles=[name],
        wiki_page_id=1,
        wiki_url=f"https://en.wikipedia.org/wiki/{name.replace(' ', '_')}",
        axes=[AxisMembership(axis=a, category=c, source="recipe") for a, c in axes],
    )


def question(
    text: str, *, qid: str = "q1", kind: str = "personal", pid: str | None = "ada-okafor", axis: str | None = None,
    batch: int = 0, position: int = 0,
) -> QuestionRow:  # fmt: skip
    return QuestionRow(
        question_id=qid,
        question_type=kind,  # type: ignore[arg-type]
        persona_id=pid if kind == "personal" else None,
        axis=axis if kind == "divergent" else None,
        text=text,
        batch=batch,
        position=position,
        provenance=prov(batch),
    )


def candidate(text: str, *, cid: str = "c1", qid: str = "q1", k: int = 0, axis: str = "diet", category: str = "vegan"):
    return CandidateRow(
        candidate_id=cid,
        question_id=qid,
        k=k,
        axis=axis,
        category=category,
        text=text,
        kept=False,
        selection_rank=None,
        selection_reason="pending",
        provenance=prov(k),
    )


def claim(text: str, evidence: list[str], kind: str = "background", k: int = 0, pid: str = "ada-okafor") -> Claim:
    return Claim(claim_id=f"{pid}/c{k}", kind=kind, text=text, evidence=evidence, evidence_exists=True)  # type: ignore[arg-type]


def description(claims: list[Claim], sentences: dict[str, str], pid: str = "ada-okafor", sample_idx: int = 0):
    return DescriptionRow(
        persona_id=pid,
        bio=" ".join(c.text for c in claims if c.kind == "background"),
        preferences=" ".join(c.text for c in claims if c.kind == "preference"),
        claims=claims,
        cited_sentences=sentences,
        provenance=prov(sample_idx),
    )


def judgment(
    *, jid: str = "j1", pid: str = "ada-okafor", agreement: float = 1.0, chosen: str = "a", rejected: str = "b"
):
    return JudgmentRow(
        judgment_id=jid,
        persona_id=pid,
        question_id="q1",
        question_type="personal",
        axis=None,
        category=None,
        persona_view="description",
        candidate_ids=sorted({chosen, rejected}),
        matches=[],
        chosen_id=chosen,
        rejected_id=rejected,
        rejected_strategy="random",
        judge_agreement=agreement,
        position_biased_matches=0,
        provenance=PROV,
    )


def pair(
    *, pid: str = "ada-okafor", qid: str = "q1", chosen: str = "Eat beans.", rejected: str = "Eat fish.",
    chosen_id: str = "a", rejected_id: str = "b", kind: str = "personal", axis: str | None = None,
    split: str = "train", pair_id: str | None = None,
) -> PairRow:  # fmt: skip
    return PairRow(
        pair_id=pair_id or f"p-{pid}-{qid}",
        persona_id=pid,
        persona=pid,
        question_id=qid,
        question_type=kind,  # type: ignore[arg-type]
        axis=axis,
        category=None,
        prompt="What should I eat?",
        chosen=chosen,
        rejected=rejected,
        chosen_id=chosen_id,
        rejected_id=rejected_id,
        judge_agreement=1.0,
        judge_model="sim-large",
        judge_votes=[],
        generator_model="sim-small",
        split=split,  # type: ignore[arg-type]
        persona_fold=0,
    )


def prefix(pid: str = "ada-okafor", inferred_from: tuple[str, ...] = (), fewshot_from: tuple[str, ...] = ()):
    return PrefixRow(
        persona_id=pid,
        prefix_name="n",
        prefix_description="d",
        prefix_inferred="i",
        prefix_fewshot="f",
        inferred_from=list(inferred_from),
        fewshot_from=list(fewshot_from),
        provenance=PROV,
    )


def run_check(
    f: Filter, row: Any, context: dict[str, Any] | None = None, rows: list[Any] | None = None
) -> FilterResult:
    """``prepare`` on ``rows`` (default: just this row), then ``check`` the row."""
    ctx = context or {}

    async def go() -> FilterResult:
        await f.prepare(rows if rows is not None else [row], ctx)
        result = f.check(row, ctx)
        return await result if asyncio.iscoroutine(result) else result

    return asyncio.run(go())
