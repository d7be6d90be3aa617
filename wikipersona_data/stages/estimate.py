"""``wikipersona estimate``: calls, tokens and cost per stage from the recipe alone, before spending.

Call counts follow from the recipe's counts (the same arithmetic the stages do, assuming no losses:
every batch is usable, every candidate survives). Prompt tokens come from rendering each stage's real
template with stand-in values of typical size (an article of ``description_max_sentences`` sentences
of ~25 words, answers of about half the respond stage's ``max_tokens``) and the ledger's
chars/4 heuristic; output is costed at each stage's ``max_tokens`` (the most a call can cost). So
the figure is an upper bound for a loss-free build; re-asks and top-up batches come on top.
"""

from __future__ import annotations

import math
from typing import Any

from wikipersona_data.stages.recipe import Recipe
from wikipersona_data.stages.templates import load_template

WORDS_PER_SENTENCE = 25
WORDS_PER_QUESTION = 20


def _text(words: int) -> str:
    return " ".join(["lorem"] * max(1, words))


def _prompt_tokens(template: str, **values: Any) -> int:
    from wikipersona_data.llm.ledger import estimate_tokens

    return estimate_tokens(load_template(template).render(**values))


def plan(recipe: Recipe) -> list[tuple[str, str, int, int, int]]:
    """``(stage, model, prompt_tokens, max_output_tokens, calls)``: groups of equal calls a loss-free build makes.

    One tuple per group, never per call, so a recipe asking for 10^9 candidates is priced arithmetically
    (and refused by the budget) instead of building 10^9 tuples first.
    """
    counts = recipe.counts
    members: dict[str, int] = {}
    personas: set[str] = set()
    for axis in recipe.axes:
        n = sum(len(c.personas) for c in axis.categories)
        if axis.auto_select is not None:
            n += axis.auto_select.keep * len(axis.categories)
        members[axis.name] = n
        personas.update(t for c in axis.categories for t in c.personas)
    n_personas = len(personas) + sum(
        a.auto_select.keep * len(a.categories) for a in recipe.axes if a.auto_select is not None
    )
    divergent_axes = [a for a in recipe.axes if members[a.name] >= 2]
    answer_words = max(20, recipe.stage("respond").max_tokens // 2 * 3 // 4)
    claims = [_text(15) for _ in range(12)]
    calls: list[tuple[str, str, int, int, int]] = []

    def add(stage: str, n: int, tokens: int) -> None:
        spec = recipe.stage(stage)
        if n:
            calls.append((stage, spec.model, tokens, spec.max_tokens, n))

    for axis in recipe.axes:
        if axis.auto_select is None:
            continue
        sel = axis.auto_select
        add(
            "personas",
            len(axis.categories),
            _prompt_tokens("personas_candidates", axis=axis.name, category="x", n=sel.candidates),
        )
        sentences = [{"id": f"{i}.0", "text": _text(WORDS_PER_SENTENCE)} for i in range(60)]
        evidence = _prompt_tokens("personas_evidence", title="x", name="x", axis="x", category="x", sentences=sentences)
        add("personas", len(axis.categories) * sel.candidates, evidence)

    sentences = [{"id": f"{i}.0", "text": _text(WORDS_PER_SENTENCE)} for i in range(counts.description_max_sentences)]
    add(
        "describe",
        n_personas,
        _prompt_tokens(
            "describe", title="x", name="x", sentences=sentences, memberships=[], min_claims=6, max_claims=16
        ),
    )

    batches = math.ceil(counts.personal_questions / counts.question_batch)
    personal = _prompt_tokens(
        "questions_personal", name="x", claims=claims, memberships=[], n=counts.question_batch, batch=0, focus="x"
    )
    add("questions", n_personas * batches, personal)
    div_batches = math.ceil(counts.divergent_questions / counts.question_batch)
    for axis in divergent_axes:
        ms = [{"name": "x", "category": "x"}] * members[axis.name]
        cats = [c.name for c in axis.categories]
        tokens = _prompt_tokens(
            "questions_divergent",
            axis=axis.name,
            members=ms,
            categories=cats,
            n=counts.question_batch,
            batch=0,
            focus="x",
        )
        add("questions", div_batches, tokens)

    q_personal = n_personas * counts.personal_questions
    q_divergent = len(divergent_axes) * counts.divergent_questions
    axes_view = [{"name": a.name, "categories": [c.name for c in a.categories]} for a in recipe.axes]
    question = _text(WORDS_PER_QUESTION)
    add(
        "respond", q_personal, _prompt_tokens("respond_categories", question=question, axes=axes_view, n_min=2, n_max=8)
    )
    answer_prompt = _prompt_tokens("respond", question=question, axis="x", category="x", variant=1, style="x")
    add("respond", (q_personal + q_divergent) * counts.candidates_generated, answer_prompt)

    judgments = q_personal + sum(members[a.name] * counts.divergent_questions for a in divergent_axes)
    votes_per = (counts.candidates_kept - 1) * (2 if recipe.judge.both_orders else 1)
    judge_prompt = _prompt_tokens(
        "judge",
        name="x",
        background=claims[:6],
        preferences=claims[6:],
        question=question,
        answer_a=_text(answer_words),
        answer_b=_text(answer_words),
        allow_ties=True,
    )
    add("judge", judgments * votes_per, judge_prompt)

    shots = [
        {"question": question, "chosen": _text(answer_words), "rejected": _text(answer_words)}
    ] * counts.inference_shots
    add("prefixes", n_personas, _prompt_tokens("prefixes_infer", shots=shots))

    embed = recipe.stages.embed
    if q_personal + q_divergent:
        tokens = counts.candidates_generated * answer_words * 4 // 3
        calls.append(("respond", embed.model, tokens, 0, q_personal + q_divergent))
    return calls


def estimate(recipe: Recipe) -> dict[str, Any]:
    """The ledger's estimate table (per stage and model, plus totals) for :func:`plan`."""
    from wikipersona_data.llm.ledger import Ledger
    from wikipersona_data.stages.pipeline import price_table

    return Ledger(price_table(recipe)).estimate(plan(recipe))


def format_estimate(table: dict[str, Any]) -> str:
    """The estimate as a table, stages in pipeline order (as ``build`` and the card list them)."""
    from wikipersona_data.stages.order import pipeline_rank

    header = f"{'stage':<10}{'model':<22}{'calls':>9}{'input tok':>13}{'max out tok':>13}{'cost $ (max)':>14}"
    lines = [header, "-" * len(header)]
    for row in sorted(table["by_stage_model"], key=lambda r: (pipeline_rank(r["stage"]), r["model"])):
        cost = "n/a" if row["cost_usd"] is None else f"{row['cost_usd']:.2f}"
        lines.append(
            f"{row['stage']:<10}{row['model']:<22}{row['calls']:>9}{row['input_tokens']:>13}"
            f"{row['max_output_tokens']:>13}{cost:>14}"
        )
    t = table["totals"]
    cost = "n/a (a model has no price)" if t["cost_usd"] is None else f"{t['cost_usd']:.2f}"
    lines += [
        "-" * len(header),
        f"{'total':<32}{t['calls']:>9}{t['input_tokens']:>13}{t['max_output_tokens']:>13}{cost:>14}",
    ]
    return "\n".join(lines)
