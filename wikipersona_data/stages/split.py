"""Stage 6, split: preference pairs with a seeded, recorded train/test split and persona folds.

- Personal questions: per persona, a seeded order of its questions; the first
  ``round(n * personal_test_fraction)`` are test (the paper used 50:50).
- Divergent questions: ONE split per axis, shared by all its members, so a test question is never a
  train question for any persona (group-aware).
- Persona folds: k folds stratified by axis (each persona's first axis alphabetically; personas of
  an axis dealt round-robin in a seeded order, the dealer continuing across axes), stored as a column
  for unseen-persona evaluation.

Orders come from hashes of (seed, scope, id), so adding a question or persona moves no other one.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.ids import pair_id, seeded_order
from wikipersona_data.stages.rows import CandidateRow, JudgmentRow, PairRow, PersonaRow, QuestionRow, RejectRow

STAGE = "split"


def n_test(n: int, fraction: float) -> int:
    return int(n * fraction + 0.5)


def assign_folds(old_personas: list[dict[str, Any]], new: list[PersonaRow], k: int, seed: int) -> dict[str, int]:
    """Fold per new persona: the least-used fold among those its primary axis does not use yet (all folds
    if every fold is used), ties broken by a seeded order; existing folds never move."""
    load = Counter(p["persona_fold"] for p in old_personas if p["persona_fold"] is not None)
    by_axis: dict[str, set[int]] = defaultdict(set)
    for p in old_personas:
        if p["axes"] and p["persona_fold"] is not None:
            by_axis[min(a["axis"] for a in p["axes"])].add(p["persona_fold"])
    folds: dict[str, int] = {}
    for row in sorted(new, key=lambda r: r.persona_id):
        primary = min(m.axis for m in row.axes) if row.axes else ""
        free = [f for f in range(k) if f not in by_axis[primary]] or list(range(k))
        order = seeded_order(seed, [str(f) for f in free], "extend-fold", row.persona_id)
        fold = min(free, key=lambda f: (load[f], order.index(str(f))))
        folds[row.persona_id] = fold
        load[fold] += 1
        by_axis[primary].add(fold)
    return folds


def test_questions(ctx: BuildContext, judgments: list[JudgmentRow], questions: dict[str, QuestionRow]) -> set[str]:
    """Question ids on the test side (personal: per persona; divergent: per axis)."""
    seed = ctx.recipe.seeds.split
    spec = ctx.recipe.split
    scopes: dict[tuple[str, str], set[str]] = {}
    for j in judgments:
        q = questions[j.question_id]
        scope = ("personal", q.persona_id) if q.question_type == "personal" else ("divergent", q.axis)
        scopes.setdefault(scope, set()).add(q.question_id)  # type: ignore[arg-type]
    test: set[str] = set()
    for (kind, scope), qids in sorted(scopes.items()):
        fraction = spec.personal_test_fraction if kind == "personal" else spec.divergent_test_fraction
        ordered = seeded_order(seed, sorted(qids), kind, scope)
        test.update(ordered[: n_test(len(ordered), fraction)])
    return test


def persona_folds(ctx: BuildContext, personas: list[PersonaRow]) -> dict[str, int]:
    k = ctx.recipe.split.persona_folds
    by_axis: dict[str, list[str]] = {}
    for p in personas:
        primary = min(m.axis for m in p.axes) if p.axes else ""
        by_axis.setdefault(primary, []).append(p.persona_id)
    folds: dict[str, int] = {}
    dealt = 0
    for axis in sorted(by_axis):
        for pid in seeded_order(ctx.recipe.seeds.folds, sorted(by_axis[axis]), "folds", axis):
            folds[pid] = dealt % k
            dealt += 1
    return folds


def split_spec(ctx: BuildContext) -> dict[str, Any]:
    """What the manifest records about the split."""
    spec = ctx.recipe.split
    return {
        "seed": ctx.recipe.seeds.split,
        "fold_seed": ctx.recipe.seeds.folds,
        "personal_test_fraction": spec.personal_test_fraction,
        "divergent_test_fraction": spec.divergent_test_fraction,
        "persona_folds": spec.persona_folds,
        "divergent_scope": "axis",
        "rounding": "int(n * fraction + 0.5) per scope",
    }


async def run(
    ctx: BuildContext,
    personas: list[PersonaRow],
    questions: list[QuestionRow],
    candidates: list[CandidateRow],
    judgments: list[JudgmentRow],
    *,
    test: set[str] | None = None,
    folds: dict[str, int] | None = None,
) -> list[PairRow]:
    """``test`` / ``folds`` (``wikipersona extend``) fix the test question ids and persona folds
    decided elsewhere, so added personas keep the release's divergent split and nobody else's fold moves."""
    started = time.monotonic()
    store = ctx.store(STAGE, PairRow, "pair_id")
    by_q = {q.question_id: q for q in questions}
    by_c = {c.candidate_id: c for c in candidates}
    by_p = {p.persona_id: p for p in personas}
    test = test_questions(ctx, judgments, by_q) if test is None else test
    folds = persona_folds(ctx, personas) if folds is None else folds
    rows: list[PairRow] = []
    rejects: list[RejectRow] = []
    for j in judgments:
        q = by_q[j.question_id]
        chosen, rejected = by_c[j.chosen_id], by_c[j.rejected_id]
        rows.append(
            PairRow(
                pair_id=pair_id(j.persona_id, j.question_id),
                persona_id=j.persona_id,
                persona=by_p[j.persona_id].name,
                question_id=q.question_id,
                question_type=q.question_type,
                axis=q.axis,
                category=j.category,
                prompt=q.text,
                chosen=chosen.text,
                rejected=rejected.text,
                chosen_id=chosen.candidate_id,
                rejected_id=rejected.candidate_id,
                judge_agreement=j.judge_agreement,
                judge_model=j.provenance.model,
                judge_votes=[v for m in j.matches for v in m.votes],
                generator_model=chosen.provenance.model,
                split="test" if q.question_id in test else "train",
                persona_fold=folds[j.persona_id],
                chosen_reward=chosen.reward_score,  # None (and no column) without a reward band
                rejected_reward=rejected.reward_score,
            )
        )
    rows, dropped = await ctx.apply_filters(STAGE, rows, "pair_id")
    rejects += dropped
    store.write_output(rows, rejects)
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.pair_id)
