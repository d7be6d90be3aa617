"""Grounding of descriptions (stage "describe"): is every claim supported by the sentences it cites?

The deterministic check (no LLM) is built from what an invented or mis-cited claim gets wrong:

1. every cited sentence id exists in that revision of the article (the Biography, when the build has
   it; else the ``cited_sentences`` the describe stage recorded);
2. every number, month and proper name in the claim appears in the cited text (names of the persona
   themself excepted: the evidence says "She", the claim says "Adaeze Okafor");
3. a share of the claim's content words (stemmed, lower-cased, stop words removed) appears in the
   cited text: ``background_min_overlap`` for background facts; preferences are inferences, so they
   get the softer ``preference_min_overlap`` but must still share ``preference_min_shared_words``
   topic words with what they cite.

Optionally (``llm_entailment``) a claim that passed is also put to an LLM ("do these sentences entail
the claim?", schema ``entailment``), which catches paraphrased contradictions the word check cannot.

Unsupported claims stay in ``claims`` with ``supported = False`` and a ``support_reason`` (the release
shows them as refuted), but are removed from the ``bio`` / ``preferences`` text that later stages and
the judge read. ``grounding_score`` = supported / total. A description below ``min_grounding_score``
is dropped; the describe stage regenerates it (new ``sample_idx``) a bounded number of times first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from wikipersona_data.stages.bounds import rationale_chars
from wikipersona_data.stages.rows import Claim, DescriptionRow
from wikipersona_data.stages.templates import Template
from wikipersona_data.verify.base import Filter, FilterResult
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.text import content_words, months, names, numbers, overlap, stem, tokens

TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "entailment.md"


ENTAILMENT_MAX_TOKENS = 200


class Entailment(BaseModel):
    entailed: bool
    rationale: str = Field(max_length=rationale_chars(ENTAILMENT_MAX_TOKENS))


def entailment_template() -> Template:
    raw = TEMPLATE_PATH.read_bytes()
    return Template(name=TEMPLATE_PATH.name, text=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest())


def persona_names(persona_id: str, context: dict[str, Any]) -> set[str]:
    """Every spelling of the persona's own name: title, display name, recipe titles, infobox names."""
    found: set[str] = set()
    persona = (context.get("personas") or {}).get(persona_id)
    if persona is not None:
        found.update([persona.name, persona.wiki_title, *persona.requested_titles])
    bio = (context.get("biographies") or {}).get(persona_id)
    if bio is not None:
        found.add(bio.title)
        if bio.infobox is not None:
            found.update(v for k, v in bio.infobox.fields.items() if k in ("name", "birth_name"))
    return {w.lower().removesuffix("'s") for phrase in found for w in tokens(phrase.split(" (")[0])}


def evidence_texts(row: DescriptionRow, claim: Claim, context: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(id -> text of the cited sentences that exist, ids that do not exist in the revision).

    Sentence ids are stable only within a revision: if the build's Biography is another revision than
    the one described, no cited id counts as existing."""
    bio = (context.get("biographies") or {}).get(row.persona_id)
    if bio is not None and row.wiki_revision_id is not None and bio.revision_id != row.wiki_revision_id:
        return {}, [f"{e}@{row.wiki_revision_id} (article is at {bio.revision_id})" for e in claim.evidence]
    source = {s.id: s.text for s in bio.sentences} if bio is not None else row.cited_sentences
    found = {e: source[e] for e in claim.evidence if e in source}
    return found, [e for e in claim.evidence if e not in source]


def check_claim(claim: Claim, evidence: dict[str, str], missing: list[str], own: set[str], cfg: FiltersConfig) -> str:
    """'supported' or the reason the claim is not (deterministic part)."""
    if not claim.evidence:
        return "no_evidence"
    if missing:
        return f"evidence_missing: {', '.join(missing)}"
    text = " ".join(evidence.values())
    invented = sorted(numbers(claim.text) - numbers(text))
    if invented:
        return f"number_not_in_evidence: {', '.join(invented)}"
    invented = sorted(months(claim.text) - months(text))
    if invented:
        return f"date_not_in_evidence: {', '.join(invented)}"
    lower_evidence = {t.lower().removesuffix("'s") for t in tokens(text)}
    invented = sorted(n for n in names(claim.text) if n.lower() not in lower_evidence and n.lower() not in own)
    if invented:
        return f"name_not_in_evidence: {', '.join(invented)}"
    words = content_words(claim.text) - {stem(w) for w in own}
    ev_words = content_words(text)
    share = overlap(words, ev_words)
    if claim.kind == "background":
        if share < cfg.background_min_overlap:
            return f"low_overlap: {share:.2f} < {cfg.background_min_overlap}"
    else:
        shared = len(words & ev_words)
        need = min(cfg.preference_min_shared_words, len(words))
        if shared < need or share < cfg.preference_min_overlap:
            return f"no_shared_topic: {shared} shared words, overlap {share:.2f}"
    return "supported"


def rebuild(row: DescriptionRow, claims: list[Claim]) -> DescriptionRow:
    supported = [c for c in claims if c.supported]
    score = round(len(supported) / len(claims), 6) if claims else 0.0
    return row.model_copy(
        update={
            "claims": claims,
            "bio": " ".join(c.text for c in supported if c.kind == "background"),
            "preferences": " ".join(c.text for c in supported if c.kind == "preference"),
            "grounding_score": score,
        }
    )


class GroundingFilter(Filter):
    """Marks each claim (un)supported, rebuilds the description, drops it below the grounding threshold."""

    name = "grounding"
    params = (
        "min_grounding_score",
        "background_min_overlap",
        "preference_min_overlap",
        "preference_min_shared_words",
        "llm_entailment",
        "entailment_stage",
    )
    reasons = ("low_grounding", "no_supported_background", "no_supported_preference")
    regenerate_on = frozenset(reasons)  # another sample of the description may cite better

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg
        self.claim_counts: dict[str, dict[str, int]] = {}
        """'<persona_id>#s<sample_idx>' -> {'supported' | reason: claims}: every attempt, kept or dropped."""

    async def check(self, row: DescriptionRow, context: dict[str, Any]) -> FilterResult:  # type: ignore[override]
        own = persona_names(row.persona_id, context)
        claims = []
        for claim in row.claims:
            evidence, missing = evidence_texts(row, claim, context)
            reason = check_claim(claim, evidence, missing, own, self.cfg)
            if reason == "supported" and self.cfg.llm_entailment:
                reason = await entailed(claim, evidence, context, self.cfg)
            claims.append(claim.model_copy(update={"supported": reason == "supported", "support_reason": reason}))
        new = rebuild(row, claims)
        counts: dict[str, int] = {}
        for c in claims:
            key = "supported" if c.supported else (c.support_reason or "").split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        self.claim_counts[f"{row.persona_id}#s{row.provenance.sample_idx}"] = dict(sorted(counts.items()))
        bad = [f"{c.claim_id.rsplit('/', 1)[-1]} {c.support_reason.split(':')[0]}" for c in claims if not c.supported]
        if not claims or (new.grounding_score or 0.0) < self.cfg.min_grounding_score:
            detail = f"score {new.grounding_score:.3f} < {self.cfg.min_grounding_score}; unsupported: {bad}"
            return self.drop("low_grounding", detail)
        for kind in ("background", "preference"):
            if not any(c.supported and c.kind == kind for c in claims):
                return self.drop(f"no_supported_{kind}", f"every {kind} claim is unsupported: {bad}")
        return FilterResult.keep(new, flags=["claims_removed"] if bad else ())


async def entailed(claim: Claim, evidence: dict[str, str], context: dict[str, Any], cfg: FiltersConfig) -> str:
    """Ask the LLM (recipe stage ``entailment_stage``'s endpoint and model, temperature 0)."""
    client = context.get("client")
    recipe = context.get("recipe")
    if client is None or recipe is None:
        return "supported"  # no LLM in this context: the deterministic verdict stands (documented in the report)
    spec = recipe.stage(cfg.entailment_stage)
    messages = entailment_template().render(evidence=sorted(evidence.items()), kind=claim.kind, claim=claim.text)
    res = await client.chat_json(
        stage="describe",
        endpoint=spec.endpoint,
        model=spec.model,
        messages=messages,
        schema=Entailment,
        schema_name="entailment",
        params={"temperature": 0.0, "max_tokens": ENTAILMENT_MAX_TOKENS, "seed": 0},
        max_reasks=spec.max_reasks,
    )
    if not res.ok:
        return f"entailment_failed: {res.failure}"
    value = res.value if isinstance(res.value, Entailment) else Entailment.model_validate(res.value)
    return "supported" if value.entailed else f"not_entailed: {value.rationale.strip()[:200]}"
