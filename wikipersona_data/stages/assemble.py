"""From the stage rows to release rows (release/schema.py PAIRS, PERSONAS) and the manifest facts.

Only reshaping and bookkeeping happens here: every value comes from a stage row. ``supported`` of a
claim is the support filter's verdict when it ran; if no filter set it, it falls back to the
structural check done at describe time (every cited sentence id exists), and the manifest says so
(``grounding_method``) so nobody mistakes one for the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wikipersona_data.stages.divergence import divergence_rates
from wikipersona_data.stages.rows import DescriptionRow, JudgmentRow, PairRow, PersonaRow, PrefixRow


def claim_supported(claim: Any) -> bool:
    return claim.supported if claim.supported is not None else claim.evidence_exists


def grounding_method(descriptions: list[DescriptionRow]) -> str:
    judged = [c.supported is not None for d in descriptions for c in d.claims]
    if judged and all(judged):
        return "support filter"
    if any(judged):
        return "support filter where it ran, else cited ids exist"
    return "cited sentence ids exist (no support filter ran)"


def grounding_score(description: DescriptionRow) -> float:
    if description.grounding_score is not None:
        return description.grounding_score
    if not description.claims:
        return 0.0
    return round(sum(claim_supported(c) for c in description.claims) / len(description.claims), 6)


def pair_record(pair: PairRow) -> dict[str, Any]:
    return {
        "pair_id": pair.pair_id,
        "persona_id": pair.persona_id,
        "persona": pair.persona,
        "question_id": pair.question_id,
        "question_type": pair.question_type,
        "axis": pair.axis,
        "category": pair.category,
        "prompt": [{"role": "user", "content": pair.prompt}],
        "chosen": [{"role": "assistant", "content": pair.chosen}],
        "rejected": [{"role": "assistant", "content": pair.rejected}],
        "chosen_id": pair.chosen_id,
        "rejected_id": pair.rejected_id,
        "judge_agreement": pair.judge_agreement,
        "judge_model": pair.judge_model,
        "judge_votes": [
            {"first": v.first, "second": v.second, "winner": v.winner, "rationale": v.rationale}
            for v in pair.judge_votes
        ],
        "generator_model": pair.generator_model,
        "persona_fold": pair.persona_fold,
        # a build with the reward band only (release/schema.py PAIRS_WITH_REWARD)
        **(
            {"chosen_reward": pair.chosen_reward, "rejected_reward": pair.rejected_reward}
            if pair.chosen_reward is not None
            else {}
        ),
    }


def persona_record(
    persona: PersonaRow, description: DescriptionRow, prefix: PrefixRow | None, fold: int | None
) -> dict[str, Any]:
    return {
        "persona_id": persona.persona_id,
        "name": persona.name,
        "wiki_title": persona.wiki_title,
        "wiki_page_id": persona.wiki_page_id,
        "wiki_revision_id": persona.wiki_revision_id,
        "wiki_url": persona.wiki_url,
        "axes": [{"axis": m.axis, "category": m.category} for m in persona.axes],
        "bio": description.bio,
        "preferences": description.preferences,
        "claims": [
            {"kind": c.kind, "text": c.text, "evidence": c.evidence, "supported": claim_supported(c)}
            for c in description.claims
        ],
        "grounding_score": grounding_score(description),
        "persona_fold": fold,
        "prefix_name": prefix.prefix_name if prefix else None,
        "prefix_description": prefix.prefix_description if prefix else None,
        "prefix_inferred": prefix.prefix_inferred if prefix else None,
        "prefix_fewshot": prefix.prefix_fewshot if prefix else None,
    }


def release_rows(
    personas: list[PersonaRow],
    descriptions: list[DescriptionRow],
    pairs: list[PairRow],
    prefixes: list[PrefixRow],
    folds: dict[str, int],
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """PAIRS rows by split and PERSONAS rows, sorted by id; personas without a description are left out."""
    split_rows: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for pair in sorted(pairs, key=lambda p: p.pair_id):
        split_rows[pair.split].append(pair_record(pair))
    described = {d.persona_id: d for d in descriptions}
    prefix = {p.persona_id: p for p in prefixes}
    persona_rows = [
        persona_record(p, described[p.persona_id], prefix.get(p.persona_id), folds.get(p.persona_id))
        for p in sorted(personas, key=lambda p: p.persona_id)
        if p.persona_id in described
    ]
    return split_rows, persona_rows


def divergence_by_axis(judgments: Iterable[JudgmentRow], pairs: list[PairRow]) -> dict[str, float]:
    """Per axis: share of divergent questions on which the axis members (>= 2 judged) did not all choose
    the same candidate, over the judgments that made a released pair. 0 means the 'divergent' questions did
    not divide anyone (``stages/divergence.py``)."""
    released = {(p.persona_id, p.question_id) for p in pairs}
    return divergence_rates(j for j in judgments if (j.persona_id, j.question_id) in released)


def judge_stats(judgments: Iterable[JudgmentRow]) -> dict[str, float]:
    """One pass over the judgments (they may be read from disk: ``store.StoredRows``), holding only counts."""
    n = matches = votes = biased = tiebreaks = 0
    agreement = 0
    for j in judgments:
        n += 1
        agreement += j.judge_agreement
        for m in j.matches:
            matches += 1
            votes += len(m.votes)
            biased += m.position_biased
            tiebreaks += m.decided_by == "tiebreak"
    if not n:
        return {}
    return {
        "judgments": n,
        "matches": matches,
        "votes": votes,
        "position_biased_matches": biased,
        "position_biased_share": round(biased / max(1, matches), 6),
        "tiebreak_share": round(tiebreaks / max(1, matches), 6),
        "mean_judge_agreement": round(agreement / n, 6),
    }


def reward_band_stats(pairs: list[PairRow], candidates: Iterable[Any], spec: Any) -> dict[str, Any]:
    """The reward band's facts for the manifest and the card (empty without a band): the band's setting, the
    spread of the scores kept in it, and the reward gap between chosen and rejected over the released pairs.

    A band makes chosen vs rejected about the person rather than about quality: the gap should be small
    next to the spread of all candidates' scores."""
    scored = [(p.chosen_reward, p.rejected_reward) for p in pairs if p.chosen_reward is not None]
    if spec is None or not scored:
        return {}
    return {
        "model": spec.model,
        "route": spec.route,
        "band": spec.band,
        "band_position": spec.band_position,
        **band_spreads(candidates),
        **reward_gap(scored),  # type: ignore[arg-type]
    }


def band_spreads(candidates: Iterable[Any]) -> dict[str, Any]:
    """Per question, the spread (max - min) of all scored candidates and of those in the band, averaged:
    figures of the candidates, so an extended release recomputes them over the build's and its extensions'."""
    by_q: dict[str, list[Any]] = {}
    for c in candidates:
        if c.reward_score is not None:
            by_q.setdefault(c.question_id, []).append(c)
    spread_all = [max(x.reward_score for x in cs) - min(x.reward_score for x in cs) for cs in by_q.values()]
    spread_band = [
        max(x.reward_score for x in band) - min(x.reward_score for x in band)
        for cs in by_q.values()
        if (band := [x for x in cs if x.in_band])
    ]
    return {"questions": len(by_q), "mean_spread_all": _mean(spread_all), "mean_spread_band": _mean(spread_band)}


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def reward_gap(scored: list[tuple[float, float]]) -> dict[str, Any]:
    """The reward gap between chosen and rejected over (chosen_reward, rejected_reward) pairs (build, extend)."""
    gaps = [c - r for c, r in scored]
    return {
        "pairs": len(scored),
        "mean_chosen": _mean([c for c, _ in scored]),
        "mean_rejected": _mean([r for _, r in scored]),
        "mean_gap": _mean(gaps),
        "mean_abs_gap": _mean([abs(g) for g in gaps]),
        "chosen_higher_share": round(sum(g > 0 for g in gaps) / len(gaps), 6) if gaps else None,
    }
